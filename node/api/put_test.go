package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

// personalOf returns the personal members of a record's body, as JSON text.
func personalOf(t *testing.T, rec *schema.Record) map[string]string {
	t.Helper()
	var b map[string]json.RawMessage
	if err := json.Unmarshal(rec.Body, &b); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, f := range schema.PersonalFields {
		if v, ok := b[f]; ok {
			out[f] = string(v)
		}
	}
	return out
}

// TestPutKeepsVisibilityWhenOmitted: a PUT without visibility keeps the
// record's own; the default (federation) would sign a private record into the
// log and send it to every centre, which cannot be taken back.
func TestPutKeepsVisibilityWhenOmitted(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	rec := e.create(t, "supply", "private", supplyBody("内部项目"))
	for _, body := range []map[string]any{
		{"catalogue": "supply", "body": supplyBody("内部项目（修订）")},
		{"catalogue": "supply", "visibility": "", "body": supplyBody("内部项目（再修订）")},
		{"catalogue": "supply", "visibility": nil, "body": supplyBody("内部项目（三修）")},
	} {
		r := e.do(t, req{method: "PUT", path: "/v1/records/" + rec.ID, token: w, body: body})
		wantStatus(t, r, http.StatusOK)
		if v := r.record(t).Visibility; v != "private" {
			t.Fatalf("PUT %v turned a private record %s", body["visibility"], v)
		}
	}
	if got := e.do(t, req{method: "GET", path: "/v1/records/" + rec.ID, token: w}).record(t); got.Visibility != "private" || got.Version != 4 {
		t.Fatalf("stored %s at version %d", got.Visibility, got.Version)
	}
	if entries, _, err := e.node.Store().History(rec.ID, 0, 10); err != nil || len(entries) != 0 {
		t.Fatalf("the private record entered the signed log: %d entries, %v", len(entries), err)
	}
	if got := e.feedHas(t, e.token(t, "hebei", auth.ScopeRead), rec.ID); got != nil {
		t.Fatalf("another centre's partner learnt of it: %+v", got)
	}

	// Sent, it is a deliberate change; a new record still gets the default.
	r := e.do(t, req{method: "PUT", path: "/v1/records/" + rec.ID, token: w, body: envelope("supply", "public", supplyBody("内部项目（公开）"))})
	wantStatus(t, r, http.StatusOK)
	if v := r.record(t).Visibility; v != "public" {
		t.Fatalf("explicit visibility: %s", v)
	}
	r = e.do(t, req{method: "PUT", path: "/v1/records/tianjin:new-key", token: w, body: map[string]any{"catalogue": "supply", "body": supplyBody("新记录")}})
	wantStatus(t, r, http.StatusCreated)
	if v := r.record(t).Visibility; v != "federation" {
		t.Fatalf("new record without visibility: %s", v)
	}
}

