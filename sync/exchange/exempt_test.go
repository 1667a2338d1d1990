package exchange

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/sync/exchange/exchangetest"
)

// TestRotationExemption: a peer announcing a newer bundle is believed about
// keys we do not know only until a fetch of its bundle falls short; a higher
// announcement does not restore that, a newer bundle of our own does.
func TestRotationExemption(t *testing.T) {
	fed, err := exchangetest.NewFederation("alpha")
	if err != nil {
		t.Fatal(err)
	}
	node := exchangetest.NewNode("alpha", fed.Bundle)
	x := &Exchange{node: node, peers: map[peer.ID]*peerState{}}
	const p = peer.ID("peer-a")
	v := fed.Bundle.Version
	exempt := func() bool {
		_, ok := x.rotationExempt(p)
		return ok
	}
	if exempt() {
		t.Fatal("exempt before announcing anything")
	}
	x.peerLocked(p, "beta").bundle = v
	if exempt() {
		t.Fatal("exempt announcing our own version")
	}
	x.peerLocked(p, "").bundle = v + 1
	if !exempt() {
		t.Fatal("not exempt announcing a newer bundle not yet fetched")
	}
	x.noteOfferShort(p)
	if exempt() {
		t.Fatal("still exempt after its bundle fell short")
	}
	x.peerLocked(p, "").bundle = 1 << 60
	if exempt() {
		t.Fatal("a higher announcement restored the exemption")
	}
	newer := *fed.Bundle
	newer.Version = v + 1
	node.SetBundle(&newer)
	if !exempt() {
		t.Fatal("not exempt, announcing a bundle newer than the one we moved on to")
	}
}
