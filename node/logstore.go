package node

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
)

// logStore is raft's log and stable store, whichever kind holds them.
type logStore interface {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// Where each kind keeps raft's log inside the raft directory.
const (
	boltLogFile = "log.db"
	walLogDir   = "wal"
)

// openLogStore opens raft's log in raftDir as kind (Config.LogStore). A
// directory holding a log of the other kind is refused rather than ignored:
// starting on an empty log would make this replica forget what it acknowledged.
func openLogStore(raftDir, kind string, logger hclog.Logger) (logStore, error) {
	boltPath, walPath := filepath.Join(raftDir, boltLogFile), filepath.Join(raftDir, walLogDir)
	other, otherKind := walPath, LogStoreWAL
	if kind == LogStoreWAL {
		other, otherKind = boltPath, LogStoreBolt
	}
	if held, err := holdsLog(other); err != nil {
		return nil, err
	} else if held {
		return nil, fmt.Errorf("%w: raft's log here is a %s log (%s) but raft.log_store is %q: set raft.log_store: %s, or %s",
			ErrDamaged, otherKind, other, kind, otherKind, repairByRejoin(filepath.Dir(raftDir)))
	}
	switch kind {
	case LogStoreWAL:
		if err := os.MkdirAll(walPath, 0o700); err != nil {
			return nil, fmt.Errorf("create raft log directory: %w", err)
		}
		meta := &metadb.BoltMetaDB{}
		w, err := raftwal.Open(walPath, raftwal.WithLogger(logger), raftwal.WithMetaStore(meta))
		if err != nil {
			meta.Close()
			return nil, fmt.Errorf("%w: open raft log %s: %v; %s", ErrDamaged, walPath, err, repairByRejoin(filepath.Dir(raftDir)))
		}
		return w, nil // its Close closes meta too
	default:
		b, err := raftboltdb.New(raftboltdb.Options{Path: boltPath, BoltOptions: boltOptions()})
		if err != nil {
			return nil, fmt.Errorf("open raft log %s: %w (if the file is corrupt, move the raft directory aside and rejoin from a peer)", boltPath, err)
		}
		return b, nil
	}
}

// holdsLog reports whether path is a non-empty file or directory.
func holdsLog(path string) (bool, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("check raft log %s: %w", path, err)
	}
	if !fi.IsDir() {
		return fi.Size() > 0, nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return false, fmt.Errorf("check raft log %s: %w", path, err)
	}
	return len(entries) > 0, nil
}
