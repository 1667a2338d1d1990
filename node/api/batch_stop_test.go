package api

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/schema"
)

// TestBatchItemsEndedByAStopAnswer503: a stop ends the contexts of requests
// still under way after half of shutdown_timeout (server.Run), with
// node.ErrShutdown as the cause. A batch's items then under way answer 503
// (outcome unknown), and so must those still waiting for one of the writes
// all batches share (maxBatchWrites): they answered 499 "the client closed
// the request", to a client that had not, for items never proposed; a client
// that reads a 4xx item as refused for good drops it.
func TestBatchItemsEndedByAStopAnswer503(t *testing.T) {
	var mu sync.Mutex
	inFlight := 0
	svc := &fakeService{create: func(ctx context.Context, rec *schema.Record) (*schema.Record, error) {
		mu.Lock()
		inFlight++
		mu.Unlock()
		<-ctx.Done() // a commit that does not come, as node's propose waits
		return nil, fmt.Errorf("%w (it may still be applied: check before retrying): %w", node.ErrTimeout, ctx.Err())
	}}
	logged := &recordingHandler{}
	e := newFakeEnv(t, svc, func(o *Options) { o.Logger = slog.New(logged) })
	// Served as server.Run serves: every request's context derives from one
	// the stop ends.
	base, endRequests := context.WithCancelCause(context.Background())
	defer endRequests(nil)
	srv := httptest.NewUnstartedServer(e.h)
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	defer srv.Close()

	w := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	items := make([]any, 2*batchWorkers)
	for i := range items {
		items[i] = map[string]any{"method": "POST", "record": map[string]any{"catalogue": "supply", "body": map[string]any{}}}
	}
	// More batches than the shared bound lets write at once: some items wait.
	const batches = maxBatchWrites/batchWorkers + 2
	answers := make(chan *resp, batches)
	for range batches {
		go func() {
			answers <- doHTTP(t, e.cli, srv.URL, req{method: "POST", path: "/v1/batch", token: w, body: map[string]any{"items": items}})
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		mu.Lock()
		n := inFlight
		mu.Unlock()
		if n >= maxBatchWrites {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("premise: %d writes under way after 10 s, want the bound %d", n, maxBatchWrites)
		}
	}
	endRequests(fmt.Errorf("requests still under way at the drain: %w", node.ErrShutdown))

	byStatus := map[int]int{}
	for range batches {
		var r *resp
		select {
		case r = <-answers:
		case <-time.After(15 * time.Second):
			t.Fatal("a batch was not answered within 15 s of the stop")
		}
		wantStatus(t, r, http.StatusOK)
		var doc struct {
			Items []batchResult `json:"items"`
		}
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatalf("%v: %.300s", err, r.body)
		}
		for _, it := range doc.Items {
			byStatus[it.Status]++
		}
	}
	t.Logf("items by status: %v", byStatus)
	if byStatus[http.StatusServiceUnavailable] != batches*len(items) {
		t.Fatalf("items by status %v: want all %d answered 503 (not applied, or outcome unknown), none 499 (client closed)", byStatus, batches*len(items))
	}
	// One line a batch, not one an item: a stop that ends many batches
	// wrote hundreds of lines of the same error.
	errs := logged.at(slog.LevelError)
	if len(errs) != batches {
		t.Errorf("%d error lines for %d batches ended by the stop, want one a batch: %v", len(errs), batches, errs)
	}
	for _, r := range errs {
		if !strings.Contains(r, "batch items ended with the request") || !strings.Contains(r, fmt.Sprintf("items=%d of=%d", len(items), len(items))) ||
			!strings.Contains(r, "cause=requests still under way at the drain: "+node.ErrShutdown.Error()) {
			t.Errorf("error line %q: want it to count the batch's %d items and give the stop as the cause", r, len(items))
		}
	}
}

// TestBatchItemFailedBeforeAStopKeepsItsLine: of a batch ended by a stop, an
// item that failed for its own reason (a 500, here) still logs its own error
// line, with its error; only the items the stop ended share the batch's one.
func TestBatchItemFailedBeforeAStopKeepsItsLine(t *testing.T) {
	var started sync.WaitGroup
	started.Add(2)
	svc := &fakeService{create: func(ctx context.Context, rec *schema.Record) (*schema.Record, error) {
		started.Done()
		if strings.Contains(string(rec.Body), "boom") {
			return nil, errBoom
		}
		<-ctx.Done()
		return nil, fmt.Errorf("%w (it may still be applied: check before retrying): %w", node.ErrTimeout, ctx.Err())
	}}
	logged := &recordingHandler{}
	e := newFakeEnv(t, svc, func(o *Options) { o.Logger = slog.New(logged) })
	base, endRequests := context.WithCancelCause(context.Background())
	defer endRequests(nil)
	srv := httptest.NewUnstartedServer(e.h)
	srv.Config.BaseContext = func(net.Listener) context.Context { return base }
	srv.Start()
	defer srv.Close()

	w := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	items := []any{
		map[string]any{"method": "POST", "record": map[string]any{"catalogue": "supply", "body": map[string]any{"title": "boom"}}},
		map[string]any{"method": "POST", "record": map[string]any{"catalogue": "supply", "body": map[string]any{"title": "waits"}}},
	}
	answer := make(chan *resp, 1)
	go func() {
		answer <- doHTTP(t, e.cli, srv.URL, req{method: "POST", path: "/v1/batch", token: w, body: map[string]any{"items": items}})
	}()
	started.Wait() // both items under way: the first fails at once, the second waits
	endRequests(fmt.Errorf("requests still under way at the drain: %w", node.ErrShutdown))
	select {
	case r := <-answer:
		wantStatus(t, r, http.StatusOK)
	case <-time.After(15 * time.Second):
		t.Fatal("the batch was not answered within 15 s of the stop")
	}
	errs := logged.at(slog.LevelError)
	if len(errs) != 2 || !strings.Contains(strings.Join(errs, "\n"), "batch item failed") || !strings.Contains(strings.Join(errs, "\n"), errBoom.Error()) ||
		!strings.Contains(strings.Join(errs, "\n"), "batch items ended with the request") {
		t.Errorf("error lines %q: want the failed item's own line (with its error) and one for the item the stop ended", errs)
	}
}

// recordingHandler keeps every log record as text, message then attributes.
type recordingHandler struct {
	mu    sync.Mutex
	lines []string
	level []slog.Level
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, b.String())
	h.level = append(h.level, r.Level)
	return nil
}

func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// at lists the records logged at level.
func (h *recordingHandler) at(level slog.Level) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for i, l := range h.level {
		if l == level {
			out = append(out, h.lines[i])
		}
	}
	return out
}
