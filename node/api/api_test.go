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
	"strings"
	"sync"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

func TestCreateGetPutDelete(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)

	r := e.do(t, req{method: "POST", path: "/v1/records", token: w, body: envelope("supply", "federation", supplyBody("高镍三元正极材料连续化制备技术"))})
	wantStatus(t, r, http.StatusCreated)
	rec := r.record(t)
	if !strings.HasPrefix(rec.ID, "tianjin:") || rec.Origin != "tianjin" || rec.Version != 1 || rec.Catalogue != "supply" {
		t.Fatalf("created %+v", rec)
	}
	if got := r.Header.Get("Location"); got != "/v1/records/"+rec.ID {
		t.Errorf("Location %q", got)
	}
	if got := r.Header.Get("ETag"); got != `"1"` {
		t.Errorf("ETag %q", got)
	}
	if rec.CreatedAt.IsZero() || rec.UpdatedAt.IsZero() {
		t.Errorf("timestamps not set: %+v", rec)
	}

	r = e.do(t, req{method: "GET", path: "/v1/records/" + rec.ID, token: w})
	wantStatus(t, r, http.StatusOK)
	if got := r.Header.Get("ETag"); got != `"1"` {
		t.Errorf("GET ETag %q", got)
	}
	if got := r.record(t); got.ID != rec.ID || !hasContact(got) {
		t.Errorf("GET %+v (contact %v)", got, hasContact(got))
	}
	if !strings.Contains(string(r.body), "高镍三元") {
		t.Errorf("Chinese text escaped or lost: %s", r.body)
	}

	// A GET → edit → PUT round trip, version as in the body.
	var env map[string]any
	json.Unmarshal(r.body, &env)
	env["body"].(map[string]any)["trl"] = 7
	r = e.do(t, req{method: "PUT", path: "/v1/records/" + rec.ID, token: w, body: env})
	wantStatus(t, r, http.StatusOK)
	if got := r.record(t); got.Version != 2 || !got.CreatedAt.Equal(rec.CreatedAt) {
		t.Errorf("after PUT: %+v", got)
	}

	// PUT under a caller-chosen key creates (201), then replaces (200).
	r = e.do(t, req{method: "PUT", path: "/v1/records/tianjin:need-42", token: w, body: envelope("need", "public", needBody("风电齿轮箱轴承寿命预测"))})
	wantStatus(t, r, http.StatusCreated)
	if got := r.Header.Get("Location"); got != "/v1/records/tianjin:need-42" {
		t.Errorf("Location %q", got)
	}
	r = e.do(t, req{method: "PUT", path: "/v1/records/tianjin:need-42", token: w, header: map[string]string{"If-Match": `"1"`},
		body: envelope("need", "public", needBody("风电齿轮箱轴承寿命预测（更新）"))})
	wantStatus(t, r, http.StatusOK)

	// DELETE answers 200 with the tombstone; the record is then 404.
	r = e.do(t, req{method: "DELETE", path: "/v1/records/tianjin:need-42", token: w, header: map[string]string{"If-Match": "*"}})
	wantStatus(t, r, http.StatusOK)
	if tomb := r.record(t); !tomb.Deleted || tomb.Version != 3 {
		t.Errorf("tombstone %+v", tomb)
	}
	r = e.do(t, req{method: "GET", path: "/v1/records/tianjin:need-42", token: w})
	wantStatus(t, r, http.StatusNotFound)
	if p := r.problem(t); !strings.Contains(p.Detail, "deleted") {
		t.Errorf("detail %q", p.Detail)
	}
	r = e.do(t, req{method: "DELETE", path: "/v1/records/tianjin:need-42", token: w})
	wantStatus(t, r, http.StatusNotFound)

	// PUT over the tombstone creates it again: 201.
	r = e.do(t, req{method: "PUT", path: "/v1/records/tianjin:need-42", token: w, body: envelope("need", "public", needBody("重新发布"))})
	wantStatus(t, r, http.StatusCreated)
	if got := r.record(t); got.Version != 4 {
		t.Errorf("re-created at version %d", got.Version)
	}
}

