package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/types"

	"liandong/auth"
	"liandong/schema"
)

// fullDiskVFS is raft-wal's file system on a disk that fills up. While
// noSegment is set, a new segment cannot be preallocated (its file is
// created, then fallocate fails, as on a disk with less free than a segment),
// or, with noFile, not even created. While full is set as well, no block is
// free: a write past the end of a file writes what fits in the blocks the
// file has and fails for want of space.
type fullDiskVFS struct {
	*walfs.FS
	full, noSegment, noFile atomic.Bool
	refused                 atomic.Int32 // segments that could not be made
}

type fullDiskFile struct {
	types.WritableFile
	v    *fullDiskVFS
	path string
}

func (f *fullDiskFile) WriteAt(p []byte, off int64) (int, error) {
	if f.v.full.Load() {
		fi, err := os.Stat(f.path)
		if err != nil {
			return 0, err
		}
		if end := fi.Size(); off+int64(len(p)) > end {
			n := 0
			if end > off {
				n, _ = f.WritableFile.WriteAt(p[:end-off], off)
			}
			return n, &os.PathError{Op: "write", Path: f.path, Err: syscall.ENOSPC}
		}
	}
	return f.WritableFile.WriteAt(p, off)
}

func (v *fullDiskVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	if v.full.Load() || v.noSegment.Load() {
		v.refused.Add(1)
		if !v.noFile.Load() {
			if f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644); err == nil {
				f.Close()
			}
		}
		return nil, fmt.Errorf("preallocate %s: %w", name, syscall.ENOSPC)
	}
	f, err := v.FS.Create(dir, name, size)
	if err != nil {
		return nil, err
	}
	return &fullDiskFile{WritableFile: f, v: v, path: filepath.Join(dir, name)}, nil
}

func (v *fullDiskVFS) OpenWriter(dir, name string) (types.WritableFile, error) {
	f, err := v.FS.OpenWriter(dir, name)
	if err != nil {
		return nil, err
	}
	return &fullDiskFile{WritableFile: f, v: v, path: filepath.Join(dir, name)}, nil
}

func walEntry(i uint64) []*raft.Log {
	return []*raft.Log{{Index: i, Term: 1, Type: raft.LogCommand, Data: make([]byte, 1000)}}
}

// TestWALFullDisk: a raft-wal log whose disk fills up refuses appends; once
// space is back, after a restart, every entry is there and appends go on.
// raft-wal v0.4.1 gets there in one of two ways. With no block free, the
// append that fills a segment fails after writing part of its index, which
// raft-wal reads again as a seal (stuck for good, without repairSealedTail).
// With a little space but less than a segment, that append succeeds and
// making the next segment fails (appends refused as sealed until reopened).
func TestWALFullDisk(t *testing.T) {
	for _, c := range []struct {
		name         string
		full, noFile bool
	}{{"no block free", true, false}, {"no room for a segment", false, false}, {"no room for a segment's file", false, true}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			vfs := &fullDiskVFS{FS: walfs.New()}
			vfs.noFile.Store(c.noFile)
			opts := walOptions{segmentSize: 16 << 10, vfs: vfs}
			size := 1000
			if c.full {
				size = 40 // an index too big for the segment's last blocks
			}
			s, _, err := openLogStore(dir, LogStoreWAL, opts, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			next := uint64(1)
			store := func() error {
				err := s.StoreLogs([]*raft.Log{{Index: next, Term: 1, Type: raft.LogCommand, Data: make([]byte, size)}})
				if err == nil {
					next++
				}
				return err
			}
			vfs.full.Store(c.full)
			vfs.noSegment.Store(true)
			var failed error
			for range 2000 {
				if failed = store(); failed != nil {
					break
				}
			}
			if failed == nil {
				t.Fatal("appends never failed on a full disk")
			}
			t.Logf("append %d on a full disk: %v", next, failed)
			if !c.full && !errors.Is(failed, raftwal.ErrSealed) {
				t.Fatalf("want the rotation to have failed, got %v", failed)
			}
			s.Close()
			vfs.full.Store(false)
			vfs.noSegment.Store(false)
			if s, _, err = openLogStore(dir, LogStoreWAL, opts, hclog.NewNullLogger()); err != nil {
				t.Fatalf("restart once space is back: %v", err)
			}
			if last, _ := s.LastIndex(); last != next-1 {
				t.Fatalf("after the restart the log ends at %d, want %d", last, next-1)
			}
			for range 40 {
				if err := store(); err != nil {
					t.Fatalf("append %d once space is back: %v", next, err)
				}
			}
			s.Close()
			if s, _, err = openLogStore(dir, LogStoreWAL, opts, hclog.NewNullLogger()); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if last, _ := s.LastIndex(); last != next-1 {
				t.Fatalf("after a second restart the log ends at %d, want %d", last, next-1)
			}
		})
	}
}

