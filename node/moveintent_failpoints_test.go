//go:build failpoints

package node

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/node/store"
)

// TestMoveOutlivesLeadershipChange: a leader giving a follower its recorded
// raft address (NameRaftAddresses; AddReplica moves the same way) takes it
// out of the configuration, then adds it back. When leadership moved between
// the two steps, the old leader's addition was refused (not the leader), it
// logged an error, and no leader added the replica back: the group stayed a
// voter short for good. The step is forced at the failpoint between the two
// (FailpointMoveAfterRemoval), where the leader hands its leadership to the
// third replica; the new leader's membership loop (AddBackMoved) must add
// the replica back at its name, from the note the old one recorded before
// taking it out.
func TestMoveOutlivesLeadershipChange(t *testing.T) {
	nodes, l, first, _ := ipHeldFollower(t)
	var third *Node
	for _, n := range nodes {
		if n != l && n != first {
			third = n
		}
	}
	id := first.cfg.ReplicaID
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	handed := make(chan error, 1)
	hook := func(n *Node, removed string) {
		if n != l || removed != id {
			return
		}
		handed <- n.raft.LeadershipTransferToServer(raft.ServerID(third.cfg.ReplicaID), raft.ServerAddress(third.cfg.RaftAddr)).Error()
	}
	moveRemovedHook.Store(&hook)
	t.Cleanup(func() { moveRemovedHook.Store(nil) })

	judgeUnreachable(l, id)
	renamed, err := l.NameRaftAddresses(ctx)
	t.Logf("NameRaftAddresses with leadership handed over between the steps: renamed %d: %v", renamed, err)
	select {
	case herr := <-handed:
		if herr != nil {
			t.Fatalf("premise: hand leadership to %s between the steps: %v", third.cfg.ReplicaID, herr)
		}
	default:
		t.Fatalf("premise: the leader never took %s out of its configuration (renamed %d: %v)", id, renamed, err)
	}
	if err == nil {
		t.Fatalf("premise: the old leader added %s back all the same", id)
	}
	nl := leaderOf(t, nodes, first, 10*time.Second)
	if nl != third {
		t.Fatalf("premise: %s leads, want %s", nl.cfg.ReplicaID, third.cfg.ReplicaID)
	}
	if got := heldAt(nl, id); got != "" {
		t.Fatalf("premise: the new leader holds %s at %s: it was never left out", id, got)
	}

	// What the new leader's membership loop does every few seconds; it
	// may first have to apply its predecessor's note.
	for deadline := time.Now().Add(15 * time.Second); heldAt(nl, id) != raft.ServerAddress(first.cfg.RaftAddr); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s was taken out of the group and not added back by the new leader: raft holds it at %q (configuration %v)", id, heldAt(nl, id), nl.servers())
		}
		if _, err := nl.AddBackMoved(ctx); err != nil {
			t.Logf("AddBackMoved: %v", err)
		}
	}
	rec, err := nl.Create(ctx, supplyRecord("after a move cut by a change of leader"))
	if err != nil {
		t.Fatal(err)
	}
	awaitRecord(t, ctx, first, rec.ID)
	recorded, err := nl.st.Replicas()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recorded {
		if r.ID == id && (r.AddBackAt != "" || r.RaftAddr != first.cfg.RaftAddr) {
			t.Errorf("%s's record after it was added back: %+v, want it at %s and no longer noted", id, r, first.cfg.RaftAddr)
		}
	}
	// Once back, nothing more is added.
	if n, err := nl.AddBackMoved(ctx); n != 0 || err != nil {
		t.Errorf("AddBackMoved once it is back: added %d: %v", n, err)
	}
}

// TestAddBackMovedAppliesItsPredecessorsLog: a new leader applies the
// entries of earlier terms only once its own first entry commits, and its
// membership loop calls AddBackMoved at once. A replica a move took out
// (noted, removed from raft's configuration), then removed on purpose by the
// old leader (RemoveReplica: its record, note and all, gone), was added back
// by a new leader whose state file still held the note: raft's configuration
// lacks it, so the note read as a move never finished. The new leader's
// applying is held back at applyHook, as a slow disk or a backlog of writes
// holds it; AddBackMoved must not act on what it has not applied.
func TestAddBackMovedAppliesItsPredecessorsLog(t *testing.T) {
	nodes := openReplicas(t, nil)
	l, moved, next := nodes[0], nodes[1], nodes[2]
	id := moved.cfg.ReplicaID
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	release := cutMoveShortAndHoldApplying(ctx, t, l, moved, next)

	// Removed on purpose, by the leader that took it out.
	if err := l.RemoveReplica(ctx, id); err != nil {
		t.Fatalf("RemoveReplica of %s, out of the configuration: %v", id, err)
	}
	if err := l.raft.LeadershipTransferToServer(raft.ServerID(next.cfg.ReplicaID), raft.ServerAddress(next.cfg.RaftAddr)).Error(); err != nil {
		t.Fatal(err)
	}
	if nl := leaderOf(t, nodes, moved, 10*time.Second); nl != next {
		t.Fatalf("premise: %s leads, want %s", nl.cfg.ReplicaID, next.cfg.ReplicaID)
	}
	if !notedToAddBack(next, id) || heldAt(next, id) != "" {
		t.Fatalf("premise: the new leader holds %s at %q, and has applied its record's removal (noted %v)", id, heldAt(next, id), notedToAddBack(next, id))
	}

	// The membership loop's first call; bounded, as the loop's context is not.
	actx, acancel := context.WithTimeout(ctx, 3*time.Second)
	n, err := next.AddBackMoved(actx)
	acancel()
	t.Logf("AddBackMoved before the new leader applied its predecessor's log: added %d: %v", n, err)
	if got := heldAt(next, id); got != "" {
		t.Errorf("the new leader added %s back at %s, from a note it had not yet applied the removal of: a replica removed on purpose came back", id, got)
	}

	release()
	if err := next.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if n, err := next.AddBackMoved(ctx); n != 0 || err != nil {
			t.Errorf("AddBackMoved once applied: added %d: %v", n, err)
		}
	}
	if got := heldAt(next, id); got != "" {
		t.Errorf("after the new leader applied its log, raft holds %s at %s, want it out", id, got)
	}
	recorded, err := next.st.Replicas()
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(recorded, func(r store.Replica) bool { return r.ID == id }) {
		t.Errorf("records %+v: want %s's removed", recorded, id)
	}
}

