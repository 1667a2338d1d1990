package exchange_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
)

// TestStatusSaysBlockedAndRevoked: a peer of a centre in p2p.block
// (BlockMembers) and a peer the bundle revokes are reported as such, not only
// as disconnected: `liandong status` must tell an operator's or the bundle's
// cut from an outage. The block list shows as configured, a misspelt entry
// included.
func TestStatusSaysBlockedAndRevoked(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin", "xiongan")
	hebei, err := fed.AddMember("hebei", 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := fed.Rebuild(); err != nil {
		t.Fatal(err)
	}
	pid := func(i int) string {
		id, err := peer.IDFromPrivateKey(hebei.Identities[i])
		if err != nil {
			t.Fatal(err)
		}
		return id.String()
	}
	revoked, kept := pid(0), pid(1)
	b := *fed.Bundle
	// A Before in the past: a peer revocation refuses the peer whatever its
	// Before (auth.Bundle.PeerAllowed), and status must say what admission does.
	b.Revocations = append(slices.Clone(b.Revocations),
		auth.Revocation{Subject: auth.RevokePeer + revoked, Before: time.Now().Add(-time.Hour), Reason: "host decommissioned"})
	if _, ok := b.PeerAllowed(revoked); ok {
		t.Fatal("precondition: the bundle admits the revoked peer")
	}
	// Status reads only the exchange's cached state and the bundle: no Run
	// and no connection is needed, so nothing here waits on the network.
	cfg := testConfig(t, fed.Identity("hq"), prometheus.NewRegistry())
	cfg.BlockMembers = []string{"tianjin", "hebie"}
	x, err := exchange.New(context.Background(), cfg, exchangetest.NewNode("hq", &b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })

	st := x.Status()
	if !slices.Equal(st.Block, []string{"tianjin", "hebie"}) {
		t.Errorf("block = %q, want the configured list", st.Block)
	}
	type want struct {
		member           string
		blocked, revoked bool
		reason           string
	}
	wants := map[string]want{
		pid0(t, fed, "tianjin"): {member: "tianjin", blocked: true},
		revoked:                 {member: "hebei", revoked: true, reason: "host decommissioned"},
		kept:                    {member: "hebei"},
		pid0(t, fed, "xiongan"): {member: "xiongan"},
	}
	for _, ps := range st.Peers {
		w, ok := wants[ps.PeerID]
		if !ok {
			t.Errorf("unexpected peer %+v", ps)
			continue
		}
		delete(wants, ps.PeerID)
		if ps.Member != w.member || ps.Blocked != w.blocked || ps.Revoked != w.revoked || ps.RevokedReason != w.reason || ps.Connected {
			t.Errorf("peer %s: member %q blocked %v revoked %v (%q) connected %v; want %+v",
				ps.PeerID, ps.Member, ps.Blocked, ps.Revoked, ps.RevokedReason, ps.Connected, w)
		}
	}
	for id, w := range wants {
		t.Errorf("peer %s of %s missing from the status", id, w.member)
	}
}

// pid0 is the peer id of centre's first libp2p identity.
func pid0(t *testing.T, fed *exchangetest.Federation, centre string) string {
	t.Helper()
	id, err := peer.IDFromPrivateKey(fed.Identity(centre))
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// TestStatusForgetsAPeerTheBundleDropped: a host a new bundle takes from its
// centre (its replacement listed instead, nothing revoked) is disconnected and
// then no longer shown, rather than reported as that centre's host down until
// a restart; the replacement is.
func TestStatusForgetsAPeerTheBundleDropped(t *testing.T) {
	fed := newFed(t, "hq", "tianjin")
	hq := startExchange(t, fed, "hq", nil, nil)
	tj := startExchange(t, fed, "tianjin", nil, nil)
	connect(t, hq, tj)
	old := tj.x.ID().String()
	shown := func() (connected, present bool) {
		for _, ps := range hq.x.Status().Peers {
			if ps.PeerID == old {
				return ps.Connected, true
			}
		}
		return false, false
	}
	waitFor(t, 5*time.Second, "hq to show tianjin's host connected", func() bool { c, _ := shown(); return c })

	m := fed.Members["tianjin"]
	if _, err := m.AddIdentity(); err != nil {
		t.Fatal(err)
	}
	m.Identities, m.PeerIDs = m.Identities[1:], m.PeerIDs[1:]
	if err := fed.Rebuild(); err != nil {
		t.Fatal(err)
	}
	hq.node.SetBundle(fed.Bundle)
	waitFor(t, 10*time.Second, "hq to forget the host its bundle dropped", func() bool { _, p := shown(); return !p })
	replacement := m.PeerIDs[0].String()
	if !slices.ContainsFunc(hq.x.Status().Peers, func(ps exchange.PeerStatus) bool {
		return ps.PeerID == replacement && ps.Member == "tianjin"
	}) {
		t.Fatalf("the replacement host %s is not shown: %+v", replacement, hq.x.Status().Peers)
	}
}
