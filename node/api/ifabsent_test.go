package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"liandong/auth"
	"liandong/node"
	"liandong/schema"
)

// TestPutIfAbsent: PUT with If-None-Match: * creates a record under the
// caller's id or revives its tombstone, and never replaces a live record
// (412, the record unchanged).
func TestPutIfAbsent(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	put := func(id, title string, header map[string]string) *resp {
		t.Helper()
		return e.do(t, req{method: "PUT", path: "/v1/records/" + id, token: w, header: header,
			body: envelope("supply", "federation", supplyBody(title))})
	}
	star := map[string]string{"If-None-Match": "*"}

	r := put("tianjin:imported-1", "第一版", star)
	wantStatus(t, r, http.StatusCreated)
	if got := r.record(t); got.Version != 1 || r.Header.Get("ETag") != `"1"` {
		t.Fatalf("created version %d, ETag %s", got.Version, r.Header.Get("ETag"))
	}
	r = put("tianjin:imported-1", "第二版", star)
	wantStatus(t, r, http.StatusPreconditionFailed)
	if p := r.problem(t); !strings.Contains(p.Detail, "If-None-Match") || !strings.Contains(p.Detail, "exists") {
		t.Fatalf("over a live record: %+v", p)
	}
	r = e.do(t, req{method: "GET", path: "/v1/records/tianjin:imported-1", token: w})
	wantStatus(t, r, http.StatusOK)
	if got := r.record(t); got.Version != 1 || !strings.Contains(string(got.Body), "第一版") {
		t.Fatalf("the refused write changed the record: %+v", got)
	}

	wantStatus(t, e.do(t, req{method: "DELETE", path: "/v1/records/tianjin:imported-1", token: w}), http.StatusOK)
	r = put("tianjin:imported-1", "第三版", star)
	wantStatus(t, r, http.StatusCreated)
	if got := r.record(t); got.Version != 3 || !strings.Contains(string(got.Body), "第三版") {
		t.Fatalf("revived over the tombstone: %+v", got)
	}

	for _, c := range []struct {
		name   string
		header map[string]string
		body   map[string]any
		rule   string
	}{
		{"a tag", map[string]string{"If-None-Match": `"3"`}, nil, schema.RuleFormat},
		{"a list", map[string]string{"If-None-Match": `*, "3"`}, nil, schema.RuleFormat},
		{"with If-Match", map[string]string{"If-None-Match": "*", "If-Match": "3"}, nil, schema.RuleMismatch},
		{"with a version in the body", star, map[string]any{"version": 3}, schema.RuleMismatch},
	} {
		body := envelope("supply", "federation", supplyBody("冲突"))
		for k, v := range c.body {
			body[k] = v
		}
		r := e.do(t, req{method: "PUT", path: "/v1/records/tianjin:imported-2", token: w, header: c.header, body: body})
		wantStatus(t, r, http.StatusBadRequest)
		if p := r.problem(t); len(p.Errors) != 1 || p.Errors[0].Path != "If-None-Match" || p.Errors[0].Rule != c.rule {
			t.Errorf("%s: %+v", c.name, p.Errors)
		}
	}
	wantStatus(t, e.do(t, req{method: "GET", path: "/v1/records/tianjin:imported-2", token: w}), http.StatusNotFound)

	// On DELETE and POST it can never mean what it says: refused, not ignored.
	for _, rq := range []req{
		{method: "DELETE", path: "/v1/records/tianjin:imported-1", token: w, header: star},
		{method: "POST", path: "/v1/records", token: w, header: star, body: envelope("supply", "federation", supplyBody("新"))},
	} {
		r := e.do(t, rq)
		wantStatus(t, r, http.StatusBadRequest)
		if p := r.problem(t); len(p.Errors) != 1 || p.Errors[0].Path != "If-None-Match" {
			t.Errorf("%s with If-None-Match: %+v", rq.method, p.Errors)
		}
	}
	r = e.do(t, req{method: "GET", path: "/v1/records/tianjin:imported-1", token: w})
	wantStatus(t, r, http.StatusOK)
	if got := r.record(t); got.Version != 3 {
		t.Fatalf("a refused DELETE changed the record: version %d", got.Version)
	}
}

