package exchange

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/auth"
	"liandong/schema"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// TestHoldPushed: what a push leaves for drainPushed while the origin's apply
// lock is taken. It continues what the same peer left; anything else (a gap,
// another peer, too much, two entries for one seq) is refused, and left to a
// pull that compares it with what is applied then.
func TestHoldPushed(t *testing.T) {
	fed, err := exchangetest.NewFederation("tianjin")
	if err != nil {
		t.Fatal(err)
	}
	author := fed.Author("tianjin")
	log, err := author.NextN(5)
	if err != nil {
		t.Fatal(err)
	}
	// A second history from seq 3: validly signed, different entries.
	forkAuthor := fed.Author("tianjin")
	forkAuthor.Now = func() time.Time { return time.Now().Add(time.Hour) }
	if _, err := forkAuthor.NextN(2); err != nil {
		t.Fatal(err)
	}
	fork, err := forkAuthor.NextN(1)
	if err != nil {
		t.Fatal(err)
	}
	if fork[0].Seq != 3 || fork[0].Hash() == log[2].Hash() {
		t.Fatalf("fork entry %d has the held entry's hash", fork[0].Seq)
	}
	const a, b = peer.ID("peer-a"), peer.ID("peer-b")
	for _, tc := range []struct {
		name   string
		from   peer.ID
		push   []*schema.Entry
		ok     bool
		holdTo uint64 // last seq held after the push
	}{
		{"continues", a, log[3:4], true, 4},
		{"overlaps and continues", a, log[1:4], true, 4},
		{"repeats", a, log[0:3], true, 3},
		{"leaves a gap", a, log[4:5], false, 3},
		{"another peer", b, log[3:4], false, 3},
		{"another entry for a held seq", a, fork, false, 3},
		{"repeats the first held", a, log[0:1], true, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := &Exchange{cfg: Config{BatchSize: 100, MaxFrameBytes: 1 << 20}, origins: map[string]*originState{}}
			if !x.holdPushed(a, "tianjin", log[:3], time.Time{}) {
				t.Fatal("first push not held")
			}
			if got := x.holdPushed(tc.from, "tianjin", tc.push, time.Time{}); got != tc.ok {
				t.Fatalf("holdPushed = %v, want %v", got, tc.ok)
			}
			held := x.origins["tianjin"].pushed
			if last := held[len(held)-1].Seq; last != tc.holdTo || held[0].Seq != 1 {
				t.Fatalf("holding %d..%d, want 1..%d", held[0].Seq, last, tc.holdTo)
			}
			for i, e := range held {
				if e.Hash() != log[i].Hash() {
					t.Fatalf("held seq %d is not the first history's", e.Seq)
				}
			}
		})
	}
}

// TestPushOutOfOrderIsAFault: held entries are indexed by seq, so a push
// whose seqs are not consecutive is refused as a reorder before anything is
// held (an overlapping push after [1, 5] once indexed past the held slice and
// ended the process).
func TestPushOutOfOrderIsAFault(t *testing.T) {
	fed, err := exchangetest.NewFederation("hq", "tianjin")
	if err != nil {
		t.Fatal(err)
	}
	log, err := fed.Author("tianjin").NextN(5)
	if err != nil {
		t.Fatal(err)
	}
	x := &Exchange{cfg: Config{BatchSize: 100, MaxFrameBytes: 1 << 20}, centre: "hq",
		node: exchangetest.NewNode("hq", fed.Bundle), origins: map[string]*originState{}, peers: map[peer.ID]*peerState{}}
	for _, push := range [][]*schema.Entry{{log[0], log[4]}, {log[1], log[0]}, {log[2], log[2]}} {
		err := x.receivePush(peer.ID("peer-a"), "tianjin", &wire.Push{Origin: "tianjin", Entries: push})
		var fe *faultError
		if !errors.As(err, &fe) || fe.reason != string(auth.ReasonReorder) {
			t.Fatalf("push of seqs %d, %d: %v, want a reorder fault", push[0].Seq, push[1].Seq, err)
		}
		if st := x.origins["tianjin"]; st != nil && len(st.pushed) > 0 {
			t.Fatalf("push of seqs %d, %d was held", push[0].Seq, push[1].Seq)
		}
	}
}
