//go:build failpoints

package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"liandong/schema"
)

// isolation is a RaftFaults switched by the test.
type isolation struct{ on atomic.Bool }

func (i *isolation) RaftIsolated() bool { return i.on.Load() }

// openGroup opens three replicas of tianjin, each with its own isolation
// switch, and waits until all three are voters.
func openGroup(t *testing.T) ([]*Node, []*isolation) {
	t.Helper()
	var sw []*isolation
	nodes := openReplicas(t, func(_ int, cfg *Config) {
		iso := &isolation{}
		cfg.RaftFaults = iso
		sw = append(sw, iso)
	})
	return nodes, sw
}

// waitRecord waits until n can read record id. (Raft's AppliedIndex moves when
// a batch is handed to the state machine, before it is applied, and a commit
// index may be a no-op entry the state machine never sees: neither tells when
// a write is readable.)
func waitRecord(t *testing.T, n *Node, id string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, err := n.Get(context.Background(), id)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s cannot read %s within %v: %v", n.cfg.ReplicaID, id, within, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRaftIsolation: with RaftFaults on, an isolated leader is deposed and
// cannot commit, the other two elect a leader and go on committing, an
// isolated follower falls behind; healed, each catches up without a restart.
func TestRaftIsolation(t *testing.T) {
	nodes, sw := openGroup(t)
	ctx := context.Background()
	old := leaderOf(t, nodes, nil, 10*time.Second)
	if _, err := old.Create(ctx, supplyRecord("before")); err != nil {
		t.Fatal(err)
	}

	// Cut the leader off: the others elect one of themselves.
	oldIdx := 0
	for i, n := range nodes {
		if n == old {
			oldIdx = i
		}
	}
	sw[oldIdx].on.Store(true)
	next := leaderOf(t, nodes, old, 15*time.Second)
	rec, err := next.Create(ctx, supplyRecord("during"))
	if err != nil {
		t.Fatalf("write at the new leader: %v", err)
	}
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	_, err = old.Create(wctx, supplyRecord("lost"))
	cancel()
	if err == nil {
		t.Fatal("the isolated old leader committed a write")
	}
	if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrTimeout) {
		t.Logf("write at the isolated old leader: %v", err)
	}
	if _, gerr := old.Get(ctx, rec.ID); gerr == nil {
		t.Fatal("the isolated replica received a write made after its isolation")
	}

	// Healed: it rejoins as a follower and catches up.
	sw[oldIdx].on.Store(false)
	waitRecord(t, old, rec.ID, 15*time.Second)

	// A follower cut off falls behind, and catches up when healed.
	lead := leaderOf(t, nodes, nil, 15*time.Second)
	var follower int
	for i, n := range nodes {
		if n != lead {
			follower = i
			break
		}
	}
	sw[follower].on.Store(true)
	time.Sleep(100 * time.Millisecond) // let an apply already under way finish
	before := nodes[follower].raft.AppliedIndex()
	var last *schema.Record
	for i := range 5 {
		if last, err = lead.Create(ctx, supplyRecord(fmt.Sprint("follower cut ", i))); err != nil {
			t.Fatalf("write with one follower cut off: %v", err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if got := nodes[follower].raft.AppliedIndex(); got != before {
		t.Fatalf("the isolated follower applied %d → %d", before, got)
	}
	sw[follower].on.Store(false)
	waitRecord(t, nodes[follower], last.ID, 15*time.Second)
}
