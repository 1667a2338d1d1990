package exchange_test

import (
	"testing"
	"time"

	"liandong/sync/exchange/exchangetest"
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
