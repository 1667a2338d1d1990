package node

import (
	"errors"
	"fmt"
	"io/fs"
	"liandong/auth"
	"os"
	"path/filepath"
	"strings"
	"time"

	"liandong/node/store"
)

// cleanMarker exists in the data directory only while no replica has the state
// file open: Close writes it, Open removes it. Its absence at Open means the last
// run ended without Close (a crash, a kill, a power cut).
const cleanMarker = "state.clean"

func markClean(dataDir string) error {
	if err := writeSynced(filepath.Join(dataDir, cleanMarker), nil); err != nil {
		return fmt.Errorf("mark clean shutdown: %w", err)
	}
	return nil
}

// writeSynced writes a small file and fsyncs it and its directory.
func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// raftLogHeld reports whether raft's log, of either kind, holds anything here.
func (n *Node) raftLogHeld() bool {
	for _, p := range []string{boltLogFile, walLogDir} {
		if held, err := holdsLog(filepath.Join(n.cfg.DataDir, "raft", p)); err == nil && held {
			return true
		}
	}
	return false
}

// bootMarker holds the boot id (Config.BootID) of the machine that last opened
// the state file.
const bootMarker = "state.boot"

// linuxBootID is Linux's id of the current boot, "" elsewhere.
func linuxBootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// openState opens the state file. After an unclean stop it first runs bbolt's
// consistency check, because without fsync a power cut can tear the file; a torn
// file is moved aside and the state is rebuilt from raft's snapshot and log.
//
// A file the machine went down with (an unclean stop under another boot) is
// rebuilt whatever the check says: the kernel writes unsynced pages back in no
// order, so the meta page of a commit can reach the disk without some of the
// pages it names, which then hold what they held before, pages that pass every
// structural check, under an applied index that says raft need not replay. A
// crash of the process alone loses nothing: the page cache outlives it.
func (n *Node) openState() error {
	path := filepath.Join(n.cfg.DataDir, "state.db")
	marker := filepath.Join(n.cfg.DataDir, cleanMarker)
	_, statErr := os.Stat(path)
	_, cleanErr := os.Stat(marker)
	unclean := statErr == nil && errors.Is(cleanErr, fs.ErrNotExist)
	opts := store.Options{Centre: n.cfg.Centre, Signer: KeySigner(append([]*auth.KeyPair{n.cfg.RecordKey}, n.cfg.RotationKeys...)...), NoSync: !n.cfg.StateSync}
	bootID := linuxBootID
	if n.cfg.BootID != nil {
		bootID = n.cfg.BootID
	}
	boot := bootID()
	// Rebuild only what raft can rebuild: without raft's log the file is all
	// there is, and the operator must decide.
	raftHeld := n.raftLogHeld()

	if unclean && !n.cfg.StateSync && raftHeld {
		last, err := os.ReadFile(filepath.Join(n.cfg.DataDir, bootMarker))
		// An unknown boot (no marker: an older build; no boot id: not
		// Linux) is taken for a restart of the machine.
		if err != nil || boot == "" || strings.TrimSpace(string(last)) != boot {
			aside := fmt.Sprintf("%s.unsynced-%d", path, time.Now().Unix())
			n.log.Warn("the machine restarted while the state file was open, and its unsynced pages may be lost; rebuilding it from raft's snapshot and log",
				"moved_to", aside)
			if err := os.Rename(path, aside); err != nil {
				return fmt.Errorf("move the unsynced state file aside: %w", err)
			}
			// The search index is derived from the state file and unsynced
			// too: it is rebuilt with it.
			if err := os.Remove(filepath.Join(n.cfg.DataDir, searchFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove the unsynced search index: %w", err)
			}
			unclean = false
		}
	}

	st, err := store.Open(path, opts)
	if err == nil && unclean {
		start := time.Now()
		if err = st.Check(); err != nil {
			st.Close()
		} else {
			n.log.Info("state file checked after an unclean stop", "took", time.Since(start))
		}
	}
	if err != nil && errors.Is(err, store.ErrCorrupt) && unclean && !n.cfg.StateSync && raftHeld {
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
	// The boot is recorded before the clean marker goes, so that a file
	// open without the marker always has its boot on record.
	if err := writeSynced(filepath.Join(n.cfg.DataDir, bootMarker), []byte(boot+"\n")); err != nil {
		st.Close()
		return fmt.Errorf("record the boot: %w", err)
	}
	if err := os.Remove(marker); err != nil && !errors.Is(err, fs.ErrNotExist) {
		st.Close()
		return fmt.Errorf("clear clean-shutdown marker: %w", err)
	}
	n.st = st
	n.removeHalfWritten()
	return nil
}
