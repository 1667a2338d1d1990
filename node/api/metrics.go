package api

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// httpMetrics are labelled by the ServeMux route pattern (never the raw path, which
// would carry record ids), a fixed set of methods and the status code.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	// writesInFlight and maxWrites are the write slots taken and how many
	// there are (handler.limitWrites; 0 when writes are not bounded): an
	// operator sees how close the node runs to answering 429.
	writesInFlight, maxWrites prometheus.Gauge
	// writesShed counts the writes this node refused 429 itself for want of
	// a slot. requests_total counts a follower's relay of its leader's 429
	// too, where no slot of the follower's was wanting: the alert and the
	// operator need the node that sheds.
	writesShed prometheus.Counter
	// batchItems counts the writes of POST /v1/batch by the status each got:
	// the request's own code is 200 whatever its items did.
	batchItems *prometheus.CounterVec
}

// batchItemCodes are the statuses a write of a batch gets (batch.go's
// outcomes and toProblem's answers), exported at 0 before the first batch so
// that rules and dashboards that name liandong_http_batch_items_total
// (LiandongHTTPErrors) find it on every node.
var batchItemCodes = []int{200, 201, 400, 403, 404, 409, 412, 422, 500, 503, 507}

// newHTTPMetrics registers the HTTP metrics and exports at 0 the series of
// routes known up front: each route's success codes in both families, its
// server failures in liandong_http_requests_total, where LiandongHTTPErrors
// counts them, so that the first failure counts as one.
func newHTTPMetrics(reg prometheus.Registerer, routes []route) (*httpMetrics, error) {
	m := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "liandong", Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "liandong", Subsystem: "http", Name: "request_duration_seconds",
			Help: "Time to answer an HTTP request, by route pattern, method and status code (long polls included).",
			// Up to the 60 s long-poll cap.
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"route", "method", "code"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "liandong", Subsystem: "http", Name: "requests_in_flight",
			Help: "HTTP requests being served, long polls included.",
		}),
		writesInFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "liandong", Subsystem: "http", Name: "writes_in_flight",
			Help: "Write requests (creates, updates, deletes, batches) being served, each holding one of the slots liandong_http_max_writes counts.",
		}),
		maxWrites: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "liandong", Subsystem: "http", Name: "max_writes",
			Help: "Write requests this node serves at once (config max_writes); past it a write is answered 429. 0: no bound.",
		}),
		writesShed: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "liandong", Subsystem: "http", Name: "writes_shed_total",
			Help: "Write requests this node answered 429 because every one of its liandong_http_max_writes slots was taken (a follower relaying its leader's 429 counts none).",
		}),
		batchItems: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "liandong", Subsystem: "http", Name: "batch_items_total",
			Help: "Writes sent in POST /v1/batch requests, by the status code each item got.",
		}, []string{"code"}),
	}
	// A second handler on the same registry (a restart of the API in one process)
	// shares the first one's collectors.
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	if m.inFlight, err = register(reg, m.inFlight); err != nil {
		return nil, err
	}
	if m.writesInFlight, err = register(reg, m.writesInFlight); err != nil {
		return nil, err
	}
	if m.maxWrites, err = register(reg, m.maxWrites); err != nil {
		return nil, err
	}
	if m.writesShed, err = register(reg, m.writesShed); err != nil {
		return nil, err
	}
	if m.batchItems, err = register(reg, m.batchItems); err != nil {
		return nil, err
	}
	for _, code := range batchItemCodes {
		m.batchItems.WithLabelValues(strconv.Itoa(code))
	}
	for _, rt := range routes {
		method, _, _ := strings.Cut(rt.pattern, " ")
		route, method := routeLabel(rt.pattern, true), methodLabel(method)
		for _, code := range rt.ok {
			m.requests.WithLabelValues(route, method, strconv.Itoa(code))
			m.duration.WithLabelValues(route, method, strconv.Itoa(code))
		}
		for _, code := range rt.fail {
			m.requests.WithLabelValues(route, method, strconv.Itoa(code))
		}
	}
	return m, nil
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing, nil
			}
		}
		return c, fmt.Errorf("register http metrics: %w", err)
	}
	return c, nil
}
