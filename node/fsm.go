package node

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"liandong/node/store"
)

// fsm adapts the store to raft. It is thin on purpose: decoding and applying live
// in store.Apply, which tests drive directly.
type fsm struct {
	st      *store.Store
	onApply func(results []store.Result, took time.Duration)
	// onRestore runs after a snapshot replaced the state file.
	onRestore func()

	mu     sync.Mutex
	failed error // sticky: once a transaction fails, nothing more is applied
	// disk is set while the state file cannot grow (diskfull.go): not a
	// failure, the batch is retried until space returns.
	disk diskState
}

var _ raft.BatchingFSM = (*fsm)(nil)

func (f *fsm) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

func (f *fsm) ApplyBatch(logs []*raft.Log) []interface{} {
	out := make([]interface{}, len(logs))
	batch := make([]store.Log, 0, len(logs))
	where := make([]int, 0, len(logs))
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			out[i] = store.Result{}
			continue
		}
		batch = append(batch, store.Log{Index: l.Index, Term: l.Term, Data: l.Data})
		where = append(where, i)
	}
	if len(batch) == 0 {
		return out
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed != nil {
		for _, i := range where {
			out[i] = store.Result{Err: f.failed}
		}
		return out
	}
	start := time.Now()
	results, err := f.applyRetryingDiskFull(batch)
	if err != nil {
		// The state file refused a transaction (an I/O error). Applying
		// later commands without this one would diverge from the other replicas,
		// so this replica stops applying; a restart replays from the applied index.
		f.failed = fmt.Errorf("%w: %w", ErrStateFailed, err)
		for _, i := range where {
			out[i] = store.Result{Err: f.failed}
		}
		return out
	}
	took := time.Since(start)
	for j, i := range where {
		out[i] = results[j]
	}
	if f.onApply != nil {
		f.onApply(results, took)
	}
	return out
}

func (f *fsm) failure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// Snapshot is cheap: the copy happens in Persist, under a bbolt read transaction.
// After a failed batch it refuses: raft counts the failed logs and all later
// ones as applied, so a snapshot would be labelled with an index the state
// file never reached, and raft would compact away the logs a restart replays
// (or send the stale state to a follower as current).
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if err := f.failure(); err != nil {
		return nil, fmt.Errorf("no snapshot of a replica that stopped applying: %w", err)
	}
	return &fsmSnapshot{st: f.st}, nil
}

func (f *fsm) Restore(r io.ReadCloser) error {
	defer r.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.st.Restore(r); err != nil {
		return fmt.Errorf("restore snapshot: %w", err)
	}
	f.failed = nil
	if f.onRestore != nil {
		f.onRestore()
	}
	return nil
}

type fsmSnapshot struct{ st *store.Store }

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := s.st.WriteSnapshot(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() {}
