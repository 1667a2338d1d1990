package exchange_test

import (
	"bufio"
	"testing"
	"time"

	"liandong/schema"
	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// farClaim is a head of alpha no honest peer holds: the victim asks its
// claimant first.
var farClaim = []schema.Head{{Origin: "alpha", Epoch: "e1", Seq: 1 << 40}}

// waitRangeReq waits until hz was asked for a range.
func waitRangeReq(t *testing.T, hz *harness) {
	t.Helper()
	waitFor(t, 5*time.Second, "a range request to the harness", func() bool {
		hz.mu.Lock()
		defer hz.mu.Unlock()
		for _, r := range hz.requests {
			if r == wire.TypeRangeReq {
				return true
			}
		}
		return false
	})
}

// TestEmptyBatchesAreAFault: a member that claims a far head of alpha and
// answers the range request with empty batches short of the last, each within
// the frame deadline, is cut off at the first one, and alpha's log comes from
// an honest peer long before the range request's own deadline would end it.
func TestEmptyBatchesAreAFault(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 1, "alpha", "victim", "bravo")
	alphaLog, err := fed.Author("alpha").NextN(10)
	if err != nil {
		t.Fatal(err)
	}
	victimNode := exchangetest.NewNode("victim", fed.Bundle)
	// The range deadline is 17 request timeouts (51 s) here: only the
	// fault can make the bound below.
	victim := startExchange(t, fed, "victim", victimNode, nil)
	stop := make(chan struct{})
	defer close(stop)
	hz := startHarness(t, evil.Identities[0], &harness{federation: fed.ID, claims: farClaim,
		answer: func(w *bufio.Writer, _ *wire.RangeReq) {
			for {
				w.Write(wire.AppendFrame(nil, &wire.Batch{Origin: "alpha"}))
				if w.Flush() != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}})
	hz.connect(t, victim.x.AddrInfo())
	waitRangeReq(t, hz)

	connectHolder(t, fed, victim, "bravo", alphaLog, nil)
	waitFor(t, 10*time.Second, "alpha's log from bravo", func() bool { return victimNode.Len("alpha") == 10 })
	if v := metricValue(t, victim.reg, "liandong_sync_peer_faults_total", "reason", "protocol-violation"); v < 1 {
		t.Errorf("protocol faults = %v, want the empty batches counted", v)
	}
	if ps := peerStatus(victim, "evil"); ps.BackedOffUntil == nil {
		t.Errorf("evil not backed off after empty batches: %+v", ps)
	}
}

// TestSlowRangeAnswerMovesOn: a member that claims a far head of alpha and
// answers the range request with one valid entry at a time, each just within
// the frame deadline, holds alpha's apply lock no longer than the range
// request's deadline (three request timeouts for 40 entries in frames of 20).
// It is not cut off for being slow, and alpha's log comes from an honest peer.
func TestSlowRangeAnswerMovesOn(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 1, "alpha", "victim", "bravo")
	alphaLog, err := fed.Author("alpha").NextN(60)
	if err != nil {
		t.Fatal(err)
	}
	const (
		timeout = time.Second
		drip    = 600 * time.Millisecond // within the frame deadline, with room for a busy machine
	)
	small := func(c *exchange.Config) {
		c.RequestTimeout = timeout
		c.BatchSize = 20
		c.MaxRangeEntries = 40
	}
	victimNode := exchangetest.NewNode("victim", fed.Bundle)
	victim := startExchange(t, fed, "victim", victimNode, small)
	stop := make(chan struct{})
	defer close(stop)
	hz := startHarness(t, evil.Identities[0], &harness{federation: fed.ID, claims: farClaim,
		answer: func(w *bufio.Writer, req *wire.RangeReq) {
			// Entries the victim can verify and apply, one a frame, never
			// the last: without a deadline of its own the answer would take
			// 40 drips (24 s) before it broke the request's limit.
			for seq := req.FromSeq; seq <= uint64(len(alphaLog)); seq++ {
				select {
				case <-stop:
					return
				case <-time.After(drip):
				}
				w.Write(wire.AppendFrame(nil, &wire.Batch{Origin: "alpha", Entries: alphaLog[seq-1 : seq]}))
				if w.Flush() != nil {
					return
				}
			}
			<-stop
		}})
	hz.connect(t, victim.x.AddrInfo())
	waitRangeReq(t, hz)
	start := time.Now()

	connectHolder(t, fed, victim, "bravo", alphaLog, small)
	// One range deadline (3 s) for evil, then bravo's two ranges; twice
	// that leaves room for a loaded machine, and half the drip answer.
	waitFor(t, 12*time.Second, "alpha's log from bravo", func() bool { return victimNode.Len("alpha") == 60 })
	t.Logf("alpha's log complete %v after evil was asked", time.Since(start).Round(time.Millisecond))
	ps := peerStatus(victim, "evil")
	if ps.BackedOffUntil != nil {
		t.Errorf("a slow peer was cut off: %+v", ps)
	}
	if v := metricTotal(t, victim.reg, "liandong_sync_peer_faults_total"); v != 0 {
		t.Errorf("faults = %v, want none for a slow answer", v)
	}
}

