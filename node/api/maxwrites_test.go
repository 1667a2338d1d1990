package api

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
	"liandong/node/api/openapitest"
	"liandong/schema"
)

// TestWritesPastTheLimit: with every write slot held by a write waiting on the
// node, another write on any writing route is answered 429 with Retry-After at
// once, and the node is not asked to do it; callers who may not write are
// still told so (401, 403), not to come back. A slot freed is taken again.
// Without a limit, every write reaches the node.
func TestWritesPastTheLimit(t *testing.T) {
	for _, c := range []struct {
		name      string
		maxWrites int
		refused   bool
	}{
		{"limit 2", 2, true},
		{"no limit", -1, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			entered := make(chan struct{}, 8)
			release := make(chan struct{})
			var calls atomic.Int32
			svc := &fakeService{create: func(ctx context.Context, rec *schema.Record) (*schema.Record, error) {
				calls.Add(1)
				entered <- struct{}{}
				select {
				case <-release:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
				out := rec.Clone()
				out.ID, out.Version = "tianjin:01FAKE", 1
				return out, nil
			}}
			reg := prometheus.NewRegistry()
			e := newFakeEnv(t, svc, func(o *Options) { o.MaxWrites, o.Registerer = c.maxWrites, reg })
			v := mustValidator(t)
			writer := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
			body := envelope("supply", "federation", supplyBody("连续纤维增强热塑性复合材料"))

			var wg sync.WaitGroup
			statuses := make(chan int, 8)
			post := func() {
				wg.Add(1)
				go func() {
					defer wg.Done()
					statuses <- e.do(t, req{method: "POST", path: "/v1/records", token: writer, body: body}).StatusCode
				}()
			}
			awaitEntered := func(n int) {
				t.Helper()
				for range n {
					select {
					case <-entered:
					case <-time.After(10 * time.Second):
						t.Fatalf("a write did not reach the node in 10 s (%d calls)", calls.Load())
					}
				}
			}
			defer func() {
				close(release)
				wg.Wait()
			}()
			post()
			post()
			awaitEntered(2)

			// What an operator watches: how many slots there are, how many held.
			m := series(t, reg)
			if got, want := m["liandong_http_max_writes"][""], float64(max(c.maxWrites, 0)); got != want {
				t.Errorf("liandong_http_max_writes %v, want %v", got, want)
			}
			if got, want := m["liandong_http_writes_in_flight"][""], float64(2); c.refused && got != want {
				t.Errorf("liandong_http_writes_in_flight %v, want %v", got, want)
			}
			if !c.refused {
				post()
				awaitEntered(1)
				return
			}
			for _, rq := range []req{
				{method: "POST", path: "/v1/records", token: writer, body: body},
				{method: "PUT", path: "/v1/records/tianjin:01ABC", token: writer, body: body},
				{method: "DELETE", path: "/v1/records/tianjin:01ABC", token: writer},
				{method: "POST", path: "/v1/batch", token: writer, body: map[string]any{"items": []any{map[string]any{"method": "POST", "record": body}}}},
			} {
				r := e.do(t, rq)
				wantStatus(t, r, http.StatusTooManyRequests)
				if got := r.Header.Get("Retry-After"); got != "1" {
					t.Errorf("%s %s: Retry-After %q, want 1", rq.method, rq.path, got)
				}
				if p := r.problem(t); p.Type != ProblemTypePrefix+"too-many-writes" || p.Status != http.StatusTooManyRequests {
					t.Errorf("%s %s: problem %+v", rq.method, rq.path, p)
				}
				docPath := rq.path
				if strings.HasPrefix(docPath, "/v1/records/") {
					docPath = "/v1/records/{id}"
				}
				if op := v.Doc.Paths.Find(docPath); op == nil || op.GetOperation(rq.method) == nil || op.GetOperation(rq.method).Responses.Value("429") == nil {
					t.Errorf("%s %s: the OpenAPI document declares no 429 for it", rq.method, rq.path)
				}
				if err := v.Check(openapitest.Exchange{Request: r.Response.Request, Response: r.Response, Body: r.body, SkipRequest: true}); err != nil {
					t.Errorf("%s %s: the 429 is not what the OpenAPI document declares: %v", rq.method, rq.path, err)
				}
			}
			if n := calls.Load(); n != 2 {
				t.Errorf("the node was asked for %d creates, want the 2 that hold the slots", n)
			}
			// Refused anyway: no waiting, no 429.
			wantStatus(t, e.do(t, req{method: "POST", path: "/v1/records", body: body}), http.StatusUnauthorized)
			wantStatus(t, e.do(t, req{method: "POST", path: "/v1/records", token: e.token(t, "tianjin", auth.ScopeRead), body: body}), http.StatusForbidden)

			// One write finishes; its slot serves the next.
			release <- struct{}{}
			select {
			case code := <-statuses:
				if code != http.StatusCreated {
					t.Fatalf("held write answered %d", code)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("released write did not answer in 10 s")
			}
			post()
			awaitEntered(1)
		})
	}
}
