package node

import (
	"errors"
	"fmt"
	"io/fs"
	"liandong/auth"
	"os"
	"path/filepath"
	"time"

	"liandong/node/store"
)

// cleanMarker exists in the data directory only while no replica has the state
// file open: Close writes it, Open removes it. Its absence at Open means the last
// run ended without Close (a crash, a kill, a power cut).
const cleanMarker = "state.clean"

func markClean(dataDir string) error {
	f, err := os.OpenFile(filepath.Join(dataDir, cleanMarker), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("mark clean shutdown: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// openState opens the state file. After an unclean stop it first runs bbolt's
// consistency check, because without fsync a power cut can tear the file; a torn
// file is moved aside and the state is rebuilt from raft's snapshot and log.
func (n *Node) openState() error {
	path := filepath.Join(n.cfg.DataDir, "state.db")
	marker := filepath.Join(n.cfg.DataDir, cleanMarker)
	_, statErr := os.Stat(path)
	_, cleanErr := os.Stat(marker)
	unclean := statErr == nil && errors.Is(cleanErr, fs.ErrNotExist)
	opts := store.Options{Centre: n.cfg.Centre, Signer: KeySigner(append([]*auth.KeyPair{n.cfg.RecordKey}, n.cfg.RotationKeys...)...), NoSync: !n.cfg.StateSync}

	st, err := store.Open(path, opts)
	if err == nil && unclean {
		start := time.Now()
		if err = st.Check(); err != nil {
			st.Close()
		} else {
			n.log.Info("state file checked after an unclean stop", "took", time.Since(start))
		}
	}
	// Rebuild only what raft can rebuild: without raft's log the torn file is
	// all there is, and the operator must decide.
	raftLog, _ := os.Stat(filepath.Join(n.cfg.DataDir, "raft", "log.db"))
	if err != nil && errors.Is(err, store.ErrCorrupt) && unclean && !n.cfg.StateSync && raftLog != nil && raftLog.Size() > 0 {
		aside := fmt.Sprintf("%s.torn-%d", path, time.Now().Unix())
		n.log.Error("state file torn after an unclean stop; rebuilding it from raft's snapshot and log", "err", err, "moved_to", aside)
		if rerr := os.Rename(path, aside); rerr != nil {
			return fmt.Errorf("move torn state file aside: %w", rerr)
		}
		st, err = store.Open(path, opts)
	}
	if err != nil {
		if errors.Is(err, store.ErrCorrupt) {
			return fmt.Errorf("%w: %w; this replica will not start (so it cannot lead) until it is repaired: move %s aside "+
				"and start again, and the state is rebuilt from raft's snapshot and log in %s", ErrDamaged, err, path, filepath.Join(n.cfg.DataDir, "raft"))
		}
		return err
	}
	if err := os.Remove(marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		st.Close()
		return fmt.Errorf("clear clean-shutdown marker: %w", err)
	}
	n.st = st
	n.removeHalfWritten()
	return nil
}
