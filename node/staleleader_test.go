//go:build failpoints

package node

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/node/store"
)

// TestNewLeaderServesBeforeApplying: a replica that has just become leader
// reports IsLeader while its state file still lacks a write the previous
// leader acknowledged (the entry is in its log, but it learns that it was
// committed only once its own first entry commits). The API decides a
// DELETE's 404 and an If-Match's 412 from that state (node/api records.go
// current, before anything is proposed), so such answers can be false.
//
// It fails by design, showing the state the API must not decide refusals on;
// it runs only with LIANDONG_SHOW_STALE_LEADER=1.
func TestNewLeaderServesBeforeApplying(t *testing.T) {
	if os.Getenv("LIANDONG_SHOW_STALE_LEADER") == "" {
		t.Skip("shows raft's behaviour after a leadership transfer; set LIANDONG_SHOW_STALE_LEADER=1")
	}
	nodes, _ := openGroup(t)
	ctx := context.Background()
	stale := 0
	for round := range 20 {
		old := leaderOf(t, nodes, nil, 15*time.Second)
		var next *Node
		for _, n := range nodes {
			if n != old {
				next = n
				break
			}
		}
		rec, err := old.Put(ctx, fmt.Sprintf("tianjin:stale-%d", round), supplyRecord("acknowledged"), 0)
		if err != nil {
			t.Fatal(err)
		}
		// Acknowledged. Hand leadership over at once.
		f := old.raft.LeadershipTransferToServer(raft.ServerID(next.cfg.ReplicaID), raft.ServerAddress(next.cfg.RaftAddr))
		deadline := time.Now().Add(5 * time.Second)
		for !next.IsLeader() && time.Now().Before(deadline) {
		}
		if !next.IsLeader() {
			t.Logf("round %d: transfer did not complete: %v", round, f.Error())
			continue
		}
		_, gerr := next.Get(ctx, rec.ID)
		if gerr != nil {
			stale++
			t.Logf("round %d: %s leads and reads %s, acknowledged at version %d, as: %v (IsNotFound %v)", round, next.cfg.ReplicaID, rec.ID, rec.Version, gerr, IsNotFound(gerr) || store.ErrNotFound == gerr)
		}
		f.Error()
		time.Sleep(200 * time.Millisecond)
	}
	if stale > 0 {
		t.Errorf("%d of 20 new leaders reported IsLeader while lacking an acknowledged write", stale)
	}
}
