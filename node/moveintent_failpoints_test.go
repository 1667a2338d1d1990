//go:build failpoints

package node

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/raft"
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