// failingMeta is raft-wal's metadata store, whose commits fail while fail is
// set: a rotation that seals the tail segment's file but cannot record it.
type failingMeta struct {
	*metadb.BoltMetaDB
	fail atomic.Bool
}

func (m *failingMeta) CommitState(s types.PersistentState) error {
	if m.fail.Load() {
		return fmt.Errorf("commit raft-wal metadata: %w", syscall.ENOSPC)
	}
	return m.BoltMetaDB.CommitState(s)
}

// TestWALSealedTailRepairedAtOpen: a tail segment whose file was sealed by the
// append that filled it, while the rotation after it never reached the
// metadata (its commit failed here; a crash between the two leaves the same
// files), makes raft-wal refuse every append, also after reopening it. The
// log store records the rotation at open, and appends go on with nothing lost.
func TestWALSealedTailRepairedAtOpen(t *testing.T) {
	raftDir := t.TempDir()
	walPath := filepath.Join(raftDir, walLogDir)
	if err := os.MkdirAll(walPath, 0o700); err != nil {
		t.Fatal(err)
	}
	meta := &failingMeta{BoltMetaDB: &metadb.BoltMetaDB{}}
	w, err := raftwal.Open(walPath, raftwal.WithMetaStore(meta), raftwal.WithSegmentSize(16<<10), raftwal.WithLogger(hclog.NewNullLogger()))
	if err != nil {
		t.Fatal(err)
	}
	meta.fail.Store(true)
	next := uint64(1)
	for ; next < 200; next++ {
		if err := w.StoreLogs(walEntry(next)); err != nil {
			if !errorsIsSealed(err) {
				t.Fatalf("append %d: %v", next, err)
			}
			break
		}
	}
	if next == 200 {
		t.Fatal("no segment filled up")
	}
	w.Close()
	// Opened again as it is, raft-wal still refuses appends.
	plain := &metadb.BoltMetaDB{}
	if w, err = raftwal.Open(walPath, raftwal.WithMetaStore(plain), raftwal.WithSegmentSize(16<<10), raftwal.WithLogger(hclog.NewNullLogger())); err != nil {
		t.Fatal(err)
	}
	if err := w.StoreLogs(walEntry(next)); !errorsIsSealed(err) {
		t.Fatalf("raft-wal reopened on a sealed tail: append gave %v, want it sealed (if raft-wal now rotates at open, the repair can go)", err)
	}
	w.Close()

	s, _, err := openLogStore(raftDir, LogStoreWAL, walOptions{segmentSize: 16 << 10}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	for range 40 {
		if err := s.StoreLogs(walEntry(next)); err != nil {
			t.Fatalf("append %d after the repair: %v", next, err)
		}
		next++
	}
	if err := readWholeLog(s); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.FirstIndex(); first != 1 {
		t.Fatalf("first index %d after the repair, want 1", first)
	}
	if last, _ := s.LastIndex(); last != next-1 {
		t.Fatalf("last index %d after the repair, want %d", last, next-1)
	}
	s.Close()
}

func errorsIsSealed(err error) bool { return errors.Is(err, raftwal.ErrSealed) }

// TestAFailedRotationIsReported: a single replica on raft-wal whose next
// segment cannot be made answers writes as a full disk (507) and reports its
// disk full, rather than failing them as an internal error; restarted once
// space is back, it holds every acknowledged write and takes writes again.
func TestAFailedRotationIsReported(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	vfs := &fullDiskVFS{FS: walfs.New()}
	tweak := func(c *Config) { c.LogStore, c.WALSegmentSize, c.walVFS = LogStoreWAL, 64<<10, vfs }
	n := mustOpenNodeWith(t, dir, key, tweak)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ids []string
	vfs.noSegment.Store(true)
	var failed error
	for i := 0; i < 1000 && failed == nil; i++ {
		var rec *schema.Record
		if rec, failed = n.Create(ctx, supplyRecord(fmt.Sprint("分段轮换 ", i))); failed == nil {
			ids = append(ids, rec.ID)
		}
	}
	if !errors.Is(failed, ErrLogNeedsRestart) || !errors.Is(failed, ErrDiskFull) {
		t.Fatalf("a write once no segment can be made: %v, want ErrLogNeedsRestart", failed)
	}
	if err := n.DiskFull(); !errors.Is(err, ErrLogNeedsRestart) {
		t.Fatalf("DiskFull = %v, want ErrLogNeedsRestart", err)
	}
	vfs.noSegment.Store(false)
	n.Close()
	n = mustOpenNodeWith(t, dir, key, tweak)
	defer n.Close()
	checkServesAfterRestart(ctx, t, n, ids)
}
