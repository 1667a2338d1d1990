//go:build failpoints

package node

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
)

// Failpoints: crash points compiled only into a build with `-tags failpoints`
// (RELIABILITY.md). They are armed from the environment at start:
//
//	LIANDONG_FAILPOINTS="raft-log-after-write=exit@20,snapshot-persist=exit"
//
// Each names a point and an action: exit (the process ends at once with exit code
// FailpointExitCode, as a kill would end it: no deferred function, no Close),
// panic, or sleep:DURATION; "@N" fires on the Nth hit only (default: the first).
// At raft-log-before-write, enospc fails every write from the Nth hit on with
// ENOSPC ("no space left on device") until the failpoints are armed again.
//
// The points:
//
//	raft-log-before-write   raft is about to write entries to its log (log.db)
//	raft-log-after-write    raft's log write returned (durable, not yet applied)
//	state-after-commit      a batch is committed to the state file, before raft
//	                        hears the results (so before any write is acknowledged)
//	snapshot-persist        a snapshot is half written (after its first 4 KiB)
//	snapshot-restore        a snapshot is half read into the state file at start
//	                        (after its first 4 KiB)
//	move-after-removal      a leader moving a voter to a new raft address (or
//	                        giving it its name) took it out of the
//	                        configuration, and has not added it back yet
const (
	FailpointRaftLogBeforeWrite = "raft-log-before-write"
	FailpointRaftLogAfterWrite  = "raft-log-after-write"
	FailpointStateAfterCommit   = "state-after-commit"
	FailpointSnapshotPersist    = "snapshot-persist"
	FailpointSnapshotRestore    = "snapshot-restore"
	FailpointMoveAfterRemoval   = "move-after-removal"
)

// FailpointExitCode is the exit code of a process ended by an exit failpoint.
const FailpointExitCode = 75

// failpointsEnv names the environment variable that arms failpoints.
const failpointsEnv = "LIANDONG_FAILPOINTS"

// failpointHalfway is how many bytes of a snapshot pass before the snapshot
// failpoints fire.
const failpointHalfway = 4096

type failpointSpec struct {
	action string
	arg    time.Duration
	nth    int64
	hits   int64
}

var failpoints = struct {
	sync.Mutex
	armed map[string]*failpointSpec
}{armed: map[string]*failpointSpec{}}

func init() {
	if v := os.Getenv(failpointsEnv); v != "" {
		if err := armFailpoints(v); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", failpointsEnv, err)
			os.Exit(2)
		}
	}
}

// armFailpoints parses a LIANDONG_FAILPOINTS value and arms its points,
// replacing those armed before.
func armFailpoints(v string) error {
	armed := map[string]*failpointSpec{}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, action, ok := strings.Cut(item, "=")
		if !ok {
			return fmt.Errorf("%q: want point=action", item)
		}
		spec := &failpointSpec{nth: 1}
		if a, n, ok := strings.Cut(action, "@"); ok {
			nth, err := strconv.ParseInt(n, 10, 64)
			if err != nil || nth < 1 {
				return fmt.Errorf("%q: bad hit count %q", item, n)
			}
			action, spec.nth = a, nth
		}
		if a, d, ok := strings.Cut(action, ":"); ok {
			dur, err := time.ParseDuration(d)
			if err != nil {
				return fmt.Errorf("%q: %v", item, err)
			}
			action, spec.arg = a, dur
		}
		switch action {
		case "exit", "panic", "sleep", "enospc":
		default:
			return fmt.Errorf("%q: unknown action %q (exit, panic, sleep:DURATION)", item, action)
		}
		switch name {
		case FailpointRaftLogBeforeWrite, FailpointRaftLogAfterWrite, FailpointStateAfterCommit,
			FailpointSnapshotPersist, FailpointSnapshotRestore, FailpointMoveAfterRemoval:
		default:
			return fmt.Errorf("%q: unknown failpoint %q", item, name)
		}
		if action == "enospc" && name != FailpointRaftLogBeforeWrite {
			return fmt.Errorf("%q: enospc works at %s only", item, FailpointRaftLogBeforeWrite)
		}
		spec.action = action
		armed[name] = spec
	}
	failpoints.Lock()
	failpoints.armed = armed
	failpoints.Unlock()
	return nil
}

