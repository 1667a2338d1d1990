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
)

// fullDiskVFS is raft-wal's file system, except that while full is set a new
// segment cannot be preallocated: its file is created, then preallocating it
// fails, as on a full disk. With noFile, not even the file can be created.
type fullDiskVFS struct {
	*walfs.FS
	full, noFile atomic.Bool
	refused      atomic.Int32
}

func (v *fullDiskVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	if !v.full.Load() || (size == 0 && !v.noFile.Load()) {
		return v.FS.Create(dir, name, size)
	}
	v.refused.Add(1)
	if !v.noFile.Load() {
		if f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644); err == nil {
			f.Close()
		}
	}
	return nil, fmt.Errorf("preallocate %s: %w", name, syscall.ENOSPC)
}

func walEntry(i uint64) []*raft.Log {
	return []*raft.Log{{Index: i, Term: 1, Type: raft.LogCommand, Data: make([]byte, 1000)}}
}

// TestWALRotationFails: raft-wal v0.4.1, whose next segment could not be made,
// refuses every later append as sealed. When only preallocating the segment
// fails (a full disk), the segment is made without it and appends go on.
// When not even its file can be made, appends are refused until the replica
// restarts, and after the restart every entry is there and appends go on.
func TestWALRotationFails(t *testing.T) {
	for _, noFile := range []bool{false, true} {
		t.Run(fmt.Sprintf("file created=%v", !noFile), func(t *testing.T) {
			dir := t.TempDir()
			vfs := &fullDiskVFS{FS: walfs.New()}
			vfs.noFile.Store(noFile)
			opts := walOptions{segmentSize: 16 << 10, vfs: vfs}
			s, _, err := openLogStore(dir, LogStoreWAL, opts, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			next := uint64(1)
			store := func() error {
				err := s.StoreLogs(walEntry(next))
				if err == nil {
					next++
				}
				return err
			}
			vfs.full.Store(true)
			var failed error
			for range 100 {
				if failed = store(); failed != nil {
					break
				}
			}
			if vfs.refused.Load() == 0 {
				t.Fatal("no segment rotation was attempted")
			}
			if !noFile && failed != nil {
				t.Fatalf("an append after preallocating the next segment failed: %v", failed)
			}
			if noFile && failed == nil {
				t.Fatal("appends went on although the next segment could not be made")
			}
			vfs.full.Store(false)
			if noFile {
				s.Close()
				if s, _, err = openLogStore(dir, LogStoreWAL, opts, hclog.NewNullLogger()); err != nil {
					t.Fatalf("restart once space is back: %v", err)
				}
			}
			for range 40 {
				if err := store(); err != nil {
					t.Fatalf("an append once space is back: %v", err)
				}
			}
			s.Close()
			if s, _, err = openLogStore(dir, LogStoreWAL, opts, hclog.NewNullLogger()); err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if last, _ := s.LastIndex(); last != next-1 {
				t.Fatalf("after a restart the log ends at %d, want %d", last, next-1)
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

// TestWritesGoOnAcrossAFailedRotation: a single replica on raft-wal whose next
// segment could not be preallocated goes on taking writes, and holds every
// one after a restart.
func TestWritesGoOnAcrossAFailedRotation(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	vfs := &fullDiskVFS{FS: walfs.New()}
	tweak := func(c *Config) { c.LogStore, c.WALSegmentSize, c.walVFS = LogStoreWAL, 64<<10, vfs }
	n := mustOpenNodeWith(t, dir, key, tweak)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var ids []string
	write := func(i int) {
		t.Helper()
		rec, err := n.Create(ctx, supplyRecord(fmt.Sprint("分段轮换 ", i)))
		if err != nil {
			t.Fatalf("write %d (rotations refused: %d): %v", i, vfs.refused.Load(), err)
		}
		ids = append(ids, rec.ID)
	}
	vfs.full.Store(true)
	for i := 0; vfs.refused.Load() == 0 && i < 1000; i++ {
		write(i)
	}
	if vfs.refused.Load() == 0 {
		t.Fatal("no segment rotation within 1000 writes")
	}
	for i := range 20 {
		write(1000 + i)
	}
	vfs.full.Store(false)
	n.Close()
	n = mustOpenNodeWith(t, dir, key, func(c *Config) { c.WALSegmentSize = 64 << 10 })
	defer n.Close()
	if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := n.Get(ctx, id); err != nil {
			t.Fatalf("%s after the restart: %v", id, err)
		}
	}
}
