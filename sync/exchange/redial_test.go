package exchange_test

import (
	"net"
	"strings"
	"testing"
	"time"

	"liandong/sync/exchange"
)

// TestRedialIgnoresTheSwarmsDialBackoff: a centre that only it can dial (the
// other's packets do not reach it unasked: a firewall that lets connections
// out only, a one-way cut) redials a peer that was unreachable at every
// anti-entropy round, and reaches it at the first round after it is back.
// libp2p's swarm refuses a dial to an address whose last dial failed for
// 5 s + 1 s × failures² (up to 5 min): after an outage of half an hour, sync
// came back up to five minutes after the link did, every round in between
// answered "dial backoff" without dialling.
func TestRedialIgnoresTheSwarmsDialBackoff(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hqAddr := "/ip4/127.0.0.1/tcp/" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:")
	ln.Close() // nothing listens there until hq starts: dials are refused
	for i, m := range fed.Bundle.Members {
		if m.ID == "hq" {
			fed.Bundle.Members[i].Peers[0].Addrs = []string{hqAddr}
		}
	}
	// tianjin lists no address: hq cannot dial it, only tianjin dials hq.
	tj := startExchange(t, fed, "tianjin", nil, nil)

	// hq is down: tianjin's dials fail, and the swarm backs off from hq.
	var lastErrAt time.Time
	for failures := 0; failures < 2; failures++ {
		waitFor(t, 20*time.Second, "tianjin's dial to hq, down, to fail", func() bool {
			ps := peerStatus(tj, "hq")
			if ps.LastErrorAt == nil || !ps.LastErrorAt.After(lastErrAt) || !strings.Contains(ps.LastError, "dial") {
				return false
			}
			lastErrAt = *ps.LastErrorAt
			return true
		})
	}

	// hq comes back, at once after a failure (the swarm's backoff of hq's
	// address has seconds to run).
	hq := startExchange(t, fed, "hq", nil, func(c *exchange.Config) { c.ListenAddrs = []string{hqAddr} })
	up := time.Now()
	waitFor(t, 30*time.Second, "tianjin to reach hq again", func() bool { return peerStatus(tj, "hq").Connected })
	ps := peerStatus(tj, "hq")
	if ps.LastErrorAt != nil && ps.LastErrorAt.After(up) && strings.Contains(ps.LastError, "backoff") {
		t.Fatalf("with hq up, tianjin's redials were refused by the swarm's dial backoff (%s, %v after hq started), instead of dialling", ps.LastError, ps.LastErrorAt.Sub(up))
	}
	// And sync flows: hq's log reaches tianjin.
	write(t, hq.node, fed.Author("hq"), 3)
	waitFor(t, 10*time.Second, "hq's log at tianjin", func() bool { return tj.node.Len("hq") == 3 })
}
