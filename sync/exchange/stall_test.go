package exchange_test

import (
	"testing"
	"time"

	"liandong/schema"
	"liandong/sync/exchange"
)

// TestStalledPeer: a peer that stops answering without disconnecting shows as
// stalled (status and metric) after StallAfter, and recovers when it answers.
func TestStalledPeer(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin", "slow")
	short := func(c *exchange.Config) {
		c.HeartbeatInterval = 50 * time.Millisecond
		c.StallAfter = 400 * time.Millisecond
		c.RequestTimeout = 5 * time.Second
	}
	hq := startExchange(t, fed, "hq", nil, short)
	tj := startExchange(t, fed, "tianjin", nil, short)
	connect(t, hq, tj)
	slow := startHarness(t, fed.Identity("slow"), &harness{federation: fed.ID,
		claims: []schema.Head{{Origin: "slow", Epoch: "e1", Seq: 1}}})
	slow.connect(t, hq.x.AddrInfo())
	waitFor(t, 5*time.Second, "slow answers first", func() bool { return peerStatus(hq, "slow").LastContact != nil })

	slow.mu.Lock()
	slow.blockAll = true // its handlers now sit on every request; the connection stays up
	slow.mu.Unlock()
	waitFor(t, 5*time.Second, "slow stalled", func() bool {
		ps := peerStatus(hq, "slow")
		return ps.Connected && ps.Stalled &&
			metricValue(t, hq.reg, "liandong_sync_peers_stalled", "member", "slow") == 1
	})
	if ps := peerStatus(hq, "tianjin"); !ps.Connected || ps.Stalled {
		t.Fatalf("healthy peer: %+v", ps)
	}
	if v := metricValue(t, hq.reg, "liandong_sync_peers_stalled", "member", "tianjin"); v != 0 {
		t.Fatalf("tianjin stalled gauge = %v", v)
	}

	slow.mu.Lock()
	slow.blockAll = false
	slow.mu.Unlock()
	slow.unblock()
	waitFor(t, 5*time.Second, "slow recovers", func() bool {
		return !peerStatus(hq, "slow").Stalled && metricValue(t, hq.reg, "liandong_sync_peers_stalled", "member", "slow") == 0
	})
}

func peerStatus(p *peerNode, member string) exchange.PeerStatus {
	for _, ps := range p.x.Status().Peers {
		if ps.Member == member {
			return ps
		}
	}
	return exchange.PeerStatus{}
}
