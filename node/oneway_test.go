//go:build failpoints

package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/node/store"
)

// oneWayCut is a RaftFaults that cuts one direction of a replica's raft
// traffic (RaftOneWay), switched by the test.
type oneWayCut struct{ in, out atomic.Bool }

func (*oneWayCut) RaftIsolated() bool  { return false }
func (c *oneWayCut) RaftDropIn() bool  { return c.in.Load() }
func (c *oneWayCut) RaftDropOut() bool { return c.out.Load() }

var _ RaftOneWay = (*oneWayCut)(nil)

// titled returns how many records n holds with the title.
func titled(t *testing.T, n *Node, title string) int {
	t.Helper()
	recs, _, err := n.List(context.Background(), store.Query{Catalogue: "supply", Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, r := range recs {
		var b struct{ Title string }
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		if b.Title == title {
			count++
		}
	}
	return count
}

// waitNotReady waits until n says it cannot serve, and returns why.
func waitNotReady(t *testing.T, n *Node, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := n.ReplicaStatus()
		if st.NotReady != "" && n.Ready() != nil {
			return st.NotReady
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still ready %v after its one-way cut: %+v", n.cfg.ReplicaID, within, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRaftOneWayCuts: a leader, or a follower, that sends but receives
// nothing, or receives and whose sends go nowhere (node.RaftOneWay, as
// TCP behaves across such a cut: nothing is refused, RPCs time out). The cut
// replica says it is not ready, the others elect or keep a leader and commit,
// and once healed the cut replica catches up without a restart. A write the
// cut leader took is acknowledged only if it commits, and, when it is refused
// as not proposed (ErrNotLeader, "retry"), is not applied: a caller that
// retried would write it twice. No acknowledged write is lost, and none is
// applied twice.
func TestRaftOneWayCuts(t *testing.T) {
	for _, c := range []struct {
		name     string
		atLeader bool
		cut      func(*oneWayCut, bool)
	}{
		{"leader sends, receives nothing", true, func(c *oneWayCut, on bool) { c.in.Store(on) }},
		{"leader receives, sends nothing", true, func(c *oneWayCut, on bool) { c.out.Store(on) }},
		{"follower receives, answers go nowhere", false, func(c *oneWayCut, on bool) { c.out.Store(on) }},
		{"follower sends, receives nothing", false, func(c *oneWayCut, on bool) { c.in.Store(on) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			var sw []*oneWayCut
			nodes := openReplicas(t, func(_ int, cfg *Config) {
				ow := &oneWayCut{}
				cfg.RaftFaults = ow
				sw = append(sw, ow)
			})
			ctx := context.Background()
			lead := leaderOf(t, nodes, nil, 10*time.Second)
			if _, err := lead.Create(ctx, supplyRecord("before")); err != nil {
				t.Fatal(err)
			}
			cutIdx := -1
			for i, n := range nodes {
				if (n == lead) == c.atLeader {
					cutIdx = i
					break
				}
			}
			cut := nodes[cutIdx]
			c.cut(sw[cutIdx], true)

			// A write at the leader at the moment of the cut.
			wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			_, atCut := lead.Create(wctx, supplyRecord("at the cut"))
			cancel()
			t.Logf("write at the leader as the cut began: %v", atCut)

			why := waitNotReady(t, cut, 30*time.Second)
			t.Logf("%s not ready: %s", cut.cfg.ReplicaID, why)
			next := leaderOf(t, nodes, cut, 30*time.Second)
			var acked []string
			for i := range 3 {
				title := fmt.Sprint("during ", i)
				wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
				_, err := next.Create(wctx, supplyRecord(title))
				cancel()
				if err != nil {
					t.Fatalf("write at %s with %s cut one way: %v", next.cfg.ReplicaID, cut.cfg.ReplicaID, err)
				}
				acked = append(acked, title)
			}
			if cut.IsLeader() {
				t.Fatalf("%s still leads across its cut", cut.cfg.ReplicaID)
			}

			// Healed: it catches up, and every replica holds the same.
			c.cut(sw[cutIdx], false)
			want := map[string]int{"before": 1}
			for _, a := range acked {
				want[a] = 1
			}
			deadline := time.Now().Add(30 * time.Second)
			for _, n := range nodes {
				for title, w := range want {
					for titled(t, n, title) != w {
						if time.Now().After(deadline) {
							t.Fatalf("%s holds %d records %q after the cut healed, want %d", n.cfg.ReplicaID, titled(t, n, title), title, w)
						}
						time.Sleep(20 * time.Millisecond)
					}
				}
			}
			// The write at the cut: applied at most once, everywhere alike;
			// applied if acknowledged; not applied if refused as not proposed.
			// (Written after the heal on the leader, a marker orders what
			// came before it on every replica.)
			marker, err := leaderOf(t, nodes, nil, 30*time.Second).Create(ctx, supplyRecord("marker"))
			if err != nil {
				t.Fatal(err)
			}
			got := -1
			for _, n := range nodes {
				waitRecord(t, n, marker.ID, 30*time.Second)
				k := titled(t, n, "at the cut")
				if got >= 0 && k != got {
					t.Fatalf("replicas disagree on the write at the cut: %d and %d", got, k)
				}
				got = k
			}
			t.Logf("the write at the cut is applied %d times", got)
			switch {
			case got > 1:
				t.Fatalf("the write at the cut was applied %d times", got)
			case atCut == nil && got != 1:
				t.Fatalf("the write at the cut was acknowledged and lost")
			case errors.Is(atCut, ErrNotLeader) && !errors.Is(atCut, ErrTimeout) && got != 0:
				t.Fatalf("the write at the cut was refused as not proposed (%v), and applied", atCut)
			}
			if cut.Ready() != nil {
				t.Fatalf("%s healed, caught up, and not ready: %v", cut.cfg.ReplicaID, cut.Ready())
			}
		})
	}
}

// TestRemovalRefusedAcrossFreshOneWayCut: seconds into a one-way raft cut of
// one follower (its answers go nowhere; its API, which ProbeReplica asks,
// still answers), its heartbeats have yet to fail (raft's transport waits
// 10 s), yet it has answered no append since: removing the other follower is
// refused (ErrWouldStall) and the group keeps its leader and commits. It was
// let through, and the group, left needing the cut follower, lost its leader
// until the cut healed.
func TestRemovalRefusedAcrossFreshOneWayCut(t *testing.T) {
	var sw []*oneWayCut
	nodes := openReplicas(t, func(_ int, cfg *Config) {
		ow := &oneWayCut{}
		cfg.RaftFaults = ow
		sw = append(sw, ow)
		// An API that answers, as across a cut of raft's port only.
		cfg.ProbeReplica = func(context.Context, store.Replica) error { return nil }
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := leaderOf(t, nodes, nil, 10*time.Second)
	// Led long enough to judge its followers' silence.
	for time.Since(l.peers.since()) < 2*ackWindow {
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := l.Create(ctx, supplyRecord("before")); err != nil {
		t.Fatal(err)
	}
	cut, other := -1, -1
	for i, n := range nodes {
		switch {
		case n == l:
		case cut < 0:
			cut = i
		default:
			other = i
		}
	}
	cutID := nodes[cut].cfg.ReplicaID
	sw[cut].out.Store(true)
	t.Cleanup(func() { sw[cut].out.Store(false) })
	cutAt := time.Now()
	// Past the window, well before raft's transport timeout.
	time.Sleep(ackWindow + 500*time.Millisecond)
	if l.peers.unreachable(raft.ServerID(cutID), time.Now()) {
		t.Logf("%s's heartbeats failed already, %v into the cut", cutID, time.Since(cutAt))
	}
	err := l.RemoveReplica(ctx, nodes[other].cfg.ReplicaID)
	if !errors.Is(err, ErrWouldStall) || !strings.Contains(err.Error(), cutID) {
		t.Fatalf("removing the reachable follower %v into a one-way cut of %s: %v, want ErrWouldStall naming it", time.Since(cutAt), cutID, err)
	}
	if _, err := l.Create(ctx, supplyRecord("after the refusal")); err != nil {
		t.Fatalf("write after the refused removal: %v", err)
	}
}
