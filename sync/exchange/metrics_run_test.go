package exchange_test

import (
	"testing"
	"time"

	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
)

// A running exchange exports the series of every centre its bundle lists from
// its start, before any peer connects and before the first heartbeat: zero for
// what has not happened, the held head for an origin it holds.
func TestMetricsListedCentresFromStart(t *testing.T) {
	fed := newFed(t, "alpha", "bravo", "charlie")
	node := exchangetest.NewNode("alpha", fed.Bundle)
	own, err := fed.Author("alpha").NextN(3)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Append(own...); err != nil {
		t.Fatal(err)
	}
	a := startExchange(t, fed, "alpha", node, func(c *exchange.Config) {
		c.HeartbeatInterval = time.Hour // the gauges must not wait for it
		c.AntiEntropyInterval = time.Hour
		c.StallAfter = 2 * time.Hour
	})
	waitFor(t, 5*time.Second, "the lag series of bravo", func() bool {
		return has(t, a, "liandong_sync_lag_entries", "origin", "bravo")
	})
	for _, origin := range []string{"bravo", "charlie"} {
		for _, name := range []string{"liandong_sync_entries_applied_total", "liandong_sync_forks_detected_total",
			"liandong_sync_lag_entries", "liandong_sync_lag_seconds", "liandong_sync_local_head_seq",
			"liandong_replication_delay_seconds", "liandong_replication_push_delay_seconds",
			"liandong_sync_peers_stalled"} {
			label := "origin"
			if name == "liandong_sync_peers_stalled" {
				label = "member"
			}
			if !has(t, a, name, label, origin) {
				t.Errorf("%s{%s=%q}: not exported at start", name, label, origin)
			} else if v := metricValue(t, a.reg, name, label, origin); v != 0 {
				t.Errorf("%s{%s=%q} = %v at start, want 0", name, label, origin, v)
			}
		}
	}
	if v := metricValue(t, a.reg, "liandong_sync_local_head_seq", "origin", "alpha"); v != 3 {
		t.Errorf("local_head_seq{alpha} = %v at start, want the held 3", v)
	}
	// The node's own log is not received from peers.
	for _, name := range []string{"liandong_sync_entries_applied_total", "liandong_sync_lag_entries"} {
		if has(t, a, name, "origin", "alpha") {
			t.Errorf("%s{origin=alpha}: exported for the node's own centre", name)
		}
	}
}

// has reports whether x's registry holds a series of name with label=value.
func has(t *testing.T, x *peerNode, name, label, value string) bool {
	t.Helper()
	mfs, err := x.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					return true
				}
			}
		}
	}
	return false
}
