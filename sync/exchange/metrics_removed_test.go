package exchange_test

import (
	"testing"
	"time"

	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
)

// charlie is listed, so its per-origin series start at zero (knowOrigin).
// A newer bundle removes charlie; heartbeats go on, but the zero series
// started for it stay forever: updateGauges only adds origins, while the
// per-member series (memberCollector) drop a removed member.
// TestMetricsRemovedCentreZeroSeriesGoAway: the per-origin series started at
// zero for a listed centre go once a bundle removes it, when nothing of its
// log is held (a lag of 0 would read as a centre in step).
func TestMetricsRemovedCentreZeroSeriesGoAway(t *testing.T) {
	fed := newFed(t, "alpha", "bravo", "charlie")
	node := exchangetest.NewNode("alpha", fed.Bundle)
	a := startExchange(t, fed, "alpha", node, func(c *exchange.Config) {
		c.HeartbeatInterval = 50 * time.Millisecond
		c.AntiEntropyInterval = time.Hour
		c.StallAfter = 2 * time.Hour
	})
	waitFor(t, 5*time.Second, "the lag series of charlie", func() bool {
		return has(t, a, "liandong_sync_lag_seconds", "origin", "charlie")
	})
	removed := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	v2 := *fed.Bundle
	v2.Version = fed.Bundle.Version + 1
	v2.Members = append(v2.Members[:0:0], fed.Bundle.Members...)
	for i := range v2.Members {
		if v2.Members[i].ID == "charlie" {
			v2.Members[i].Removed = &removed
		}
	}
	node.SetBundle(&v2)
	waitFor(t, 5*time.Second, "member series of charlie to go", func() bool {
		return !has(t, a, "liandong_sync_member_listed_peers", "member", "charlie")
	})
	time.Sleep(300 * time.Millisecond) // several heartbeats
	for _, name := range []string{"liandong_sync_lag_seconds", "liandong_sync_lag_entries", "liandong_sync_entries_applied_total",
		"liandong_sync_local_head_seq", "liandong_replication_delay_seconds"} {
		if has(t, a, name, "origin", "charlie") {
			t.Errorf("%s{origin=\"charlie\"}: still exported after charlie was removed, though nothing of it was ever held", name)
		}
	}
}
