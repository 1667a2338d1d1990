package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// series returns the series of each family in reg as "route method code"
// (or "code" for a family labelled by code alone), with their values: the
// sample count for a histogram.
func series(t *testing.T, reg prometheus.Gatherer) map[string]map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]float64{}
	for _, mf := range mfs {
		s := map[string]float64{}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			key := strings.TrimSpace(l["route"] + " " + l["method"] + " " + l["code"])
			s[key] = value(m)
		}
		out[mf.GetName()] = s
	}
	return out
}

func value(m *dto.Metric) float64 {
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

func newMetricsEnv(t *testing.T) (*prometheus.Registry, http.Handler) {
	t.Helper()
	reg := prometheus.NewRegistry()
	f := newFixture(t)
	svc := &fakeService{centre: "tianjin", bundle: f.bundle}
	h, err := New(Options{Service: svc, Logger: testLogger(t), Registerer: reg,
		Federation: func(context.Context) (any, error) { return map[string]any{}, nil }})
	if err != nil {
		t.Fatal(err)
	}
	return reg, h
}

// Before any request, every route the mux serves has its series at zero: its
// success codes in both families, its server failures in requests_total
// (where LiandongHTTPErrors counts them), and each batch item code.
func TestMetricsRoutesStartAtZero(t *testing.T) {
	reg, _ := newMetricsEnv(t)
	got := series(t, reg)

	s := func(pattern string, codes ...string) []string {
		method, path, _ := strings.Cut(pattern, " ")
		var out []string
		for _, c := range codes {
			out = append(out, path+" "+method+" "+c)
		}
		return out
	}
	read, write := []string{"500", "503"}, []string{"500", "503", "507"}
	// Record writes may be refused for want of a write slot, which
	// LiandongWritesShed counts from 0.
	limited := []string{"500", "503", "507", "429"}
	ok := func(pattern string, fail []string, codes ...string) ([]string, []string) {
		return s(pattern, codes...), s(pattern, slices.Concat(codes, fail)...)
	}
	var wantDuration, wantRequests []string
	add := func(d, r []string) {
		wantDuration = append(wantDuration, d...)
		wantRequests = append(wantRequests, r...)
	}
	for _, p := range []string{"GET /v1/records", "GET /v1/records/{id}", "GET /v1/records/{id}/history", "GET /v1/admin/replicas",
		"GET /v1/bundle", "GET /v1/audit", "GET /v1/changes", "GET /v1/changes/stream", "GET /v1/schema/{catalogue}",
		"GET /v1/openapi.json", "GET /v1/match/{id}", "GET /v1/federation", "GET /v1/admin/backup"} {
		add(ok(p, read, "200"))
	}
	for _, p := range []string{"POST /v1/admin/replicas", "DELETE /v1/admin/replicas/{id}",
		"POST /v1/admin/bundle", "POST /v1/admin/purge/{origin}"} {
		add(ok(p, write, "200"))
	}
	add(ok("DELETE /v1/records/{id}", limited, "200"))
	add(ok("POST /v1/batch", limited, "200"))
	add(ok("POST /v1/records", limited, "201"))
	add(ok("PUT /v1/records/{id}", limited, "200", "201"))
	add(ok("GET /healthz", nil, "200"))
	add(ok("GET /readyz", []string{"503"}, "200"))
	add(ok("GET /.well-known/jwks.json", nil, "200"))
	add(ok("GET /metrics", nil, "200"))

	check := func(name string, want []string) {
		t.Helper()
		have := got[name]
		for _, w := range want {
			if v, ok := have[w]; !ok {
				t.Errorf("%s{%s}: not exported before any request", name, w)
			} else if v != 0 {
				t.Errorf("%s{%s} = %v before any request", name, w, v)
			}
		}
		var extra []string
		for k := range have {
			if !slices.Contains(want, k) {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		if len(extra) > 0 {
			t.Errorf("%s: series not expected up front: %v", name, extra)
		}
	}
	check("liandong_http_requests_total", wantRequests)
	check("liandong_http_request_duration_seconds", wantDuration)
	check("liandong_http_batch_items_total", []string{"200", "201", "400", "403", "404", "409", "412", "422", "500", "503", "507"})
	// What promtool check metrics would say of them.
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", err, problems)
	}
}

// The series started at zero are the ones requests then count: the first
// request of a route adds to its series rather than making one.
func TestMetricsRoutesCountOnZero(t *testing.T) {
	reg, h := newMetricsEnv(t)
	before := series(t, reg)
	for _, path := range []string{"/healthz", "/v1/openapi.json", "/.well-known/jwks.json"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d", path, rec.Code)
		}
	}
	after := series(t, reg)
	for _, name := range []string{"liandong_http_requests_total", "liandong_http_request_duration_seconds"} {
		if len(after[name]) != len(before[name]) {
			t.Errorf("%s: %d series after a request of each route, %d before: a request made a new one", name, len(after[name]), len(before[name]))
		}
		for _, k := range []string{"/healthz GET 200", "/v1/openapi.json GET 200", "/.well-known/jwks.json GET 200"} {
			if after[name][k] != 1 {
				t.Errorf("%s{%s} = %v after one request", name, k, after[name][k])
			}
		}
	}
}
