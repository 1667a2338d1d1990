package node

import (
	"errors"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
)

// reopeningWAL is raft-wal with one repair. When raft-wal cannot make its next
// segment (rotation: its file is preallocated, so a full disk shows there),
// v0.4.1 logs the error and refuses every later append with ErrSealed until
// it is opened again, even once space has returned: a replica, and a single
// replica's centre, would take no write until restarted. Opening it again
// completes the rotation from what it committed to its metadata, so an
// append refused as sealed closes and reopens the WAL and is tried once more.
// If the reopen fails (the disk still full), every call tries it again.
type reopeningWAL struct {
	open func() (*raftwal.WAL, error)
	log  hclog.Logger

	mu sync.RWMutex // held for reading by every call into w; for writing to swap it
	w  *raftwal.WAL // nil after a reopen failed
	// reopens counts reopens that succeeded (tests).
	reopens int
}

var (
	_            logStore               = (*reopeningWAL)(nil)
	_            raft.MonotonicLogStore = (*reopeningWAL)(nil)
	errWALClosed                        = errors.New("raft log closed")
)

func newReopeningWAL(open func() (*raftwal.WAL, error), logger hclog.Logger) (*reopeningWAL, error) {
	w, err := open()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	return &reopeningWAL{open: open, log: logger, w: w}, nil
}

// with calls fn with the open WAL, opening it first if a reopen failed.
func (r *reopeningWAL) with(fn func(w *raftwal.WAL) error) error {
	r.mu.RLock()
	if w := r.w; w != nil {
		defer r.mu.RUnlock()
		return fn(w)
	}
	r.mu.RUnlock()
	if err := r.reopen(nil); err != nil {
		return err
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.w == nil {
		return errWALClosed
	}
	return fn(r.w)
}

// reopen closes stuck (unless another call has replaced it already) and opens
// the WAL again.
func (r *reopeningWAL) reopen(stuck *raftwal.WAL) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w != stuck {
		return nil // replaced meanwhile
	}
	if r.w != nil {
		if err := r.w.Close(); err != nil {
			r.log.Warn("close raft-wal to reopen it", "error", err)
		}
		r.w = nil
	}
	w, err := r.open()
	if err != nil {
		return fmt.Errorf("reopen raft's log after its segment could not be rotated: %w", err)
	}
	r.w = w
	r.reopens++
	r.log.Warn("reopened raft's log: its next segment could not be made before (disk full?)")
	return nil
}

func (r *reopeningWAL) StoreLogs(logs []*raft.Log) error {
	var used *raftwal.WAL
	err := r.with(func(w *raftwal.WAL) error { used = w; return w.StoreLogs(logs) })
	if !errors.Is(err, raftwal.ErrSealed) {
		return err
	}
	if err := r.reopen(used); err != nil {
		return err
	}
	return r.with(func(w *raftwal.WAL) error { return w.StoreLogs(logs) })
}

func (r *reopeningWAL) StoreLog(l *raft.Log) error { return r.StoreLogs([]*raft.Log{l}) }

func (r *reopeningWAL) FirstIndex() (i uint64, err error) {
	err = r.with(func(w *raftwal.WAL) error { i, err = w.FirstIndex(); return err })
	return i, err
}

func (r *reopeningWAL) LastIndex() (i uint64, err error) {
	err = r.with(func(w *raftwal.WAL) error { i, err = w.LastIndex(); return err })
	return i, err
}

func (r *reopeningWAL) GetLog(index uint64, l *raft.Log) error {
	return r.with(func(w *raftwal.WAL) error { return w.GetLog(index, l) })
}

func (r *reopeningWAL) DeleteRange(min, max uint64) error {
	return r.with(func(w *raftwal.WAL) error { return w.DeleteRange(min, max) })
}

func (r *reopeningWAL) Set(k, v []byte) error {
	return r.with(func(w *raftwal.WAL) error { return w.Set(k, v) })
}

func (r *reopeningWAL) Get(k []byte) (v []byte, err error) {
	err = r.with(func(w *raftwal.WAL) error { v, err = w.Get(k); return err })
	return v, err
}

func (r *reopeningWAL) SetUint64(k []byte, v uint64) error {
	return r.with(func(w *raftwal.WAL) error { return w.SetUint64(k, v) })
}

func (r *reopeningWAL) GetUint64(k []byte) (v uint64, err error) {
	err = r.with(func(w *raftwal.WAL) error { v, err = w.GetUint64(k); return err })
	return v, err
}

// IsMonotonic: raft-wal refuses gaps, so raft must clear it after restoring a
// snapshot rather than leave one.
func (r *reopeningWAL) IsMonotonic() bool { return true }

func (r *reopeningWAL) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.w == nil {
		return nil
	}
	err := r.w.Close()
	r.w = nil
	r.open = func() (*raftwal.WAL, error) { return nil, errWALClosed }
	return err
}