// TestPutKeepsPersonalDataTheCallerCouldNotRead: GET → edit → PUT by a token
// without the pii scope sends back a body whose personal members were
// redacted; they are kept, not erased. Sent, they are a deliberate change; a
// pii token that leaves them out removes them, as it read them.
func TestPutKeepsPersonalDataTheCallerCouldNotRead(t *testing.T) {
	e := newEnv(t, false)
	pii := e.writer(t)
	body := supplyBody("内部项目")
	body["inventors"] = []string{"张三", "李四"}
	rec := e.create(t, "supply", "private", body)
	want := personalOf(t, rec)
	if len(want) != 2 {
		t.Fatalf("created with %v", want)
	}
	stored := func() *schema.Record {
		t.Helper()
		return e.do(t, req{method: "GET", path: "/v1/records/" + rec.ID, token: pii}).record(t)
	}

	rw := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	g := e.do(t, req{method: "GET", path: "/v1/records/" + rec.ID, token: rw})
	wantStatus(t, g, http.StatusOK)
	var env map[string]any
	if err := json.Unmarshal(g.body, &env); err != nil {
		t.Fatal(err)
	}
	if len(personalOf(t, g.record(t))) != 0 {
		t.Fatalf("read without pii shows personal data: %s", g.body)
	}
	env["body"].(map[string]any)["title"] = "内部项目（修订）"
	wantStatus(t, e.do(t, req{method: "PUT", path: "/v1/records/" + rec.ID, token: rw, body: env}), http.StatusOK)
	after := stored()
	if got := personalOf(t, after); fmt.Sprint(got) != fmt.Sprint(want) || !json.Valid(after.Body) {
		t.Fatalf("round trip without pii left %v, want %v", got, want)
	}
	var b map[string]any
	json.Unmarshal(after.Body, &b)
	if b["title"] != "内部项目（修订）" {
		t.Fatalf("the edit was lost: %s", after.Body)
	}

	// A token that may write but not read at all keeps them too.
	wo := e.token(t, "tianjin", auth.ScopeWrite)
	writeOnly := supplyBody("只写")
	delete(writeOnly, "contact")
	wantStatus(t, e.do(t, req{method: "PUT", path: "/v1/records/" + rec.ID, token: wo, body: envelope("supply", "private", writeOnly)}), http.StatusOK)
	got := personalOf(t, stored())
	if got["inventors"] != want["inventors"] || got["contact"] != want["contact"] {
		t.Fatalf("write-only PUT left %v, want %v", got, want)
	}
	changed := supplyBody("换联系人")
	changed["contact"] = map[string]string{"person": "赵老师"}
	wantStatus(t, e.do(t, req{method: "PUT", path: "/v1/records/" + rec.ID, token: rw, body: envelope("supply", "private", changed)}), http.StatusOK)
	if got := personalOf(t, stored()); got["contact"] != `{"person":"赵老师"}` || got["inventors"] != want["inventors"] {
		t.Fatalf("sent contact: %v", got)
	}

	// The pii writer read them: what it leaves out, it removes.
	bare := supplyBody("去掉个人信息")
	delete(bare, "contact")
	wantStatus(t, e.do(t, req{method: "PUT", path: "/v1/records/" + rec.ID, token: pii, body: envelope("supply", "private", bare)}), http.StatusOK)
	if got := personalOf(t, stored()); len(got) != 0 {
		t.Fatalf("pii writer's PUT without personal data left %v", got)
	}
}

// TestPutMergesWithTheVersionItWrites: what a PUT keeps comes from the
// version it is written over. A write landing between the read and the write
// makes the store refuse it; without If-Match the PUT merges again with the
// newer version, with If-Match the conflict is the caller's (412).
func TestPutMergesWithTheVersionItWrites(t *testing.T) {
	now := time.Now().UTC()
	version := func(v uint64, visibility, contact string) *schema.Record {
		return &schema.Record{ID: "tianjin:k", Catalogue: "supply", Origin: "tianjin", Version: v, Visibility: visibility, Schema: 1,
			CreatedAt: now, UpdatedAt: now, Body: json.RawMessage(`{"title":"旧","contact":{"person":"` + contact + `"}}`)}
	}
	var mu sync.Mutex
	var current *schema.Record
	var written []*schema.Record
	reads := 0
	svc := &fakeService{
		get: func(context.Context, string) (*schema.Record, error) {
			mu.Lock()
			defer mu.Unlock()
			reads++
			out := current.Clone()
			if reads == 1 {
				// Another writer narrows the record and changes the contact
				// right after this read.
				current = version(2, "private", "新联系人")
			}
			return out, nil
		},
		put: func(_ context.Context, id string, rec *schema.Record, ifMatch uint64) (*schema.Record, error) {
			mu.Lock()
			defer mu.Unlock()
			if ifMatch != 0 && ifMatch != current.Version {
				return nil, fmt.Errorf("%w: %s", store.ErrVersionConflict, id)
			}
			out := rec.Clone()
			out.ID, out.Version = id, current.Version+1
			written = append(written, out)
			current = out
			return out, nil
		},
	}
	e := newFakeEnv(t, svc)
	rw := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	sub := map[string]any{"catalogue": "supply", "body": map[string]any{"title": "新"}}

	current, reads = version(1, "federation", "旧联系人"), 0
	wantStatus(t, e.do(t, req{method: "PUT", path: "/v1/records/tianjin:k", token: rw, body: sub}), http.StatusOK)
	if len(written) != 1 {
		t.Fatalf("%d writes", len(written))
	}
	if w := written[0]; w.Visibility != "private" || w.Version != 3 || personalOf(t, w)["contact"] != `{"person":"新联系人"}` {
		t.Fatalf("wrote %s at version %d with %s, want the newer version's visibility and contact kept", w.Visibility, w.Version, w.Body)
	}

	current, reads, written = version(1, "federation", "旧联系人"), 0, nil
	r := e.do(t, req{method: "PUT", path: "/v1/records/tianjin:k", token: rw, body: sub, header: map[string]string{"If-Match": "1"}})
	wantStatus(t, r, http.StatusPreconditionFailed)
	if len(written) != 0 {
		t.Fatalf("wrote %+v over a precondition that failed", written)
	}
}

