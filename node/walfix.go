package node

import (
	"errors"
	"io/fs"
	"time"

	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// Two repairs of raft-wal v0.4.1, whose WAL is stuck for good, refusing every
// append as sealed ("segment is sealed"), once a segment filled up but the
// next one was not made (rotation). It makes the next segment in the
// background after the append that filled the current one, logs a failure
// and never retries it; and a WAL opened again with a sealed tail segment
// does not rotate either. helper-43/44's reviews and TestWALRotationFails and
// TestWALSealedTailRepairedAtOpen show each case.

// fallbackVFS makes a new segment without preallocating it when preallocation
// fails for want of space, the usual way rotation fails on a full disk, so
// that the rotation still succeeds. Appends into the new segment then fail
// for want of space (raft-wal rolls them back, and the replica reports its
// disk full) until space returns, as with bbolt.
type fallbackVFS struct{ types.VFS }

func (v fallbackVFS) Create(dir, name string, size uint64) (types.WritableFile, error) {
	f, err := v.VFS.Create(dir, name, size)
	if err == nil || size == 0 || !isDiskFull(err) {
		return f, err
	}
	// raft-wal's own file system leaves behind the file it could not preallocate.
	if rmErr := v.VFS.Delete(dir, name); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) {
		return nil, err
	}
	return v.VFS.Create(dir, name, 0)
}

// repairSealedTail completes, in raft-wal's metadata, a rotation that its
// tail segment's file records as sealed (the append that filled it wrote the
// segment's index) but its metadata does not: the process stopped, or the
// metadata could not be written, before the background rotation committed.
// It records the tail sealed as the rotation would have and lists the next
// segment, whose file raftwal.Open then makes. It reports whether it did.
func repairSealedTail(dir string, vfs types.VFS, segmentSize int) (bool, error) {
	meta := &metadb.BoltMetaDB{}
	st, err := meta.Load(dir)
	if err != nil {
		return false, err
	}
	defer meta.Close()
	n := len(st.Segments)
	if n == 0 || !st.Segments[n-1].SealTime.IsZero() {
		return false, nil
	}
	tail := st.Segments[n-1]
	w, err := segment.NewFiler(dir, vfs).RecoverTail(tail)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // made at open
	}
	if err != nil {
		return false, err
	}
	sealed, indexStart, err := w.Sealed()
	last := w.LastIndex()
	w.Close()
	if err != nil || !sealed {
		return false, err
	}
	now := time.Now()
	tail.SealTime, tail.MaxIndex, tail.IndexStart = now, last, indexStart
	st.Segments[n-1] = tail
	if segmentSize == 0 {
		segmentSize = raftwal.DefaultSegmentSize
	}
	st.Segments = append(st.Segments, types.SegmentInfo{
		ID: st.NextSegmentID, BaseIndex: last + 1, MinIndex: last + 1,
		SizeLimit: uint32(segmentSize), Codec: raftwal.CodecBinaryV1, CreateTime: now,
	})
	st.NextSegmentID++
	return true, meta.CommitState(st)
}
