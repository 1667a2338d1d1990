package exchange

import (
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/auth"
	"liandong/schema"
	"liandong/sync/exchange/exchangetest"
)

// TestStaleHeadsKeepPushClaim: the heads a peer wrote before a push it sent,
// read after that push (the answer to the heads request its connection
// started, say), must not lower the claim the push made of its origin while
// this node is still behind it: the gap the push showed is pulled at once,
// not at the next anti-entropy round. Heads that are news (further ahead,
// another epoch) still replace it, and so do heads heard once the claim is
// held or after the peer served less than it (lowerClaim).
func TestStaleHeadsKeepPushClaim(t *testing.T) {
	fed, err := exchangetest.NewFederation("hq", "tianjin")
	if err != nil {
		t.Fatal(err)
	}
	log, err := fed.Author("tianjin").NextN(5)
	if err != nil {
		t.Fatal(err)
	}
	other := fed.Author("tianjin")
	other.Epoch = "e2"
	reborn, err := other.NextN(1)
	if err != nil {
		t.Fatal(err)
	}
	head := func(e *schema.Entry) schema.Head { return pushClaim(e.Origin, []*schema.Entry{e}) }
	const p = peer.ID("tianjin-replica")
	for _, tc := range []struct {
		name     string
		held     int           // entries of tianjin this node holds
		lowered  *schema.Head  // what a pull from p served, if one did
		snapshot []schema.Head // p's full heads, read after its push of seq 3
		want     schema.Head   // p's claim of tianjin afterwards
		pull     bool          // whether tianjin's pull starts at once
	}{
		{name: "written before the push", held: 1, snapshot: []schema.Head{head(log[0])}, want: head(log[2]), pull: true},
		{name: "without the origin", held: 1, snapshot: nil, want: head(log[2]), pull: true},
		{name: "further ahead", held: 1, snapshot: []schema.Head{head(log[4])}, want: head(log[4]), pull: true},
		{name: "another epoch", held: 1, snapshot: []schema.Head{head(reborn[0])}, want: head(reborn[0]), pull: false},
		{name: "claim already held", held: 3, snapshot: []schema.Head{head(log[0])}, want: head(log[0]), pull: false},
		{name: "served less since", held: 1, lowered: &schema.Head{Origin: "tianjin", Epoch: "e1", Seq: 2},
			snapshot: []schema.Head{head(log[0])}, want: head(log[0]), pull: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			node := exchangetest.NewNode("hq", fed.Bundle)
			if err := node.Append(log[:tc.held]...); err != nil {
				t.Fatal(err)
			}
			x := &Exchange{cfg: Config{PushGrace: time.Hour}, centre: "hq", node: node, now: time.Now,
				origins: map[string]*originState{}, peers: map[peer.ID]*peerState{}, backoff: map[peer.ID]time.Time{}}
			x.mu.Lock()
			x.originLocked("tianjin").local = head(log[tc.held-1])
			// The origin's own replica, connected, pushing to this node: a
			// pull of its origin would wait PushGrace but for a push's gap.
			ps := x.peerLocked(p, "tianjin")
			ps.connected, ps.since, ps.lastContact, ps.pushedUsAt = true, time.Now(), time.Now(), time.Now()
			x.cfg.StallAfter = time.Hour
			x.mu.Unlock()

			x.pullPushGap(p, "tianjin", log[2:3])
			if tc.lowered != nil {
				x.lowerClaim(p, "tianjin", *tc.lowered)
			}
			x.noteHeads(p, tc.snapshot, true)

			x.mu.Lock()
			got := ps.heads["tianjin"]
			start, _ := x.duePullsLocked(time.Now())
			x.mu.Unlock()
			if got != tc.want {
				t.Errorf("claim of tianjin %s/%d, want %s/%d", got.Epoch, got.Seq, tc.want.Epoch, tc.want.Seq)
			}
			if pulled := slices.Contains(start, "tianjin"); pulled != tc.pull {
				t.Errorf("pull of tianjin starts at once: %v, want %v", pulled, tc.pull)
			}
		})
	}
}

// TestPushClaimOfOriginNoLongerListedIsDropped: a full snapshot of a peer's
// heads drops what it claimed of an origin the trust bundle no longer lists
// (noteHeads takes no head of one), and a push's claim kept against such a
// snapshot must go the same way: kept, it would outlive every snapshot of the
// peer, and a pull of it would have the peer cut off for relaying entries
// of a centre the bundle no longer knows.
func TestPushClaimOfOriginNoLongerListedIsDropped(t *testing.T) {
	fed, err := exchangetest.NewFederation("hq", "tianjin", "xian")
	if err != nil {
		t.Fatal(err)
	}
	log, err := fed.Author("tianjin").NextN(3)
	if err != nil {
		t.Fatal(err)
	}
	node := exchangetest.NewNode("hq", fed.Bundle)
	if err := node.Append(log[0]); err != nil {
		t.Fatal(err)
	}
	const p = peer.ID("xian-replica")
	x := &Exchange{cfg: Config{PushGrace: time.Hour, StallAfter: time.Hour}, centre: "hq", node: node, now: time.Now,
		origins: map[string]*originState{}, peers: map[peer.ID]*peerState{}, backoff: map[peer.ID]time.Time{}}
	x.mu.Lock()
	x.originLocked("tianjin").local = pushClaim("tianjin", log[:1])
	ps := x.peerLocked(p, "xian")
	ps.connected, ps.since, ps.lastContact = true, time.Now(), time.Now()
	x.mu.Unlock()

	x.pullPushGap(p, "tianjin", log[2:3]) // relayed by xian: a gap at seq 2

	// A later bundle, hand-built, that lists tianjin no more.
	dropped := *fed.Bundle
	dropped.Version++
	dropped.Members = slices.DeleteFunc(slices.Clone(fed.Bundle.Members), func(m auth.Member) bool { return m.ID == "tianjin" })
	node.SetBundle(&dropped)
	x.noteHeads(p, []schema.Head{pushClaim("tianjin", log[:1])}, true)

	x.mu.Lock()
	got, ok := ps.heads["tianjin"]
	start, _ := x.duePullsLocked(time.Now())
	x.mu.Unlock()
	if ok {
		t.Errorf("xian still claims tianjin %s/%d under a bundle that does not list tianjin", got.Epoch, got.Seq)
	}
	if slices.Contains(start, "tianjin") {
		t.Error("a pull of tianjin starts under a bundle that does not list it")
	}
}