func TestStatusCodes(t *testing.T) {
	e := newEnv(t, false, func(_ *node.Config, o *Options) { o.MaxBodyBytes = 64 << 10 })
	w := e.writer(t)
	reader := e.token(t, "tianjin", auth.ScopeRead)
	rec := e.create(t, "supply", "federation", supplyBody("工业视觉缺陷检测深度学习算法"))
	priv := e.create(t, "supply", "private", supplyBody("自主可控工业操作系统内核"))
	gone := e.create(t, "supply", "public", supplyBody("已撤回的成果"))
	wantStatus(t, e.do(t, req{method: "DELETE", path: "/v1/records/" + gone.ID, token: w}), http.StatusOK)

	good := envelope("supply", "federation", supplyBody("碳纤维复合材料低成本成型工艺"))
	big := envelope("supply", "federation", supplyBody(strings.Repeat("长", 30000)))

	cases := []struct {
		name   string
		rq     req
		status int
		kind   string
		check  func(t *testing.T, r *resp, p Problem)
	}{
		{name: "malformed json", rq: req{method: "POST", path: "/v1/records", token: w, body: `{"catalogue": "supply",`},
			status: 400, kind: "malformed-json", check: func(t *testing.T, r *resp, p Problem) {
				if !strings.Contains(p.Detail, "byte 23") {
					t.Errorf("detail %q does not say where", p.Detail)
				}
			}},
		{name: "duplicate key", rq: req{method: "POST", path: "/v1/records", token: w, body: `{"catalogue":"supply","catalogue":"need","body":{}}`},
			status: 400, kind: "malformed-json", check: func(t *testing.T, r *resp, p Problem) {
				if len(p.Errors) != 1 || p.Errors[0].Rule != schema.RuleDuplicateKey {
					t.Errorf("errors %+v", p.Errors)
				}
			}},
		{name: "trailing data", rq: req{method: "POST", path: "/v1/records", token: w, body: `{"catalogue":"supply"} {}`}, status: 400, kind: "malformed-json"},
		{name: "not an object", rq: req{method: "POST", path: "/v1/records", token: w, body: `[1]`}, status: 400, kind: "malformed-json"},
		{name: "empty body", rq: req{method: "POST", path: "/v1/records", token: w, body: ``}, status: 400, kind: "malformed-json"},
		{name: "invalid utf-8", rq: req{method: "POST", path: "/v1/records", token: w, body: []byte("{\"catalogue\":\"su\xffpply\"}")},
			status: 400, kind: "malformed-json", check: func(t *testing.T, r *resp, p Problem) {
				if p.Errors[0].Rule != schema.RuleUTF8 || !strings.Contains(p.Detail, "byte 16") {
					t.Errorf("%+v", p)
				}
			}},
		{name: "unknown envelope member", rq: req{method: "POST", path: "/v1/records", token: w, body: `{"catalogue":"supply","title":"x","body":{}}`},
			status: 400, kind: "malformed-json", check: func(t *testing.T, r *resp, p Problem) {
				if p.Errors[0].Path != "title" {
					t.Errorf("errors %+v", p.Errors)
				}
			}},
		{name: "member of wrong type", rq: req{method: "POST", path: "/v1/records", token: w, body: `{"catalogue":5,"body":{}}`},
			status: 400, kind: "malformed-json", check: func(t *testing.T, r *resp, p Problem) {
				if p.Errors[0].Path != "catalogue" || p.Errors[0].Rule != schema.RuleType {
					t.Errorf("errors %+v", p.Errors)
				}
			}},
		{name: "huge integer", rq: req{method: "POST", path: "/v1/records", token: w, body: `{"catalogue":"supply","body":{"trl":9007199254740993}}`}, status: 400, kind: "malformed-json"},
		{name: "limit too big", rq: req{method: "GET", path: "/v1/records?limit=501", token: reader}, status: 400, kind: "bad-parameter",
			check: func(t *testing.T, r *resp, p Problem) {
				if p.Errors[0].Path != "limit" {
					t.Errorf("errors %+v", p.Errors)
				}
			}},
		{name: "limit not a number", rq: req{method: "GET", path: "/v1/records?limit=ten", token: reader}, status: 400, kind: "bad-parameter"},
		{name: "bad cursor", rq: req{method: "GET", path: "/v1/records?cursor=%21%21", token: reader}, status: 400, kind: "bad-parameter",
			check: func(t *testing.T, r *resp, p Problem) {
				if p.Errors[0].Path != "cursor" {
					t.Errorf("errors %+v", p.Errors)
				}
			}},
		{name: "change cursor as list cursor", rq: req{method: "GET", path: "/v1/records?cursor=" + encodePosition(3, ""), token: reader}, status: 400, kind: "bad-parameter"},
		{name: "unknown parameter", rq: req{method: "GET", path: "/v1/records?catalog=supply", token: reader}, status: 400, kind: "bad-parameter"},
		{name: "repeated parameter", rq: req{method: "GET", path: "/v1/records?catalogue=supply&catalogue=need", token: reader}, status: 400, kind: "bad-parameter"},
		{name: "unknown catalogue", rq: req{method: "GET", path: "/v1/records?catalogue=patents", token: reader}, status: 400, kind: "bad-parameter"},
		{name: "bad updated_since", rq: req{method: "GET", path: "/v1/records?updated_since=yesterday", token: reader}, status: 400, kind: "bad-parameter"},
		{name: "bad since", rq: req{method: "GET", path: "/v1/changes?since=xyz", token: reader}, status: 400, kind: "bad-parameter",
			check: func(t *testing.T, r *resp, p Problem) {
				if p.Errors[0].Path != "since" {
					t.Errorf("errors %+v", p.Errors)
				}
			}},
		{name: "negative wait", rq: req{method: "GET", path: "/v1/changes?wait=-1", token: reader}, status: 400, kind: "bad-parameter"},
		{name: "bad query encoding", rq: req{method: "GET", path: "/v1/records?q=%zz", token: reader}, status: 400, kind: "bad-parameter"},
		{name: "bad id", rq: req{method: "GET", path: "/v1/records/no-colon", token: reader}, status: 400, kind: "bad-parameter"},
		{name: "If-None-Match with a tag on PUT", rq: req{method: "PUT", path: "/v1/records/tianjin:new", token: w, body: good, header: map[string]string{"If-None-Match": `"1"`}}, status: 400, kind: "bad-parameter"},
		{name: "If-None-Match on a live record", rq: req{method: "PUT", path: "/v1/records/" + rec.ID, token: w, body: good, header: map[string]string{"If-None-Match": "*"}}, status: 412, kind: "precondition-failed"},
		{name: "bad If-Match", rq: req{method: "PUT", path: "/v1/records/" + rec.ID, token: w, body: good, header: map[string]string{"If-Match": "v1"}}, status: 400, kind: "bad-parameter"},

		{name: "bad token", rq: req{method: "GET", path: "/v1/records", token: "not.a.token"}, status: 401, kind: "unauthorized",
			check: func(t *testing.T, r *resp, p Problem) {
				if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") || !strings.Contains(got, "invalid_token") {
					t.Errorf("WWW-Authenticate %q", got)
				}
			}},
		{name: "wrong scheme", rq: req{method: "GET", path: "/v1/records", header: map[string]string{"Authorization": "Basic dXNlcjpwdw=="}}, status: 401, kind: "unauthorized"},
		{name: "token of a retired key", rq: req{method: "GET", path: "/v1/records", token: func() string {
			iss := &auth.TokenIssuer{Centre: "tianjin", Federation: testFederation, Key: e.retiredKey}
			tok, _ := iss.Issue("partner", []auth.Scope{auth.ScopeRead}, time.Hour, time.Now())
			return tok
		}()}, status: 401, kind: "unauthorized"},
		{name: "anonymous write", rq: req{method: "POST", path: "/v1/records", body: good}, status: 401, kind: "unauthorized",
			check: func(t *testing.T, r *resp, p Problem) {
				if r.Header.Get("WWW-Authenticate") == "" {
					t.Error("no WWW-Authenticate")
				}
			}},

		{name: "write token of another centre", rq: req{method: "POST", path: "/v1/records", token: e.token(t, "hebei", auth.ScopeRead, auth.ScopeWrite), body: good}, status: 403, kind: "forbidden"},
		{name: "token without write", rq: req{method: "POST", path: "/v1/records", token: reader, body: good}, status: 403, kind: "forbidden"},
		{name: "token without read", rq: req{method: "GET", path: "/v1/records", token: e.token(t, "tianjin", auth.ScopeWrite)}, status: 403, kind: "forbidden"},
		{name: "write to another origin", rq: req{method: "PUT", path: "/v1/records/hebei:x1", token: w, body: good}, status: 403, kind: "forbidden"},

		{name: "unknown id", rq: req{method: "GET", path: "/v1/records/tianjin:nope", token: reader}, status: 404, kind: "not-found"},
		{name: "deleted id", rq: req{method: "GET", path: "/v1/records/" + gone.ID, token: reader}, status: 404, kind: "not-found"},
		{name: "private record to another centre", rq: req{method: "GET", path: "/v1/records/" + priv.ID, token: e.token(t, "hebei", auth.ScopeRead)}, status: 404, kind: "not-found"},
		{name: "federation record to anonymous", rq: req{method: "GET", path: "/v1/records/" + rec.ID}, status: 404, kind: "not-found"},
		{name: "unknown route", rq: req{method: "GET", path: "/v2/records"}, status: 404, kind: "not-found"},
		{name: "unknown catalogue schema", rq: req{method: "GET", path: "/v1/schema/patents"}, status: 404, kind: "not-found"},
		{name: "federation not configured", rq: req{method: "GET", path: "/v1/federation"}, status: 404, kind: "not-found"},

		{name: "method not allowed", rq: req{method: "PATCH", path: "/v1/records/" + rec.ID, token: w, body: `{}`}, status: 405, kind: "method-not-allowed",
			check: func(t *testing.T, r *resp, p Problem) {
				if allow := r.Header.Get("Allow"); !strings.Contains(allow, "PUT") || !strings.Contains(allow, "DELETE") {
					t.Errorf("Allow %q", allow)
				}
			}},

		{name: "stale If-Match", rq: req{method: "PUT", path: "/v1/records/" + rec.ID, token: w, body: good, header: map[string]string{"If-Match": `"7"`}}, status: 412, kind: "precondition-failed"},
		{name: "stale version in body", rq: req{method: "PUT", path: "/v1/records/" + rec.ID, token: w, body: map[string]any{"catalogue": "supply", "version": 9, "body": supplyBody("x")}}, status: 412, kind: "precondition-failed"},
		{name: "If-Match on a missing record", rq: req{method: "PUT", path: "/v1/records/tianjin:absent", token: w, body: good, header: map[string]string{"If-Match": "*"}}, status: 412, kind: "precondition-failed"},
		// RFC 9110 §13.2.1: a DELETE that would be a 404 without its If-Match
		// stays a 404 (the precondition is ignored), as a PUT that would
		// create is a 412.
		{name: "If-Match on a missing record, DELETE", rq: req{method: "DELETE", path: "/v1/records/tianjin:absent", token: w, header: map[string]string{"If-Match": `"3"`}}, status: 404, kind: "not-found"},
		{name: "weak If-Match", rq: req{method: "DELETE", path: "/v1/records/" + rec.ID, token: w, header: map[string]string{"If-Match": `W/"1"`}}, status: 412, kind: "precondition-failed"},

		{name: "body too large", rq: req{method: "POST", path: "/v1/records", token: w, body: big}, status: 413, kind: "too-large"},
		{name: "text/plain", rq: req{method: "POST", path: "/v1/records", token: w, body: `{}`, header: map[string]string{"Content-Type": "text/plain"}}, status: 415, kind: "unsupported-media-type"},
		{name: "no content type", rq: req{method: "PUT", path: "/v1/records/" + rec.ID, token: w, body: `{}`, header: map[string]string{"Content-Type": ""}}, status: 415, kind: "unsupported-media-type"},
		// A body labelled compressed is refused whether or not it is: read as
		// it came, gzip failed as malformed JSON, and a plain body labelled br
		// was written.
		{name: "content encoding gzip", rq: req{method: "POST", path: "/v1/records", token: w, body: "\x1f\x8b\x08\x00", header: map[string]string{"Content-Encoding": "gzip"}}, status: 415, kind: "unsupported-media-type"},
		{name: "content encoding br over plain JSON", rq: req{method: "POST", path: "/v1/records", token: w, body: envelope("supply", "federation", supplyBody("压缩")), header: map[string]string{"Content-Encoding": "br"}}, status: 415, kind: "unsupported-media-type"},

		{name: "validation", rq: req{method: "POST", path: "/v1/records", token: w, body: map[string]any{"visibility": "secret", "body": map[string]any{"title": 5}}},
			status: 422, kind: "validation", check: func(t *testing.T, r *resp, p Problem) {
				paths := map[string]bool{}
				for _, fe := range p.Errors {
					paths[fe.Path] = true
					if fe.Rule == "" || fe.Message == "" {
						t.Errorf("incomplete field error %+v", fe)
					}
				}
				if !paths["catalogue"] || !paths["visibility"] {
					t.Errorf("errors %+v", p.Errors)
				}
			}},
		{name: "id contradicts URL", rq: req{method: "PUT", path: "/v1/records/tianjin:a", token: w, body: map[string]any{"id": "tianjin:b", "catalogue": "supply", "body": supplyBody("x")}}, status: 422, kind: "validation"},
		{name: "origin contradicts centre", rq: req{method: "POST", path: "/v1/records", token: w, body: map[string]any{"origin": "hebei", "catalogue": "supply", "body": supplyBody("x")}}, status: 422, kind: "validation"},
		{name: "deleted true", rq: req{method: "POST", path: "/v1/records", token: w, body: map[string]any{"deleted": true, "catalogue": "supply", "body": supplyBody("x")}}, status: 422, kind: "validation"},
		{name: "bad expires_at", rq: req{method: "POST", path: "/v1/records", token: w, body: map[string]any{"expires_at": "next year", "catalogue": "supply", "body": supplyBody("x")}}, status: 422, kind: "validation"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, c.rq)
			wantStatus(t, r, c.status)
			p := r.problem(t)
			if p.Type != ProblemTypePrefix+c.kind {
				t.Errorf("type %q, want %s", p.Type, c.kind)
			}
			if c.check != nil {
				c.check(t, r, p)
			}
		})
	}

	// Nothing above changed the record.
	r := e.do(t, req{method: "GET", path: "/v1/records/" + rec.ID, token: w})
	wantStatus(t, r, http.StatusOK)
	if got := r.record(t); got.Version != 1 {
		t.Errorf("record changed to version %d", got.Version)
	}
}

