package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/node/api"
	"liandong/schema"
)

const testFederation = "jjj-test"

// env is a real tianjin node (raft, bbolt, search) with its API and the console
// in front, behind a real listener; hebei is a second member whose tokens it accepts.
type env struct {
	t       *testing.T
	node    *node.Node
	srv     *httptest.Server
	cli     *http.Client
	issuers map[string]*auth.TokenIssuer
}

func mustKey(t testing.TB, prefix string) *auth.KeyPair {
	t.Helper()
	k, err := auth.GenerateKey(prefix)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testFederationDoc is the body of GET /v1/federation in the tests.
func testFederationDoc(context.Context) (any, error) {
	last := time.Now().Add(-3 * time.Second)
	return map[string]any{
		"centre": "tianjin", "peer_id": "12D3KooWTianjin",
		"replica": map[string]any{"replica_id": "tianjin-1", "state": "Leader", "leader": "tianjin-1", "term": 2, "commit_index": 9, "applied_index": 9, "voters": []string{"tianjin-1"}},
		"bundle":  map[string]any{"federation": testFederation, "version": 3, "expires_at": time.Now().Add(72 * time.Hour)},
		"members": []map[string]any{{"id": "tianjin", "name": "Tianjin", "name_zh": "天津中心"}, {"id": "hebei", "name": "Hebei", "name_zh": "河北中心"}},
		"sync": map[string]any{
			"peers": []map[string]any{
				{"peer_id": "12D3KooWHebei", "member": "hebei", "connected": true, "stalled": true, "last_contact": last, "rtt_seconds": 0.0042},
				{"peer_id": "12D3KooWHq", "member": "hq", "connected": false, "stalled": false, "last_error": "dial backoff"},
			},
			"origins": []map[string]any{
				{"origin": "hebei", "local": map[string]any{"origin": "hebei", "seq": 5, "hash": "ab"}, "best": map[string]any{"origin": "hebei", "seq": 8, "hash": "cd"}, "lag_entries": 3, "lag_seconds": 2.5, "pulling": true},
			},
		},
	}, nil
}

func newEnv(t *testing.T) *env {
	t.Helper()
	now := time.Now().UTC()
	start := now.Add(-48 * time.Hour)
	root := mustKey(t, "root")
	tjRec, tjTok := mustKey(t, "tianjin-rec"), mustKey(t, "tianjin-tok")
	hbRec, hbTok := mustKey(t, "hebei-rec"), mustKey(t, "hebei-tok")
	b := &auth.Bundle{
		Federation: testFederation, Version: 1, IssuedAt: start, ExpiresAt: now.Add(24 * time.Hour),
		Signers: []auth.Key{root.BundleKey(start)}, Threshold: 1,
		Members: []auth.Member{
			{ID: "tianjin", Name: "Tianjin Centre", NameZH: "天津中心", RecordKeys: []auth.Key{tjRec.BundleKey(start)}, TokenKeys: []auth.Key{tjTok.BundleKey(start)}},
			{ID: "hebei", Name: "Hebei Centre", NameZH: "河北中心", RecordKeys: []auth.Key{hbRec.BundleKey(start)}, TokenKeys: []auth.Key{hbTok.BundleKey(start)}},
		},
	}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig("tianjin", t.TempDir())
	cfg.RecordKey = tjRec
	cfg.Bundle = b
	n, err := node.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := api.New(api.Options{
		Service:    n,
		Verifier:   &auth.TokenVerifier{Federation: testFederation, Bundle: n.Bundle},
		Authorizer: &auth.Authorizer{Centre: "tianjin", AllowAnonymous: true},
		Federation: testFederationDoc,
	})
	if err != nil {
		t.Fatal(err)
	}
	console, err := New(Options{API: h, Centre: "tianjin", Bundle: n.Bundle, PageSize: 5})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Mount(console, h))
	t.Cleanup(srv.Close)
	return &env{
		t: t, node: n, srv: srv,
		cli: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		issuers: map[string]*auth.TokenIssuer{
			"tianjin": {Centre: "tianjin", Federation: testFederation, Key: tjTok},
			"hebei":   {Centre: "hebei", Federation: testFederation, Key: hbTok},
		},
	}
}

