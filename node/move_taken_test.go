package node

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"liandong/node/store"
)

// TestMoveToAnotherVotersAddress (review 112): a move to a raft address another
// voter holds (a typo) cannot be made: raft refuses the addition ("found
// duplicate address in configuration"). removeFromOldAddress finds that out
// only at the addition, after a move has taken the replica out of the group
// (something, the other voter, answers at the new address). The move is
// refused before the removal (422 naming raft_addr), leaving the replica
// where it was.
func TestMoveToAnotherVotersAddress(t *testing.T) {
	nodes, l, x := movingGroup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	third := nodes[slices.IndexFunc(nodes, func(n *Node) bool { return n != l && n != x })]
	old := heldAt(l, x.cfg.ReplicaID)
	moved := store.Replica{ID: x.cfg.ReplicaID, RaftAddr: third.cfg.RaftAddr, HTTP: "http://127.0.0.1:1", PeerID: "12D3KooWmoved"}
	err := l.AddReplica(ctx, moved)
	if !errors.Is(err, ErrBadReplica) {
		t.Fatalf("moving %s to %s's raft address %s: %v, want ErrBadReplica", x.cfg.ReplicaID, third.cfg.ReplicaID, third.cfg.RaftAddr, err)
	}
	if got := heldAt(l, x.cfg.ReplicaID); got != old {
		t.Fatalf("a refused move (%v) left %s at %q, want %s: out of the group, which holds %v", err, x.cfg.ReplicaID, got, old, l.servers())
	}
}