func TestIfMatchStaleChangesNothing(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	rec := e.create(t, "supply", "federation", supplyBody("液流电池储能系统集成技术"))
	wantStatus(t, e.do(t, req{method: "PUT", path: "/v1/records/" + rec.ID, token: w, header: map[string]string{"If-Match": `"1"`},
		body: envelope("supply", "federation", supplyBody("液流电池储能系统集成技术 v2"))}), http.StatusOK)

	// A writer still holding version 1.
	for _, rq := range []req{
		{method: "PUT", path: "/v1/records/" + rec.ID, token: w, header: map[string]string{"If-Match": `"1"`}, body: envelope("supply", "public", supplyBody("覆盖"))},
		{method: "PUT", path: "/v1/records/" + rec.ID, token: w, header: map[string]string{"If-Match": `1`}, body: envelope("supply", "public", supplyBody("覆盖"))},
		{method: "DELETE", path: "/v1/records/" + rec.ID, token: w, header: map[string]string{"If-Match": `"1"`}},
	} {
		r := e.do(t, rq)
		wantStatus(t, r, http.StatusPreconditionFailed)
		r.problem(t)
	}
	r := e.do(t, req{method: "GET", path: "/v1/records/" + rec.ID, token: w})
	wantStatus(t, r, http.StatusOK)
	got := r.record(t)
	var body map[string]any
	json.Unmarshal(got.Body, &body)
	if got.Version != 2 || got.Visibility != "federation" || body["title"] != "液流电池储能系统集成技术 v2" {
		t.Fatalf("record changed: %s", r.body)
	}
}

