package exchange

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/auth"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
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

// Only what the peer did costs it the exemption: a trust request that never
// reached it, or that this node gave up, and an install that failed on this
// node (not the leader, a raft timeout) leave it; a wrong or missing answer,
// and a bundle refused for itself, do not.
func TestOfferShortIsThePeers(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"our stream limit", fmt.Errorf("fetch: %w: %w", errNoStreamHere, network.ErrResourceLimitExceeded), false},
		{"protocol refused at negotiation", errors.New("open stream: failed to negotiate protocol: protocols not supported"), true},
		{"shutdown", fmt.Errorf("trust-req: %w", context.Canceled), false},
		{"no answer in time", fmt.Errorf("trust-req: %w", context.DeadlineExceeded), true},
		{"stream ended", errors.New("trust-req: stream ended before the answer"), true},
		{"protocol fault", fault(reasonProtocol, 0, "answered a trust request with batch"), true},
		{"error answer", &wire.Error{Code: wire.CodeUnavailable, Message: "no bundle"}, true},
	} {
		if got := answerFellShort(tc.err); got != tc.want {
			t.Errorf("request %s: fell short %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"garbage", fmt.Errorf("bundle refused: %w", auth.ErrBundleInvalid), true},
		{"unsigned", fmt.Errorf("bundle refused: %w", auth.ErrTooFewSignatures), true},
		{"older", fmt.Errorf("bundle refused: %w", auth.ErrRollback), true},
		{"not the leader", errors.New("not the raft leader"), false},
		{"raft timeout", fmt.Errorf("raft apply: %w", context.DeadlineExceeded), false},
	} {
		if got := bundleRefused(tc.err); got != tc.want {
			t.Errorf("install %s: refused %v, want %v", tc.name, got, tc.want)
		}
	}
}