func (e *env) token(centre string, scopes ...auth.Scope) string {
	e.t.Helper()
	tok, err := e.issuers[centre].Issue("staff-"+centre, scopes, time.Hour, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// testCSRF is the CSRF token the tests' sessions carry.
const testCSRF = "0123456789abcdef0123456789abcdef0123456789abcdef"

// session is the cookies of a browser signed in with tok ("" for anonymous).
func session(tok string) []*http.Cookie {
	cs := []*http.Cookie{{Name: csrfCookie, Value: testCSRF}}
	if tok != "" {
		cs = append(cs, &http.Cookie{Name: sessionCookie, Value: tok})
	}
	return cs
}

type answer struct {
	*http.Response
	html string
}

func (e *env) do(method, path string, form url.Values, cookies []*http.Cookie, header map[string]string) *answer {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	res, err := e.cli.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	return &answer{Response: res, html: string(data)}
}

func (e *env) get(path string, cookies ...*http.Cookie) *answer {
	e.t.Helper()
	return e.do(http.MethodGet, path, nil, cookies, nil)
}

// post submits a form with the session's CSRF token.
func (e *env) post(path string, form url.Values, cookies ...*http.Cookie) *answer {
	e.t.Helper()
	if form.Get(csrfField) == "" {
		form.Set(csrfField, testCSRF)
	}
	return e.do(http.MethodPost, path, form, cookies, nil)
}

func (p *answer) want(t *testing.T, status int, contains ...string) {
	t.Helper()
	if p.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d\n%s", p.Request.Method, p.Request.URL, p.StatusCode, status, p.html)
	}
	for _, s := range contains {
		if !strings.Contains(p.html, s) {
			t.Fatalf("%s %s: no %q in\n%s", p.Request.Method, p.Request.URL, s, p.html)
		}
	}
}

func (p *answer) wantNot(t *testing.T, absent ...string) {
	t.Helper()
	for _, s := range absent {
		if strings.Contains(p.html, s) {
			t.Fatalf("%s %s: %q should not be in\n%s", p.Request.Method, p.Request.URL, s, p.html)
		}
	}
}

// field returns the HTML of the form control block for name.
func (p *answer) field(t *testing.T, name string) string {
	t.Helper()
	marker := `data-field="` + name + `"`
	i := strings.Index(p.html, marker)
	if i < 0 {
		t.Fatalf("no field %s in\n%s", name, p.html)
	}
	rest := p.html[i:]
	if j := strings.Index(rest[1:], `<div class="field`); j >= 0 {
		rest = rest[:j+1]
	}
	return rest
}

func (p *answer) cookie(name string) *http.Cookie {
	for _, c := range p.Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// create writes a record through the API with tok and returns it.
func (e *env) create(tok, catalogue, visibility string, body map[string]any) *schema.Record {
	e.t.Helper()
	js, _ := json.Marshal(map[string]any{"catalogue": catalogue, "visibility": visibility, "body": body})
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/records", bytes.NewReader(js))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+tok)
	res, err := e.cli.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusCreated {
		e.t.Fatalf("create: %d %s", res.StatusCode, data)
	}
	var rec schema.Record
	if err := json.Unmarshal(data, &rec); err != nil {
		e.t.Fatal(err)
	}
	return &rec
}

func supplyBody(title string, trl int) map[string]any {
	return map[string]any{
		"title": title, "summary": "天津大学团队形成的成果，已完成中试验证。", "industry": "new-materials",
		"keywords": []string{"正极材料", "锂电池"}, "trl": trl, "owner_org": "天津大学", "disruptive": false,
		"ip":      []map[string]string{{"type": "patent", "number": "ZL202110000001.1", "status": "granted"}},
		"contact": map[string]string{"person": "王老师", "phone": "022-27400000", "email": "wang@example.edu.cn"},
	}
}

func needBody(title string) map[string]any {
	return map[string]any{
		"title": title, "description": "风电齿轮箱轴承寿命预测，寻求高校合作。", "industry": "new-materials",
		"keywords": []string{"正极材料", "锂电池"}, "enterprise": "天津某电池公司", "kind": "need", "status": "open",
		"contact": map[string]string{"person": "李经理", "phone": "022-23400000"},
	}
}
