package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"liandong/auth"
	"liandong/node/store"
)

// TestCaughtUpPastManyEntriesWithoutCommand: the state file is rebuilt after
// a power cut and raft's log ends in more than 10,000 entries that
// carry no command (no-ops, barriers: one per checkPlainCursor poll). The
// commands before them are not yet applied, yet the node says caught up.
func TestCaughtUpPastManyEntriesWithoutCommand(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	ctx := context.Background()
	n := mustOpenNodeWith(t, dir, key, func(c *Config) { c.BootID = func() string { return "boot-1" } })
	ids := createConcurrently(t, n, 16, 100)
	n.Close()
	// Append 10,001 entries without a command (what as many
	// barriers would leave), straight into the bolt log.
	last := appendBarriers(t, dir, 10001)
	os.Remove(filepath.Join(dir, cleanMarker)) // a power cut, then another boot

	n = openOnAnotherBoot(t, dir, key)
	defer n.Close()
	applied, _, _ := n.st.AppliedIndex()
	if err := n.CaughtUp(); err == nil && applied < last {
		missing := 0
		for _, id := range ids {
			if _, err := n.Get(ctx, id); err != nil {
				missing++
			}
		}
		t.Errorf("caught up (latched for good) with the state file at %d, before the commands up to %d: %d of %d acknowledged records missing; Ready()=%v",
			applied, last, missing, len(ids), n.Ready())
	}
	deadline := time.Now().Add(20 * time.Second)
	for n.Ready() != nil && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	missing := 0
	for _, id := range ids {
		if _, err := n.Get(ctx, id); err != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("ready (the API serves) with %d of %d acknowledged records missing", missing, len(ids))
	}
}

