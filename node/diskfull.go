package node

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"

	"liandong/node/store"
)

// ErrDiskFull: this replica's disk (or its file size limit) is full. Writes are
// refused until space returns; reads go on. The node finds out by itself when
// space is back: the state file retries the batch it could not write, and a
// write refused by raft's log is tried again after diskFullProbe.
var ErrDiskFull = errors.New("disk full")

// ErrLogNeedsRestart, which wraps ErrDiskFull, is raft-wal that could not make
// its next segment: it takes no entry until the replica is restarted, after
// space has been freed (walfix.go).
var ErrLogNeedsRestart = fmt.Errorf("%w: raft's log could not start its next segment; free space and restart this replica", ErrDiskFull)

// diskFullProbe is how long writes are refused after raft's log could not grow,
// before one is let through to find out whether space has returned.
const diskFullProbe = time.Second

// isDiskFull reports whether err is the file system being out of space (or
// quota, or the process's file size limit). bbolt reports a file it could not
// grow as text ("file resize error: …"), so the message is matched too.
func isDiskFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrDiskFull) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EFBIG) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"no space left on device", "disk quota exceeded", "file too large"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// diskState tracks a full disk for the fsm and the node. Its zero value is ready.
type diskState struct {
	stateFull atomic.Bool  // the state file cannot take the batch being applied
	logUntil  atomic.Int64 // unix nanos: raft's log could not grow; refuse until then
	// logStoreFull: raft's log store last failed to store entries for want of
	// space, on any replica (a follower's appends too); the next store that
	// succeeds clears it.
	logStoreFull atomic.Bool
	// logStuck: raft-wal refuses appends until a restart (ErrLogNeedsRestart).
	logStuck atomic.Bool
	stopping atomic.Bool  // the node is closing: stop retrying
	log      *slog.Logger // set once at start

	mu     sync.Mutex
	filled chan struct{} // closed when the state file becomes full
}

// filledSignal returns a channel closed when the state file next finds the disk
// full (or already has), so writes waiting for their batch can answer at once.
func (d *diskState) filledSignal() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.filled == nil {
		d.filled = make(chan struct{})
		if d.stateFull.Load() {
			close(d.filled)
		}
	}
	return d.filled
}

// setStateFull records whether the state file is full; it reports whether that changed.
func (d *diskState) setStateFull(full bool) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stateFull.Swap(full) == full {
		return false
	}
	if full && d.filled != nil {
		close(d.filled)
	}
	if !full {
		d.filled = nil
	}
	return true
}

// refuse returns ErrDiskFull while a write could not be stored for want of
// space: ErrLogNeedsRestart while raft-wal could not start its next segment.
func (d *diskState) refuse() error {
	if d.stateFull.Load() {
		if d.logStuck.Load() {
			// Both on the one disk: freeing space cures the state file,
			// not raft-wal, so the restart is named first.
			return ErrLogNeedsRestart
		}
		return fmt.Errorf("%w: the state file cannot grow; writes are refused until space is freed (reads go on)", ErrDiskFull)
	}
	if time.Now().UnixNano() < d.logUntil.Load() {
		if d.logStuck.Load() {
			// raft-wal takes nothing until a restart: freeing space alone
			// does not cure it, as raft's refusal a moment ago said.
			return ErrLogNeedsRestart
		}
		return fmt.Errorf("%w: raft's log cannot grow; writes are refused until space is freed (reads go on)", ErrDiskFull)
	}
	return nil
}

// logFull notes that raft's log could not store a write for want of space.
func (d *diskState) logFull() {
	d.logUntil.Store(time.Now().Add(diskFullProbe).UnixNano())
}

// full says why this replica cannot store what it is given now (its state
// file or raft's log could not grow the last time it tried), or nil.
func (d *diskState) full() error {
	// A stuck raft-wal first: it needs a restart as well as space, and the
	// operator must learn so before freeing space, not after.
	if d.logStuck.Load() {
		return ErrLogNeedsRestart
	}
	if d.stateFull.Load() {
		return fmt.Errorf("%w: the state file cannot grow", ErrDiskFull)
	}
	if d.logStoreFull.Load() {
		return fmt.Errorf("%w: raft's log cannot grow", ErrDiskFull)
	}
	return nil
}

