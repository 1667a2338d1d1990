package node

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"

	"liandong/node/store"
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
	walMetaFile = metadb.FileName // inside walLogDir
)

// walOptions are how raft-wal is opened: Config.WALSegmentSize, and in tests
// the file system it works through.
type walOptions struct {
	segmentSize int       // 0: raft-wal's default
	vfs         types.VFS // nil: the operating system's
}

// resolveLogStore says which kind of log raftDir holds or will hold. An empty
// kind (the default) keeps the kind an existing log is of and gives a new one
// bbolt. A directory holding a log of the other kind than the one asked for
// is refused rather than ignored: starting on an empty log would make this
// replica forget what it acknowledged.
func resolveLogStore(raftDir, kind string) (string, error) {
	boltPath, walPath := filepath.Join(raftDir, boltLogFile), filepath.Join(raftDir, walLogDir)
	hasBolt, err := holdsLog(boltPath)
	if err != nil {
		return "", err
	}
	hasWAL, err := holdsLog(walPath)
	if err != nil {
		return "", err
	}
	repair := repairByRejoin(filepath.Dir(raftDir))
	switch {
	case hasBolt && hasWAL:
		return "", fmt.Errorf("%w: raft's directory %s holds both a bolt log (%s) and a WAL (%s), and either may be the one this replica acknowledged from; %s",
			ErrDamaged, raftDir, boltPath, walPath, repair)
	case hasBolt && kind == LogStoreWAL, hasWAL && kind == LogStoreBolt:
		held, path := LogStoreBolt, boltPath
		if hasWAL {
			held, path = LogStoreWAL, walPath
		}
		// Nothing is damaged: the setting is what to change, and moving the
		// data aside (rejoining) only if the other kind is wanted.
		return "", fmt.Errorf("%w: raft's log here is a %s log (%s) but raft.log_store is %q: set raft.log_store: %s, or leave it unset (to move this replica to a %s log, rejoin it: deploy/README.md, \"Raft's log\")",
			ErrLogStoreMismatch, held, path, kind, held, kind)
	case kind != "":
		return kind, nil
	case hasWAL:
		return LogStoreWAL, nil
	default:
		return LogStoreBolt, nil
	}
}

// openLogStore opens raft's log in raftDir as kind (Config.LogStore; empty
// picks as resolveLogStore says) and returns the kind it opened. A WAL is
// repaired (walfix.go) and every entry it holds read back first; a bbolt log
// has been checked by checkRaftFiles.
func openLogStore(raftDir, kind string, wal walOptions, logger hclog.Logger) (logStore, string, error) {
	kind, err := resolveLogStore(raftDir, kind)
	if err != nil {
		return nil, "", err
	}
	repair := repairByRejoin(filepath.Dir(raftDir))
	if kind == LogStoreBolt {
		boltPath := filepath.Join(raftDir, boltLogFile)
		b, err := raftboltdb.New(raftboltdb.Options{Path: boltPath, BoltOptions: boltOptions()})
		if err != nil {
			return nil, "", fmt.Errorf("open raft log %s: %w (if the file is damaged: %s)", boltPath, err, repair)
		}
		return b, kind, nil
	}
	walPath := filepath.Join(raftDir, walLogDir)
	if err := os.MkdirAll(walPath, 0o700); err != nil {
		return nil, "", fmt.Errorf("create raft log directory: %w", err)
	}
	// raft-wal keeps its segment list and raft's term and vote in a bbolt
	// file. A damaged one must be refused before bbolt maps it; an empty one
	// makes raft-wal panic; without one, raft-wal would write new metadata
	// over segments it no longer knows, and delete them at the next start.
	metaPath := filepath.Join(walPath, walMetaFile)
	segments, _ := filepath.Glob(filepath.Join(walPath, "*.wal"))
	switch fi, err := os.Stat(metaPath); {
	case err == nil && fi.Size() > 0:
		if err := store.CheckBoltFile(metaPath); err != nil {
			if errors.Is(err, store.ErrNoAccess) {
				return nil, "", fmt.Errorf("raft log metadata: %w", err)
			}
			detail := strings.TrimPrefix(err.Error(), store.ErrCorrupt.Error()+": ")
			return nil, "", fmt.Errorf("%w: raft log metadata %s is damaged (%s); %s", ErrDamaged, metaPath, detail, repair)
		}
	case err == nil:
		return nil, "", fmt.Errorf("%w: raft log metadata %s is empty; %s", ErrDamaged, metaPath, repair)
	case errors.Is(err, fs.ErrNotExist) && len(segments) > 0:
		return nil, "", fmt.Errorf("%w: raft log metadata %s is missing beside %d segment files; %s", ErrDamaged, metaPath, len(segments), repair)
	case !errors.Is(err, fs.ErrNotExist):
		return nil, "", fmt.Errorf("check raft log metadata %s: %w", metaPath, err)
	}
	var vfs types.VFS = walfs.New()
	if wal.vfs != nil {
		vfs = wal.vfs
	}
	// Repairing and opening may write (metadata, a new segment).
	full := func(err error) error {
		return fmt.Errorf("open raft log %s: %w: free space on its file system and start the replica again", walPath, err)
	}
	if repaired, err := repairSealedTail(walPath, vfs, wal.segmentSize); isDiskFull(err) {
		return nil, "", full(err)
	} else if err != nil {
		return nil, "", fmt.Errorf("%w: raft log %s: check its tail segment: %v; %s", ErrDamaged, walPath, err, repair)
	} else if repaired && logger != nil {
		logger.Warn("raft log: repaired its tail segment (a seal without its rotation, or a stray index from an append that failed); appends go on", "dir", walPath)
	}
	meta := &metadb.BoltMetaDB{}
	w, err := raftwal.Open(walPath, raftwal.WithLogger(logger), raftwal.WithMetaStore(meta),
		raftwal.WithSegmentSize(wal.segmentSize), raftwal.WithSegmentFiler(segment.NewFiler(walPath, vfs)))
	if err != nil {
		meta.Close()
	}
	if isDiskFull(err) {
		return nil, "", full(err)
	}
	if err != nil {
		return nil, "", fmt.Errorf("%w: open raft log %s: %v; %s", ErrDamaged, walPath, err, repair)
	}
	if err := readWholeLog(w); err != nil {
		w.Close()
		return nil, "", fmt.Errorf("%w: raft log %s: %v; %s", ErrDamaged, walPath, err, repair)
	}
	return w, kind, nil // its Close closes meta too
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

// readWholeLog reads every entry the log holds. raft-wal finds a damaged
// segment only when an entry in it is read, which raft may do long after the
// start, or never until a follower needs it.
func readWholeLog(s raft.LogStore) error {
	first, err := s.FirstIndex()
	if err != nil {
		return fmt.Errorf("read its first index: %w", err)
	}
	last, err := s.LastIndex()
	if err != nil {
		return fmt.Errorf("read its last index: %w", err)
	}
	if first == 0 {
		return nil // empty
	}
	var l raft.Log
	for i := first; i <= last; i++ {
		if err := s.GetLog(i, &l); err != nil {
			return fmt.Errorf("entry %d of %d-%d cannot be read: %w", i, first, last, err)
		}
		if l.Index != i {
			return fmt.Errorf("entry %d of %d-%d reads as entry %d", i, first, last, l.Index)
		}
	}
	return nil
}
