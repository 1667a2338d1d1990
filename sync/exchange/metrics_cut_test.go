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

// TestMemberMetricsLeaveOutPeersCutOnPurpose: LiandongPeerDisconnected fires on
// liandong_sync_member_connected_peers == 0 and
// liandong_sync_member_listed_peers > 0, and the dashboard's "Disconnected
// links" counts the same. A centre in p2p.block, or whose every peer the bundle
// revokes, is cut on purpose: `liandong status` shows it as a note and exits 0,
// so the alert must not page for it either. A centre with a peer left that
// this node should reach, and does not, still counts.
func TestMemberMetricsLeaveOutPeersCutOnPurpose(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin", "xiongan")
	hebei, err := fed.AddMember("hebei", 2)
	if err != nil {
		t.Fatal(err)
	}
	baoding, err := fed.AddMember("baoding", 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := fed.Rebuild(); err != nil {
		t.Fatal(err)
	}
	pid := func(m *exchangetest.Member, i int) string {
		id, err := peer.IDFromPrivateKey(m.Identities[i])
		if err != nil {
			t.Fatal(err)
		}
		return id.String()
	}
	b := *fed.Bundle
	b.Revocations = append(slices.Clone(b.Revocations),
		auth.Revocation{Subject: auth.RevokePeer + pid(hebei, 0), Before: time.Now().Add(-time.Hour), Reason: "host decommissioned"},
		auth.Revocation{Subject: auth.RevokePeer + pid(baoding, 0), Before: time.Now().Add(-time.Hour), Reason: "host decommissioned"})
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, fed.Identity("hq"), reg)
	cfg.BlockMembers = []string{"tianjin"}
	x, err := exchange.New(context.Background(), cfg, exchangetest.NewNode("hq", &b))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })

	// Nothing runs, so nothing is connected: the alert's expression is
	// listed > 0 for every member it would fire for.
	for member, want := range map[string]float64{
		"tianjin": 0, // blocked by p2p.block: a note in status
		"baoding": 0, // its only peer revoked: a note in status
		"hebei":   1, // one peer revoked, one that should be reached
		"xiongan": 1, // an outage: a problem in status too
	} {
		if got := metricValue(t, reg, "liandong_sync_member_listed_peers", "member", member); got != want {
			t.Errorf("liandong_sync_member_listed_peers{member=%q} = %v, want %v (LiandongPeerDisconnected fires for it: %v; status calls it a problem: %v)",
				member, got, want, got > 0, want > 0)
		}
	}
}
