package api

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"liandong/auth"
	"liandong/node/store"
)

// Backuper is the part of the node that copies its state file
// (node.(*Node).Backup); a Service without it answers 404.
type Backuper interface {
	Backup(w io.Writer, started func(store.BackupInfo)) (int64, error)
}

// Headers of GET /v1/admin/backup: what the copy holds, sent before it.
const (
	BackupCentreHeader  = "Liandong-Backup-Centre"
	BackupAppliedHeader = "Liandong-Backup-Applied-Index"
	BackupOwnSeqHeader  = "Liandong-Backup-Own-Seq"
)

// backupWriteTimeout bounds each write of a backup to its client: the
// server's WriteTimeout, meant for API answers, would cut a copy of a large
// state file; a client that stops reading is still let go.
const backupWriteTimeout = 30 * time.Second

// backup streams a consistent copy of the state file (admin scope). It holds
// the centre's personal data and audit log, so taking one is audited.
func (h *handler) backup(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionAdmin, nil); err != nil {
		return err
	}
	b, ok := h.svc.(Backuper)
	if !ok {
		return newProblem(http.StatusNotFound, "not-found", "this node keeps no state file to copy")
	}
	rc := http.NewResponseController(w)
	var info store.BackupInfo
	n, err := b.Backup(deadlineWriter{w: w, rc: rc}, func(i store.BackupInfo) {
		info = i
		hd := w.Header()
		hd.Set("Content-Type", "application/octet-stream")
		hd.Set("Content-Length", strconv.FormatInt(i.Size, 10))
		hd.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="liandong-%s-%d.db"`, i.Centre, i.AppliedIndex))
		hd.Set("Cache-Control", "no-store")
		hd.Set(BackupCentreHeader, i.Centre)
		hd.Set(BackupAppliedHeader, strconv.FormatUint(i.AppliedIndex, 10))
		hd.Set(BackupOwnSeqHeader, strconv.FormatUint(i.OwnSeq, 10))
		w.WriteHeader(http.StatusOK)
	})
	if err != nil {
		if n == 0 && info.Size == 0 {
			return fmt.Errorf("copy the state file: %w", err)
		}
		// The header is out: the client sees a body shorter than its
		// Content-Length, which is how a cut answer looks.
		h.log.Warn("backup cut short", "sent", n, "size", info.Size, "err", err)
		return nil
	}
	h.audit(r, p, "state.backup", fmt.Sprintf("applied index %d, own log seq %d, %d bytes", info.AppliedIndex, info.OwnSeq, n))
	return nil
}

// deadlineWriter moves the write deadline forward before each write.
type deadlineWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (d deadlineWriter) Write(p []byte) (int, error) {
	_ = d.rc.SetWriteDeadline(time.Now().Add(backupWriteTimeout))
	return d.w.Write(p)
}