// watchLogStore wraps raft's log store so that the replica knows when its
// log cannot grow. A follower's appends fail inside raft, where the node never
// sees the error, and such a follower acknowledges nothing: its leader must
// not count it among the voters a removal leaves (checkRemovalLeavesQuorum,
// through /healthz).
func (d *diskState) watchLogStore(s raft.LogStore) raft.LogStore {
	w := diskWatchLogStore{LogStore: s, d: d}
	if m, ok := s.(raft.MonotonicLogStore); ok && m.IsMonotonic() {
		// raft-wal refuses a log with gaps; raft asks the store whether it may
		// leave one (after a snapshot install), so the wrapper must not hide it.
		return diskWatchMonotonicLogStore{w}
	}
	return w
}

type diskWatchLogStore struct {
	raft.LogStore
	d *diskState
}

func (s diskWatchLogStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

func (s diskWatchLogStore) StoreLogs(logs []*raft.Log) error {
	err := s.LogStore.StoreLogs(logs)
	switch {
	case err == nil:
		s.d.logStuck.Store(false)
		if s.d.logStoreFull.Swap(false) && s.d.log != nil {
			s.d.log.Warn("raft's log has space again")
		}
	case isDiskFull(err):
		if !s.d.logStoreFull.Swap(true) && s.d.log != nil {
			s.d.log.Error("raft's log cannot grow: the disk is full; this replica stores no writes until space is freed", "err", err)
		}
	case errors.Is(err, raftwal.ErrSealed):
		// raft-wal could not make its next segment (walfix.go) and refuses
		// appends until it is opened again; counted as a full disk, since
		// that is the usual cause and the replica can append nothing.
		s.d.logStoreFull.Store(true)
		if !s.d.logStuck.Swap(true) && s.d.log != nil {
			s.d.log.Error("raft's log (raft-wal) could not start its next segment, most likely for want of space, and refuses every append until this replica restarts: free space, then restart it", "err", err)
		}
	}
	return err
}

// DeleteRange can need space too (bbolt's copy-on-write pages), on a
// follower truncating a suffix that disagrees with its leader; a failure is
// noted, and only a stored entry says space is back.
func (s diskWatchLogStore) DeleteRange(min, max uint64) error {
	err := s.LogStore.DeleteRange(min, max)
	if isDiskFull(err) && !s.d.logStoreFull.Swap(true) && s.d.log != nil {
		s.d.log.Error("raft's log cannot grow: the disk is full; this replica stores no writes until space is freed", "err", err)
	}
	return err
}

type diskWatchMonotonicLogStore struct{ diskWatchLogStore }

func (diskWatchMonotonicLogStore) IsMonotonic() bool { return true }

// applyRetryingDiskFull applies batch to the state file. When the file cannot
// grow, the batch cannot be skipped (the replicas would diverge) and need not
// fail the replica for good: writes are refused (ErrDiskFull) and the batch is
// retried, with the fsm's lock released between tries, until it is stored or
// the node closes. Other errors return at once. The caller holds f.mu.
func (f *fsm) applyRetryingDiskFull(batch []store.Log) ([]store.Result, error) {
	wait := 50 * time.Millisecond
	for {
		results, err := f.st.Apply(batch)
		if err == nil || !isDiskFull(err) || f.disk.stopping.Load() {
			if err == nil && f.disk.setStateFull(false) && f.disk.log != nil {
				f.disk.log.Warn("the state file has space again; writes are accepted")
			}
			return results, err
		}
		if f.disk.setStateFull(true) && f.disk.log != nil {
			f.disk.log.Error("the state file cannot grow: the disk is full; writes are refused (507) until space is freed, reads go on", "err", err)
		}
		f.mu.Unlock()
		for slept := time.Duration(0); slept < wait && !f.disk.stopping.Load(); slept += 10 * time.Millisecond {
			time.Sleep(10 * time.Millisecond)
		}
		f.mu.Lock()
		wait = min(2*wait, time.Second)
	}
}
