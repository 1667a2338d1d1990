package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"liandong/auth"
	"liandong/node/store"
	"liandong/schema"
)

// TestStaleIfMatchTellsTheVersionOnlyToReaders: a 412 that names the
// record's current version is a read of it. A token with scope write but not
// read learns only that the version it named is not current; one that may
// read the record is told which is, by the route and by a batch item alike.
func TestStaleIfMatchTellsTheVersionOnlyToReaders(t *testing.T) {
	e := newEnv(t, false)
	rec := e.create(t, "supply", "federation", supplyBody("储能变流器"))
	wantStatus(t, e.do(t, req{method: "PUT", path: "/v1/records/" + rec.ID, token: e.writer(t), header: map[string]string{"If-Match": "1"},
		body: envelope("supply", "federation", supplyBody("储能变流器 v2"))}), http.StatusOK)

	for _, c := range []struct {
		name  string
		token string
		shown bool
	}{
		{"write only", e.token(t, "tianjin", auth.ScopeWrite), false},
		{"read and write", e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite), true},
		{"admin", e.token(t, "tianjin", auth.ScopeAdmin), true},
	} {
		check := func(how, detail string) {
			t.Helper()
			if told := strings.Contains(detail, "version 2"); told != c.shown {
				t.Errorf("%s, %s: detail %q; current version told: %v, want %v", c.name, how, detail, told, c.shown)
			}
		}
		for _, method := range []string{"PUT", "DELETE"} {
			rq := req{method: method, path: "/v1/records/" + rec.ID, token: c.token, header: map[string]string{"If-Match": `"1"`}}
			if method == "PUT" {
				rq.body = envelope("supply", "federation", supplyBody("覆盖"))
			}
			r := e.do(t, rq)
			wantStatus(t, r, http.StatusPreconditionFailed)
			check(method, r.problem(t).Detail)

			item := map[string]any{"method": method, "id": rec.ID, "if_match": 1}
			if method == "PUT" {
				item["record"] = envelope("supply", "federation", supplyBody("覆盖"))
			}
			got := e.batch(t, c.token, item)[0]
			if got.Status != http.StatusPreconditionFailed || got.Problem == nil {
				t.Fatalf("%s, batch %s: %+v", c.name, method, got)
			}
			check("batch "+method, got.Problem.Detail)
		}
	}
}

// TestOvertakenWriteTellsTheVersionOnlyToReaders: the store's own version
// conflict (a write overtaken between the handler's check and its apply)
// names the current version; a caller who may not read the record gets the
// 412 without it.
func TestOvertakenWriteTellsTheVersionOnlyToReaders(t *testing.T) {
	live := &schema.Record{ID: "tianjin:overtaken", Catalogue: "supply", Origin: "tianjin", Version: 1,
		Visibility: schema.VisibilityFederation, Schema: schema.CurrentSchema, Body: []byte(`{"title":"t"}`)}
	conflict := fmt.Errorf("%w: %s: If-Match 1 but the current version is 7", store.ErrVersionConflict, live.ID)
	svc := &fakeService{
		get: func(context.Context, string) (*schema.Record, error) { return live.Clone(), nil },
		put: func(context.Context, string, *schema.Record, uint64) (*schema.Record, error) {
			return nil, conflict
		},
		delete: func(context.Context, string, uint64) (*schema.Record, error) { return nil, conflict },
	}
	e := newFakeEnv(t, svc)
	for _, c := range []struct {
		name  string
		token string
		shown bool
	}{
		{"write only", e.token(t, "tianjin", auth.ScopeWrite), false},
		{"read and write", e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite), true},
	} {
		for _, rq := range []req{
			{method: "PUT", path: "/v1/records/" + live.ID, token: c.token, header: map[string]string{"If-Match": "1"},
				body: envelope("supply", "federation", supplyBody("覆盖"))},
			{method: "DELETE", path: "/v1/records/" + live.ID, token: c.token, header: map[string]string{"If-Match": "1"}},
		} {
			r := doHTTP(t, e.cli, e.srv.URL, rq)
			wantStatus(t, r, http.StatusPreconditionFailed)
			if detail := r.problem(t).Detail; strings.Contains(detail, "7") != c.shown {
				t.Errorf("%s, %s: detail %q; current version told: %v, want %v", c.name, rq.method, detail, !c.shown, c.shown)
			}
		}
	}
}

// TestCreatedMeanwhileTellsTheVersionOnlyToReaders: a PUT that finds no
// record creates it only if still absent; a record created by another write
// each time it tries is refused (409) with the store's error, which names
// that record's version: not to a caller who may not read it.
func TestCreatedMeanwhileTellsTheVersionOnlyToReaders(t *testing.T) {
	exists := fmt.Errorf("%w: tianjin:raced is at version 7", store.ErrExists)
	svc := &fakeService{
		get:         func(context.Context, string) (*schema.Record, error) { return nil, store.ErrNotFound },
		putIfAbsent: func(context.Context, string, *schema.Record) (*schema.Record, error) { return nil, exists },
	}
	e := newFakeEnv(t, svc)
	for _, c := range []struct {
		name  string
		token string
		shown bool
	}{
		{"write only", e.token(t, "tianjin", auth.ScopeWrite), false},
		{"read and write", e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite), true},
	} {
		r := doHTTP(t, e.cli, e.srv.URL, req{method: "PUT", path: "/v1/records/tianjin:raced", token: c.token,
			body: envelope("supply", "federation", supplyBody("新"))})
		wantStatus(t, r, http.StatusConflict)
		if detail := r.problem(t).Detail; strings.Contains(detail, "7") != c.shown {
			t.Errorf("%s: detail %q; current version told: %v, want %v", c.name, detail, !c.shown, c.shown)
		}
	}
}