// TestOverClaimLoweredOnceItServesNothingNew: a member claims a far head of
// alpha but holds 10 entries, which it serves. A short answer that made
// progress lets the victim ask it again; the empty answer that follows
// lowers its claim, so it is asked no more, and the rest of alpha's log
// comes from an honest peer.
func TestOverClaimLoweredOnceItServesNothingNew(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 1, "alpha", "victim", "bravo")
	alphaLog, err := fed.Author("alpha").NextN(60)
	if err != nil {
		t.Fatal(err)
	}
	const held = 10
	slowHeads := func(c *exchange.Config) { c.AntiEntropyInterval = time.Minute }
	victimNode := exchangetest.NewNode("victim", fed.Bundle)
	victim := startExchange(t, fed, "victim", victimNode, slowHeads)
	hz := startHarness(t, evil.Identities[0], &harness{federation: fed.ID, claims: farClaim,
		answer: func(w *bufio.Writer, req *wire.RangeReq) {
			from := min(req.FromSeq-1, held)
			to := min(from+req.Limit, held)
			w.Write(wire.AppendFrame(nil, &wire.Batch{Origin: "alpha", Done: true, Entries: alphaLog[from:to]}))
		}})
	hz.connect(t, victim.x.AddrInfo())
	waitFor(t, 5*time.Second, "evil's entries", func() bool { return victimNode.Len("alpha") == held })

	connectHolder(t, fed, victim, "bravo", alphaLog, slowHeads)
	waitFor(t, 5*time.Second, "alpha's log from bravo", func() bool { return victimNode.Len("alpha") == len(alphaLog) })
	hz.mu.Lock()
	asked := len(hz.rangeReqs)
	hz.mu.Unlock()
	if asked > 2 {
		t.Errorf("evil was asked for %d ranges; its empty answer should have lowered its claim", asked)
	}
	if v := metricTotal(t, victim.reg, "liandong_sync_peer_faults_total"); v != 0 {
		t.Errorf("faults = %v, want none: serving less than claimed is not a fault", v)
	}
}

// TestTricklingPeerDoesNotHoldUpCatchUp: a peer that claims the most and
// answers one real entry a range (progress, so its claim is not lowered) is
// asked a few times a pull, not at every attempt of every pull: an honest
// holder serves the rest at once.
func TestTricklingPeerDoesNotHoldUpCatchUp(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 1, "alpha", "victim", "bravo")
	alphaLog, err := fed.Author("alpha").NextN(60)
	if err != nil {
		t.Fatal(err)
	}
	slowHeads := func(c *exchange.Config) { c.AntiEntropyInterval = time.Minute }
	victimNode := exchangetest.NewNode("victim", fed.Bundle)
	victim := startExchange(t, fed, "victim", victimNode, slowHeads)
	hz := startHarness(t, evil.Identities[0], &harness{federation: fed.ID, claims: farClaim,
		answer: func(w *bufio.Writer, req *wire.RangeReq) {
			time.Sleep(100 * time.Millisecond)
			from := min(req.FromSeq-1, uint64(len(alphaLog)-1))
			w.Write(wire.AppendFrame(nil, &wire.Batch{Origin: "alpha", Done: true, Entries: alphaLog[from : from+1]}))
		}})
	hz.connect(t, victim.x.AddrInfo())
	waitFor(t, 5*time.Second, "evil's first entry", func() bool { return victimNode.Len("alpha") >= 1 })

	connectHolder(t, fed, victim, "bravo", alphaLog, slowHeads)
	waitFor(t, 5*time.Second, "alpha's log from bravo", func() bool { return victimNode.Len("alpha") == len(alphaLog) })
	hz.mu.Lock()
	asked := len(hz.rangeReqs)
	hz.mu.Unlock()
	if asked > 10 {
		t.Errorf("the trickling peer was asked for %d ranges of %d entries; an honest holder was connected", asked, len(alphaLog))
	}
}