func TestRedaction(t *testing.T) {
	e := newEnv(t, false)
	rec := e.create(t, "supply", "federation", supplyBody("钙钛矿叠层太阳能电池制备技术"))
	cases := []struct {
		name    string
		token   string
		contact bool
	}{
		{"tianjin read", e.token(t, "tianjin", auth.ScopeRead), false},
		{"tianjin read+pii", e.token(t, "tianjin", auth.ScopeRead, auth.ScopePII), true},
		{"tianjin admin", e.token(t, "tianjin", auth.ScopeAdmin), true},
		{"hebei read+pii", e.token(t, "hebei", auth.ScopeRead, auth.ScopePII), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, req{method: "GET", path: "/v1/records/" + rec.ID, token: c.token})
			wantStatus(t, r, http.StatusOK)
			if got := hasContact(r.record(t)); got != c.contact {
				t.Errorf("GET: contact %v, want %v: %s", got, c.contact, r.body)
			}
			r = e.do(t, req{method: "GET", path: "/v1/records?catalogue=supply", token: c.token})
			wantStatus(t, r, http.StatusOK)
			var page listResponse
			json.Unmarshal(r.body, &page)
			if len(page.Items) != 1 || hasContact(page.Items[0]) != c.contact {
				t.Errorf("list: %s", r.body)
			}
			r = e.do(t, req{method: "GET", path: "/v1/changes", token: c.token})
			wantStatus(t, r, http.StatusOK)
			var feed changesResponse
			json.Unmarshal(r.body, &feed)
			if len(feed.Changes) != 1 || hasContact(feed.Changes[0].Record) != c.contact {
				t.Errorf("changes: %s", r.body)
			}
			if strings.Contains(string(r.body), "022-27400000") != c.contact {
				t.Errorf("phone number visibility wrong: %s", r.body)
			}
		})
	}
	// A writer without pii does not read contact back either.
	r := e.do(t, req{method: "POST", path: "/v1/records", token: e.token(t, "tianjin", auth.ScopeWrite, auth.ScopeRead),
		body: envelope("supply", "federation", supplyBody("写入者"))})
	wantStatus(t, r, http.StatusCreated)
	if hasContact(r.record(t)) {
		t.Errorf("write answer carries contact without pii: %s", r.body)
	}
}

