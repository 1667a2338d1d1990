package exchange_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
)

// cuts is a fake exchange.Faults: the members whose streams are dropped, by
// direction, changed while the exchange runs.
type cuts struct {
	mu      sync.Mutex
	in, out []string
}

var _ exchange.Faults = (*cuts)(nil)

func (c *cuts) DropInbound(m string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.in, m)
}

func (c *cuts) DropOutbound(m string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Contains(c.out, m)
}

func (c *cuts) set(in, out []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.in, c.out = in, out
}

// TestOneWayCuts: a host that drops inbound streams from a member still pulls
// from it (and drops the member's announcements), and one that refuses
// outbound streams to a member is still pulled from; the connection stays up
// either way, and healing the cut without a
// restart lets the logs converge. Pushes are off so that each direction of
// data has exactly one path (a pull by the receiver).
func TestOneWayCuts(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin")
	var tjCuts cuts
	noPush := func(c *exchange.Config) { c.DisablePush = true }
	hq := startExchange(t, fed, "hq", nil, noPush)
	tj := startExchange(t, fed, "tianjin", nil, func(c *exchange.Config) { noPush(c); c.Faults = &tjCuts })
	connect(t, hq, tj)
	ahq, atj := fed.Author("hq"), fed.Author("tianjin")

	// tianjin drops what hq opens: tianjin still pulls hq's log, hq cannot pull
	// tianjin's.
	tjCuts.set([]string{"hq"}, nil)
	write(t, hq.node, ahq, 5)
	write(t, tj.node, atj, 5)
	waitFor(t, 10*time.Second, "hq's log at tianjin across the inbound cut", func() bool { return tj.node.Len("hq") == 5 })

	time.Sleep(time.Second) // four anti-entropy rounds
	if n := hq.node.Len("tianjin"); n != 0 {
		t.Fatalf("hq pulled %d entries through tianjin's inbound cut", n)
	}
	if ps := peerStatus(tj, "hq"); !ps.Connected {
		t.Fatalf("the connection went down with the cut: %+v", ps)
	}

	// tianjin refuses to open streams to hq: hq pulls tianjin's log, tianjin
	// cannot pull hq's.
	tjCuts.set(nil, []string{"hq"})
	waitFor(t, 10*time.Second, "tianjin's log at hq across the outbound cut", func() bool { return hq.node.Len("tianjin") == 5 })
	write(t, hq.node, ahq, 5)
	time.Sleep(time.Second)
	if n := tj.node.Len("hq"); n != 5 {
		t.Fatalf("tianjin holds %d of hq's entries through its outbound cut, want 5", n)
	}
	if ps := peerStatus(hq, "tianjin"); !ps.Connected {
		t.Fatalf("the connection went down with the cut: %+v", ps)
	}

	// Both ways: nothing crosses, announcements included (by now gossipsub
	// has long seen both subscriptions). Healed: everything does, without a
	// restart.
	tjCuts.set([]string{"hq"}, []string{"hq"})
	dropped := metricValue(t, tj.reg, "liandong_sync_announcements_refused_total", "reason", "fault-injected")
	write(t, tj.node, atj, 5)
	write(t, hq.node, ahq, 5)
	waitFor(t, 10*time.Second, "hq's announcements dropped at tianjin", func() bool {
		return metricValue(t, tj.reg, "liandong_sync_announcements_refused_total", "reason", "fault-injected") > dropped
	})
	time.Sleep(time.Second)
	if a, b := hq.node.Len("tianjin"), tj.node.Len("hq"); a != 5 || b != 5 {
		t.Fatalf("across a two-way cut hq holds %d of tianjin, tianjin %d of hq; want 5 and 5", a, b)
	}
	tjCuts.set(nil, nil)
	waitFor(t, 10*time.Second, "converged after healing", func() bool {
		return hq.node.Len("tianjin") == 10 && tj.node.Len("hq") == 15
	})
}

// TestCutLinkAnnouncementsComeAround: an announcement the cut member delivers
// itself is dropped, but the copy another member relays still arrives, as
// around a real partition. (Dropped after gossipsub had marked it seen, the
// relayed copy would be refused as a duplicate.) Heads exchanges are left to
// a long anti-entropy interval and pushes are off, so what tianjin knows of
// hq's own head can only come by gossip.
func TestCutLinkAnnouncementsComeAround(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin", "hebei")
	hq, tj, hb := cutTriangle(t, fed, func(c *exchange.Config) { c.DisablePush = true; c.AntiEntropyInterval = time.Hour })
	ahq := fed.Author("hq")
	claims := func(p *peerNode, of string, seq uint64) bool {
		for _, h := range peerStatus(p, of).Heads {
			if h.Origin == of && h.Seq >= seq {
				return true
			}
		}
		return false
	}
	// Announce until hebei has gossip with both (the mesh forms within a
	// heartbeat of gossipsub's) and has relayed hq's head to tianjin.
	var seq uint64
	waitFor(t, 15*time.Second, "hq's announcement relayed to tianjin by hebei", func() bool {
		write(t, hq.node, ahq, 1)
		seq++
		time.Sleep(200 * time.Millisecond)
		return claims(hb, "hq", seq) && claims(tj, "hq", seq)
	})
	// Now every announcement of hq's comes round: each reaches tianjin
	// through hebei, while the copies hq delivers are dropped.
	dropped := metricValue(t, tj.reg, "liandong_sync_announcements_refused_total", "reason", "fault-injected")
	for range 5 {
		write(t, hq.node, ahq, 1)
		seq++
		waitFor(t, 5*time.Second, "hq's announcement at hebei", func() bool { return claims(hb, "hq", seq) })
		waitFor(t, 5*time.Second, "hq's announcement relayed to tianjin", func() bool { return claims(tj, "hq", seq) })
	}
	if got := metricValue(t, tj.reg, "liandong_sync_announcements_refused_total", "reason", "fault-injected"); got < dropped+5 {
		t.Fatalf("%v of hq's own deliveries dropped at tianjin, want at least 5", got-dropped)
	}
}

// cutTriangle runs hq, tianjin and hebei, each configured by mutate, all
// connected, with tianjin dropping every stream to and from hq both ways: hq's
// log reaches tianjin only through hebei.
func cutTriangle(t *testing.T, fed *exchangetest.Federation, mutate func(*exchange.Config)) (hq, tj, hb *peerNode) {
	t.Helper()
	tjCuts := &cuts{in: []string{"hq"}, out: []string{"hq"}}
	hq = startExchange(t, fed, "hq", nil, mutate)
	tj = startExchange(t, fed, "tianjin", nil, func(c *exchange.Config) { mutate(c); c.Faults = tjCuts })
	hb = startExchange(t, fed, "hebei", nil, mutate)
	connect(t, hq, tj)
	connect(t, hq, hb)
	connect(t, tj, hb)
	return hq, tj, hb
}
