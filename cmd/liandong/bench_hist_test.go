package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// histogramRegistries holds one histogram in two registries: 90 observations
// in (0, 1 ms], 10 in (10 ms, 100 ms], spread over two series each.
func histogramRegistries() []*prometheus.Registry {
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	for i, reg := range regs {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "d_seconds", Buckets: []float64{.001, .01, .1}}, []string{"origin"})
		reg.MustRegister(h)
		// 90 observations in (0, 1 ms], 10 in (10 ms, 100 ms], spread over
		// two registries and two series each.
		for j := range 45 {
			h.WithLabelValues([]string{"a", "b"}[j%2]).Observe(0.0005)
		}
		for range 5 {
			h.WithLabelValues("a").Observe(0.05 + float64(i)*0.01)
		}
	}
	return regs
}

func TestHistogramQuantile(t *testing.T) {
	var regs []prometheus.Gatherer
	for _, r := range histogramRegistries() {
		regs = append(regs, r)
	}
	checkHistogramQuantiles(t, regs)
}

// TestHistogramScraped: the histograms of centres run as processes are read
// from their /metrics, and come out as read from their registries.
func TestHistogramScraped(t *testing.T) {
	var regs []prometheus.Gatherer
	for _, r := range histogramRegistries() {
		srv := httptest.NewServer(promhttp.HandlerFor(r, promhttp.HandlerOpts{}))
		defer srv.Close()
		regs = append(regs, scrapeGatherer(srv.URL))
	}
	checkHistogramQuantiles(t, regs)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := scrapeGatherer(srv.URL).Gather(); err == nil {
		t.Error("a 404 from /metrics gathered without an error")
	}
	if _, err := gatherHistogram([]prometheus.Gatherer{scrapeGatherer(srv.URL)}, "d_seconds"); err == nil {
		t.Error("a failed scrape read as an empty histogram")
	}

	// The text format lists a +Inf bucket, which a registry's gathering does
	// not: an observation past the last bound counts there, and the largest
	// quantile is the last bound, as read from the registry.
	reg := prometheus.NewRegistry()
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "d_seconds", Buckets: []float64{.001, .01, .1}})
	reg.MustRegister(h)
	h.Observe(0.0005)
	h.Observe(5)
	inf := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer inf.Close()
	for _, g := range []prometheus.Gatherer{reg, scrapeGatherer(inf.URL)} {
		got, err := gatherHistogram([]prometheus.Gatherer{g}, "d_seconds")
		if err != nil {
			t.Fatal(err)
		}
		if q := got.quantile(1); got.count != 2 || q != 100*time.Millisecond {
			t.Errorf("%T: count %d, max %v; want 2 and the last bound, 100ms", g, got.count, q)
		}
	}
}

func checkHistogramQuantiles(t *testing.T, regs []prometheus.Gatherer) {
	t.Helper()
	h, err := gatherHistogram(regs, "d_seconds")
	if err != nil {
		t.Fatal(err)
	}
	if h.count != 100 {
		t.Fatalf("count %d, want 100", h.count)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 500 * time.Microsecond * 50 / 45}, // 50th of 90 in the first bucket
		{0.9, time.Millisecond},
		{0.95, 55 * time.Millisecond}, // halfway through the (10, 100] ms bucket
		{1, 100 * time.Millisecond},
	} {
		if got := h.quantile(c.q); got < c.want-time.Microsecond || got > c.want+time.Microsecond {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if h, _ := gatherHistogram(regs, "absent"); h.quantile(0.5) != 0 {
		got := h.quantile(0.5)
		t.Errorf("empty histogram quantile = %v", got)
	}
}
