package exchange_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"liandong/schema"
	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
)

var _ exchange.Node = (*exchangetest.Node)(nil)

// testLogger logs to t at LIANDONG_TEST_LOG's level (default warn), and stops
// once the test is over.
func testLogger(t testing.TB) *slog.Logger {
	level := slog.LevelWarn
	switch os.Getenv("LIANDONG_TEST_LOG") {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "error":
		level = slog.LevelError
	case "off":
		return slog.New(slog.DiscardHandler)
	}
	w := &testWriter{t: t}
	t.Cleanup(w.close)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) close() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

var _ io.Writer = (*testWriter)(nil)

// testConfig is a config with short intervals for loopback tests.
func testConfig(t testing.TB, id crypto.PrivKey, reg prometheus.Registerer) exchange.Config {
	cfg := exchange.DefaultConfig()
	cfg.Identity = id
	cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.AntiEntropyInterval = 250 * time.Millisecond
	cfg.HeartbeatInterval = 100 * time.Millisecond
	cfg.StallAfter = time.Second
	cfg.RequestTimeout = 3 * time.Second
	cfg.BackoffDuration = time.Minute
	cfg.AnnounceDebounce = 5 * time.Millisecond
	cfg.Registerer = reg
	cfg.Logger = testLogger(t)
	return cfg
}

// peerNode is one running exchange with its fake node and registry.
type peerNode struct {
	name string
	node *exchangetest.Node
	x    *exchange.Exchange
	reg  *prometheus.Registry
}

// startExchange runs an exchange for centre on a fake node until the test ends.
// connectHolder starts centre's exchange holding log and connects it to x.
func connectHolder(t testing.TB, fed *exchangetest.Federation, x *peerNode, centre string, log []*schema.Entry, mutate func(*exchange.Config)) *peerNode {
	t.Helper()
	node := exchangetest.NewNode(centre, fed.Bundle)
	if err := node.Append(log...); err != nil {
		t.Fatal(err)
	}
	h := startExchange(t, fed, centre, node, mutate)
	connect(t, x, h)
	return h
}

func startExchange(t testing.TB, fed *exchangetest.Federation, centre string, node *exchangetest.Node, mutate func(*exchange.Config)) *peerNode {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, fed.Identity(centre), reg)
	if mutate != nil {
		mutate(&cfg)
	}
	if node == nil {
		node = exchangetest.NewNode(centre, fed.Bundle)
	}
	x, err := exchange.New(context.Background(), cfg, node)
	if err != nil {
		t.Fatalf("new exchange %s: %v", centre, err)
	}
	node.OnCommit(x.Notify)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run %s: %v", centre, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("exchange %s did not stop within 10s", centre)
		}
	})
	return &peerNode{name: centre, node: node, x: x, reg: reg}
}

func connect(t testing.TB, a, b *peerNode) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.x.Connect(ctx, peer.AddrInfo{ID: b.x.ID(), Addrs: b.x.Addrs()}); err != nil {
		t.Fatalf("connect %s → %s: %v", a.name, b.name, err)
	}
}

// waitFor polls cond every 10 ms until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitMetric waits until the series name{labels} in reg reads want, and fails
// naming the last value read if timeout passes first. Use it for a metric that
// the exchange updates after the state the test has waited for: an entry is
// in the node's log before the counters that record its apply move.
func waitMetric(t testing.TB, timeout time.Duration, reg prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := metricValue(t, reg, name, labels...)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s%v = %v after %v, want %v", name, labels, got, timeout, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// metricValue returns the value of the series name{labels} in reg (0 if absent).
func metricValue(t testing.TB, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue series
				}
			}
			return value(m)
		}
	}
	return 0
}

// metricTotal returns the sum of every series of name in reg.
func metricTotal(t testing.TB, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += value(m)
			}
		}
	}
	return total
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
	return 0
}

// checkLeaks fails the test if goroutines started during it outlive it. Call it
// first in a test, so its cleanup runs last.
func checkLeaks(t *testing.T) {
	before := goroutineIDs()
	t.Cleanup(func() {
		var left []string
		deadline := time.Now().Add(10 * time.Second)
		for {
			left = left[:0]
			for id, stack := range goroutines() {
				if !before[id] && !ignorable(stack) {
					left = append(left, stack)
				}
			}
			if len(left) == 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(left) > 0 {
			slices.Sort(left)
			t.Errorf("%d goroutines leaked:\n%s", len(left), strings.Join(left, "\n\n"))
		}
	})
}

// Goroutines libp2p and the runtime start once per process and keep.
var ignoredStacks = []string{
	"github.com/libp2p/go-flow-metrics.(*sweeper).run",
	"testing.(*T).Run",
	"testing.tRunner.func1",
	"testing.(*F).Fuzz",
	"runtime.ensureSigM",
	"os/signal.signal_recv",
	"github.com/libp2p/go-libp2p/p2p/transport/quicreuse.(*reuse).gc",
	"github.com/ipfs/go-log",
	"go.opencensus.io",
}

func ignorable(stack string) bool {
	for _, s := range ignoredStacks {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}

var goroutineHeader = regexp.MustCompile(`^goroutine (\d+) `)

func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if m := goroutineHeader.FindStringSubmatch(g); m != nil {
			out[m[1]] = g
		}
	}
	return out
}

func goroutineIDs() map[string]bool {
	ids := map[string]bool{}
	for id := range goroutines() {
		ids[id] = true
	}
	return ids
}

func newFed(t testing.TB, ids ...string) *exchangetest.Federation {
	t.Helper()
	f, err := exchangetest.NewFederation(ids...)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// newFedWithEvil is newFed plus a member "evil" with the given number of
// libp2p identities (one per attacker host), admitted by the bundle.
func newFedWithEvil(t testing.TB, identities int, ids ...string) (*exchangetest.Federation, *exchangetest.Member) {
	t.Helper()
	fed := newFed(t, ids...)
	evil, err := fed.AddMember("evil", identities)
	if err != nil {
		t.Fatal(err)
	}
	if err := fed.Rebuild(); err != nil {
		t.Fatal(err)
	}
	return fed, evil
}

// write makes n entries with a and appends them to n's log (as the origin does).
func write(t testing.TB, node *exchangetest.Node, a *exchangetest.Author, n int) []*schema.Entry {
	t.Helper()
	es, err := a.NextN(n)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Append(es...); err != nil {
		t.Fatal(err)
	}
	return es
}
