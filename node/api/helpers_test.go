package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

var _ Service = (*node.Node)(nil)

const testFederation = "jjj-test"

// fixture is a trust bundle with two members, tianjin (the node under test) and
// hebei, and their keys.
type fixture struct {
	bundle     *auth.Bundle
	recordKey  *auth.KeyPair // tianjin's
	issuers    map[string]*auth.TokenIssuer
	retiredKey *auth.KeyPair // a retired tianjin token key
	root       *auth.KeyPair // signs the bundle, and newer ones
}

func mustKey(t testing.TB, prefix string) *auth.KeyPair {
	t.Helper()
	k, err := auth.GenerateKey(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	now := time.Now().UTC()
	start := now.Add(-48 * time.Hour)
	retiredAt := now.Add(-time.Hour)
	root := mustKey(t, "root")
	tjRec, tjTok, tjOld := mustKey(t, "tianjin-rec"), mustKey(t, "tianjin-tok"), mustKey(t, "tianjin-tok-old")
	hbRec, hbTok := mustKey(t, "hebei-rec"), mustKey(t, "hebei-tok")
	old := tjOld.BundleKey(start)
	old.NotAfter = &retiredAt
	b := &auth.Bundle{
		Federation: testFederation,
		Version:    1,
		IssuedAt:   start,
		ExpiresAt:  now.Add(24 * time.Hour),
		Signers:    []auth.Key{root.BundleKey(start)},
		Threshold:  1,
		Members: []auth.Member{
			{ID: "tianjin", Name: "Tianjin Centre", NameZH: "天津中心",
				RecordKeys: []auth.Key{tjRec.BundleKey(start)},
				TokenKeys:  []auth.Key{old, tjTok.BundleKey(start)}},
			{ID: "hebei", Name: "Hebei Centre", NameZH: "河北中心",
				RecordKeys: []auth.Key{hbRec.BundleKey(start)},
				TokenKeys:  []auth.Key{hbTok.BundleKey(start)}},
		},
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	return &fixture{
		bundle:    b,
		recordKey: tjRec,
		issuers: map[string]*auth.TokenIssuer{
			"tianjin": {Centre: "tianjin", Federation: testFederation, Key: tjTok},
			"hebei":   {Centre: "hebei", Federation: testFederation, Key: hbTok},
		},
		retiredKey: tjOld,
		root:       root,
	}
}

func (f *fixture) token(t testing.TB, centre string, scopes ...auth.Scope) string {
	t.Helper()
	tok, err := f.issuers[centre].Issue("partner-"+centre, scopes, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// env is a real node behind a real listener.
type env struct {
	*fixture
	t    *testing.T
	node *node.Node
	reg  *prometheus.Registry
	h    http.Handler
	srv  *httptest.Server
	cli  *http.Client
}

type envOption func(cfg *node.Config, opts *Options)

// newEnv opens a tianjin node in t.TempDir() and serves its API. Unless
// noLeader, it waits for the node to elect itself.
func newEnv(t *testing.T, noLeader bool, options ...envOption) *env {
	t.Helper()
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	cfg := node.DefaultConfig("tianjin", t.TempDir())
	cfg.RecordKey = f.recordKey
	cfg.Bundle = f.bundle
	cfg.Registerer = reg
	if noLeader {
		// Without bootstrapping, the replica has no configuration and never elects.
		cfg.Bootstrap = false
	}
	opts := Options{
		Verifier:   &auth.TokenVerifier{Federation: testFederation},
		Authorizer: &auth.Authorizer{Centre: "tianjin", AllowAnonymous: true},
		Registerer: reg,
		Gatherer:   reg,
		Logger:     testLogger(t),
	}
	for _, o := range options {
		o(&cfg, &opts)
	}
	n, err := node.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if !noLeader {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := n.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
	}
	opts.Service = n
	opts.Verifier.Bundle = n.Bundle
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close) // runs before n.Close: waits for handlers
	return &env{fixture: f, t: t, node: n, reg: reg, h: h, srv: srv, cli: &http.Client{Timeout: 20 * time.Second}}
}

// testLogger sends warnings and errors to the test log, until the test ends.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

func (w *testWriter) stop() { w.mu.Lock(); w.done = true; w.mu.Unlock() }

// resp is an answer, read whole.
type resp struct {
	*http.Response
	body []byte
}

func (r *resp) problem(t testing.TB) Problem {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s %s: Content-Type %q, want application/problem+json; body %s", r.Request.Method, r.Request.URL, ct, r.body)
	}
	var p Problem
	if err := json.Unmarshal(r.body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.body, err)
	}
	if p.Status != r.StatusCode {
		t.Fatalf("problem status %d, response status %d", p.Status, r.StatusCode)
	}
	if !strings.HasPrefix(p.Type, ProblemTypePrefix) || p.Title == "" || p.Instance == "" || p.RequestID == "" {
		t.Fatalf("incomplete problem: %s", r.body)
	}
	return p
}

func (r *resp) record(t testing.TB) *schema.Record {
	t.Helper()
	var rec schema.Record
	if err := json.Unmarshal(r.body, &rec); err != nil {
		t.Fatalf("record body %s: %v", r.body, err)
	}
	return &rec
}

type req struct {
	method, path, token string
	body                any // string, []byte or a value to encode
	header              map[string]string
}

func (e *env) do(t testing.TB, rq req) *resp {
	t.Helper()
	return doHTTP(t, e.cli, e.srv.URL, rq)
}

func doHTTP(t testing.TB, cli *http.Client, base string, rq req) *resp {
	t.Helper()
	var body io.Reader
	switch b := rq.body.(type) {
	case nil:
	case string:
		body = strings.NewReader(b)
	case []byte:
		body = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		body = bytes.NewReader(js)
	}
	hr, err := http.NewRequest(rq.method, base+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if rq.token != "" {
		hr.Header.Set("Authorization", "Bearer "+rq.token)
	}
	for k, v := range rq.header {
		if v == "" {
			hr.Header.Del(k)
		} else {
			hr.Header.Set(k, v)
		}
	}
	res, err := cli.Do(hr)
	if err != nil {
		t.Fatalf("%s %s: %v", rq.method, rq.path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &resp{Response: res, body: data}
}

func wantStatus(t testing.TB, r *resp, code int) {
	t.Helper()
	if r.StatusCode != code {
		t.Fatalf("%s %s: status %d, want %d; body %s", r.Request.Method, r.Request.URL.RequestURI(), r.StatusCode, code, r.body)
	}
}

// Sample bodies, after DESIGN.md.
func supplyBody(title string) map[string]any {
	return map[string]any{
		"title": title, "summary": "天津大学团队形成的成果，已完成中试验证。", "industry": "new-materials",
		"keywords": []string{"正极材料", "锂电池"}, "trl": 6,
		"ip":             []map[string]string{{"type": "patent", "number": "ZL202110000001.1", "status": "granted"}},
		"transfer_modes": []string{"license", "joint-development"}, "owner_org": "天津大学", "disruptive": false,
		"contact": map[string]string{"person": "王老师", "phone": "022-27400000", "email": "wang@example.edu.cn"},
	}
}

func needBody(title string) map[string]any {
	return map[string]any{
		"title": title, "description": "风电齿轮箱轴承寿命预测，寻求高校合作。", "industry": "high-end-equipment",
		"keywords": []string{"轴承", "寿命预测"}, "enterprise": "天津某装备公司", "kind": "need",
		"budget":   map[string]any{"min": 500000, "max": 2000000, "currency": "CNY"},
		"deadline": "2027-06-30", "status": "open",
		"contact": map[string]string{"person": "李经理", "phone": "022-23400000"},
	}
}

func envelope(catalogue, visibility string, body map[string]any) map[string]any {
	return map[string]any{"catalogue": catalogue, "visibility": visibility, "body": body}
}

// create posts a record as tianjin's writer and returns it.
func (e *env) create(t testing.TB, catalogue, visibility string, body map[string]any) *schema.Record {
	t.Helper()
	r := e.do(t, req{method: "POST", path: "/v1/records", token: e.writer(t), body: envelope(catalogue, visibility, body)})
	wantStatus(t, r, http.StatusCreated)
	return r.record(t)
}

func (e *env) writer(t testing.TB) string {
	return e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
}

func hasContact(rec *schema.Record) bool {
	var b map[string]json.RawMessage
	json.Unmarshal(rec.Body, &b)
	_, ok := b["contact"]
	return ok
}

// fakeService is a Service of function fields; nil fields behave as an empty node.
type fakeService struct {
	centre string
	bundle *auth.Bundle
	create func(ctx context.Context, rec *schema.Record) (*schema.Record, error)
	put    func(ctx context.Context, id string, rec *schema.Record, ifMatch uint64) (*schema.Record, error)
	// putIfAbsent is PutIfAbsent; nil: ErrExists where get finds a record,
	// else what put does.
	putIfAbsent func(ctx context.Context, id string, rec *schema.Record) (*schema.Record, error)
	delete      func(ctx context.Context, id string, ifMatch uint64) (*schema.Record, error)
	get         func(ctx context.Context, id string) (*schema.Record, error)
	list        func(ctx context.Context, q store.Query) ([]*schema.Record, string, error)
	changes     func(ctx context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error)
	ready       func() error
	caughtUp    func() error // CaughtUp; nil: caught up
	changedCh   chan struct{}
	feedEpoch   string // FeedEpoch; "" for a feed not named
	feedHead    uint64 // FeedHead
	namedAt     uint64 // FeedNamedAt: where the feed took feedEpoch; 0 for not recorded
	diskFull    error  // DiskFull
}

var _ Service = (*fakeService)(nil)

func (f *fakeService) FeedEpoch() string { return f.feedEpoch }

func (f *fakeService) CaughtUp() error {
	if f.caughtUp == nil {
		return nil
	}
	return f.caughtUp()
}

func (f *fakeService) FeedHead() (uint64, error) { return f.feedHead, nil }

func (f *fakeService) FeedNamedAt() (uint64, bool, error) {
	return f.namedAt, f.namedAt != 0 && f.feedEpoch != "", nil
}

func (f *fakeService) DiskFull() error { return f.diskFull }

func (f *fakeService) Centre() string { return f.centre }

func (f *fakeService) Create(ctx context.Context, rec *schema.Record) (*schema.Record, error) {
	if f.create != nil {
		return f.create(ctx, rec)
	}
	out := rec.Clone()
	out.ID, out.Version = f.centre+":01FAKE", 1
	if err := schema.ValidateRecord(out, schema.ValidateOptions{Strict: true}); err != nil {
		return nil, err
	}
	return out, nil
}

func (f *fakeService) Put(ctx context.Context, id string, rec *schema.Record, ifMatch uint64) (*schema.Record, error) {
	if f.put != nil {
		return f.put(ctx, id, rec, ifMatch)
	}
	out := rec.Clone()
	out.ID, out.Version = id, 1
	if err := schema.ValidateRecord(out, schema.ValidateOptions{Strict: true}); err != nil {
		return nil, err
	}
	return out, nil
}

func (f *fakeService) PutIfAbsent(ctx context.Context, id string, rec *schema.Record) (*schema.Record, error) {
	if f.putIfAbsent != nil {
		return f.putIfAbsent(ctx, id, rec)
	}
	if _, err := f.Get(ctx, id); err == nil {
		return nil, fmt.Errorf("%w: %s", store.ErrExists, id)
	}
	return f.Put(ctx, id, rec, 0)
}

func (f *fakeService) Delete(ctx context.Context, id string, ifMatch uint64) (*schema.Record, error) {
	if f.delete != nil {
		return f.delete(ctx, id, ifMatch)
	}
	return nil, store.ErrNotFound
}

func (f *fakeService) Get(ctx context.Context, id string) (*schema.Record, error) {
	if f.get != nil {
		return f.get(ctx, id)
	}
	return nil, fmt.Errorf("%w: %s", store.ErrNotFound, id)
}

func (f *fakeService) List(ctx context.Context, q store.Query) ([]*schema.Record, string, error) {
	if f.list != nil {
		return f.list(ctx, q)
	}
	return nil, "", nil
}

func (f *fakeService) Changes(ctx context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
	if f.changes != nil {
		return f.changes(ctx, since, limit, match)
	}
	return nil, since, nil
}

func (f *fakeService) Changed() <-chan struct{} {
	if f.changedCh != nil {
		return f.changedCh
	}
	return make(chan struct{})
}

func (f *fakeService) Ready() error {
	if f.ready != nil {
		return f.ready()
	}
	return nil
}

func (f *fakeService) Bundle() *auth.Bundle { return f.bundle }

// fakeEnv serves a fakeService through a real listener.
type fakeEnv struct {
	*fixture
	svc *fakeService
	srv *httptest.Server
	cli *http.Client
	h   http.Handler
}

func newFakeEnv(t *testing.T, svc *fakeService, tweak ...func(*Options)) *fakeEnv {
	t.Helper()
	f := newFixture(t)
	svc.centre, svc.bundle = "tianjin", f.bundle
	opts := Options{Service: svc, Logger: testLogger(t)}
	for _, fn := range tweak {
		fn(&opts)
	}
	h, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &fakeEnv{fixture: f, svc: svc, srv: srv, cli: &http.Client{Timeout: 20 * time.Second}, h: h}
}

func (e *fakeEnv) do(t testing.TB, rq req) *resp {
	t.Helper()
	return doHTTP(t, e.cli, e.srv.URL, rq)
}

var errBoom = errors.New("disk on fire at /var/lib/liandong/state.db")
