package exchange_test

import (
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/schema"
	"liandong/sync/exchange/exchangetest"
)

// TestRecoveryKeepsWhatAForgottenHostSaid (review 106): hq lost its state and
// recovers its own log. hebei's host said hq's log went to seq 10 (it cannot
// serve the entries: its range answers never come); tianjin and xiongan hold
// only 5. Then a new bundle replaces hebei's host (the host is swapped, the
// centre stays). Forgetting the old host would drop its heads, and with them
// the only evidence that hq's log went past 5: recovery would end at 5, and
// hq's next write (seq 6) fork its own history, which hebei holds to 10. No
// peer is forgotten while the node recovers.
func TestRecoveryKeepsWhatAForgottenHostSaid(t *testing.T) {
	fed := newFed(t, "hq", "tianjin", "hebei", "xiongan")
	lost := write(t, exchangetest.NewNode("hq", fed.Bundle), fed.Author("hq"), 10)
	hqNode := exchangetest.NewNode("hq", fed.Bundle)
	hqNode.SetRecovering(true)
	hq := startExchange(t, fed, "hq", hqNode, nil)
	hqInfo := peer.AddrInfo{ID: hq.x.ID(), Addrs: hq.x.Addrs()}

	last := lost[len(lost)-1]
	old := startHarness(t, fed.Identity("hebei"), &harness{
		federation: fed.ID,
		claims:     []schema.Head{{Origin: "hq", Epoch: last.Epoch, Seq: last.Seq, Hash: last.Hash()}},
	})
	old.connect(t, hqInfo)
	for _, id := range []string{"tianjin", "xiongan"} {
		n := exchangetest.NewNode(id, fed.Bundle)
		if err := n.Append(lost[:5]...); err != nil {
			t.Fatal(err)
		}
		connect(t, hq, startExchange(t, fed, id, n, nil))
	}
	waitFor(t, 20*time.Second, "hq to pull back the 5 entries tianjin and xiongan hold", func() bool { return hqNode.Len("hq") == 5 })
	time.Sleep(time.Second)
	if !hqNode.Recovering() {
		t.Fatal("setup: recovery ended while hebei says hq's log went to 10")
	}

	// hebei's host is replaced: the new one is listed, the old one not.
	m := fed.Members["hebei"]
	if _, err := m.AddIdentity(); err != nil {
		t.Fatal(err)
	}
	m.Identities, m.PeerIDs = m.Identities[1:], m.PeerIDs[1:]
	if err := fed.Rebuild(); err != nil {
		t.Fatal(err)
	}
	hqNode.SetBundle(fed.Bundle)
	time.Sleep(3 * time.Second) // a dozen anti-entropy rounds
	if !hqNode.Recovering() {
		t.Fatalf("recovery ended holding %d of hq's entries though hebei said its log went to %d: hq's next write forks it",
			hqNode.Len("hq"), last.Seq)
	}
}