// failpoint runs the action armed at name, if any; an enospc action returns
// its error.
func failpoint(name string) error {
	failpoints.Lock()
	spec := failpoints.armed[name]
	fire := false
	if spec != nil {
		spec.hits++
		fire = spec.hits == spec.nth || spec.action == "enospc" && spec.hits >= spec.nth
	}
	failpoints.Unlock()
	if !fire {
		return nil
	}
	switch spec.action {
	case "enospc":
		return &os.PathError{Op: "write", Path: name, Err: syscall.ENOSPC}
	case "exit":
		fmt.Fprintf(os.Stderr, "failpoint %s: exit\n", name)
		os.Exit(FailpointExitCode)
	case "panic":
		panic("failpoint " + name)
	case "sleep":
		time.Sleep(spec.arg)
	}
	return nil
}

// logStore wraps raft's log store with the raft-log failpoints.
type fpLogStore struct{ raft.LogStore }

func withFailpointsLogStore(s raft.LogStore) raft.LogStore {
	if m, ok := s.(raft.MonotonicLogStore); ok && m.IsMonotonic() {
		// raft-wal refuses a log with gaps; raft asks the store whether it may
		// leave one (after a snapshot install), so the wrapper must not hide it.
		return fpMonotonicLogStore{fpLogStore{s}}
	}
	return fpLogStore{s}
}

type fpMonotonicLogStore struct{ fpLogStore }

func (fpMonotonicLogStore) IsMonotonic() bool { return true }

func (s fpLogStore) StoreLog(l *raft.Log) error {
	return s.StoreLogs([]*raft.Log{l})
}

func (s fpLogStore) StoreLogs(logs []*raft.Log) error {
	if err := failpoint(FailpointRaftLogBeforeWrite); err != nil {
		return err
	}
	if err := s.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	failpoint(FailpointRaftLogAfterWrite)
	return nil
}

// fpFSM wraps the state machine with the state and snapshot failpoints.
type fpFSM struct{ *fsm }

func withFailpointsFSM(f *fsm) raft.BatchingFSM { return fpFSM{f} }

func (f fpFSM) Apply(l *raft.Log) interface{} {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

func (f fpFSM) ApplyBatch(logs []*raft.Log) []interface{} {
	if h := applyHook.Load(); h != nil {
		(*h)(f.fsm)
	}
	out := f.fsm.ApplyBatch(logs)
	for _, l := range logs {
		if l.Type == raft.LogCommand {
			failpoint(FailpointStateAfterCommit)
			break
		}
	}
	return out
}

func (f fpFSM) Snapshot() (raft.FSMSnapshot, error) {
	s, err := f.fsm.Snapshot()
	if err != nil {
		return nil, err
	}
	return fpSnapshot{s}, nil
}

type fpSnapshot struct{ raft.FSMSnapshot }

func (s fpSnapshot) Persist(sink raft.SnapshotSink) error {
	return s.FSMSnapshot.Persist(&fpSink{SnapshotSink: sink})
}

type fpSink struct {
	raft.SnapshotSink
	n int
}

func (s *fpSink) Write(p []byte) (int, error) {
	before := s.n
	n, err := s.SnapshotSink.Write(p)
	s.n += n
	if before < failpointHalfway && s.n >= failpointHalfway {
		failpoint(FailpointSnapshotPersist)
	}
	return n, err
}

func withFailpointsRestore(r io.ReadCloser) io.ReadCloser { return &fpReader{ReadCloser: r} }

type fpReader struct {
	io.ReadCloser
	n int
}

func (r *fpReader) Read(p []byte) (int, error) {
	before := r.n
	n, err := r.ReadCloser.Read(p)
	r.n += n
	if before < failpointHalfway && r.n >= failpointHalfway {
		failpoint(FailpointSnapshotRestore)
	}
	return n, err
}

func (f fpFSM) Restore(r io.ReadCloser) error {
	return f.fsm.Restore(withFailpointsRestore(r))
}

// moveRemovedHook, when set (by a test, in this build only), runs at
// FailpointMoveAfterRemoval after the armed action, on the leader n that took
// voter id out: what a test does there (hand leadership over, say) happens
// between a move's two steps, which no timing could place.
var moveRemovedHook atomic.Pointer[func(n *Node, id string)]

// failpointMoveRemoved is FailpointMoveAfterRemoval, then moveRemovedHook.
func failpointMoveRemoved(n *Node, id string) {
	failpoint(FailpointMoveAfterRemoval)
	if h := moveRemovedHook.Load(); h != nil {
		(*h)(n, id)
	}
}

// applyHook, when set (by a test, in this build only), runs before the state
// machine f applies a batch: a test holds one replica's applying back there
// (a new leader that has not applied what its predecessor committed), which
// no timing could place.
var applyHook atomic.Pointer[func(f *fsm)]