func TestVisibility(t *testing.T) {
	e := newEnv(t, false)
	pub := e.create(t, "supply", "public", supplyBody("公开成果"))
	fed := e.create(t, "supply", "federation", supplyBody("联盟成果"))
	priv := e.create(t, "need", "private", needBody("内部需求"))

	ids := func(token, path string) map[string]bool {
		r := e.do(t, req{method: "GET", path: path, token: token})
		wantStatus(t, r, http.StatusOK)
		out := map[string]bool{}
		if strings.HasPrefix(path, "/v1/changes") {
			var feed changesResponse
			json.Unmarshal(r.body, &feed)
			for _, c := range feed.Changes {
				out[c.Record.ID] = true
			}
			return out
		}
		var page listResponse
		json.Unmarshal(r.body, &page)
		for _, it := range page.Items {
			out[it.ID] = true
		}
		return out
	}
	for _, path := range []string{"/v1/records", "/v1/changes"} {
		if got := ids("", path); len(got) != 1 || !got[pub.ID] {
			t.Errorf("anonymous %s: %v", path, got)
		}
		if got := ids(e.token(t, "hebei", auth.ScopeRead), path); len(got) != 2 || !got[pub.ID] || !got[fed.ID] {
			t.Errorf("hebei %s: %v", path, got)
		}
		if got := ids(e.token(t, "tianjin", auth.ScopeRead), path); len(got) != 3 || !got[priv.ID] {
			t.Errorf("tianjin %s: %v", path, got)
		}
	}
	r := e.do(t, req{method: "GET", path: "/v1/records/" + pub.ID})
	wantStatus(t, r, http.StatusOK)
	if hasContact(r.record(t)) {
		t.Error("anonymous reader sees contact")
	}
}