// TestNewLeaderDatesAfterTheVersionsItHasNotApplied: the previous leader's
// clock runs 3 s ahead (within maxWriteTimeFloor, "a new leader's clock a
// little behind"). Right after a leadership transfer, the new leader dates
// an update of a record from its own clock and from st.Get, which does not
// yet hold the version the old leader wrote (raft applies a new leader's
// earlier-term entries only once its no-op commits). The new version is then
// dated before the one it replaces.
func TestNewLeaderDatesAfterTheVersionsItHasNotApplied(t *testing.T) {
	nodes := openReplicas(t, func(i int, cfg *Config) {
		if i == 0 {
			cfg.Now = func() time.Time { return time.Now().Add(3 * time.Second) }
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, b := nodes[0], nodes[1]
	first, err := a.Create(ctx, supplyRecord("第一版"))
	if err != nil {
		t.Fatal(err)
	}
	back := 0
	for round := range 10 {
		if !a.IsLeader() {
			if err := b.raft.LeadershipTransferToServer(raft.ServerID(a.cfg.ReplicaID), raft.ServerAddress(a.cfg.RaftAddr)).Error(); err != nil {
				t.Fatal(err)
			}
			leaderOf(t, []*Node{a}, nil, 10*time.Second)
		}
		prev, err := a.Put(ctx, first.ID, supplyRecord(fmt.Sprint("甲 ", round)), 0)
		if err != nil {
			t.Fatal(err)
		}
		fut := a.raft.LeadershipTransferToServer(raft.ServerID(b.cfg.ReplicaID), raft.ServerAddress(b.cfg.RaftAddr))
		deadline := time.Now().Add(10 * time.Second)
		for !b.IsLeader() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Microsecond)
		}
		next, err := b.Put(ctx, first.ID, supplyRecord(fmt.Sprint("乙 ", round)), 0)
		fut.Error()
		if err != nil {
			t.Logf("round %d: %v", round, err)
			continue
		}
		if next.Version > prev.Version && next.UpdatedAt.Before(prev.UpdatedAt) {
			back++
			t.Errorf("round %d: version %d (new leader) updated_at %s is before version %d's %s (old leader)", round,
				next.Version, next.UpdatedAt.Format(time.RFC3339Nano), prev.Version, prev.UpdatedAt.Format(time.RFC3339Nano))
		}
	}
	if back > 0 {
		t.Errorf("%d of 10 versions written right after a leadership transfer dated before the version they replaced", back)
	}
}

// TestNewLeaderPutIfAbsentSeesAcknowledgedDelete: a record deleted (and
// acknowledged) on the old leader; right after a leadership transfer, the new
// leader's PutIfAbsent reads its state file, which has not yet applied the
// delete, and answers ErrExists, "which no retry will change".
func TestNewLeaderPutIfAbsentSeesAcknowledgedDelete(t *testing.T) {
	nodes := openReplicas(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a, b := nodes[0], nodes[1]
	wrong := 0
	for round := range 10 {
		if !a.IsLeader() {
			if err := b.raft.LeadershipTransferToServer(raft.ServerID(a.cfg.ReplicaID), raft.ServerAddress(a.cfg.RaftAddr)).Error(); err != nil {
				t.Fatal(err)
			}
			leaderOf(t, []*Node{a}, nil, 10*time.Second)
		}
		r, err := a.Create(ctx, supplyRecord(fmt.Sprint("记录 ", round)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.Delete(ctx, r.ID, 0); err != nil {
			t.Fatal(err)
		}
		fut := a.raft.LeadershipTransferToServer(raft.ServerID(b.cfg.ReplicaID), raft.ServerAddress(b.cfg.RaftAddr))
		deadline := time.Now().Add(10 * time.Second)
		for !b.IsLeader() && time.Now().Before(deadline) {
			time.Sleep(50 * time.Microsecond)
		}
		_, err = b.PutIfAbsent(ctx, r.ID, supplyRecord("复活"))
		fut.Error()
		if errors.Is(err, store.ErrExists) {
			wrong++
			t.Errorf("round %d: PutIfAbsent of %s, deleted and acknowledged before the transfer: %v", round, r.ID, err)
		}
	}
	if wrong > 0 {
		t.Errorf("%d of 10: the new leader refused as live a record whose delete was acknowledged", wrong)
	}
}

// TestReplayedOwnLogIsNotRecovery: RecoverOwnLog is for a centre whose
// own log is lost. After a power cut the state file is moved aside and raft
// replays its log, own log included; but startRecovery looks at the empty
// state file before raft starts, so the node refuses writes until a majority
// of its partners have answered, though nothing was lost.
func TestReplayedOwnLogIsNotRecovery(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	ctx := context.Background()
	open := func(boot string) *Node {
		return mustOpenNodeWith(t, dir, key, func(c *Config) {
			c.BootID = func() string { return boot }
			c.RecoverOwnLog = true
		})
	}
	n := open("boot-1")
	n.EndRecovery(0, 0) // a new centre: its partners said it never wrote
	for i := range 20 {
		if _, err := n.Create(ctx, supplyRecord(fmt.Sprint("钙钛矿电池 ", i))); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := n.st.Head("tianjin")
	n.Close()
	os.Remove(filepath.Join(dir, cleanMarker)) // a power cut, then another boot

	n = open("boot-2")
	defer n.Close()
	deadline := time.Now().Add(20 * time.Second)
	for n.CaughtUp() != nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	head, _ := n.st.Head("tianjin")
	_, err := n.Create(ctx, supplyRecord("断电之后"))
	if n.Recovering() || err != nil {
		t.Fatalf("own log replayed whole (seq %d, was %d) and ready (%v), yet recovering=%v: write refused: %v",
			head.Seq, before.Seq, n.Ready(), n.Recovering(), err)
	}
}

// TestCaughtUpCheapBeforeLatch: while replaying, every /v1 request and
// every CanApply call (the exchange: "must be cheap") asks CaughtUp. The log
// here ends in 9,990 barriers (one per ?consistent=true read): the first call
// may scan them, later ones read one entry each, the pending command found.
func TestCaughtUpCheapBeforeLatch(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	ctx := context.Background()
	n := mustOpenNodeWith(t, dir, key, func(c *Config) { c.BootID = func() string { return "boot-1" } })
	if _, err := n.Create(ctx, supplyRecord("一")); err != nil {
		t.Fatal(err)
	}
	n.Close()
	appendBarriers(t, dir, 9990)
	os.Remove(filepath.Join(dir, cleanMarker))
	n = openOnAnotherBoot(t, dir, key)
	defer n.Close()
	counted := &countingLogStore{logStore: n.logStore}
	n.logStore = counted // before raft's replay reaches the command: nothing else reads the field in a node of its own
	if n.CaughtUp() == nil {
		t.Skip("the replay ended before the first look")
	}
	for calls := 0; calls < 20; calls++ {
		counted.reads.Store(0)
		if n.CaughtUp() == nil {
			break
		}
		if r := counted.reads.Load(); r > 1 {
			t.Fatalf("CaughtUp read %d log entries on call %d while replaying; want at most 1 after the first", r, calls+2)
		}
	}
}

// countingLogStore counts the entries read through it.
type countingLogStore struct {
	logStore
	reads atomic.Int64
}

func (c *countingLogStore) GetLog(i uint64, l *raft.Log) error {
	c.reads.Add(1)
	return c.logStore.GetLog(i, l)
}

// appendBarriers appends n barrier entries (what as many ?consistent=true
// reads leave) to the bolt raft log of the closed replica in dir, in the term
// of its last entry, and returns the index of the entry before them.
func appendBarriers(t *testing.T, dir string, n uint64) (last uint64) {
	t.Helper()
	ls, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "raft", boltLogFile), BoltOptions: boltOptions()})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	if last, err = ls.LastIndex(); err != nil {
		t.Fatal(err)
	}
	var l raft.Log
	if err := ls.GetLog(last, &l); err != nil {
		t.Fatal(err)
	}
	logs := make([]*raft.Log, 0, n)
	for i := range n {
		logs = append(logs, &raft.Log{Index: last + 1 + i, Term: l.Term, Type: raft.LogBarrier})
	}
	if err := ls.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	return last
}

// openOnAnotherBoot opens the replica in dir as a machine restart would (boot
// id "boot-2"), without waiting for a leader.
func openOnAnotherBoot(t *testing.T, dir string, key *auth.KeyPair) *Node {
	t.Helper()
	cfg := DefaultConfig("tianjin", dir)
	cfg.RecordKey = key
	cfg.BootID = func() string { return "boot-2" }
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
