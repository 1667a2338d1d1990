package api

import (
	"bytes"
	"context"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
	"liandong/node"
	"liandong/node/api/openapitest"
	"liandong/schema"
)

func mustValidator(t *testing.T) *openapitest.Validator {
	t.Helper()
	doc, err := OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	v, err := openapitest.New(doc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestOpenAPIDescribesEveryRoute compares the routes New registers (its route
// table, with every optional route on) with the document's operations, both
// ways.
func TestOpenAPIDescribesEveryRoute(t *testing.T) {
	v := mustValidator(t)
	_, h := newMetricsEnv(t)
	var registered []string
	for _, rt := range h.(*handler).routes(prometheus.NewRegistry()) {
		registered = append(registered, rt.pattern)
	}
	if len(registered) < 10 {
		t.Fatalf("found only %d routes in api.go: %v", len(registered), registered)
	}
	var documented []string
	for path, item := range v.Doc.Paths.Map() {
		for method := range item.Operations() {
			documented = append(documented, method+" "+path)
		}
	}
	slices.Sort(registered)
	slices.Sort(documented)
	if !slices.Equal(registered, documented) {
		t.Fatalf("routes and document differ:\nregistered %v\ndocumented %v", registered, documented)
	}
	for _, c := range []string{"SupplyRecord", "NeedBody", "ExpertSubmission", "Problem", "ChangesResponse"} {
		if v.Doc.Components.Schemas[c] == nil {
			t.Errorf("no component schema %s", c)
		}
	}
}

// validated is an env whose requests are all checked against the document.
type validated struct {
	*env
	v *openapitest.Validator
}

func (e *validated) call(t *testing.T, rq req, skipRequest bool) *resp {
	t.Helper()
	var body []byte
	switch b := rq.body.(type) {
	case nil:
	case string:
		body = []byte(b)
	case []byte:
		body = b
	default:
		var err error
		if body, err = json.Marshal(b); err != nil {
			t.Fatal(err)
		}
	}
	hr, err := http.NewRequest(rq.method, e.srv.URL+rq.path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if rq.token != "" {
		hr.Header.Set("Authorization", "Bearer "+rq.token)
	}
	for k, val := range rq.header {
		hr.Header.Set(k, val)
	}
	res, data := e.v.Do(t, e.cli, hr, body, skipRequest)
	return &resp{Response: res, body: data}
}

// TestOpenAPIMatchesAnswers validates real answers of every kind against the
// document: records of the three catalogues, lists, the change feed and its
// stream, problem documents of each status, the schema, JWKS and operational
// routes.
func TestOpenAPIMatchesAnswers(t *testing.T) {
	e := &validated{env: newEnv(t, false, func(_ *node.Config, o *Options) {
		o.Heartbeat = 50 * time.Millisecond
		o.Federation = func(context.Context) (any, error) {
			return map[string]any{
				"centre": "tianjin", "peer_id": "12D3KooW",
				"bundle":  map[string]any{"federation": testFederation, "version": 1, "expires_at": time.Now().Add(time.Hour)},
				"members": []map[string]any{{"id": "tianjin", "name": "Tianjin Centre", "name_zh": "天津中心", "removed": false}},
			}, nil
		}
	}), v: mustValidator(t)}
	w := e.writer(t)
	reader := e.token(t, "hebei", auth.ScopeRead)
	ok := func(r *resp, code int) *resp {
		t.Helper()
		wantStatus(t, r, code)
		return r
	}

	// Records of each catalogue: created, read (with and without personal data),
	// replaced, listed, deleted.
	expert := map[string]any{"name": "李明", "title": "教授", "affiliation": "河北工业大学", "fields": []string{"new-materials"},
		"keywords": []string{"储能", "电池材料"}, "bio": "长期从事储能材料研究。", "roles": []string{"evaluation"}, "contact": map[string]string{"email": "li@example.edu.cn"}}
	sup := ok(e.call(t, req{method: "POST", path: "/v1/records", token: w, body: envelope("supply", "public", supplyBody("高镍三元正极材料"))}, false), 201).record(t)
	need := ok(e.call(t, req{method: "PUT", path: "/v1/records/tianjin:need-7", token: w, body: envelope("need", "federation", needBody("风电齿轮箱轴承寿命预测"))}, false), 201).record(t)
	challenge := needBody("揭榜挂帅：轴承寿命预测")
	challenge["kind"] = "challenge"
	challenge["challenge"] = map[string]any{"bounty": 1500000, "targets": []string{"预测误差 < 10%"}, "max_months": 24}
	call := ok(e.call(t, req{method: "POST", path: "/v1/records", token: w, body: envelope("need", "public", challenge)}, false), 201).record(t)
	exp := ok(e.call(t, req{method: "POST", path: "/v1/records", token: w, body: envelope("expert", "federation", expert)}, false), 201).record(t)
	ok(e.call(t, req{method: "GET", path: "/v1/records/" + sup.ID, token: w}, false), 200)
	ok(e.call(t, req{method: "GET", path: "/v1/records/" + sup.ID + "?consistent=true", token: reader}, false), 200)
	ok(e.call(t, req{method: "GET", path: "/v1/records/" + sup.ID}, false), 200) // anonymous, public
	ok(e.call(t, req{method: "PUT", path: "/v1/records/" + need.ID, token: w, header: map[string]string{"If-Match": `"1"`},
		body: envelope("need", "federation", needBody("风电齿轮箱轴承寿命预测（更新）"))}, false), 200)
	ok(e.call(t, req{method: "GET", path: "/v1/records?limit=2", token: reader}, false), 200)
	page := ok(e.call(t, req{method: "GET", path: "/v1/records?catalogue=need&q=轴承&industry=high-end-equipment&status=open&updated_since=2020-01-01T00:00:00Z", token: w}, false), 200)
	if !bytes.Contains(page.body, []byte(need.ID)) {
		t.Errorf("list misses %s: %s", need.ID, page.body)
	}
	var lr listResponse
	json.Unmarshal(ok(e.call(t, req{method: "GET", path: "/v1/records?limit=1", token: w}, false), 200).body, &lr)
	ok(e.call(t, req{method: "GET", path: "/v1/records?limit=1&cursor=" + lr.NextCursor, token: w}, false), 200)
	// Search (relevance and id order) and matchmaking.
	ok(e.call(t, req{method: "GET", path: "/v1/records?q=" + url.QueryEscape("轴承 寿命预测") + "&sort=id&limit=1", token: w}, false), 200)
	bearing := ok(e.call(t, req{method: "POST", path: "/v1/records", token: w, body: envelope("supply", "federation", supplyBody("风电轴承寿命预测技术"))}, false), 201).record(t)
	m := ok(e.call(t, req{method: "GET", path: "/v1/match/" + call.ID, token: w}, false), 200)
	if !bytes.Contains(m.body, []byte(bearing.ID)) || !bytes.Contains(m.body, []byte(`"reasons"`)) {
		t.Errorf("match: %s", m.body)
	}
	ok(e.call(t, req{method: "GET", path: "/v1/match/" + sup.ID + "?catalogue=expert&limit=3", token: reader}, false), 200)
	ok(e.call(t, req{method: "GET", path: "/v1/match/" + exp.ID, token: w}, true), 422).problem(t)
	ok(e.call(t, req{method: "DELETE", path: "/v1/records/" + need.ID, token: w, header: map[string]string{"If-Match": "*"}}, false), 200)

	// The change feed, with a tombstone in it, and a long poll that times out.
	feed := ok(e.call(t, req{method: "GET", path: "/v1/changes?since=0&limit=50&catalogue=need&origin=tianjin", token: w}, false), 200)
	if !bytes.Contains(feed.body, []byte(`"deleted":true`)) {
		t.Errorf("no tombstone in the feed: %s", feed.body)
	}
	var cr changesResponse
	json.Unmarshal(feed.body, &cr)
	ok(e.call(t, req{method: "GET", path: "/v1/changes?wait=0.1&since=" + cr.NextCursor, token: reader}, false), 200)

	// Problems of each kind.
	for _, c := range []struct {
		rq   req
		code int
	}{
		{req{method: "GET", path: "/v1/records?limit=0", token: w}, 400},
		{req{method: "GET", path: "/v1/records?catalog=supply", token: w}, 400},
		{req{method: "GET", path: "/v1/changes?since=bogus", token: w}, 400},
		{req{method: "GET", path: "/v1/records/nocolon", token: w}, 400},
		{req{method: "POST", path: "/v1/records", token: w, body: `{"catalogue":"supply","body":{"title":"x"},"title":"y"}`}, 400},
		{req{method: "GET", path: "/v1/records", token: "garbage"}, 401},
		{req{method: "POST", path: "/v1/records", body: envelope("supply", "public", supplyBody("匿名"))}, 401},
		{req{method: "POST", path: "/v1/records", token: reader, body: envelope("supply", "public", supplyBody("他人"))}, 403},
		{req{method: "GET", path: "/v1/records/tianjin:missing", token: w}, 404},
		{req{method: "GET", path: "/v1/schema/patents", token: w}, 404},
		{req{method: "GET", path: "/v1/nowhere", token: w}, 404},
		{req{method: "PATCH", path: "/v1/records/" + sup.ID, token: w}, 405},
		{req{method: "PUT", path: "/v1/records/" + sup.ID, token: w, header: map[string]string{"If-Match": "9"}, body: envelope("supply", "public", supplyBody("旧版本"))}, 412},
		{req{method: "POST", path: "/v1/records", token: w, header: map[string]string{"Content-Type": "text/plain"}, body: "hello"}, 415},
		{req{method: "POST", path: "/v1/records", token: w, body: envelope("supply", "public", map[string]any{"title": "", "industry": "steel"})}, 422},
	} {
		r := e.call(t, c.rq, true)
		wantStatus(t, r, c.code)
		r.problem(t)
	}

	// The rest of the routes.
	ok(e.call(t, req{method: "GET", path: "/v1/schema/need", token: reader}, false), 200)
	ok(e.call(t, req{method: "GET", path: "/v1/openapi.json"}, false), 200)
	ok(e.call(t, req{method: "GET", path: "/v1/federation", token: reader}, false), 200)
	ok(e.call(t, req{method: "GET", path: "/healthz"}, false), 200)
	ok(e.call(t, req{method: "GET", path: "/readyz"}, false), 200)
	ok(e.call(t, req{method: "GET", path: "/metrics"}, false), 200)
	ok(e.call(t, req{method: "GET", path: "/.well-known/jwks.json"}, false), 200)
	ok(e.call(t, req{method: "GET", path: "/v1/admin/replicas", token: e.token(t, "tianjin", auth.ScopeAdmin)}, false), 200)

	// The stream: read a moment of it, then check what came.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	hr, _ := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/v1/changes/stream?catalogue=supply", nil)
	hr.Header.Set("Authorization", "Bearer "+reader)
	res, err := e.cli.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(res.Body) // ends with the context
	res.Body.Close()
	if err := e.v.Check(openapitest.Exchange{Request: hr, Response: res, Body: body.Bytes()}); err != nil {
		t.Error(err)
	}
	if !strings.Contains(body.String(), "event: change") {
		t.Errorf("stream: %s", body.String())
	}
}

// TestOpenAPIDeclaresRetryAfter: a partner's retry loop waits on Retry-After,
// so the document declares it on the 503 (required: every 503 carries one) and
// on the 507 answers, and the node's real answers match that declaration.
func TestOpenAPIDeclaresRetryAfter(t *testing.T) {
	v := mustValidator(t)
	for _, c := range []struct {
		name string
		ref  string
		want bool // required
	}{
		{"503", "Unavailable", true},
		{"507", "InsufficientStorage", false},
		{"429", "TooManyWrites", true},
	} {
		r := v.Doc.Components.Responses[c.ref]
		if r == nil || r.Value == nil {
			t.Fatalf("no response %s", c.ref)
		}
		h := r.Value.Headers["Retry-After"]
		if h == nil || h.Value == nil {
			t.Errorf("%s (%s) does not declare Retry-After", c.ref, c.name)
			continue
		}
		if h.Value.Required != c.want {
			t.Errorf("%s: Retry-After required = %v, want %v", c.ref, h.Value.Required, c.want)
		}
	}

	// Real answers, checked against the document: a write refused because
	// the node lost its leader (503) and because its disk is full (507).
	for _, c := range []struct {
		err    error
		status int
	}{
		{node.ErrNotLeader, http.StatusServiceUnavailable},
		{node.ErrNotReady, http.StatusServiceUnavailable},
		{node.ErrDiskFull, http.StatusInsufficientStorage},
	} {
		t.Run(c.err.Error(), func(t *testing.T) {
			svc := &fakeService{create: func(context.Context, *schema.Record) (*schema.Record, error) { return nil, c.err }}
			e := newFakeEnv(t, svc)
			r := e.do(t, req{method: "POST", path: "/v1/records", token: e.token(t, "tianjin", auth.ScopeWrite),
				body: envelope("supply", "federation", supplyBody("二氧化碳加氢制甲醇催化剂"))})
			wantStatus(t, r, c.status)
			if r.Header.Get("Retry-After") == "" {
				t.Errorf("%d without Retry-After", c.status)
			}
			if err := v.Check(openapitest.Exchange{Request: r.Response.Request, Response: r.Response, Body: r.body, SkipRequest: true}); err != nil {
				t.Error(err)
			}
			// The document's declaration is what catches a 503 without it.
			r.Header.Del("Retry-After")
			err := v.Check(openapitest.Exchange{Request: r.Response.Request, Response: r.Response, Body: r.body, SkipRequest: true})
			if (err != nil) != (c.status == http.StatusServiceUnavailable) {
				t.Errorf("%d without Retry-After checked against the document: %v", c.status, err)
			}
		})
	}
}

// TestOpenAPIListsProblemTypes: partners branch on a problem's type, so the
// document lists every kind the handlers answer with, each with its title:
// read from the source, every newProblem call's kind must be in titles, and
// every kind in titles in the Problem schema's description. The source is
// parsed, not matched with a pattern: a call laid over several lines, or with
// its kind in a variable, slipped past a regular expression unchecked; here a
// kind that is not a literal fails. A 503 made with newProblem would carry no
// Retry-After, which the document requires: it must go through unavailable().
func TestOpenAPIListsProblemTypes(t *testing.T) {
	v := mustValidator(t)
	desc := v.Doc.Components.Schemas["Problem"].Value.Properties["type"].Value.Description
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		inUnavailable := func(pos token.Pos) bool {
			for _, d := range file.Decls {
				if fd, ok := d.(*ast.FuncDecl); ok && fd.Name.Name == "unavailable" && fd.Pos() <= pos && pos < fd.End() {
					return true
				}
			}
			return false
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) != 3 {
				return true
			}
			if id, ok := call.Fun.(*ast.Ident); !ok || id.Name != "newProblem" {
				return true
			}
			if sel, ok := call.Args[0].(*ast.SelectorExpr); ok && sel.Sel.Name == "StatusServiceUnavailable" && !inUnavailable(call.Pos()) {
				t.Errorf("%s: a 503 made with newProblem carries no Retry-After; use unavailable()", fset.Position(call.Pos()))
			}
			lit, ok := call.Args[1].(*ast.BasicLit)
			kind, err := "", error(nil)
			if ok && lit.Kind == token.STRING {
				kind, err = strconv.Unquote(lit.Value)
			}
			if !ok || lit.Kind != token.STRING || err != nil {
				t.Errorf("%s: newProblem's kind is not a string literal, so this test cannot check it", fset.Position(call.Pos()))
				return true
			}
			used[kind] = true
			return true
		})
	}
	if len(used) < 10 {
		t.Fatalf("found only %d problem kinds in the source: %v", len(used), used)
	}
	for kind := range used {
		if titles[kind] == "" {
			t.Errorf("problem kind %q has no title", kind)
		}
	}
	for kind := range titles {
		if kind == "client-closed" { // never sent
			continue
		}
		if !strings.Contains(desc, ProblemTypePrefix+kind+" ") {
			t.Errorf("problem type %s%s not listed in the document: %q", ProblemTypePrefix, kind, desc)
		}
	}
}
