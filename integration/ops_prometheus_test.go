package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"
)

// TestOpsPrometheusRules checks deploy/prometheus with promtool: the scrape
// config and the alert rules are valid, the rule unit tests pass, every alert is
// covered by them, and every alert carries a severity, a summary, a description
// and a runbook whose templates render with the labels its expression keeps.
func TestOpsPrometheusRules(t *testing.T) {
	promtool := requireTool(t, "promtool", "apt-get install prometheus")
	dir := repoPath(t, "deploy/prometheus")
	rules, err := filepath.Glob(filepath.Join(dir, "rules", "*.yml"))
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule files in %s/rules: %v", dir, err)
	}
	for _, args := range [][]string{
		{"check", "config", "prometheus.yml"},
		append([]string{"check", "rules"}, rules...),
		{"test", "rules", "tests/liandong.rules.test.yml"},
	} {
		out, err := runTool(t, 2*time.Minute, dir, nil, promtool, args...)
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}

	testFile, err := os.ReadFile(filepath.Join(dir, "tests", "liandong.rules.test.yml"))
	if err != nil {
		t.Fatal(err)
	}
	alerts := loadAlerts(t, rules)
	if len(alerts) < 10 {
		t.Fatalf("only %d alerts in %v", len(alerts), rules)
	}
	// Every issue the operators asked for has an alert.
	for _, want := range []string{"LiandongPeerDisconnected", "LiandongPeerStalled", "LiandongSyncLag", "LiandongForkDetected",
		"LiandongForgedEntries", "LiandongNoRaftLeader", "LiandongBundleExpiring", "LiandongDiskFilling", "LiandongHTTPErrors", "LiandongNodeDown"} {
		if !slices.ContainsFunc(alerts, func(a alertRule) bool { return a.Alert == want }) {
			t.Errorf("no alert %s", want)
		}
	}
	labels := map[string]string{"job": "liandong", "instance": "tianjin:8702", "centre": "tianjin", "member": "hebei",
		"origin": "hebei", "reason": "bad-signature", "severity": "warning"}
	for _, a := range alerts {
		if !strings.Contains(string(testFile), "alertname=\""+a.Alert+"\"") {
			t.Errorf("%s: not exercised by tests/liandong.rules.test.yml", a.Alert)
		}
		if s := a.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", a.Alert, s)
		}
		for _, k := range []string{"summary", "description", "runbook"} {
			text := a.Annotations[k]
			if strings.TrimSpace(text) == "" {
				t.Errorf("%s: no %s annotation", a.Alert, k)
				continue
			}
			got, err := renderAlertTemplate(text, labels, 1234.5)
			if err != nil {
				t.Errorf("%s: %s does not render: %v", a.Alert, k, err)
			} else if strings.Contains(got, "<no value>") {
				t.Errorf("%s: %s names a label that does not exist: %s", a.Alert, k, got)
			}
		}
		if !strings.Contains(a.Annotations["runbook"], "1.") {
			t.Errorf("%s: the runbook should be numbered steps", a.Alert)
		}
	}
}