// TestAddBackMovedBoundsItsWait (review 150): the membership loop calls
// AddBackMoved with its own context, which ends only when the node stops.
// Once some record is noted, AddBackMoved waits for a new leader to apply its
// predecessors' log (awaitTermApplied), and that barrier waits behind
// whatever the state machine is applying: a state file retrying a batch on a
// full disk holds it until space returns. AddBackMoved waited as long, and
// the loop with it (recording the replica's own addresses, resuming purges,
// naming the feed, NameRaftAddresses), where its additions are bounded by the
// apply timeout. The leader's applying is held back at applyHook; the call
// must return, with an error, while it is.
func TestAddBackMovedBoundsItsWait(t *testing.T) {
	const applyTimeout = 2 * time.Second
	nodes := openReplicas(t, func(_ int, cfg *Config) { cfg.ApplyTimeout = applyTimeout })
	l, moved, next := nodes[0], nodes[1], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	release := cutMoveShortAndHoldApplying(ctx, t, l, moved, next)
	// Something for next to apply once it leads: its barrier waits behind it.
	leadWithABacklog(ctx, t, nodes, l, next, moved)

	// The membership loop's context: ended only by a stop.
	loop, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() {
		_, err := next.AddBackMoved(loop)
		done <- err
	}()
	select {
	case err := <-done:
		t.Logf("AddBackMoved while the new leader's applying is held back: %v", err)
		if err == nil {
			t.Error("AddBackMoved answered nil before the new leader applied its predecessors' log")
		}
	case <-time.After(10 * applyTimeout):
		stop()
		release()
		<-done
		t.Fatalf("AddBackMoved, with the membership loop's context, still waited %v after its leader's applying was held back (apply timeout %v): the loop waits with it", 10*applyTimeout, applyTimeout)
	}
	release()
}

// cutMoveShortAndHoldApplying leaves moved as a move cut short leaves it
// (noted by leader l to be added back, then taken out of raft's
// configuration), waits until next has applied the note, and from then on
// holds next's applying at applyHook until the returned release is called
// (or the test ends).
func cutMoveShortAndHoldApplying(ctx context.Context, t *testing.T, l, moved, next *Node) (release func()) {
	t.Helper()
	id := moved.cfg.ReplicaID
	// A move cut short: noted, then taken out.
	l.replicaMu.Lock()
	err := l.noteAddBack(ctx, store.Replica{ID: id, RaftAddr: moved.cfg.RaftAddr}, moved.cfg.RaftAddr)
	l.replicaMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := l.raft.RemoveServer(raft.ServerID(id), 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); !notedToAddBack(next, id); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("premise: %s never applied the note", next.cfg.ReplicaID)
		}
	}

	// From here, next applies nothing until the test lets it.
	return holdApplying(t, next)
}

// holdApplying holds n's applying at applyHook, as a state file retrying a
// batch on a full disk holds it, until the returned release is called (or
// the test ends).
func holdApplying(t *testing.T, n *Node) (release func()) {
	t.Helper()
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	hook := func(f *fsm) {
		if f == n.fsm {
			<-gate
		}
	}
	applyHook.Store(&hook)
	t.Cleanup(func() { release(); applyHook.Store(nil) })
	return release
}

// leadWithABacklog has leader l write once more and hand its leadership to
// next, so that next leads with an entry of the last term still to apply
// (held back, with holdApplying, its barrier waits behind it). skip is the
// replica that must not be the leader found.
func leadWithABacklog(ctx context.Context, t *testing.T, nodes []*Node, l, next, skip *Node) {
	t.Helper()
	if _, err := l.Create(ctx, supplyRecord("held back at the new leader")); err != nil {
		t.Fatal(err)
	}
	if err := l.raft.LeadershipTransferToServer(raft.ServerID(next.cfg.ReplicaID), raft.ServerAddress(next.cfg.RaftAddr)).Error(); err != nil {
		t.Fatal(err)
	}
	if nl := leaderOf(t, nodes, skip, 10*time.Second); nl != next {
		t.Fatalf("premise: %s leads, want %s", nl.cfg.ReplicaID, next.cfg.ReplicaID)
	}
}

// notedToAddBack reports whether n's state file notes id to be added back.
func notedToAddBack(n *Node, id string) bool {
	recorded, err := n.st.Replicas()
	return err == nil && slices.ContainsFunc(recorded, func(r store.Replica) bool { return r.ID == id && r.AddBackAt != "" })
}
