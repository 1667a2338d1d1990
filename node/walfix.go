package node

import (
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"time"

	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// A repair of raft-wal v0.4.1, whose WAL refuses every append as sealed
// ("segment is sealed") once its tail segment's file holds an index frame
// (written by the append that fills a segment) but its metadata does not
// record the segment sealed and the next one made (rotation). That happens
// when the process stops, or the metadata cannot be written, between the
// append and the rotation; and when the append itself failed for want of space
// after writing part of its index frame: raft-wal rolls such an append back
// in memory, but reading the file again takes the frame for a seal. raft-wal
// rotates only in the background after an append, so a WAL opened in either
// state is stuck for good. A rotation that fails at run time (its next file
// cannot be made, on a full disk) leaves the WAL stuck until it is opened
// again, which the replica does only at a restart (see diskWatchLogStore).
// helper-43/44/45's reviews found these; walfix_test.go shows each.

// repairSealedTail, run before raftwal.Open, finds a tail segment whose file
// holds an index frame its metadata does not record. An index of one slot
// per committed entry is a seal: it records the tail sealed as raft-wal's
// rotation would have and lists the next segment, whose file raftwal.Open
// then makes. Any other index frame is a stray from an append that did not
// commit: it zeroes the frame's header, so that raft-wal reads the file as an
// unsealed tail ending at its last commit. It reports whether it changed
// anything.
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
	if stray, err := clearStrayIndex(dir, vfs, tail, indexStart, last); err != nil || stray {
		return stray, err
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

// Segment file layout (raft-wal v0.4.1 segment/format.go): every frame has an
// 8-byte header, its type in byte 0 and its length in bytes 4-7 (little
// endian); an index frame holds one 4-byte offset per entry of the segment.
const walFrameHeaderLen = 8

// clearStrayIndex reports whether the index frame at indexStart in the tail
// segment's file is a stray (it does not hold one readable slot per committed
// entry, BaseIndex to last) and if so zeroes its header, which needs no new
// space.
func clearStrayIndex(dir string, vfs types.VFS, tail types.SegmentInfo, indexStart, last uint64) (bool, error) {
	name := segment.FileName(tail)
	r, err := vfs.OpenReader(dir, name)
	if err != nil {
		return false, err
	}
	var hdr [walFrameHeaderLen]byte
	_, err = r.ReadAt(hdr[:], int64(indexStart)-walFrameHeaderLen)
	slots := uint64(binary.LittleEndian.Uint32(hdr[4:8]) / 4)
	whole := err == nil && last >= tail.BaseIndex && slots == last-tail.BaseIndex+1
	if whole {
		var slot [4]byte
		_, err = r.ReadAt(slot[:], int64(indexStart+4*(slots-1)))
		if errors.Is(err, io.EOF) {
			whole, err = false, nil
		}
	}
	r.Close()
	if err != nil || whole {
		return false, err
	}
	wf, err := vfs.OpenWriter(dir, name)
	if err != nil {
		return false, err
	}
	defer wf.Close()
	if _, err := wf.WriteAt(make([]byte, walFrameHeaderLen), int64(indexStart)-walFrameHeaderLen); err != nil {
		return false, err
	}
	return true, wf.Sync()
}
