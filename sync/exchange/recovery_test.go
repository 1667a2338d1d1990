package exchange_test

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/schema"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// TestOwnLogRecovery: hq lost its state; tianjin and hebei hold hq's log. hq,
// recovering, pulls its own log back from them and ends recovery only once it
// holds all they do; a node not recovering refuses its own origin as before.
func TestOwnLogRecovery(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin", "hebei")
	lost := write(t, exchangetest.NewNode("hq", fed.Bundle), fed.Author("hq"), 40)

	holders := map[string]*peerNode{}
	for _, id := range []string{"tianjin", "hebei"} {
		n := exchangetest.NewNode(id, fed.Bundle)
		if err := n.Append(lost...); err != nil {
			t.Fatal(err)
		}
		holders[id] = startExchange(t, fed, id, n, nil)
	}
	hqNode := exchangetest.NewNode("hq", fed.Bundle)
	hqNode.SetRecovering(true)
	hq := startExchange(t, fed, "hq", hqNode, nil)
	connect(t, hq, holders["tianjin"])
	connect(t, hq, holders["hebei"])
	waitFor(t, 20*time.Second, "hq recovers its own log", func() bool { return !hqNode.Recovering() })
	if got, want := exchangetest.Digest(hqNode.Log("hq")), exchangetest.Digest(lost); got != want {
		t.Fatalf("recovery ended holding %d entries (%s), peers hold %d (%s)", hqNode.Len("hq"), got, len(lost), want)
	}
}

// TestRecoveryWaitsForPeers: a recovering node that hears from no peer stays
// recovering: it cannot know how far its log went.
func TestRecoveryWaitsForPeers(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin", "hebei")
	hqNode := exchangetest.NewNode("hq", fed.Bundle)
	hqNode.SetRecovering(true)
	hq := startExchange(t, fed, "hq", hqNode, nil)
	time.Sleep(time.Second) // four anti-entropy rounds of the test config
	if !hqNode.Recovering() {
		t.Fatal("recovery ended without hearing from any peer")
	}
	// One of two other members is not a majority either.
	tj := startExchange(t, fed, "tianjin", nil, nil)
	connect(t, hq, tj)
	time.Sleep(time.Second)
	if !hqNode.Recovering() {
		t.Fatal("recovery ended after hearing from one of two other members")
	}
	// Both have answered, and neither holds any of hq's log: a new centre.
	hb := startExchange(t, fed, "hebei", nil, nil)
	connect(t, hq, hb)
	waitFor(t, 20*time.Second, "recovery ends", func() bool { return !hqNode.Recovering() })
	if n := hqNode.Len("hq"); n != 0 {
		t.Fatalf("hq holds %d entries of its own log", n)
	}
}

// TestRecoveryWaitsForFullHeadsNotPushClaims: hq lost its state and recovers
// its own log; tianjin and hebei hold 5 of hq's entries. Their heads answers
// are slow, but each pushes fresh entries of its own log that leave a gap at
// hq (what a peer does when it remembers having pushed to hq before the
// crash). A push claims only the pusher's origin: it must not count as
// having heard how far hq's log went, or recovery ends at seq 0 and hq's next
// write forks its own history.
func TestRecoveryWaitsForFullHeadsNotPushClaims(t *testing.T) {
	fed := newFed(t, "hq", "tianjin", "hebei")
	lost := write(t, exchangetest.NewNode("hq", fed.Bundle), fed.Author("hq"), 5)
	hqNode := exchangetest.NewNode("hq", fed.Bundle)
	hqNode.SetRecovering(true)
	hq := startExchange(t, fed, "hq", hqNode, nil)
	hqInfo := peer.AddrInfo{ID: hq.x.ID(), Addrs: hq.x.Addrs()}

	for _, id := range []string{"tianjin", "hebei"} {
		es, err := fed.Author(id).NextN(4)
		if err != nil {
			t.Fatal(err)
		}
		last := lost[len(lost)-1]
		hz := startHarness(t, fed.Identity(id), &harness{
			federation: fed.ID,
			claims: []schema.Head{
				{Origin: "hq", Epoch: last.Epoch, Seq: last.Seq, Hash: last.Hash()},
				{Origin: id, Epoch: es[3].Epoch, Seq: 4, Hash: es[3].Hash()},
			},
			blockAll: true, // heads answers are slow (held until the test ends)
		})
		hz.pushTo(t, hqInfo, &wire.Push{Origin: id, Entries: es[2:]}) // seqs 3-4: a gap at hq
	}
	time.Sleep(time.Second)
	if !hqNode.Recovering() {
		t.Fatalf("recovery ended holding %d of hq's entries, though no peer has said how far hq's log went (peers hold %d)",
			hqNode.Len("hq"), len(lost))
	}
}
