package api

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
)

// Backuper is the part of the node that copies its state file
// (node.(*Node).Backup); a Service without it answers 404.
type Backuper interface {
	Backup(w io.Writer, started func(store.BackupInfo) error) (int64, error)
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
// the centre's personal data, so it is taken only once the audit log says
// who took it: at the leader, which alone can append to that log (a follower
// redirects there, 307, rather than proxy a long stream under its own
// timeouts).
func (h *handler) backup(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionAdmin, nil); err != nil {
		return err
	}
	b, ok := h.svc.(Backuper)
	if !ok {
		return newProblem(http.StatusNotFound, "not-found", "this node keeps no state file to copy")
	}
	g, audited := h.svc.(Governed)
	if rep, ok := h.svc.(Replicated); ok && !rep.IsLeader() {
		return backupAtLeader(w, r, rep)
	}
	rc := http.NewResponseController(w)
	started := false
	n, err := b.Backup(deadlineWriter{w: w, rc: rc}, func(i store.BackupInfo) error {
		if audited {
			ctx, cancel := context.WithTimeout(r.Context(), auditTimeout)
			defer cancel()
			detail := fmt.Sprintf("applied index %d, own log seq %d, %d bytes", i.AppliedIndex, i.OwnSeq, i.Size)
			if err := g.Audit(ctx, actor(p), "state.backup", detail); err != nil {
				return fmt.Errorf("the backup was not taken: it could not be recorded in the audit log: %w", err)
			}
		}
		started = true
		hd := w.Header()
		hd.Set("Content-Type", "application/octet-stream")
		hd.Set("Content-Length", strconv.FormatInt(i.Size, 10))
		hd.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="liandong-%s-%d.db"`, i.Centre, i.AppliedIndex))
		hd.Set("Cache-Control", "no-store")
		hd.Set(BackupCentreHeader, i.Centre)
		hd.Set(BackupAppliedHeader, strconv.FormatUint(i.AppliedIndex, 10))
		hd.Set(BackupOwnSeqHeader, strconv.FormatUint(i.OwnSeq, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	})
	if err != nil && !started {
		return err
	}
	if err != nil {
		// The header is out: the client sees a body shorter than its
		// Content-Length, which is how a cut answer looks.
		h.log.Warn("backup cut short", "sent", n, "err", err)
	}
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

// backupRoute is the backup's route: a follower redirects it to the leader
// (backupAtLeader), never proxies it.
const backupRoute = "GET /v1/admin/backup"

// backupAtLeader redirects a backup asked of a follower to the leader (307):
// the copy is taken there, and a follower that proxied it would cut a large
// one at its forward bound and WriteTimeout.
func backupAtLeader(w http.ResponseWriter, r *http.Request, rep Replicated) error {
	leader := rep.LeaderHTTP()
	if leader == "" {
		return fmt.Errorf("a backup is taken at the leader, and none is known: %w", node.ErrNotLeader)
	}
	w.Header().Set("Location", strings.TrimRight(leader, "/")+r.URL.Path)
	w.WriteHeader(http.StatusTemporaryRedirect)
	return nil
}
