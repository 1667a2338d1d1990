package integration

import (
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// designMetrics are the series DESIGN.md "Metrics" asks for (and those the alerts
// and the dashboard rely on), with their type and the labels they carry.
var designMetrics = []struct {
	name, typ string
	labels    []string
}{
	{"liandong_records", "gauge", []string{"catalogue", "origin", "visibility"}},
	{"liandong_log_head_seq", "gauge", []string{"origin"}},
	{"liandong_sync_lag_entries", "gauge", []string{"origin"}},
	{"liandong_sync_lag_seconds", "gauge", []string{"origin"}},
	{"liandong_sync_peer_behind_entries", "gauge", []string{"member", "origin"}},
	{"liandong_sync_peers_stalled", "gauge", []string{"member"}},
	{"liandong_sync_member_listed_peers", "gauge", []string{"member"}},
	{"liandong_sync_member_connected_peers", "gauge", []string{"member"}},
	{"liandong_sync_member_last_contact_timestamp_seconds", "gauge", []string{"member"}},
	{"liandong_sync_entries_applied_total", "counter", []string{"origin"}},
	{"liandong_sync_entries_rejected_total", "counter", []string{"reason"}},
	{"liandong_sync_peer_faults_total", "counter", []string{"reason"}},
	{"liandong_sync_trust_bundles_total", "counter", []string{"outcome"}},
	{"liandong_replication_delay_seconds", "histogram", []string{"origin"}},
	{"liandong_raft_state", "gauge", []string{"state"}},
	{"liandong_raft_term", "gauge", nil},
	{"liandong_raft_commit_index", "gauge", nil},
	{"liandong_raft_applied_index", "gauge", nil},
	{"liandong_raft_has_leader", "gauge", nil},
	{"liandong_raft_voters", "gauge", nil},
	{"liandong_raft_log_store_info", "gauge", []string{"kind"}},
	{"liandong_raft_apply_duration_seconds", "histogram", nil},
	{"liandong_bbolt_size_bytes", "gauge", nil},
	{"liandong_bundle_version", "gauge", nil},
	{"liandong_bundle_expiry_timestamp_seconds", "gauge", nil},
	{"liandong_trust_bundle_expiry_seconds", "gauge", nil},
	{"liandong_data_filesystem_avail_bytes", "gauge", nil},
	{"liandong_data_filesystem_size_bytes", "gauge", nil},
	{"liandong_http_requests_total", "counter", []string{"route", "method", "code"}},
	{"liandong_http_request_duration_seconds", "histogram", []string{"route", "method", "code"}},
	{"go_goroutines", "gauge", nil},
	{"process_resident_memory_bytes", "gauge", nil},
}

// TestOpsMetricsLint runs the four centres as processes, writes at each, and
// checks every node's /metrics: `promtool check metrics` has no complaint, and
// every series of DESIGN.md's list is there with its type, labels and help.
func TestOpsMetricsLint(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	promtool := requireTool(t, "promtool", "apt-get install prometheus")
	f := newFederation(t, fedOptions{})
	for i := range centreIDs {
		f.create(i, "supply", "federation", supplyBody(fmt.Sprintf("%s 的成果", centreIDs[i])))
	}
	f.waitConverged(30 * time.Second)
	// The gauges follow the exchange's refresh; wait until every node shows the
	// lag series of every other centre (started at zero from the bundle) and
	// how far behind each connected member is (set at a refresh with peers).
	for i, url := range f.urls {
		waitFor(t, 20*time.Second, func() bool {
			text := scrape(t, url)
			for _, o := range centreIDs {
				if o != centreIDs[i] && (!strings.Contains(text, `liandong_sync_lag_entries{origin="`+o+`"}`) ||
					!strings.Contains(text, `liandong_sync_peer_behind_entries{member="`+o+`"`)) {
					return false
				}
			}
			return true
		})
	}
	for i, url := range f.urls {
		text := scrape(t, url)
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		out, err := cmd.CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("%s: promtool check metrics: %v\n%s", centreIDs[i], err, out)
		}
		checkDesignMetrics(t, centreIDs[i], text)
	}
}

var sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? `)

func checkDesignMetrics(t *testing.T, centre, text string) {
	t.Helper()
	types, help := map[string]string{}, map[string]bool{}
	labels := map[string][]string{} // family → label names of its first sample
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
			continue
		}
		if f := strings.Fields(line); len(f) >= 4 && f[0] == "#" && f[1] == "HELP" {
			help[f[2]] = true
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		family := m[1]
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base := strings.TrimSuffix(family, suffix); base != family && types[base] == "histogram" {
				family = base
			}
		}
		if _, ok := labels[family]; ok {
			continue
		}
		var names []string
		for _, kv := range strings.Split(strings.Trim(m[2], "{}"), ",") {
			if k, _, ok := strings.Cut(kv, "="); ok && k != "le" {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		labels[family] = names
	}
	for _, want := range designMetrics {
		if types[want.name] != want.typ {
			t.Errorf("%s: %s is %q, want a %s", centre, want.name, types[want.name], want.typ)
			continue
		}
		if !help[want.name] {
			t.Errorf("%s: %s has no help text", centre, want.name)
		}
		got, ok := labels[want.name]
		if !ok {
			t.Errorf("%s: %s has no samples", centre, want.name)
			continue
		}
		wantLabels := slices.Clone(want.labels)
		slices.Sort(wantLabels)
		if !slices.Equal(got, wantLabels) {
			t.Errorf("%s: %s labelled %v, want %v", centre, want.name, got, wantLabels)
		}
	}
}

// TestOpsMetricsFreshNode starts a federation and scrapes hq as soon as it is
// ready: no record has been written anywhere, so it has applied nothing,
// detected nothing, refused nothing and answered nothing but readiness
// probes. Every family the alert rules name must already be there,
// with the label values their selectors pick (a literal value, each value of
// an alternation, a sample matching any other regular expression), and the
// per-origin and per-member series of every other centre: a counter that
// appeared with its first event would hide that event from rate() and
// increase(), and a missing series reads as absent().
func TestOpsMetricsFreshNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	others := centreIDs[1:]
	f := newFederation(t, fedOptions{})
	samples := parseSamples(scrape(t, f.urls[0]))

	has := func(name string, match func(map[string]string) bool) bool {
		for _, s := range samples[name] {
			if match(s) {
				return true
			}
		}
		return false
	}
	selector := regexp.MustCompile(`\b(liandong_[a-z0-9_]+)\b(\{[^}]*\})?`)
	matcher := regexp.MustCompile(`(\w+)\s*(=~|!=|!~|=)\s*"([^"]*)"`)
	words := regexp.MustCompile(`^[a-z0-9-]+(\|[a-z0-9-]+)*$`)
	rules := loadAlerts(t, mustGlob(t, repoPath(t, "deploy/prometheus/rules/*.yml")))
	checked := 0
	for _, a := range rules {
		for _, sel := range selector.FindAllStringSubmatch(a.Expr, -1) {
			name := sel[1]
			checked++
			if len(samples[name]) == 0 {
				t.Errorf("%s: %s has no samples on a fresh node", a.Alert, name)
				continue
			}
			for _, m := range matcher.FindAllStringSubmatch(sel[2], -1) {
				label, op, val := m[1], m[2], m[3]
				switch {
				case op == "=" || op == "=~" && words.MatchString(val):
					for _, v := range strings.Split(val, "|") {
						if !has(name, func(l map[string]string) bool { return l[label] == v }) {
							t.Errorf("%s: %s{%s=%q} absent on a fresh node", a.Alert, name, label, v)
						}
					}
				case op == "=~":
					re := regexp.MustCompile("^(?:" + val + ")$")
					if !has(name, func(l map[string]string) bool { return re.MatchString(l[label]) }) {
						t.Errorf("%s: no %s{%s=~%q} on a fresh node", a.Alert, name, label, val)
					}
				}
			}
		}
	}
	if checked < 20 {
		t.Fatalf("only %d selectors found in the alert rules", checked)
	}

	// The series of each other centre, by origin or member, before any entry.
	for _, o := range others {
		for _, name := range []string{"liandong_sync_lag_entries", "liandong_sync_lag_seconds", "liandong_sync_entries_applied_total",
			"liandong_sync_forks_detected_total", "liandong_replication_delay_seconds_count", "liandong_replication_push_delay_seconds_count",
			"liandong_store_remote_entries_applied_total", "liandong_log_head_seq"} {
			if !has(name, func(l map[string]string) bool { return l["origin"] == o }) {
				t.Errorf("%s{origin=%q} absent on a fresh node", name, o)
			}
		}
		for _, name := range []string{"liandong_sync_peers_stalled", "liandong_sync_member_listed_peers", "liandong_sync_member_connected_peers"} {
			if !has(name, func(l map[string]string) bool { return l["member"] == o }) {
				t.Errorf("%s{member=%q} absent on a fresh node", name, o)
			}
		}
	}
}

// parseSamples reads the text exposition format into each sample name's label
// sets (histogram samples under their _bucket, _sum and _count names).
func parseSamples(text string) map[string][]map[string]string {
	pair := regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)
	out := map[string][]map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, p := range pair.FindAllStringSubmatch(m[2], -1) {
			labels[p[1]] = p[2]
		}
		out[m[1]] = append(out[m[1]], labels)
	}
	return out
}