func TestAnonymousOff(t *testing.T) {
	e := newEnv(t, false, func(_ *node.Config, o *Options) {
		o.Authorizer = &auth.Authorizer{Centre: "tianjin", AllowAnonymous: false}
	})
	e.create(t, "supply", "public", supplyBody("公开成果"))
	for _, path := range []string{"/v1/records", "/v1/changes", "/v1/schema/supply"} {
		r := e.do(t, req{method: "GET", path: path})
		wantStatus(t, r, http.StatusUnauthorized)
		if r.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s: no WWW-Authenticate", path)
		}
	}
	wantStatus(t, e.do(t, req{method: "GET", path: "/healthz"}), http.StatusOK)
}

func TestListFilters(t *testing.T) {
	e := newEnv(t, false)
	a := e.create(t, "supply", "public", supplyBody("高镍三元正极材料连续化制备技术"))
	b := e.create(t, "need", "public", needBody("风电齿轮箱轴承寿命预测"))
	c := e.create(t, "supply", "public", map[string]any{
		"title": "CAR-T细胞治疗产品工艺开发平台", "summary": "平台", "industry": "biomedicine",
		"keywords": []string{"细胞治疗", "CAR-T"}, "trl": 5, "transfer_modes": []string{"license"}, "owner_org": "南开大学",
	})
	tok := e.token(t, "tianjin", auth.ScopeRead)
	cases := map[string][]string{
		"/v1/records?catalogue=supply":                        {a.ID, c.ID},
		"/v1/records?catalogue=need":                          {b.ID},
		"/v1/records?industry=biomedicine":                    {c.ID},
		"/v1/records?q=car-t":                                 {c.ID},
		"/v1/records?q=%E5%A4%A9%E6%B4%A5%E5%A4%A7":           {a.ID}, // 天津大
		"/v1/records?q=%E8%BD%B4%E6%89%BF+%E5%AF%BF%E5%91%BD": {b.ID}, // 轴承 寿命
		"/v1/records?q=nothing-like-this":                     {},
		"/v1/records?status=open":                             {b.ID},
		"/v1/records?origin=hebei":                            {},
		"/v1/records?origin=tianjin&catalogue=&q=":            {a.ID, b.ID, c.ID},
		"/v1/records?updated_since=2999-01-01T00:00:00Z":      {},
	}
	for path, want := range cases {
		r := e.do(t, req{method: "GET", path: path, token: tok})
		wantStatus(t, r, http.StatusOK)
		var page listResponse
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, it := range page.Items {
			got = append(got, it.ID)
		}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%s: got %v, want %v", path, got, want)
		}
		if page.NextCursor != "" {
			t.Errorf("%s: next_cursor on the last page", path)
		}
		if !strings.Contains(string(r.body), `"items":[`) {
			t.Errorf("%s: items not an array: %s", path, r.body)
		}
	}
}

func TestSchemaAndHealth(t *testing.T) {
	e := newEnv(t, false)
	r := e.do(t, req{method: "GET", path: "/v1/schema/need"})
	wantStatus(t, r, http.StatusOK)
	if ct := r.Header.Get("Content-Type"); ct != "application/schema+json" {
		t.Errorf("Content-Type %q", ct)
	}
	var doc map[string]any
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	wantStatus(t, e.do(t, req{method: "GET", path: "/healthz"}), http.StatusOK)
	wantStatus(t, e.do(t, req{method: "GET", path: "/readyz"}), http.StatusOK)
	wantStatus(t, e.do(t, req{method: "HEAD", path: "/healthz"}), http.StatusOK)
}

func TestReadyz(t *testing.T) {
	t.Run("no leader", func(t *testing.T) {
		e := newEnv(t, true)
		r := e.do(t, req{method: "GET", path: "/readyz"})
		wantStatus(t, r, http.StatusServiceUnavailable)
		r.problem(t)
		if r.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After")
		}
		// Writes are unavailable too, with Retry-After.
		r = e.do(t, req{method: "POST", path: "/v1/records", token: e.writer(t), body: envelope("supply", "federation", supplyBody("x"))})
		wantStatus(t, r, http.StatusServiceUnavailable)
		if r.problem(t); r.Header.Get("Retry-After") == "" {
			t.Error("no Retry-After on write")
		}
		wantStatus(t, e.do(t, req{method: "GET", path: "/healthz"}), http.StatusOK)
	})
	t.Run("after close", func(t *testing.T) {
		e := newEnv(t, false)
		wantStatus(t, e.do(t, req{method: "GET", path: "/readyz"}), http.StatusOK)
		if err := e.node.Close(); err != nil {
			t.Fatal(err)
		}
		r := e.do(t, req{method: "GET", path: "/readyz"})
		wantStatus(t, r, http.StatusServiceUnavailable)
		r.problem(t)
		r = e.do(t, req{method: "GET", path: "/v1/records", token: e.writer(t)})
		wantStatus(t, r, http.StatusServiceUnavailable)
		r.problem(t)
		wantStatus(t, e.do(t, req{method: "GET", path: "/healthz"}), http.StatusOK)
	})
}

