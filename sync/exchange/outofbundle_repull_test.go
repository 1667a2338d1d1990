package exchange_test

import (
	"testing"
	"time"

	"liandong/sync/exchange/exchangetest"
)

// After the refusal, hq keeps pulling xray's refused tail from bravo at every
// anti-entropy round, for ever.
func TestOutOfBundleTailIsNotPulledAgain(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "bravo", "xray")
	removedAt := time.Now().Add(-30 * time.Second).UTC().Truncate(time.Second)
	xa := fed.Author("xray")
	now := removedAt.Add(-time.Minute)
	xa.Now = func() time.Time { return now }
	before, _ := xa.NextN(5)
	now = removedAt.Add(10 * time.Second)
	after, _ := xa.NextN(5)
	v2 := *fed.Bundle
	v2.Version++
	v2.Members = append(v2.Members[:0:0], fed.Bundle.Members...)
	for i := range v2.Members {
		if v2.Members[i].ID == "xray" {
			v2.Members[i].Removed = &removedAt
		}
	}
	bravo := exchangetest.NewNode("bravo", fed.Bundle)
	if err := bravo.Append(append(append(before[:0:0], before...), after...)...); err != nil {
		t.Fatal(err)
	}
	bravo.SetBundle(&v2)
	hq := exchangetest.NewNode("hq", &v2)
	ph := startExchange(t, fed, "hq", hq, nil)
	pb := startExchange(t, fed, "bravo", bravo, nil)
	connect(t, ph, pb)
	waitFor(t, 10*time.Second, "hq at 5", func() bool { return hq.Head("xray").Seq == 5 })
	time.Sleep(time.Second)
	r0 := metricValue(t, ph.reg, "liandong_sync_entries_rejected_total", "reason", "key-not-valid-at-time")
	time.Sleep(5 * time.Second)
	r1 := metricValue(t, ph.reg, "liandong_sync_entries_rejected_total", "reason", "key-not-valid-at-time")
	t.Logf("rejected %v then %v", r0, r1)
	if r1 > r0 {
		t.Errorf("hq re-pulled and re-refused the same tail: rejected %v -> %v in 5s", r0, r1)
	}
}
