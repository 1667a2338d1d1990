package node

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
)

// failingLogStore fails StoreLogs with err while err is set.
type failingLogStore struct {
	*raft.InmemStore
	err error
}

func (s *failingLogStore) StoreLogs(logs []*raft.Log) error {
	if s.err != nil {
		return s.err
	}
	return s.InmemStore.StoreLogs(logs)
}

// TestWatchLogStore: a replica knows its raft log cannot grow from the log
// store itself, as a follower must (raft keeps a follower's append errors to
// itself), until a store succeeds again; other errors are not a full disk.
func TestWatchLogStore(t *testing.T) {
	var d diskState
	inner := &failingLogStore{InmemStore: raft.NewInmemStore()}
	s := d.watchLogStore(inner)
	entry := func(i uint64) []*raft.Log { return []*raft.Log{{Index: i, Term: 1, Data: []byte("x")}} }

	if err := s.StoreLogs(entry(1)); err != nil || d.full() != nil {
		t.Fatalf("a stored entry: %v; full: %v", err, d.full())
	}
	inner.err = fmt.Errorf("write raft.db: %w", syscall.ENOSPC)
	if err := s.StoreLogs(entry(2)); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("the store's error was not passed on: %v", err)
	}
	if err := d.full(); !errors.Is(err, ErrDiskFull) || err.Error() != "disk full: raft's log cannot grow" {
		t.Fatalf("after ENOSPC: %v", err)
	}
	// StoreLog goes through the same check.
	inner.err = errors.New("file too large")
	if err := s.StoreLog(entry(2)[0]); err == nil || d.full() == nil {
		t.Fatalf("StoreLog: %v; full: %v", err, d.full())
	}
	inner.err = errors.New("input/output error")
	s.StoreLogs(entry(2))
	if d.full() == nil {
		t.Fatal("an error other than a full disk cleared the full disk")
	}
	inner.err = nil
	if err := s.StoreLogs(entry(2)); err != nil || d.full() != nil {
		t.Fatalf("space back: %v; full: %v", err, d.full())
	}
	inner.err = errors.New("input/output error")
	if s.StoreLogs(entry(3)); d.full() != nil {
		t.Fatalf("an I/O error read as a full disk: %v", d.full())
	}

	// The state file's own flag is reported first.
	d.setStateFull(true)
	if err := d.full(); err == nil || err.Error() != "disk full: the state file cannot grow" {
		t.Fatalf("state file full: %v", err)
	}
}

// TestWatchLogStoreKeepsMonotonic: raft-wal refuses gaps and says so; the
// wrapper must pass that on, or raft would leave one after a snapshot install.
func TestWatchLogStoreKeepsMonotonic(t *testing.T) {
	var d diskState
	if _, ok := d.watchLogStore(raft.NewInmemStore()).(raft.MonotonicLogStore); ok {
		t.Fatal("a plain log store became monotonic")
	}
	s, _, err := openLogStore(t.TempDir(), LogStoreWAL, walOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m, ok := d.watchLogStore(withFailpointsLogStore(s)).(raft.MonotonicLogStore); !ok || !m.IsMonotonic() {
		t.Fatalf("the wrapped WAL is not a monotonic log store (%T)", d.watchLogStore(withFailpointsLogStore(s)))
	}
}

// TestRefusalOfAStuckLogNamesTheRestart (review 156 of 9ee974e): once
// raft-wal could not start its next segment, the node refuses writes and the
// leader's wait for its term (refuse) for diskFullProbe before trying raft
// again. It refused them as a plain full disk, "accepted again without a
// restart" (507 Retry-After 30; at the API's leader wait "until space is
// freed"), though DiskFull, and raft's own refusal a moment before, said the
// replica must be restarted: freeing space alone does not cure it.
func TestRefusalOfAStuckLogNamesTheRestart(t *testing.T) {
	var d diskState
	inner := &failingLogStore{InmemStore: raft.NewInmemStore()}
	s := d.watchLogStore(inner)
	inner.err = fmt.Errorf("raft-wal: %w", raftwal.ErrSealed)
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("x")}}); !errors.Is(err, raftwal.ErrSealed) {
		t.Fatalf("the store's error was not passed on: %v", err)
	}
	// raftError arms the probe for ErrSealed (logFull); set far ahead here
	// so that no slow run can see it over.
	d.logUntil.Store(time.Now().Add(time.Hour).UnixNano())
	if err := d.refuse(); !errors.Is(err, ErrLogNeedsRestart) {
		t.Fatalf("a write refused while raft's log needs a restart: %v, want ErrLogNeedsRestart", err)
	}
	if err := d.full(); !errors.Is(err, ErrLogNeedsRestart) {
		t.Fatalf("DiskFull: %v, want ErrLogNeedsRestart", err)
	}
}

