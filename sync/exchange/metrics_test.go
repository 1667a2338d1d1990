package exchange

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"liandong/auth"
	"liandong/sync/wire"
)

// gathered returns, per family of reg, its series as "k=v,k=v" label strings
// (sorted), each with its value: the count for a histogram.
func gathered(t *testing.T, reg prometheus.Gatherer) map[string]map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		series := map[string]float64{}
		for _, m := range mf.GetMetric() {
			series[labelKey(m)] = metricNumber(m)
		}
		out[mf.GetName()] = series
	}
	return out
}

func labelKey(m *dto.Metric) string {
	var kv []string
	for _, lp := range m.GetLabel() {
		kv = append(kv, lp.GetName()+"="+lp.GetValue())
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func metricNumber(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// checkFamily reports a labelled family that lacks one of want at zero, or
// holds a series beyond want.
func checkFamily(t *testing.T, got map[string]map[string]float64, name string, want []string) {
	t.Helper()
	series, ok := got[name]
	if !ok {
		t.Errorf("%s: not exported before any event", name)
		return
	}
	for _, w := range want {
		v, ok := series[w]
		switch {
		case !ok:
			t.Errorf("%s{%s}: not exported before any event", name, w)
		case v != 0:
			t.Errorf("%s{%s} = %v before any event, want 0", name, w, v)
		}
	}
	for k := range series {
		if !slices.Contains(want, k) {
			t.Errorf("%s{%s}: exported, but not a value known up front", name, k)
		}
	}
}

func labels(name string, values ...string) []string {
	out := make([]string, len(values))
	for i, v := range values {
		out[i] = name + "=" + v
	}
	return out
}

// Every labelled sync family whose label values are constants is exported at
// zero from construction, so the first event counts as an increase.
func TestMetricsKnownLabelsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := newMetrics(reg); err != nil {
		t.Fatal(err)
	}
	got := gathered(t, reg)

	var chain []string
	for _, r := range auth.ChainReasons {
		chain = append(chain, string(r))
	}
	entry := []string{"oversized-frame", "malformed-frame", "protocol-violation", "fork", "own-origin"}
	gossip := []string{"gossip-flood", "gossip-malformed", "gossip-oversized", "gossip-bad-signature"}
	checkFamily(t, got, "liandong_sync_entries_rejected_total", labels("reason", slices.Concat(chain, entry)...))
	checkFamily(t, got, "liandong_sync_peer_faults_total", labels("reason", slices.Concat(chain, entry, gossip)...))

	var refused []string
	for _, d := range []string{"inbound", "outbound"} {
		for _, r := range []string{"not-member", "blocked", "backed-off"} {
			refused = append(refused, "direction="+d+",reason="+r)
		}
	}
	checkFamily(t, got, "liandong_sync_refused_connections_total", refused)

	checkFamily(t, got, "liandong_sync_announcements_refused_total", labels("reason",
		"not-member", "backed-off", "malformed", "not-announcement", "other-federation", "oversized", "stale",
		"rate-limited", "bad-signature", "unsigned", "self-origin", "overloaded"))
	checkFamily(t, got, "liandong_sync_announcements_total", labels("direction", "sent", "received"))
	checkFamily(t, got, "liandong_sync_trust_bundles_total", labels("outcome", "installed", "refused"))

	types := []string{"ping", "pong", "heads-req", "heads", "range-req", "batch", "push", "error", "trust-req", "trust"}
	checkFamily(t, got, "liandong_sync_frames_sent_total", labels("type", types...))
	checkFamily(t, got, "liandong_sync_frames_received_total", labels("type", append(types, "invalid")...))

	var res []string
	for resource, scopes := range map[string][]string{
		"streams":     {"system", "transient", "peer", "protocol", "protocol-peer", "service", "service-peer"},
		"connections": {"system", "transient", "peer"},
		"memory":      {"system", "transient", "peer", "protocol", "protocol-peer", "service", "service-peer", "connection", "stream"},
	} {
		for _, s := range scopes {
			res = append(res, "resource="+resource+",scope="+s)
		}
	}
	checkFamily(t, got, "liandong_sync_resource_refusals_total", res)

	// Labelled by origin or member, known from the trust bundle only: no series
	// until knowOrigin or updateGauges.
	for _, name := range []string{"liandong_sync_entries_applied_total", "liandong_sync_forks_detected_total",
		"liandong_sync_lag_entries", "liandong_sync_lag_seconds", "liandong_sync_local_head_seq",
		"liandong_replication_delay_seconds", "liandong_replication_push_delay_seconds",
		"liandong_sync_peers_stalled", "liandong_sync_peer_behind_entries"} {
		if s := got[name]; len(s) > 0 {
			t.Errorf("%s: series %v before any origin is known", name, s)
		}
	}
}

// knowOrigin exports every per-origin family at zero, and only the local head
// for the node's own centre.
func TestMetricsKnowOrigin(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.knowOrigin("hebei", false)
	m.knowOrigin("tianjin", true)
	got := gathered(t, reg)
	for _, name := range []string{"liandong_sync_entries_applied_total", "liandong_sync_forks_detected_total",
		"liandong_sync_lag_entries", "liandong_sync_lag_seconds",
		"liandong_replication_delay_seconds", "liandong_replication_push_delay_seconds"} {
		checkFamily(t, got, name, labels("origin", "hebei"))
	}
	checkFamily(t, got, "liandong_sync_local_head_seq", labels("origin", "hebei", "tianjin"))
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}

	// A known origin keeps its value.
	m.applied.WithLabelValues("hebei").Add(3)
	m.knowOrigin("hebei", false)
	if v := gathered(t, reg)["liandong_sync_entries_applied_total"]["origin=hebei"]; v != 3 {
		t.Errorf("applied{hebei} = %v after knowOrigin again, want 3", v)
	}
}

// frameTypes lists every message type the wire package names, so a new one
// cannot be counted without starting at zero.
func TestMetricsFrameTypesComplete(t *testing.T) {
	for b := range 256 {
		typ := wire.Type(b)
		if typ.String() == fmt.Sprintf("type-%d", b) {
			continue
		}
		if !slices.Contains(frameTypes, typ) {
			t.Errorf("wire type %s (%d) is missing from frameTypes", typ, b)
		}
	}
}

// Every label constant declared in metrics.go is in the list newMetrics
// exports at zero, but for those left out on purpose.
func TestMetricsConstantsListed(t *testing.T) {
	exempt := map[string]bool{
		"refuseSelf":     true, // libp2p refuses to dial itself before the gater
		"refuseCut":      true, // a test hook
		"gossipInjected": true, // test builds only
		"scopeOther":     true, // a scope name libp2p does not make
		"frameInvalid":   true, // added by newMetrics itself
	}
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "metrics.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, v := range slices.Concat(faultReasons(), gaterDirections, refuseReasons, gossipRefusals, announceDirections, trustOutcomes) {
		listed[v] = true
	}
	scopes, resources := map[string]bool{}, map[string]bool{}
	for _, r := range resourceKinds {
		resources[r.name] = true
		for _, s := range r.scopes {
			scopes[s] = true
		}
	}
	n := 0
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || exempt[name.Name] {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				n++
				switch {
				case strings.HasPrefix(name.Name, "scope"):
					if !scopes[v] {
						t.Errorf("%s (%q) is in no resourceKinds entry", name.Name, v)
					}
				case strings.HasPrefix(name.Name, "resource"):
					if !resources[v] {
						t.Errorf("%s (%q) is not a resourceKinds entry", name.Name, v)
					}
				case !listed[v]:
					t.Errorf("%s (%q) is in no list of label values newMetrics exports", name.Name, v)
				}
			}
		}
	}
	if n < 30 {
		t.Fatalf("only %d label constants found in metrics.go", n)
	}
}