type alertRule struct {
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlerts(t *testing.T, files []string) []alertRule {
	t.Helper()
	var out []alertRule
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Groups []struct {
				Name  string      `yaml:"name"`
				Rules []alertRule `yaml:"rules"`
			} `yaml:"groups"`
		}
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range doc.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// renderAlertTemplate expands an annotation as Prometheus does (the same
// variables; the functions the rules use), so a typo shows here rather than in
// an alert at night.
func renderAlertTemplate(text string, labels map[string]string, value float64) (string, error) {
	funcs := template.FuncMap{
		"humanize":           func(v float64) string { return strconv.FormatFloat(v, 'g', 4, 64) },
		"humanize1024":       func(v float64) string { return strconv.FormatFloat(v/1024, 'g', 4, 64) + "Ki" },
		"humanizeDuration":   func(v float64) string { return (time.Duration(v) * time.Second).String() },
		"humanizePercentage": func(v float64) string { return strconv.FormatFloat(v*100, 'g', 4, 64) + "%" },
		"humanizeTimestamp":  func(v float64) string { return time.Unix(int64(v), 0).UTC().String() },
		"toUpper":            strings.ToUpper,
		"toLower":            strings.ToLower,
	}
	tmpl, err := template.New("annotation").Funcs(funcs).Option("missingkey=default").
		Parse("{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}" + text)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	err = tmpl.Execute(&b, map[string]any{"Labels": labels, "ExternalLabels": map[string]string{"federation": "jjj"}, "Value": value})
	return b.String(), err
}

// TestOpsPrometheusScrapesDemo runs `liandong demo` and a real Prometheus server
// with deploy/prometheus's scrape config (targets pointed at the demo's four
// nodes on loopback) and alert rules, and reads back through its HTTP API: all
// four targets are up; every node has the lag series of every other centre and a
// connection to each; every rule evaluates without error and none fires; and
// every expression of the Grafana dashboard is valid and names only series that
// exist.
func TestOpsPrometheusScrapesDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the demo and Prometheus")
	}
	prometheus := requireTool(t, "prometheus", "apt-get install prometheus")
	promtool := requireTool(t, "promtool", "apt-get install prometheus")
	start := time.Now()
	dir := t.TempDir()
	base := freeBase(t)
	demo := startProc(t, "demo", "--dir", filepath.Join(dir, "demo"), "--base-port", fmt.Sprint(base), "--records", "3")
	centres := []string{"hq", "tianjin", "hebei", "xiongan"}
	targets := map[string]string{}
	for i, c := range centres {
		targets[c] = fmt.Sprintf("127.0.0.1:%d", base+1+i)
	}

	// deploy/prometheus/prometheus.yml, with the demo's addresses and a fast pace.
	cfgPath := filepath.Join(dir, "prometheus.yml")
	writePrometheusConfig(t, repoPath(t, "deploy/prometheus/prometheus.yml"), cfgPath, targets)
	if out, err := runTool(t, time.Minute, dir, nil, promtool, "check", "config", cfgPath); err != nil {
		t.Fatalf("promtool check config (test copy): %v\n%s", err, out)
	}

	for deadline := time.Now().Add(90 * time.Second); !strings.Contains(demo.output.String(), "press Ctrl-C to stop"); {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not come up:\n%s", demo.output)
		}
		select {
		case <-demo.done:
			t.Fatalf("demo exited:\n%s", demo.output)
		case <-time.After(100 * time.Millisecond):
		}
	}
	demoUp := time.Since(start)

	promURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	prom := startTool(t, prometheus, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+strings.TrimPrefix(promURL, "http://"), "--log.level=warn", "--storage.tsdb.retention.time=1h")
	ctx := context.Background()
	// within polls check until it returns nil or the time is up.
	within := func(d time.Duration, what string, check func() error) {
		t.Helper()
		var err error
		for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
			select {
			case <-prom.done:
				t.Fatalf("prometheus exited:\n%s", prom.output)
			default:
			}
			if err = check(); err == nil {
				return
			}
		}
		t.Fatalf("%s: not within %v: %v\nprometheus output:\n%s", what, d, err, prom.output)
	}
	within(30*time.Second, "prometheus ready", func() error {
		resp, err := http.Get(promURL + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s", resp.Status)
		}
		return nil
	})

	// All four targets up, each with its centre label.
	within(30*time.Second, "all four targets up", func() error {
		var r struct {
			Data struct {
				ActiveTargets []struct {
					Labels    map[string]string `json:"labels"`
					Health    string            `json:"health"`
					LastError string            `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := getJSON(ctx, promURL+"/api/v1/targets", &r); err != nil {
			return err
		}
		up := map[string]bool{}
		for _, tg := range r.Data.ActiveTargets {
			if tg.Health != "up" {
				return fmt.Errorf("target %v: %s %s", tg.Labels, tg.Health, tg.LastError)
			}
			if targets[tg.Labels["centre"]] != tg.Labels["instance"] {
				return fmt.Errorf("target %v: centre label does not match the instance", tg.Labels)
			}
			up[tg.Labels["centre"]] = true
		}
		if len(up) != 4 || len(r.Data.ActiveTargets) != 4 {
			return fmt.Errorf("targets up: %v of %d", up, len(r.Data.ActiveTargets))
		}
		return nil
	})
	samples, err := promQuery(ctx, promURL, `up{job="liandong"}`)
	if err != nil || len(samples) != 4 {
		t.Fatalf("up: %v %v", samples, err)
	}

	// Every node reports its lag behind each of the three other centres, and a
	// connection to each.
	within(30*time.Second, "lag series for every peer", func() error {
		for _, q := range []string{"liandong_sync_lag_entries", "liandong_sync_lag_seconds", "liandong_sync_member_connected_peers == 1"} {
			samples, err := promQuery(ctx, promURL, q)
			if err != nil {
				return err
			}
			seen := map[string][]string{}
			for _, s := range samples {
				other := s.Metric["origin"] + s.Metric["member"]
				seen[s.Metric["centre"]] = append(seen[s.Metric["centre"]], other)
			}
			for _, c := range centres {
				got := seen[c]
				slices.Sort(got)
				var want []string
				for _, o := range centres {
					if o != c {
						want = append(want, o)
					}
				}
				slices.Sort(want)
				if !slices.Equal(got, want) {
					return fmt.Errorf("%s at %s: %v, want %v", q, c, got, want)
				}
			}
		}
		return nil
	})

	// The demo seeds its records while the centres are still connecting, so they
	// may all arrive by pull, and the push-delay series the dashboard plots would
	// not exist yet. Records written now, with every centre connected, are pushed;
	// a heartbeat's pull can still apply one before its push, so write until each
	// of the three others has timed a push from hq.
	hq, err := newClient("http://"+targets["hq"], filepath.Join(dir, "demo", "hq", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	pushed := 0
	within(30*time.Second, "hq's pushes timed at the three other centres", func() error {
		pushed++
		if _, err := hq.do(ctx, http.MethodPost, "/v1/records", map[string]any{
			"catalogue": "supply", "visibility": "federation", "body": supplyBody(fmt.Sprintf("推送计时样例 %d", pushed)),
		}, nil); err != nil {
			return err
		}
		samples, err := promQuery(ctx, promURL, `liandong_replication_push_delay_seconds_count{origin="hq"} > 0`)
		if err != nil {
			return err
		}
		var got []string
		for _, s := range samples {
			got = append(got, s.Metric["centre"])
		}
		slices.Sort(got)
		if want := []string{"hebei", "tianjin", "xiongan"}; !slices.Equal(got, want) {
			return fmt.Errorf("push delay timed at %v, want %v", got, want)
		}
		return nil
	})

	// The alert rules load, evaluate without error, and nothing fires.
	within(30*time.Second, "every rule evaluated", func() error {
		var r struct {
			Data struct {
				Groups []struct {
					File  string `json:"file"`
					Rules []struct {
						Name           string `json:"name"`
						Health         string `json:"health"`
						LastError      string `json:"lastError"`
						LastEvaluation string `json:"lastEvaluation"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		if err := getJSON(ctx, promURL+"/api/v1/rules", &r); err != nil {
			return err
		}
		n := 0
		for _, g := range r.Data.Groups {
			for _, rule := range g.Rules {
				n++
				if rule.LastError != "" || rule.Health == "err" {
					t.Fatalf("rule %s: %s", rule.Name, rule.LastError)
				}
				if rule.Health != "ok" {
					return fmt.Errorf("rule %s not evaluated yet (%s)", rule.Name, rule.Health)
				}
			}
		}
		if n < 10 {
			return fmt.Errorf("only %d rules loaded", n)
		}
		return nil
	})
	var alerts struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := getJSON(ctx, promURL+"/api/v1/alerts", &alerts); err != nil {
		t.Fatal(err)
	}
	for _, a := range alerts.Data.Alerts {
		if a.State == "firing" {
			t.Errorf("alert fires on a healthy federation: %v", a.Labels)
		}
	}

	// The dashboard's and the rules' expressions against the live data.
	var names struct {
		Data []string `json:"data"`
	}
	if err := getJSON(ctx, promURL+"/api/v1/label/__name__/values", &names); err != nil {
		t.Fatal(err)
	}
	exprs := dashboardExprs(t, repoPath(t, "deploy/grafana/dashboards/liandong-federation.json"))
	for _, a := range loadAlerts(t, mustGlob(t, repoPath(t, "deploy/prometheus/rules/*.yml"))) {
		exprs = append(exprs, a.Expr)
	}
	metricName := regexp.MustCompile(`\b(liandong_[a-z0-9_]+|process_[a-z_]+|go_[a-z_]+)\b`)
	for _, e := range exprs {
		q := strings.NewReplacer("$centre", ".*", "$__rate_interval", "1m", "${datasource}", "").Replace(e)
		if _, err := promQuery(ctx, promURL, q); err != nil {
			t.Errorf("expression does not evaluate: %v", err)
		}
		for _, m := range metricName.FindAllString(e, -1) {
			if !slices.Contains(names.Data, m) {
				t.Errorf("expression names %s, which no node exports: %s", m, e)
			}
		}
	}
	t.Logf("demo up in %v; %d records written until pushes were timed; Prometheus checks done %v after start", demoUp.Round(time.Millisecond), pushed, time.Since(start).Round(time.Millisecond))
}

// writePrometheusConfig copies the deploy scrape config with the targets replaced
// by the given addresses (by centre label), absolute rule paths and a 1 s pace.
func writePrometheusConfig(t *testing.T, from, to string, targets map[string]string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	global := cfg["global"].(map[string]any)
	global["scrape_interval"], global["evaluation_interval"], global["scrape_timeout"] = "1s", "1s", "1s"
	var rules []any
	for _, r := range cfg["rule_files"].([]any) {
		rules = append(rules, filepath.Join(filepath.Dir(from), r.(string)))
	}
	cfg["rule_files"] = rules
	jobs := cfg["scrape_configs"].([]any)
	if len(jobs) != 1 {
		t.Fatalf("%s: want one scrape job, got %d", from, len(jobs))
	}
	statics := jobs[0].(map[string]any)["static_configs"].([]any)
	seen := map[string]bool{}
	for _, s := range statics {
		sc := s.(map[string]any)
		centre := sc["labels"].(map[string]any)["centre"].(string)
		addr, ok := targets[centre]
		if !ok {
			t.Fatalf("%s: target of unknown centre %q", from, centre)
		}
		sc["targets"] = []any{addr}
		seen[centre] = true
	}
	if len(seen) != len(targets) {
		t.Fatalf("%s: targets for %v, want all of %v", from, seen, targets)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// dashboardExprs returns every query expression of a Grafana dashboard.
func dashboardExprs(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []grafanaPanel `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []string
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				out = append(out, tg.Expr)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	if len(out) == 0 {
		t.Fatalf("%s: no expressions", path)
	}
	return out
}

type grafanaPanel struct {
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

func mustGlob(t *testing.T, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(pattern)
	if err != nil || len(m) == 0 {
		t.Fatalf("%s: %v (%d files)", pattern, err, len(m))
	}
	return m
}