// laggingLeader is a leader whose state machine has yet to apply a committed
// write (just after an election) until a barrier.
type laggingLeader struct {
	*fakeService
	mu       sync.Mutex
	applied  bool
	barriers int
}

func (l *laggingLeader) IsLeader() bool     { return true }
func (l *laggingLeader) LeaderHTTP() string { return "" }
func (l *laggingLeader) Barrier(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.applied = true
	l.barriers++
	return nil
}
func (l *laggingLeader) Replicas() ([]node.ReplicaInfo, error)           { return nil, nil }
func (l *laggingLeader) AddReplica(context.Context, store.Replica) error { return nil }
func (l *laggingLeader) RemoveReplica(context.Context, string) error     { return nil }

// TestPutWithoutVisibilityReadsBehindABarrier: a PUT that would take its
// visibility from the record it replaces does not trust a read that finds no
// record: the leader may not have applied the private record's create yet, and
// the default would sign it into the log as federation.
func TestPutWithoutVisibilityReadsBehindABarrier(t *testing.T) {
	now := time.Now().UTC()
	stored := &schema.Record{ID: "tianjin:lag", Catalogue: "supply", Origin: "tianjin", Version: 1, Visibility: "private",
		Schema: 1, CreatedAt: now, UpdatedAt: now, Body: json.RawMessage(`{"contact":{"person":"王老师"},"title":"内部"}`)}
	var wrote *schema.Record
	var wroteIf uint64
	l := &laggingLeader{}
	l.fakeService = &fakeService{
		get: func(context.Context, string) (*schema.Record, error) {
			l.mu.Lock()
			defer l.mu.Unlock()
			if !l.applied {
				return nil, store.ErrNotFound
			}
			return stored.Clone(), nil
		},
		put: func(_ context.Context, id string, rec *schema.Record, ifMatch uint64) (*schema.Record, error) {
			wrote, wroteIf = rec.Clone(), ifMatch
			out := rec.Clone()
			out.ID, out.Version = id, 2
			return out, nil
		},
	}
	e := newFakeEnv(t, l.fakeService, func(o *Options) { o.Service = l })
	r := e.do(t, req{method: "PUT", path: "/v1/records/tianjin:lag", token: e.token(t, "tianjin", auth.ScopeWrite, auth.ScopeRead),
		body: map[string]any{"catalogue": "supply", "body": supplyBody("内部（修订）")}})
	wantStatus(t, r, http.StatusOK)
	if wrote == nil || wrote.Visibility != "private" || wroteIf != 1 || l.barriers != 1 {
		t.Fatalf("wrote %+v at If-Match %d after %d barriers; want private, pinned to version 1, after one", wrote, wroteIf, l.barriers)
	}
	// Naming its visibility, a caller without the pii scope still keeps the
	// contacts it could not read: read behind a barrier too.
	l.applied = false
	r = e.do(t, req{method: "PUT", path: "/v1/records/tianjin:lag", token: e.token(t, "tianjin", auth.ScopeWrite, auth.ScopeRead),
		body: envelope("supply", "private", map[string]any{"title": "内部（再修订）"})})
	wantStatus(t, r, http.StatusOK)
	if l.barriers != 2 || wroteIf != 1 || !strings.Contains(string(wrote.Body), "王老师") {
		t.Fatalf("without pii: %d barriers, If-Match %d, body %s; want 2, 1 and the contact kept", l.barriers, wroteIf, wrote.Body)
	}
	// A caller that reads personal data and names the visibility keeps
	// nothing: no barrier.
	l.applied = false
	r = e.do(t, req{method: "PUT", path: "/v1/records/tianjin:other", token: e.token(t, "tianjin", auth.ScopeWrite, auth.ScopeRead, auth.ScopePII),
		body: envelope("supply", "public", supplyBody("公开"))})
	wantStatus(t, r, http.StatusOK)
	if l.barriers != 2 {
		t.Fatalf("%d barriers after a pii caller's PUT naming its visibility", l.barriers)
	}
}