// TestStateFileFullWhileTheLogIsStuckNamesTheRestart (review 157 of 1f476f4):
// the state file and raft-wal share the data directory's disk, so both can
// fail on it at once. With the state file full as well, refuse and DiskFull
// answered the state file's plain ErrDiskFull ("refused until space is
// freed", and toProblem's "accepted again without a restart"), hiding that
// raft's log takes nothing until a restart: the operator freed space, waited,
// and only then learnt of the restart.
func TestStateFileFullWhileTheLogIsStuckNamesTheRestart(t *testing.T) {
	var d diskState
	inner := &failingLogStore{InmemStore: raft.NewInmemStore()}
	s := d.watchLogStore(inner)
	inner.err = fmt.Errorf("raft-wal: %w", raftwal.ErrSealed)
	s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("x")}})
	d.setStateFull(true)
	// Without the probe's window (it lasts a second) and within it.
	for _, until := range []time.Time{{}, time.Now().Add(time.Hour)} {
		d.logUntil.Store(until.UnixNano())
		if err := d.refuse(); !errors.Is(err, ErrLogNeedsRestart) {
			t.Fatalf("a write refused with the state file full and raft's log stuck: %v, want ErrLogNeedsRestart", err)
		}
	}
	if err := d.full(); !errors.Is(err, ErrLogNeedsRestart) {
		t.Fatalf("DiskFull with the state file full and raft's log stuck: %v, want ErrLogNeedsRestart", err)
	}
	// Space freed: the state file's batch is stored, the log still stuck.
	d.setStateFull(false)
	d.logUntil.Store(0)
	if err := d.full(); !errors.Is(err, ErrLogNeedsRestart) {
		t.Fatalf("DiskFull with raft's log stuck: %v, want ErrLogNeedsRestart", err)
	}
}

// TestStateFileFullAloneIsNotAStuckLog (review 158 of d100153): naming a
// stuck raft-wal first must not make a state file full on its own (or full
// after raft's log stored an entry again) read as needing a restart; that
// one is cured by freeing space alone, and once the state file's batch is
// stored nothing is reported.
func TestStateFileFullAloneIsNotAStuckLog(t *testing.T) {
	var d diskState
	inner := &failingLogStore{InmemStore: raft.NewInmemStore()}
	s := d.watchLogStore(inner)
	check := func(when string) {
		t.Helper()
		for _, until := range []time.Time{{}, time.Now().Add(time.Hour)} {
			d.logUntil.Store(until.UnixNano())
			if err := d.refuse(); !errors.Is(err, ErrDiskFull) || errors.Is(err, ErrLogNeedsRestart) {
				t.Fatalf("%s: a write refused with the state file full: %v, want ErrDiskFull without ErrLogNeedsRestart", when, err)
			}
		}
		d.logUntil.Store(0)
		if err := d.full(); !errors.Is(err, ErrDiskFull) || errors.Is(err, ErrLogNeedsRestart) {
			t.Fatalf("%s: DiskFull with the state file full: %v, want ErrDiskFull without ErrLogNeedsRestart", when, err)
		}
	}
	d.setStateFull(true)
	check("the state file full alone")

	// raft-wal stuck, then storing again (its log opened anew): only the
	// state file is left.
	inner.err = fmt.Errorf("raft-wal: %w", raftwal.ErrSealed)
	s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("x")}})
	inner.err = nil
	if err := s.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	check("raft's log storing again")

	d.setStateFull(false)
	if err := d.refuse(); err != nil {
		t.Fatalf("a write refused once space is back: %v", err)
	}
	if err := d.full(); err != nil {
		t.Fatalf("DiskFull once space is back: %v", err)
	}
}