// TestPutIfAbsentRacesCreateOnce: writers that all read an id as free and
// create it with If-None-Match: * at once get one 201 and 412s: the node
// decides as it applies, not by a read before it.
func TestPutIfAbsentRacesCreateOnce(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	const writers = 8
	for round := range 3 {
		id := fmt.Sprintf("tianjin:race-%d", round)
		codes := make([]int, writers)
		var wg sync.WaitGroup
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.do(t, req{method: "PUT", path: "/v1/records/" + id, token: w, header: map[string]string{"If-None-Match": "*"},
					body: envelope("supply", "federation", supplyBody(fmt.Sprintf("写者 %d", i)))})
				codes[i] = r.StatusCode
			}()
		}
		wg.Wait()
		created := 0
		for _, c := range codes {
			switch c {
			case http.StatusCreated:
				created++
			case http.StatusPreconditionFailed:
			default:
				t.Fatalf("round %d: status %d among %v", round, c, codes)
			}
		}
		if created != 1 {
			t.Fatalf("round %d: %d writers created %s: %v", round, created, id, codes)
		}
		r := e.do(t, req{method: "GET", path: "/v1/records/" + id, token: w})
		wantStatus(t, r, http.StatusOK)
		if v := r.record(t).Version; v != 1 {
			t.Fatalf("round %d: %s at version %d after one create", round, id, v)
		}
	}
}

// TestBatchPutIfAbsent: a batch item's if_none_match is the header's.
func TestBatchPutIfAbsent(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	live := e.create(t, "supply", "federation", supplyBody("已有"))
	item := func(method, id string, extra map[string]any) map[string]any {
		it := map[string]any{"method": method, "record": envelope("supply", "federation", supplyBody("批量"))}
		if id != "" {
			it["id"] = id
		}
		if method == "DELETE" {
			delete(it, "record")
		}
		for k, v := range extra {
			it[k] = v
		}
		return it
	}
	star := map[string]any{"if_none_match": "*"}
	got := e.batch(t, w,
		item("PUT", "tianjin:batch-new", star),
		item("PUT", live.ID, star),
		item("PUT", "tianjin:batch-null", map[string]any{"if_none_match": nil}),
		item("POST", "", star),
		item("DELETE", live.ID, star),
		item("PUT", "tianjin:batch-x", map[string]any{"if_none_match": "x"}),
		item("PUT", "tianjin:batch-y", map[string]any{"if_none_match": "*", "if_match": 1}),
	)
	want := []struct {
		status int
		path   string
	}{
		{http.StatusCreated, ""},
		{http.StatusPreconditionFailed, ""},
		{http.StatusCreated, ""},
		{http.StatusBadRequest, "if_none_match"},
		{http.StatusBadRequest, "if_none_match"},
		{http.StatusBadRequest, "if_none_match"},
		{http.StatusBadRequest, "if_none_match"},
	}
	for i, wnt := range want {
		g := got[i]
		if g.Status != wnt.status || wnt.path != "" && (len(g.Problem.Errors) != 1 || g.Problem.Errors[0].Path != wnt.path) {
			t.Errorf("item %d: %d %+v, want %d blaming %q", i, g.Status, g.Problem, wnt.status, wnt.path)
		}
	}
	r := e.do(t, req{method: "GET", path: "/v1/records/" + live.ID, token: w})
	wantStatus(t, r, http.StatusOK)
	if got := r.record(t); got.Version != live.Version {
		t.Fatalf("a refused item changed %s: version %d", live.ID, got.Version)
	}
}

// TestPutIfAbsentWhileAReplicaIsOlder: a node that cannot revive a
// tombstone yet (a replica has not announced the build) answers 503 with
// Retry-After, not a 412 or a write that replicas would apply apart.
func TestPutIfAbsentWhileAReplicaIsOlder(t *testing.T) {
	svc := &fakeService{centre: "tianjin", putIfAbsent: func(_ context.Context, id string, _ *schema.Record) (*schema.Record, error) {
		return nil, fmt.Errorf("create %s over its tombstone: %w", id, node.ErrGroupLacksFeature)
	}}
	e := newFakeEnv(t, svc)
	r := e.do(t, req{method: "PUT", path: "/v1/records/tianjin:x", token: e.token(t, "tianjin", auth.ScopeWrite), header: map[string]string{"If-None-Match": "*"},
		body: envelope("supply", "federation", supplyBody("旧版本"))})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") == "" {
		t.Fatalf("no Retry-After: %v", r.Header)
	}
	if p := r.problem(t); !strings.Contains(p.Detail, "tombstone") {
		t.Fatalf("detail: %+v", p)
	}
}
