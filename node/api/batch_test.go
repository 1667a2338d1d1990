package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"liandong/auth"
	"liandong/client"
	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

// batchResult is one item of a batch's answer.
type batchResult struct {
	Status  int            `json:"status"`
	Record  *schema.Record `json:"record"`
	Problem *Problem       `json:"problem"`
}

func (e *env) batch(t testing.TB, token string, items ...map[string]any) []batchResult {
	t.Helper()
	r := e.do(t, req{method: "POST", path: "/v1/batch", token: token, body: map[string]any{"items": items}})
	wantStatus(t, r, http.StatusOK)
	var out struct {
		Items []batchResult `json:"items"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("batch answer %s: %v", r.body, err)
	}
	if len(out.Items) != len(items) {
		t.Fatalf("%d results for %d items: %s", len(out.Items), len(items), r.body)
	}
	for i, res := range out.Items {
		switch {
		case res.Status >= 400 && (res.Problem == nil || res.Record != nil || res.Problem.Status != res.Status || res.Problem.RequestID == "" ||
			res.Problem.Instance != fmt.Sprintf("/v1/batch#items/%d", i)):
			t.Fatalf("item %d: refused without a full problem of its own: %+v", i, res)
		case res.Status < 400 && (res.Record == nil || res.Problem != nil):
			t.Fatalf("item %d: %d without its record: %+v", i, res.Status, res)
		}
	}
	return out.Items
}

// TestBatchAnswersEachItemAsItsRoute: each write of a batch gets what its
// single-record route would have answered, in the order sent, and one refused
// item neither stops nor undoes the others.
func TestBatchAnswersEachItemAsItsRoute(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	kept := e.create(t, "supply", "federation", supplyBody("保留的成果"))
	gone := e.create(t, "need", "federation", needBody("撤回的需求"))
	invalid := envelope("supply", "federation", map[string]any{"summary": "没有标题"})

	got := e.batch(t, w,
		map[string]any{"method": "POST", "record": envelope("supply", "public", supplyBody("批量新成果"))},
		map[string]any{"method": "POST", "record": invalid},
		map[string]any{"method": "PUT", "id": "tianjin:batch-put", "record": envelope("need", "federation", needBody("选定编号的需求"))},
		map[string]any{"method": "PUT", "id": kept.ID, "if_match": 7, "record": envelope("supply", "federation", supplyBody("过期的修改"))},
		map[string]any{"method": "DELETE", "id": gone.ID, "if_match": gone.Version},
		map[string]any{"method": "PATCH", "id": kept.ID},
		map[string]any{"method": "PUT", "id": "hebei:elsewhere", "record": envelope("supply", "federation", supplyBody("别的中心"))},
		map[string]any{"method": "DELETE", "id": "tianjin:never-was"},
	)
	want := []int{201, 422, 201, 412, 200, 400, 403, 404}
	for i, code := range want {
		if got[i].Status != code {
			t.Errorf("item %d: status %d, want %d (%+v)", i, got[i].Status, code, got[i].Problem)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The answers are the single routes'.
	single := e.do(t, req{method: "POST", path: "/v1/records", token: w, body: invalid}).problem(t)
	if fmt.Sprint(single.Errors) != fmt.Sprint(got[1].Problem.Errors) || single.Type != got[1].Problem.Type {
		t.Errorf("invalid item answered %+v, the route %+v", got[1].Problem, single)
	}
	if got[5].Problem.Errors[0].Path != "method" {
		t.Errorf("unknown method blamed %+v", got[5].Problem.Errors)
	}

	// And what they say was done is what is stored.
	created := got[0].Record
	if !strings.HasPrefix(created.ID, "tianjin:") || created.Version != 1 || created.Visibility != "public" {
		t.Fatalf("created %+v", created)
	}
	read := func(id string) *resp { return e.do(t, req{method: "GET", path: "/v1/records/" + id, token: w}) }
	wantStatus(t, read(created.ID), http.StatusOK)
	if r := read("tianjin:batch-put"); r.StatusCode != http.StatusOK || r.record(t).Version != 1 {
		t.Fatalf("PUT item not stored: %d %s", r.StatusCode, r.body)
	}
	if r := read(kept.ID); r.record(t).Version != kept.Version {
		t.Fatalf("the stale PUT was applied: version %d", r.record(t).Version)
	}
	wantStatus(t, read(gone.ID), http.StatusNotFound)
	if !got[4].Record.Deleted || got[4].Record.Version != gone.Version+1 {
		t.Fatalf("DELETE item answered %+v", got[4].Record)
	}

	for code, n := range map[string]float64{"201": 2, "200": 1, "400": 1, "403": 1, "404": 1, "412": 1, "422": 1} {
		if c := testutil.ToFloat64(e.h.(*handler).metrics.batchItems.WithLabelValues(code)); c != n {
			t.Errorf("batch_items_total{code=%q} = %v, want %v", code, c, n)
		}
	}
}

// TestClientKnowsTheBatchLimit: the client package cannot import this one.
func TestClientKnowsTheBatchLimit(t *testing.T) {
	if client.MaxBatch != MaxBatchItems {
		t.Fatalf("client.MaxBatch %d, the API takes %d", client.MaxBatch, MaxBatchItems)
	}
}

// TestBatchNamesEachIDOnce: items run concurrently, so two writes of one
// record in a batch would race; the second is refused and the first applied.
func TestBatchNamesEachIDOnce(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	got := e.batch(t, w,
		map[string]any{"method": "PUT", "id": "tianjin:twice", "record": envelope("supply", "federation", supplyBody("第一次"))},
		map[string]any{"method": "DELETE", "id": "tianjin:twice"},
		map[string]any{"method": "PUT", "id": "tianjin:twice", "record": envelope("supply", "federation", supplyBody("第二次"))},
	)
	if got[0].Status != http.StatusCreated || got[1].Status != http.StatusBadRequest || got[2].Status != http.StatusBadRequest {
		t.Fatalf("statuses %d %d %d", got[0].Status, got[1].Status, got[2].Status)
	}
	if fe := got[2].Problem.Errors; len(fe) != 1 || fe[0].Path != "id" || fe[0].Rule != schema.RuleUnique || !strings.Contains(fe[0].Message, "item 0") {
		t.Fatalf("duplicate answered %+v", got[2].Problem)
	}
	r := e.do(t, req{method: "GET", path: "/v1/records/tianjin:twice", token: w})
	wantStatus(t, r, http.StatusOK)
	if rec := r.record(t); rec.Version != 1 || !strings.Contains(string(rec.Body), "第一次") {
		t.Fatalf("stored %+v", rec)
	}
}

// TestBatchManyCreates: a full batch of creates is applied, each once, under
// ids of its own, and the change feed carries every one.
func TestBatchManyCreates(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	items := make([]map[string]any, 300)
	for i := range items {
		items[i] = map[string]any{"method": "POST", "record": envelope("supply", "federation", supplyBody(fmt.Sprintf("成果 %d", i)))}
	}
	got := e.batch(t, w, items...)
	ids := map[string]int{}
	for i, res := range got {
		if res.Status != http.StatusCreated {
			t.Fatalf("item %d: %d %+v", i, res.Status, res.Problem)
		}
		if !strings.Contains(string(res.Record.Body), fmt.Sprintf(`"成果 %d"`, i)) {
			t.Fatalf("item %d answered another item's record: %s", i, res.Record.Body)
		}
		if j, dup := ids[res.Record.ID]; dup {
			t.Fatalf("items %d and %d got id %s", j, i, res.Record.ID)
		}
		ids[res.Record.ID] = i
	}
	r := e.do(t, req{method: "GET", path: "/v1/changes?limit=500", token: w})
	wantStatus(t, r, http.StatusOK)
	var feed struct {
		Changes []struct {
			Record schema.Record `json:"record"`
		} `json:"changes"`
	}
	if err := json.Unmarshal(r.body, &feed); err != nil {
		t.Fatal(err)
	}
	for _, c := range feed.Changes {
		delete(ids, c.Record.ID)
	}
	if len(ids) != 0 {
		t.Fatalf("%d created records missing from the feed", len(ids))
	}
}

// TestBatchPreconditions: if_match takes what If-Match takes, as a number or
// a string, and its refusals name it.
func TestBatchPreconditions(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	for _, c := range []struct {
		ifMatch any
		want    int
	}{
		{1, http.StatusOK},
		{"1", http.StatusOK},
		{`"1"`, http.StatusOK},
		{"*", http.StatusOK},
		{nil, http.StatusOK},
		{2, http.StatusPreconditionFailed},
		{`W/"1"`, http.StatusPreconditionFailed},
		{0, http.StatusPreconditionFailed},
		{-1, http.StatusBadRequest},
		{1.5, http.StatusBadRequest},
		{true, http.StatusBadRequest},
		{"1, 2", http.StatusBadRequest},
	} {
		rec := e.create(t, "supply", "federation", supplyBody("前提"))
		item := map[string]any{"method": "PUT", "id": rec.ID, "record": envelope("supply", "federation", supplyBody("改"))}
		if c.ifMatch != nil {
			item["if_match"] = c.ifMatch
		}
		got := e.batch(t, w, item)[0]
		if got.Status != c.want {
			t.Errorf("if_match %#v: %d, want %d (%+v)", c.ifMatch, got.Status, c.want, got.Problem)
			continue
		}
		if c.want == http.StatusBadRequest && got.Problem.Errors[0].Path != "if_match" {
			t.Errorf("if_match %#v: blamed %+v", c.ifMatch, got.Problem.Errors)
		}
	}
}

// TestBatchRedactsAsTheRoute: a writer without the pii scope is answered
// each record without its personal data, which is stored all the same.
func TestBatchRedactsAsTheRoute(t *testing.T) {
	e := newEnv(t, false)
	noPII := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	got := e.batch(t, noPII, map[string]any{"method": "POST", "record": envelope("supply", "federation", supplyBody("带联系人"))})[0]
	if got.Status != http.StatusCreated || hasContact(got.Record) {
		t.Fatalf("answered %d with contact %v", got.Status, got.Record != nil && hasContact(got.Record))
	}
	r := e.do(t, req{method: "GET", path: "/v1/records/" + got.Record.ID, token: e.writer(t)})
	if !hasContact(r.record(t)) {
		t.Fatal("the contact was not stored")
	}
}

// TestBatchRefusesWhatIsNotABatch: a body that is not a batch is one 400
// (or 401/403/413/415, as for any write) naming what is wrong; nothing is
// written.
func TestBatchRefusesWhatIsNotABatch(t *testing.T) {
	e := newFakeEnv(t, &fakeService{}, func(o *Options) { o.MaxBodyBytes = 1 << 20 })
	w := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	post := `{"method":"POST","record":{"catalogue":"supply","body":{}}}`
	tooMany := `{"items":[` + strings.TrimSuffix(strings.Repeat(post+",", MaxBatchItems+1), ",") + `]}`
	for _, c := range []struct {
		name, body, token, contentType string
		want                           int
		path                           string
	}{
		{"empty", "", w, "", 400, ""},
		{"array", "[" + post + "]", w, "", 400, ""},
		{"no items", `{}`, w, "", 400, "items"},
		{"null items", `{"items":null}`, w, "", 400, "items"},
		{"no writes", `{"items":[]}`, w, "", 400, "items"},
		{"items not an array", `{"items":{}}`, w, "", 400, "items"},
		{"unknown member", `{"items":[` + post + `],"atomic":true}`, w, "", 400, "atomic"},
		{"unknown member, spaced", `{"items": [` + post + `], "atomic": true}`, w, "", 400, "atomic"},
		{"member named in another case", `{"Items": [` + post + `]}`, w, "", 400, "Items"},
		{"too many, spaced", strings.ReplaceAll(tooMany, ",", ", "), w, "", 400, "items"},
		{"many tiny items", `{"items":[` + strings.Repeat("0,", 200000) + `0]}`, w, "", 400, "items"},
		{"duplicate member", `{"items":[],"items":[` + post + `]}`, w, "", 400, ""},
		{"trailing data", `{"items":[` + post + `]} {}`, w, "", 400, ""},
		{"invalid UTF-8", "{\"items\":[\xff]}", w, "", 400, ""},
		{"too many", tooMany, w, "", 400, "items"},
		{"anonymous", `{"items":[` + post + `]}`, "", "", 401, ""},
		{"read-only token", `{"items":[` + post + `]}`, e.token(t, "tianjin", auth.ScopeRead), "", 403, ""},
		{"not JSON", `{"items":[` + post + `]}`, w, "text/plain", 415, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			rq := req{method: "POST", path: "/v1/batch", token: c.token, body: c.body}
			if c.contentType != "" {
				rq.header = map[string]string{"Content-Type": c.contentType}
			}
			if c.body == "" {
				rq.body = []byte{}
			}
			r := doHTTP(t, e.cli, e.srv.URL, rq)
			if r.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", r.StatusCode, c.want, r.body)
			}
			p := r.problem(t)
			if c.path != "" && (len(p.Errors) == 0 || p.Errors[0].Path != c.path) {
				t.Fatalf("blamed %+v, want %q", p.Errors, c.path)
			}
		})
	}
}

// TestBatchItemShapes: an item that is not a write is refused alone, naming
// the member at fault; the items beside it are applied.
func TestBatchItemShapes(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	good := envelope("supply", "federation", supplyBody("好"))
	for _, c := range []struct {
		name string
		item any
		path string
	}{
		{"not an object", 5, ""},
		{"no method", map[string]any{"record": good}, "method"},
		{"lower-case method", map[string]any{"method": "post", "record": good}, "method"},
		{"unknown member", map[string]any{"method": "POST", "record": good, "atomic": true}, ""},
		{"POST with an id", map[string]any{"method": "POST", "id": "tianjin:x", "record": good}, "id"},
		{"POST with if_match", map[string]any{"method": "POST", "if_match": 1, "record": good}, "if_match"},
		{"POST without a record", map[string]any{"method": "POST"}, "record"},
		{"PUT with a null record", map[string]any{"method": "PUT", "id": "tianjin:x", "record": nil}, "record"},
		{"PUT without an id", map[string]any{"method": "PUT", "record": good}, "id"},
		{"PUT with a bad id", map[string]any{"method": "PUT", "id": "x", "record": good}, "id"},
		{"id not a string", map[string]any{"method": "PUT", "id": 5, "record": good}, "id"},
		{"DELETE with a record", map[string]any{"method": "DELETE", "id": "tianjin:x", "record": good}, "record"},
		{"record not an object", map[string]any{"method": "POST", "record": "x"}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(t, req{method: "POST", path: "/v1/batch", token: w, body: map[string]any{"items": []any{
				map[string]any{"method": "POST", "record": good}, c.item}}})
			wantStatus(t, r, http.StatusOK)
			var out struct{ Items []batchResult }
			if err := json.Unmarshal(r.body, &out); err != nil {
				t.Fatal(err)
			}
			if out.Items[0].Status != http.StatusCreated {
				t.Fatalf("the good item beside it: %+v", out.Items[0])
			}
			p := out.Items[1].Problem
			if out.Items[1].Status != http.StatusBadRequest || p == nil || len(p.Errors) == 0 || p.Errors[0].Path != c.path {
				t.Fatalf("answered %s", r.body)
			}
		})
	}
}

// FuzzBatch drives the batch decoder through the route: it never panics,
// answers a body that is not a batch with a 4xx problem, and a batch with one
// result per item, each a record or a 4xx problem.
func FuzzBatch(f *testing.F) {
	f.Add([]byte(`{"items":[{"method":"POST","record":{"catalogue":"supply","visibility":"public","body":{"title":"高镍三元正极材料","summary":"s","industry":"new-materials","keywords":["a"],"trl":6,"transfer_modes":["license"],"owner_org":"天津大学"}}}]}`))
	f.Add([]byte(`{"items":[{"method":"PUT","id":"tianjin:exists","if_match":3,"record":{"catalogue":"expert","body":{}}},{"method":"DELETE","id":"tianjin:exists","if_match":"*"}]}`))
	f.Add([]byte(`{"items":[{"method":"PUT","id":"tianjin:new","if_match":"W/\"1\"","record":{"catalogue":"need","body":null}},{"method":"PUT","id":"tianjin:new","record":{}}]}`))
	f.Add([]byte(`{"items":[{"method":"GET"},5,null,[],{"method":"DELETE","id":"x","if_match":-1}]}`))
	f.Add([]byte(`{"items":[{"method":"POST","method":"DELETE","record":{"catalogue":"supply"}}]}`))
	f.Add([]byte(`{"items":[{"method":"PUT","id":"tianjin:new","if_none_match":"*","record":{"catalogue":"expert","body":{}}},{"method":"PUT","id":"tianjin:exists","if_none_match":"*","if_match":1,"record":{}},{"method":"POST","if_none_match":"x"}]}`))
	f.Add([]byte(`{"items":[]}`))
	f.Add([]byte(`{"items":{"method":"POST"}}`))
	f.Add([]byte("{\"items\":[{\"method\":\"\xff\"}]}"))
	f.Add([]byte(`{"items":[{"method":"POST","record":{"body":{"n":9007199254740993}}}],"x":1}`))
	f.Add([]byte(``))
	h, tok := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		r := httptest.NewRequest("POST", "/v1/batch", bytes.NewReader(data))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		checkAnswer(t, rec, http.StatusOK)
		if rec.Code != http.StatusOK {
			return
		}
		var in struct{ Items []json.RawMessage }
		if err := json.Unmarshal(data, &in); err != nil {
			t.Fatalf("answered 200 to a body encoding/json refuses (%v): %q", err, data)
		}
		var out struct{ Items []batchResult }
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("answer is not JSON (%v): %s", err, rec.Body)
		}
		if len(out.Items) != len(in.Items) || len(out.Items) == 0 || len(out.Items) > MaxBatchItems {
			t.Fatalf("%d results for %d items", len(out.Items), len(in.Items))
		}
		for i, res := range out.Items {
			ok := res.Status >= 200 && res.Status < 300 && res.Record != nil && res.Problem == nil ||
				res.Status >= 400 && res.Status < 500 && res.Problem != nil && res.Problem.Status == res.Status && res.Record == nil
			if !ok {
				t.Fatalf("item %d: %+v in %s", i, res, rec.Body)
			}
		}
	})
}

// FuzzDecodeBatchItemFastPath holds the walk of a canonical item to what
// encoding/json's way makes of it: the same write, or the same refusal.
func FuzzDecodeBatchItemFastPath(f *testing.F) {
	f.Add([]byte(`{"method":"POST","record":{"body":{"title":"高镍"},"catalogue":"supply"}}`))
	f.Add([]byte(`{"id":"tianjin:x","if_match":"*","method":"PUT","record":{"body":{},"catalogue":"expert","version":2}}`))
	f.Add([]byte(`{"id":"tianjin:x","if_match":3,"method":"DELETE"}`))
	f.Add([]byte(`{"id":"tianjin:x","method":"DELETE","record":null}`))
	f.Add([]byte(`{"id":"tianjin:\u0078","method":"PUT","record":{}}`))
	f.Add([]byte(`{"id":"tianjin:x","if_none_match":"*","method":"PUT","record":{"body":{},"catalogue":"expert"}}`))
	f.Add([]byte(`{"id":"tianjin:x","if_match":"2","if_none_match":"*","method":"PUT","record":{}}`))
	f.Add([]byte(`{"id":"tianjin:x","if_none_match":null,"method":"DELETE"}`))
	f.Add([]byte(`{"Method":"POST","record":{}}`))
	f.Add([]byte(`{"atomic":true,"method":"POST"}`))
	f.Add([]byte(`{"id":5,"method":["PUT"]}`))
	f.Add([]byte(`[{"method":"POST"}]`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		if schema.CheckCanonical(raw) != nil {
			return // the walk is only taken on canonical batches
		}
		fast := decodeBatchItem(raw, true, "tianjin")
		slow := decodeBatchItem(raw, false, "tianjin")
		if (fast.err == nil) != (slow.err == nil) {
			t.Fatalf("fast way: %v; encoding/json's: %v", fast.err, slow.err)
		}
		if fast.err != nil {
			fj, _ := json.Marshal(fast.err)
			sj, _ := json.Marshal(slow.err)
			if string(fj) != string(sj) {
				t.Fatalf("problems differ:\nfast %s\nslow %s", fj, sj)
			}
			return
		}
		if fast.Method != slow.Method || fast.ID != slow.ID || fast.pc != slow.pc ||
			!bytes.Equal(fast.IfMatch, slow.IfMatch) || !bytes.Equal(fast.IfNoneMatch, slow.IfNoneMatch) || !bytes.Equal(fast.Record, slow.Record) || (fast.req == nil) != (slow.req == nil) {
			t.Fatalf("items differ:\nfast %+v\nslow %+v", fast, slow)
		}
		if fast.req != nil {
			fj, _ := json.Marshal(fast.req.rec)
			sj, _ := json.Marshal(slow.req.rec)
			if string(fj) != string(sj) || fast.req.version != slow.req.version || fast.req.visibility != slow.req.visibility || !bytes.Equal(fast.req.rec.Body, slow.req.rec.Body) {
				t.Fatalf("records differ:\nfast %s\nslow %s", fj, sj)
			}
		}
	})
}

// TestBatchOfTinyItemsIsRefusedCheaply: a 1 MiB body of half a million
// one-byte items is refused without decoding them all (it took 60 times
// its size before both walks stopped one item past the bound).
func TestBatchOfTinyItemsIsRefusedCheaply(t *testing.T) {
	for _, body := range []string{
		`{"items":[` + strings.Repeat("0,", 500000) + `0]}`,
		`{"items": [` + strings.Repeat("0, ", 340000) + `0]}`,
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := decodeBatch([]byte(body), "tianjin")
		runtime.ReadMemStats(&after)
		if err == nil || !strings.Contains(err.Error(), "at most 500") {
			t.Fatalf("not refused: %v", err)
		}
		if got := after.TotalAlloc - before.TotalAlloc; got > 8*uint64(len(body)) {
			t.Errorf("refusing a %d-byte body allocated %d bytes", len(body), got)
		}
	}
}

// TestBatchWritePanicIsOneItemsFailure: a write that panics is answered
// 500 for its item alone, as its route would be, and the process goes on
// (the workers are not under ServeHTTP's recovery).
func TestBatchWritePanicIsOneItemsFailure(t *testing.T) {
	var m map[string]int
	svc := &fakeService{get: func(_ context.Context, id string) (*schema.Record, error) {
		if id == "tianjin:boom" {
			m["x"]++ // a nil map: the kind of bug the route answers 500
		}
		return nil, store.ErrNotFound
	}}
	e := newFakeEnv(t, svc)
	w := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	r := doHTTP(t, e.cli, e.srv.URL, req{method: "POST", path: "/v1/batch", token: w, body: map[string]any{"items": []any{
		map[string]any{"method": "DELETE", "id": "tianjin:boom"},
		map[string]any{"method": "DELETE", "id": "tianjin:calm"},
	}}})
	wantStatus(t, r, http.StatusOK)
	var out struct{ Items []batchResult }
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	if out.Items[0].Status != http.StatusInternalServerError || out.Items[0].Problem == nil || out.Items[1].Status != http.StatusNotFound {
		t.Fatalf("answered %s", r.body)
	}
}

// TestBatchIfMatchAgainstTheRecordsVersion: an item's if_match that
// contradicts its record's version member is blamed on if_match.
func TestBatchIfMatchAgainstTheRecordsVersion(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	rec := e.create(t, "supply", "federation", supplyBody("版本"))
	body := envelope("supply", "federation", supplyBody("改"))
	body["version"] = 2
	got := e.batch(t, w, map[string]any{"method": "PUT", "id": rec.ID, "if_match": 1, "record": body})[0]
	if got.Status != http.StatusBadRequest || got.Problem.Errors[0].Path != "if_match" || !strings.Contains(got.Problem.Detail, "if_match contradicts") {
		t.Fatalf("answered %d %+v", got.Status, got.Problem)
	}
}

// TestBatchesShareABoundOfWrites: one batch has batchWorkers writes under
// way at once, and all batches together maxBatchWrites.
func TestBatchesShareABoundOfWrites(t *testing.T) {
	var mu sync.Mutex
	inFlight, most := 0, 0
	release := make(chan struct{})
	svc := &fakeService{create: func(_ context.Context, rec *schema.Record) (*schema.Record, error) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		out := rec.Clone()
		out.ID, out.Version = "tianjin:x", 1
		return out, nil
	}}
	e := newFakeEnv(t, svc)
	w := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	items := make([]any, 100)
	for i := range items {
		items[i] = map[string]any{"method": "POST", "record": map[string]any{"catalogue": "supply", "body": map[string]any{}}}
	}
	const batches = maxBatchWrites/batchWorkers + 1
	var wg sync.WaitGroup
	for range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := doHTTP(t, e.cli, e.srv.URL, req{method: "POST", path: "/v1/batch", token: w, body: map[string]any{"items": items}})
			if r.StatusCode != http.StatusOK || bytes.Count(r.body, []byte(`"status":201`)) != len(items) {
				t.Errorf("batch answered %d: %.300s", r.StatusCode, r.body)
			}
		}()
	}
	// Every batch is under way and blocked (each of its writes waits for
	// release) well within this; then they all finish.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := inFlight
		mu.Unlock()
		if n >= maxBatchWrites || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // room for a write past the bound to show
	close(release)
	wg.Wait()
	if most != maxBatchWrites {
		t.Fatalf("%d writes of %d batches under way at once, want the bound %d", most, batches, maxBatchWrites)
	}
}

// TestBatchOfExactlyTheBound: MaxBatchItems items are a batch, one more is not.
func TestBatchOfExactlyTheBound(t *testing.T) {
	item := `{"id":"tianjin:x","method":"DELETE"}`
	for n, ok := range map[int]bool{MaxBatchItems: true, MaxBatchItems + 1: false} {
		for _, sep := range []string{",", ", "} {
			body := `{"items":[` + strings.TrimSuffix(strings.Repeat(item+sep, n), sep) + `]}`
			items, err := decodeBatch([]byte(body), "tianjin")
			if ok && (err != nil || len(items) != n) {
				t.Errorf("%d items (separated by %q): %d decoded, %v", n, sep, len(items), err)
			}
			if !ok && err == nil {
				t.Errorf("%d items (separated by %q) accepted", n, sep)
			}
		}
	}
}

// TestBatchCarriesRetryAfter: an item's Retry-After cannot travel with it,
// so the answer carries the longest any item was given.
func TestBatchCarriesRetryAfter(t *testing.T) {
	svc := &fakeService{create: func(_ context.Context, rec *schema.Record) (*schema.Record, error) {
		if strings.Contains(string(rec.Body), "timeout") {
			return nil, node.ErrTimeout // 503, Retry-After 2
		}
		return nil, node.ErrNotLeader // 503, Retry-After 1
	}}
	e := newFakeEnv(t, svc)
	w := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	post := func(title string) map[string]any {
		return map[string]any{"method": "POST", "record": map[string]any{"catalogue": "supply", "body": map[string]any{"title": title}}}
	}
	r := doHTTP(t, e.cli, e.srv.URL, req{method: "POST", path: "/v1/batch", token: w, body: map[string]any{"items": []any{post("leader"), post("timeout"), post("leader")}}})
	wantStatus(t, r, http.StatusOK)
	if got := r.Header.Get("Retry-After"); got != "2" {
		t.Fatalf("Retry-After %q, want 2: %s", got, r.body)
	}
	svc.create = func(_ context.Context, rec *schema.Record) (*schema.Record, error) {
		return nil, store.ErrVersionConflict
	}
	r = doHTTP(t, e.cli, e.srv.URL, req{method: "POST", path: "/v1/batch", token: w, body: map[string]any{"items": []any{post("x")}}})
	if got := r.Header.Get("Retry-After"); got != "" {
		t.Fatalf("Retry-After %q on an answer no item asked to retry", got)
	}
}

// TestBatchItemsExportedBeforeTheFirstBatch: the alert and the dashboard
// name liandong_http_batch_items_total; a node that never saw a batch
// exports it all the same.
func TestBatchItemsExportedBeforeTheFirstBatch(t *testing.T) {
	e := newEnv(t, false)
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "liandong_http_batch_items_total" && len(f.GetMetric()) > 0 {
			return
		}
	}
	t.Fatal("liandong_http_batch_items_total not exported before a batch")
}

// lineCounter counts the log lines that hold a phrase.
type lineCounter struct {
	mu     sync.Mutex
	phrase string
	n      int
}

func (c *lineCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *lineCounter) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n += bytes.Count(b, []byte(c.phrase))
	return len(b), nil
}

// TestBatchPanicIsLoggedOnce: a write that panics is logged once, with its
// stack, and not a second time as a failed item; a failed item that did not
// panic is logged as such.
func TestBatchPanicIsLoggedOnce(t *testing.T) {
	svc := &fakeService{get: func(_ context.Context, id string) (*schema.Record, error) {
		switch id {
		case "tianjin:boom":
			panic("nil map somewhere")
		case "tianjin:fire":
			return nil, errBoom
		}
		return nil, store.ErrNotFound
	}}
	panics, failed := &lineCounter{phrase: "batch write panicked"}, &lineCounter{phrase: "batch item failed"}
	e := newFakeEnv(t, svc, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(io.MultiWriter(panics, failed), nil))
	})
	w := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	r := e.do(t, req{method: "POST", path: "/v1/batch", token: w, body: map[string]any{"items": []any{
		map[string]any{"method": "DELETE", "id": "tianjin:boom"},
		map[string]any{"method": "DELETE", "id": "tianjin:fire"},
		map[string]any{"method": "DELETE", "id": "tianjin:calm"},
	}}})
	wantStatus(t, r, http.StatusOK)
	if !strings.Contains(string(r.body), `"status":500`) {
		t.Fatalf("answered %s", r.body)
	}
	if panics.count() != 1 || failed.count() != 1 {
		t.Errorf("logged %d panics and %d failed items, want 1 and 1 (the item that did not panic)", panics.count(), failed.count())
	}
}

// TestWritesAskAboutTheRecordWritten: PUT and DELETE, alone and in a batch,
// ask the authoriser about the record they would change, not only about the
// collection: a stored record whose origin is another centre's (which ids
// of this centre never name, unless the state is damaged) is refused 403
// and left as it is.
func TestWritesAskAboutTheRecordWritten(t *testing.T) {
	var writes atomic.Int32
	foreign := &schema.Record{ID: "tianjin:odd", Catalogue: "supply", Origin: "hebei", Version: 2, Visibility: "federation",
		Schema: 1, Body: json.RawMessage(`{"title":"别处的"}`)}
	svc := &fakeService{
		get: func(context.Context, string) (*schema.Record, error) { return foreign.Clone(), nil },
		put: func(context.Context, string, *schema.Record, uint64) (*schema.Record, error) {
			writes.Add(1)
			return nil, errBoom
		},
		delete: func(context.Context, string, uint64) (*schema.Record, error) {
			writes.Add(1)
			return nil, errBoom
		},
	}
	e := newFakeEnv(t, svc)
	w := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	sub := map[string]any{"catalogue": "supply", "visibility": "federation", "body": supplyBody("改写")}
	wantStatus(t, e.do(t, req{method: "PUT", path: "/v1/records/tianjin:odd", token: w, body: sub}), http.StatusForbidden)
	wantStatus(t, e.do(t, req{method: "DELETE", path: "/v1/records/tianjin:odd", token: w}), http.StatusForbidden)
	r := e.do(t, req{method: "POST", path: "/v1/batch", token: w, body: map[string]any{"items": []any{
		map[string]any{"method": "PUT", "id": "tianjin:odd", "record": sub},
		map[string]any{"method": "DELETE", "id": "tianjin:odd2"},
	}}})
	wantStatus(t, r, http.StatusOK)
	var out struct{ Items []batchResult }
	if err := json.Unmarshal(r.body, &out); err != nil || len(out.Items) != 2 || out.Items[0].Status != http.StatusForbidden || out.Items[1].Status != http.StatusForbidden {
		t.Fatalf("batch answered %s", r.body)
	}
	if n := writes.Load(); n != 0 {
		t.Fatalf("%d writes reached the store", n)
	}
}

// TestBatchOverTheBodyLimitIsRefusedWhole pins what README and the document
// tell partners: a batch is bounded by the request body limit (1 MiB) as well
// as by its 500 items, and one over it is refused whole (413 naming the
// limit), none of its items written.
func TestBatchOverTheBodyLimitIsRefusedWhole(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	body := needBody("轴承寿命预测")
	body["description"] = strings.Repeat("寻求合作，", 200) // valid: 1,000 characters, 3,000 bytes
	var items []map[string]any
	for i := 0; i < MaxBatchItems; i++ {
		items = append(items, map[string]any{"method": "PUT", "id": fmt.Sprintf("tianjin:big-%d", i), "record": envelope("need", "federation", body)})
	}
	r := e.do(t, req{method: "POST", path: "/v1/batch", token: w, body: map[string]any{"items": items}})
	wantStatus(t, r, http.StatusRequestEntityTooLarge)
	if p := r.problem(t); !strings.Contains(p.Detail, fmt.Sprint(DefaultMaxBodyBytes)) {
		t.Errorf("413 detail %q does not name the limit", p.Detail)
	}
	wantStatus(t, e.do(t, req{method: "GET", path: "/v1/records/tianjin:big-0", token: w}), http.StatusNotFound)
}