func TestJWKS(t *testing.T) {
	e := newEnv(t, false)
	r := e.do(t, req{method: "GET", path: "/.well-known/jwks.json"})
	wantStatus(t, r, http.StatusOK)
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for _, m := range e.bundle.Members {
		for _, k := range m.TokenKeys {
			want[k.ID] = m.ID
		}
	}
	if len(doc.Keys) != len(want) || len(want) != 3 {
		t.Fatalf("keys %s, want %v", r.body, want)
	}
	for _, k := range doc.Keys {
		kid, _ := k["kid"].(string)
		if want[kid] == "" || k["centre"] != want[kid] || k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" {
			t.Errorf("key %v", k)
		}
		if x, _ := k["x"].(string); len(x) != 43 {
			t.Errorf("x %q is not 32 bytes of unpadded base64url", x)
		}
		if _, ok := k["nbf"]; !ok {
			t.Errorf("no nbf in %v", k)
		}
		if _, retired := k["exp"]; retired != (kid == e.retiredKey.ID) {
			t.Errorf("exp on %s: %v", kid, k)
		}
	}
}

func TestMetricsRouteLabels(t *testing.T) {
	e := newEnv(t, false)
	rec := e.create(t, "supply", "public", supplyBody("航空发动机叶片精密铸造技术"))
	wantStatus(t, e.do(t, req{method: "GET", path: "/v1/records/" + rec.ID}), http.StatusOK)
	wantStatus(t, e.do(t, req{method: "GET", path: "/v1/records/tianjin:missing"}), http.StatusNotFound)
	wantStatus(t, e.do(t, req{method: "GET", path: "/no/such/path/tianjin:x"}), http.StatusNotFound)
	wantStatus(t, e.do(t, req{method: "BREW", path: "/v1/records"}), http.StatusMethodNotAllowed)

	r := e.do(t, req{method: "GET", path: "/metrics"})
	wantStatus(t, r, http.StatusOK)
	text := string(r.body)
	for _, want := range []string{
		`liandong_http_requests_total{code="200",method="GET",route="/v1/records/{id}"} 1`,
		`liandong_http_requests_total{code="404",method="GET",route="/v1/records/{id}"} 1`,
		`liandong_http_requests_total{code="201",method="POST",route="/v1/records"} 1`,
		`liandong_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`liandong_http_requests_total{code="405",method="other",route="unmatched"} 1`,
		`liandong_http_request_duration_seconds_bucket{code="200",method="GET",route="/v1/records/{id}",le="+Inf"} 1`,
		`liandong_http_request_duration_seconds_bucket{code="404",method="GET",route="/v1/records/{id}",le="+Inf"} 1`,
		`liandong_http_requests_in_flight 1`,
		`liandong_raft_applied_index`, // the node's metrics share the registry
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(text, rec.ID) || strings.Contains(text, "tianjin:missing") || strings.Contains(text, "/no/such") {
		t.Error("a raw path leaked into the metric labels")
	}
}

func TestPanicRecovered(t *testing.T) {
	svc := &fakeService{get: func(context.Context, string) (*schema.Record, error) { panic("nil map somewhere") }}
	e := newFakeEnv(t, svc)
	r := e.do(t, req{method: "GET", path: "/v1/records/tianjin:x"})
	wantStatus(t, r, http.StatusInternalServerError)
	p := r.problem(t)
	if strings.Contains(string(r.body), "nil map") {
		t.Errorf("panic value leaked: %s", r.body)
	}
	if !strings.Contains(p.Detail, p.RequestID) || r.Header.Get("X-Request-Id") != p.RequestID {
		t.Errorf("request id not given: %+v", p)
	}
	// The server still serves.
	wantStatus(t, e.do(t, req{method: "GET", path: "/healthz"}), http.StatusOK)
}

func TestServiceErrors(t *testing.T) {
	tok := func(e *fakeEnv) string {
		return e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	}
	good := envelope("supply", "federation", supplyBody("二氧化碳加氢制甲醇催化剂"))
	cases := []struct {
		err    error
		status int
		retry  bool
	}{
		{errBoom, 500, false},
		{store.ErrExists, 409, false},
		{store.ErrVersionConflict, 412, false},
		{store.ErrNotOrigin, 403, false},
		{node.ErrNotLeader, 503, true},
		{node.ErrTimeout, 503, true},
		{node.ErrNotReady, 503, true},
		{node.ErrShutdown, 503, true},
		{node.ErrStateFailed, 503, true},
		{&schema.ValidationError{Errors: []schema.FieldError{{Path: "body.title", Rule: "required", Message: "is required"}}}, 422, false},
	}
	for _, c := range cases {
		t.Run(c.err.Error(), func(t *testing.T) {
			svc := &fakeService{create: func(context.Context, *schema.Record) (*schema.Record, error) { return nil, c.err }}
			e := newFakeEnv(t, svc)
			r := e.do(t, req{method: "POST", path: "/v1/records", token: tok(e), body: good})
			wantStatus(t, r, c.status)
			p := r.problem(t)
			if (r.Header.Get("Retry-After") != "") != c.retry {
				t.Errorf("Retry-After %q", r.Header.Get("Retry-After"))
			}
			if strings.Contains(string(r.body), "/var/lib") {
				t.Errorf("internal detail leaked: %s", r.body)
			}
			if c.status == 422 && (len(p.Errors) != 1 || p.Errors[0] != (FieldError{Path: "body.title", Rule: "required", Message: "is required"})) {
				t.Errorf("field errors not verbatim: %+v", p.Errors)
			}
		})
	}
}

func TestFederationRoute(t *testing.T) {
	svc := &fakeService{}
	e := newFakeEnv(t, svc, func(o *Options) {
		o.Federation = func(context.Context) (any, error) {
			return map[string]any{"bundle_version": 1, "members": []string{"tianjin", "hebei"}}, nil
		}
	})
	r := e.do(t, req{method: "GET", path: "/v1/federation", token: e.token(t, "hebei", auth.ScopeRead)})
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"bundle_version":1`) {
		t.Errorf("body %s", r.body)
	}
}

