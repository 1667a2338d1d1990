//go:build failpoints

package node

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// TestCloseAcrossOneWayCut: a replica stopped while a one-way raft cut has
// lasted long enough for raft to be waiting on it (RPCs held until raft's
// transport timeout, 10 s; elections across it) stops in well under that:
// raft's Shutdown waited for every goroutine it had blocked on such an RPC,
// 6–10 s, and with the HTTP server's shutdown after it the stop outlasted a
// 30 s kill grace. Nothing acknowledged is lost: the stopped replica opens
// again, clean, and once the cut heals it holds every write the group
// acknowledged, as the others do.
func TestCloseAcrossOneWayCut(t *testing.T) {
	for _, c := range []struct {
		name string
		// cutLeader: the leader is cut, else a follower; closeCut: the cut
		// replica is stopped, else the leader.
		cutLeader, closeCut bool
		cut                 func(*oneWayCut, bool)
	}{
		{"cut leader receives nothing, stopped", true, true, func(c *oneWayCut, on bool) { c.in.Store(on) }},
		{"cut leader's sends go nowhere, stopped", true, true, func(c *oneWayCut, on bool) { c.out.Store(on) }},
		{"cut follower receives nothing, stopped", false, true, func(c *oneWayCut, on bool) { c.in.Store(on) }},
		{"cut follower's answers go nowhere, stopped", false, true, func(c *oneWayCut, on bool) { c.out.Store(on) }},
		{"leader stopped while a follower's answers go nowhere", false, false, func(c *oneWayCut, on bool) { c.out.Store(on) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sw []*oneWayCut
			nodes := openReplicas(t, func(_ int, cfg *Config) {
				ow := &oneWayCut{}
				cfg.RaftFaults = ow
				sw = append(sw, ow)
			})
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			lead := leaderOf(t, nodes, nil, 10*time.Second)
			var acked []string
			write := func(n *Node, title string) {
				t.Helper()
				wctx, c := context.WithTimeout(ctx, 15*time.Second)
				defer c()
				rec, err := n.Create(wctx, supplyRecord(title))
				if err != nil {
					t.Fatalf("write %q at %s: %v", title, n.cfg.ReplicaID, err)
				}
				acked = append(acked, rec.ID)
			}
			write(lead, "before the cut")
			cutIdx := -1
			for i, n := range nodes {
				if (n == lead) == c.cutLeader {
					cutIdx = i
					break
				}
			}
			healed := false
			heal := func() {
				if !healed {
					c.cut(sw[cutIdx], false)
					healed = true
				}
			}
			t.Cleanup(heal)
			c.cut(sw[cutIdx], true)
			// A write the leader takes as the cut begins, not waited for.
			go func() {
				wctx, c := context.WithTimeout(ctx, 15*time.Second)
				defer c()
				lead.Create(wctx, supplyRecord("at the cut"))
			}()
			// Long enough for raft to be held on the cut: RPCs in flight
			// across it, an election tried across it.
			time.Sleep(3 * time.Second)
			stopping := nodes[cutIdx]
			if !c.closeCut {
				stopping = lead
			}
			start := time.Now()
			err := stopping.Close()
			took := time.Since(start)
			t.Logf("%s stopped in %v (%v)", stopping.cfg.ReplicaID, took, err)
			if err != nil {
				t.Fatalf("stop: %v", err)
			}
			if took >= raftTimeout/2 {
				t.Fatalf("%s took %v to stop across a one-way cut: it waited on raft's transport timeout (%v)", stopping.cfg.ReplicaID, took, raftTimeout)
			}

			// The group goes on without it, and takes writes.
			var rest []*Node
			for _, n := range nodes {
				if n != stopping {
					rest = append(rest, n)
				}
			}
			heal()
			next := leaderOf(t, rest, nil, 30*time.Second)
			write(next, "after the stop")

			// Opened again: clean, and it holds every acknowledged write.
			cfg := stopping.cfg
			again, err := Open(cfg)
			if err != nil {
				t.Fatalf("%s does not open again after its stop: %v", cfg.ReplicaID, err)
			}
			t.Cleanup(func() { again.Close() })
			write(leaderOf(t, append(rest, again), nil, 30*time.Second), "after the restart")
			for _, n := range append(rest, again) {
				for _, id := range acked {
					waitRecord(t, n, id, 30*time.Second)
				}
			}
			t.Logf("%d acknowledged writes on every replica: %s", len(acked), fmt.Sprint(acked))
		})
	}
}
