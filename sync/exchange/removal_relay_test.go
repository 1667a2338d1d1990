package exchange_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"liandong/sync/exchange/exchangetest"
)

// TestRemovedOriginTailDoesNotCutOffRelays: remove-centre stamps Removed with
// the time the bundle is built; until the signed bundle reaches a member, that
// member still accepts the removed centre's entries (valid under the bundle it
// runs on). A member that installed the bundle earlier, and is behind on that
// origin, then pulls those entries from the honest relay, finds them signed
// after the removal, and cuts the relay off as if it had forged them, again at
// every reconnection. The relay did nothing wrong.
func TestRemovedOriginTailDoesNotCutOffRelays(t *testing.T) {
	for _, held := range []int{5, 2} {
		t.Run(fmt.Sprintf("hq holds %d", held), func(t *testing.T) { removedOriginTail(t, held) })
	}
}

// removedOriginTail: hq holds held of xray's entries signed before its
// removal; it takes the rest of those from bravo, and none after.
func removedOriginTail(t *testing.T, held int) {
	checkLeaks(t)
	fed := newFed(t, "hq", "bravo", "xray")
	removedAt := time.Now().Add(-30 * time.Second).UTC().Truncate(time.Second)

	// xray writes 5 entries before its removal, 5 after (before the bundle
	// that removes it arrived anywhere).
	var clock atomic.Int64
	clock.Store(removedAt.Add(-time.Minute).UnixNano())
	xa := fed.Author("xray")
	xa.Now = func() time.Time { return time.Unix(0, clock.Load()) }
	before, err := xa.NextN(5)
	if err != nil {
		t.Fatal(err)
	}
	clock.Store(removedAt.Add(10 * time.Second).UnixNano())
	after, err := xa.NextN(5)
	if err != nil {
		t.Fatal(err)
	}

	v2 := *fed.Bundle
	v2.Version = fed.Bundle.Version + 1
	v2.Members = append(v2.Members[:0:0], fed.Bundle.Members...)
	for i := range v2.Members {
		if v2.Members[i].ID == "xray" {
			v2.Members[i].Removed = &removedAt
		}
	}

	// bravo took all ten under v1, then installed v2.
	bravo := exchangetest.NewNode("bravo", fed.Bundle)
	if err := bravo.Append(append(append(before[:0:0], before...), after...)...); err != nil {
		t.Fatal(err)
	}
	bravo.SetBundle(&v2)
	bravoAuthor := fed.Author("bravo")
	// hq installed v2 first, holding xray's log up to 5.
	hq := exchangetest.NewNode("hq", &v2)
	if err := hq.Append(before[:held]...); err != nil {
		t.Fatal(err)
	}
	ph := startExchange(t, fed, "hq", hq, nil)
	pb := startExchange(t, fed, "bravo", bravo, nil)
	connect(t, ph, pb)

	// bravo's own log must keep reaching hq.
	write(t, bravo, bravoAuthor, 3)
	waitFor(t, 10*time.Second, "hq holds bravo's entries", func() bool { return hq.Head("bravo").Seq == 3 })
	waitFor(t, 10*time.Second, "hq holds xray's entries from before its removal", func() bool { return hq.Head("xray").Seq >= 5 })
	time.Sleep(2 * time.Second) // several anti-entropy rounds
	if got := hq.Head("xray").Seq; got != 5 {
		t.Errorf("hq applied xray up to %d, want 5 (entries signed after its removal are refused)", got)
	}
	if n := metricTotal(t, ph.reg, "liandong_sync_peer_faults_total"); n > 0 {
		t.Errorf("hq cut off bravo %v times for relaying xray entries bravo accepted under the bundle it ran on", n)
	}
	// Refused once, not pulled and refused again at every round.
	r0 := metricValue(t, ph.reg, "liandong_sync_entries_rejected_total", "reason", "key-not-valid-at-time")
	time.Sleep(3 * time.Second)
	if r1 := metricValue(t, ph.reg, "liandong_sync_entries_rejected_total", "reason", "key-not-valid-at-time"); r0 == 0 || r1 > r0 {
		t.Errorf("entries refused: %v, then %v 3 s later (the same tail pulled again)", r0, r1)
	}
	// Nor counted as lag: hq will not ask for them under this bundle.
	for _, o := range ph.x.Status().Origins {
		if o.Origin == "xray" && o.LagEntries != 0 {
			t.Errorf("hq reports itself %d entries behind on xray (best %d), entries it refused", o.LagEntries, o.Best.Seq)
		}
	}
}
