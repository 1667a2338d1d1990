package node

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
)

// A centre the bundle lists gets liandong_store_remote_entries_applied_total
// at zero; when a newer bundle removes it, its zero series stays forever
// (knowOrigins only ever adds), although the family is documented as
// "the centres the trust bundle lists, removed ones aside" and
// liandong_log_head_seq (computed per scrape) drops it.
// TestMetricsRemovedCentreSeriesGoAway: the remote-applied series started at
// zero for a listed centre goes once a bundle removes it, when nothing of its
// log is held, as its log_head_seq does.
func TestMetricsRemovedCentreSeriesGoAway(t *testing.T) {
	f := newTrustFixture(t)
	hebei, _ := auth.GenerateKey("hebei-rec")
	past := time.Now().UTC().Add(-time.Hour)
	f.v1.Members = append(f.v1.Members, auth.Member{ID: "hebei", Name: "Hebei", RecordKeys: []auth.Key{hebei.BundleKey(past)}})
	reg := prometheus.NewRegistry()
	n := f.openWith(t, t.TempDir(), func(c *Config) { c.Registerer = reg })
	defer n.Close()
	const applied, heads = "liandong_store_remote_entries_applied_total", "liandong_log_head_seq"
	wantOrigins(t, "v1", applied, originSeries(t, reg, applied), "hebei")

	removed := time.Now().UTC().Add(-time.Minute)
	v2 := *f.v1
	v2.Version = 2
	v2.Members = append([]auth.Member(nil), f.v1.Members...)
	for i := range v2.Members {
		if v2.Members[i].ID == "hebei" {
			v2.Members[i].Removed = &removed
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.InstallBundle(ctx, f.sign(t, &v2, f.root), "test"); err != nil {
		t.Fatal(err)
	}
	wantOrigins(t, "after hebei removed", heads, originSeries(t, reg, heads), "tianjin")
	wantOrigins(t, "after hebei removed", applied, originSeries(t, reg, applied))
}
