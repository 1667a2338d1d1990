package node

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"liandong/auth"
)

// originSeries returns the series of the family name in reg by their origin
// label, with their values.
func originSeries(t *testing.T, reg prometheus.Gatherer, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			origin := ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "origin" {
					origin = lp.GetValue()
				}
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.Counter.GetValue()
			}
			out[origin] = v
		}
	}
	return out
}

func wantOrigins(t *testing.T, what, name string, got map[string]float64, want ...string) {
	t.Helper()
	var have []string
	for o, v := range got {
		have = append(have, o)
		if v != 0 {
			t.Errorf("%s: %s{origin=%q} = %v, want 0", what, name, o, v)
		}
	}
	sort.Strings(have)
	sort.Strings(want)
	if strings.Join(have, " ") != strings.Join(want, " ") {
		t.Errorf("%s: %s has origins %v, want %v", what, name, have, want)
	}
}

// The per-origin series of a fresh node are there at zero for every centre its
// trust bundle lists, removed ones aside, before any entry is held or applied;
// and for a centre a newer bundle adds, from the first scrape after.
func TestMetricsListedOriginsAtZero(t *testing.T) {
	f := newTrustFixture(t)
	hebei, _ := auth.GenerateKey("hebei-rec")
	xiongan, _ := auth.GenerateKey("xiongan-rec")
	past := time.Now().UTC().Add(-time.Hour)
	removed := time.Now().UTC().Add(-time.Minute)
	f.v1.Members = append(f.v1.Members,
		auth.Member{ID: "hebei", Name: "Hebei", RecordKeys: []auth.Key{hebei.BundleKey(past)}},
		auth.Member{ID: "xiongan", Name: "Xiongan", RecordKeys: []auth.Key{xiongan.BundleKey(past)}, Removed: &removed})
	reg := prometheus.NewRegistry()
	n := f.openWith(t, t.TempDir(), func(c *Config) { c.Registerer = reg })
	defer n.Close()

	const applied, heads = "liandong_store_remote_entries_applied_total", "liandong_log_head_seq"
	wantOrigins(t, "fresh node", applied, originSeries(t, reg, applied), "hebei")
	wantOrigins(t, "fresh node", heads, originSeries(t, reg, heads), "tianjin", "hebei")
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}

	hq, _ := auth.GenerateKey("hq-rec")
	v2 := *f.v1
	v2.Version = 2
	v2.Members = append(append([]auth.Member(nil), f.v1.Members...), auth.Member{ID: "hq", Name: "HQ", RecordKeys: []auth.Key{hq.BundleKey(past)}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := n.InstallBundle(ctx, f.sign(t, &v2, f.root), "test"); err != nil {
		t.Fatal(err)
	}
	wantOrigins(t, "after v2", applied, originSeries(t, reg, applied), "hebei", "hq")
	wantOrigins(t, "after v2", heads, originSeries(t, reg, heads), "tianjin", "hebei", "hq")
}

// newMetrics alone, on a fresh registry and a node not yet open: the
// remote-applied series of the configured bundle's other centres are there.
func TestMetricsRemoteAppliedFromConstruction(t *testing.T) {
	f := newTrustFixture(t)
	hebei, _ := auth.GenerateKey("hebei-rec")
	f.v1.Members = append(f.v1.Members, auth.Member{ID: "hebei", Name: "Hebei",
		RecordKeys: []auth.Key{hebei.BundleKey(time.Now().UTC().Add(-time.Hour))}})
	n := &Node{cfg: Config{Centre: "tianjin"}}
	n.bundle.Store(f.v1)
	reg := prometheus.NewRegistry()
	if _, err := newMetrics(reg, n); err != nil {
		t.Fatal(err)
	}
	const applied = "liandong_store_remote_entries_applied_total"
	wantOrigins(t, "new metrics", applied, originSeries(t, reg, applied), "hebei")
}
