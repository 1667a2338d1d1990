package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/types"

	"liandong/auth"
)

// fullDiskVFS is raft-wal's file system, except that while full is set a new
// segment cannot be made: its file is created but cannot be preallocated, as
// on a full disk (fallocate fails after the open). With noFile, the file is
// not created at all.
type fullDiskVFS struct {
	*walfs.FS
	full, noFile atomic.Bool
	refused      atomic.Int32
}

func (v *fullDiskVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	if v.full.Load() {
		v.refused.Add(1)
		if !v.noFile.Load() {
			if f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o644); err == nil {
				f.Close()
			}
		}
		return nil, fmt.Errorf("preallocate %s: %w", name, syscall.ENOSPC)
	}
	return v.FS.Create(dir, name, size)
}

// TestWALRotationFailureHeals: raft-wal v0.4.1, whose next segment could not be
// made, refuses every later append as sealed until it is opened again; the
// log store reopens it and the append goes through, and nothing stored is
// lost. When even the reopen cannot make the segment, the append fails for
// want of space (so the replica reports its disk full), and succeeds once
// space is back.
func TestWALRotationFailureHeals(t *testing.T) {
	for _, noFile := range []bool{false, true} {
		t.Run(fmt.Sprintf("file created=%v", !noFile), func(t *testing.T) {
			dir := t.TempDir()
			vfs := &fullDiskVFS{FS: walfs.New()}
			vfs.noFile.Store(noFile)
			s, _, err := openLogStore(dir, LogStoreWAL, walOptions{segmentSize: 16 << 10, vfs: vfs}, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close() }()
			next := uint64(1)
			store := func() error {
				err := s.StoreLogs([]*raft.Log{{Index: next, Term: 1, Type: raft.LogCommand, Data: make([]byte, 1000)}})
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
			if !noFile {
				// The reopen finds the created file and appends to it.
				if failed != nil {
					t.Fatalf("an append after a failed rotation: %v", failed)
				}
			} else {
				if !isDiskFull(failed) {
					t.Fatalf("an append while no segment can be made: %v, want a full disk", failed)
				}
				for range 3 {
					if err := store(); !isDiskFull(err) {
						t.Fatalf("again while full: %v", err)
					}
				}
			}
			vfs.full.Store(false)
			for range 40 {
				if err := store(); err != nil {
					t.Fatalf("an append once space is back: %v", err)
				}
			}
			if r := s.(*reopeningWAL); r.reopens == 0 {
				t.Fatal("the WAL was never reopened")
			}
			s.Close()
			s, _, err = openLogStore(dir, LogStoreWAL, walOptions{segmentSize: 16 << 10}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if last, _ := s.LastIndex(); last != next-1 {
				t.Fatalf("after a restart the log ends at %d, want %d", last, next-1)
			}
		})
	}
}

// TestWritesGoOnAcrossAFailedRotation: a single replica whose raft-wal segment
// could not be rotated once goes on taking writes, without a restart, and
// holds every one after it.
func TestWritesGoOnAcrossAFailedRotation(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	vfs := &fullDiskVFS{FS: walfs.New()}
	tweak := func(c *Config) { c.WALSegmentSize, c.walVFS = 64<<10, vfs }
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
	vfs.full.Store(false)
	for i := range 20 {
		write(1000 + i)
	}
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