func TestNewRefusesMismatchedAuthorizer(t *testing.T) {
	_, err := New(Options{Service: &fakeService{centre: "tianjin"}, Authorizer: &auth.Authorizer{Centre: "hebei"}})
	if err == nil {
		t.Fatal("no error")
	}
	if _, err := New(Options{}); err == nil {
		t.Fatal("no error without a service")
	}
}

func TestNewServerTimeouts(t *testing.T) {
	srv := NewServer(":0", http.NotFoundHandler())
	if srv.ReadHeaderTimeout != 5*time.Second || srv.ReadTimeout != 30*time.Second || srv.WriteTimeout <= DefaultMaxWait ||
		srv.IdleTimeout != 120*time.Second || srv.MaxHeaderBytes != 64<<10 {
		t.Fatalf("%+v", srv)
	}
}

func TestRequestLogging(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&lockedWriter{mu: &mu, w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc := &fakeService{create: func(context.Context, *schema.Record) (*schema.Record, error) { return nil, errBoom }}
	e := newFakeEnv(t, svc, func(o *Options) { o.Logger = log })
	wantStatus(t, e.do(t, req{method: "GET", path: "/v1/records/tianjin:abc"}), http.StatusNotFound)
	wantStatus(t, e.do(t, req{method: "POST", path: "/v1/records", token: e.token(t, "tianjin", auth.ScopeWrite),
		body: envelope("supply", "public", supplyBody("x"))}), http.StatusInternalServerError)
	e.srv.Close()

	mu.Lock()
	defer mu.Unlock()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("%d log lines, want one per request: %s", len(lines), buf.String())
	}
	if l := lines[0]; l["level"] != "DEBUG" || l["route"] != "/v1/records/{id}" || l["status"] != float64(404) || l["request_id"] == "" {
		t.Errorf("first line %v", l)
	}
	if l := lines[1]; l["level"] != "ERROR" || !strings.Contains(fmt.Sprint(l["err"]), "disk on fire") || l["principal"] != "tianjin/partner-tianjin" {
		t.Errorf("second line %v", l)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

// TestHealthzReportsAFullDisk: /healthz stays 200 while the disk is full (the
// process serves, reads go on) and says so, for the leader's quorum check.
func TestHealthzReportsAFullDisk(t *testing.T) {
	svc := &fakeService{}
	e := newFakeEnv(t, svc)
	health := func() map[string]any {
		t.Helper()
		r := e.do(t, req{method: "GET", path: "/healthz"})
		wantStatus(t, r, http.StatusOK)
		var doc map[string]any
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatalf("healthz body %s: %v", r.body, err)
		}
		return doc
	}
	if doc := health(); doc["disk_full"] != nil || doc["disk"] != nil {
		t.Fatalf("disk reported full with space: %v", doc)
	}
	svc.diskFull = errors.New("disk full: raft's log cannot grow")
	doc := health()
	if doc["disk_full"] != true || doc["disk"] != "disk full: raft's log cannot grow" {
		t.Fatalf("a full disk not reported: %v", doc)
	}
}
