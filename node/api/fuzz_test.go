package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node/store"
	"liandong/schema"
)

// fuzzHandler serves a fakeService in memory, with a write token for it.
func fuzzHandler(t testing.TB) (http.Handler, string) {
	f := newFixture(t)
	svc := &fakeService{centre: "tianjin", bundle: f.bundle, feedEpoch: "0f3a9c2b11d4e5f6",
		get: func(_ context.Context, id string) (*schema.Record, error) {
			if id == "tianjin:exists" {
				return &schema.Record{ID: id, Catalogue: "supply", Origin: "tianjin", Version: 3, Visibility: "federation", Body: json.RawMessage(`{}`)}, nil
			}
			return nil, store.ErrNotFound
		},
		list: func(_ context.Context, q store.Query) ([]*schema.Record, string, error) {
			rec := &schema.Record{ID: "tianjin:a", Catalogue: "supply", Origin: "tianjin", Version: 1, Visibility: "public",
				Body: json.RawMessage(`{"title":"高镍三元","keywords":["锂电池"],"contact":{"phone":"1"}}`)}
			if q.Match != nil && !q.Match(rec) {
				return nil, "", nil
			}
			return []*schema.Record{rec}, "tianjin:a", nil
		},
		changes: func(_ context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
			return nil, since, nil
		},
	}
	h, err := New(Options{Service: svc, MaxWait: time.Millisecond, MaxBodyBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	return h, f.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
}

// checkAnswer fails unless rec holds a success in ok or a 4xx problem document.
func checkAnswer(t *testing.T, rec *httptest.ResponseRecorder, ok ...int) {
	t.Helper()
	for _, code := range ok {
		if rec.Code == code {
			return
		}
	}
	if rec.Code < 400 || rec.Code > 499 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("status %d with Content-Type %q", rec.Code, ct)
	}
	var p Problem
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || p.Status != rec.Code || p.Type == "" || p.Title == "" {
		t.Fatalf("bad problem (%v): %s", err, rec.Body)
	}
}

// FuzzRecordRequest drives the record decoder through POST and PUT: it never
// panics and answers bad input with a 4xx problem.
func FuzzRecordRequest(f *testing.F) {
	f.Add([]byte(`{"catalogue":"supply","visibility":"public","body":{"title":"高镍三元正极材料","summary":"s","industry":"new-materials","keywords":["a"],"trl":6,"transfer_modes":["license"],"owner_org":"天津大学"}}`))
	f.Add([]byte(`{"catalogue":"need","body":{"title":"t","description":"d","industry":"other","enterprise":"e","kind":"need","status":"open"},"expires_at":"2027-06-30T00:00:00+08:00"}`))
	f.Add([]byte(`{"id":"tianjin:exists","version":3,"origin":"tianjin","catalogue":"expert","created_at":"2024-01-01T00:00:00Z","body":{}}`))
	f.Add([]byte(`{"catalogue":"supply","catalogue":"need"}`))
	f.Add([]byte(`{"catalogue":"supply"} []`))
	f.Add([]byte("{\"catalogue\":\"\xff\"}"))
	f.Add([]byte(`{"body":{"n":9007199254740993}}`))
	f.Add([]byte(`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`))
	f.Add([]byte(`{"version":-1,"schema":1.5,"deleted":"yes","expires_at":5}`))
	f.Add([]byte(`{"\ud800":1}`))
	f.Add([]byte(``))
	h, tok := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, target := range []struct{ method, path string }{{"POST", "/v1/records"}, {"PUT", "/v1/records/tianjin:exists"}, {"PUT", "/v1/records/tianjin:new"}} {
			r := httptest.NewRequest(target.method, target.path, bytes.NewReader(data))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+tok)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			checkAnswer(t, rec, http.StatusOK, http.StatusCreated)
		}
	})
}

// FuzzQueryParams drives the query-parameter and cursor parsers of the list and
// change-feed routes: never a panic, never a 5xx, a 4xx problem for bad input.
func FuzzQueryParams(f *testing.F) {
	f.Add("catalogue=supply&limit=20")
	f.Add("q=%E6%AD%A3%E6%9E%81+%E6%9D%90%E6%96%99&industry=new-materials&origin=tianjin&status=open")
	f.Add("updated_since=2025-01-02T15:04:05Z&cursor=" + encodeListCursor("tianjin:01J0000000000000000000000"))
	f.Add("since=" + encodePosition(42, "") + "&wait=0.5&limit=500")
	f.Add("since=" + encodePosition(7, "0f3a9c2b11d4e5f6") + "&limit=5")
	f.Add("since=" + encodePosition(7, "another") + "&limit=5")
	f.Add("since=0&wait=1e308")
	f.Add("limit=0")
	f.Add("limit=-1&cursor=%%")
	f.Add("cursor=cjpa&since=YzQy")
	f.Add("a=1;b=2")
	f.Add("q=%ff%fe")
	f.Add("wait=NaN&limit=501")
	f.Add(strings.Repeat("q=x&", 50))
	f.Add("ids=tianjin:a,tianjin:exists,tianjin:a,hebei:x")
	f.Add("ids=tianjin:a,&limit=2")
	h, tok := fuzzHandler(f)
	f.Fuzz(func(t *testing.T, raw string) {
		for _, path := range []string{"/v1/records", "/v1/changes"} {
			for _, token := range []string{"", tok} {
				r := httptest.NewRequest("GET", path, nil)
				r.URL.RawQuery = raw
				r.RequestURI = path + "?" + raw
				if token != "" {
					r.Header.Set("Authorization", "Bearer "+token)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, r)
				checkAnswer(t, rec, http.StatusOK)
			}
		}
	})
}

func TestCursorsRoundTrip(t *testing.T) {
	for _, id := range []string{"tianjin:01HZX", "hebei:a.b_c-d", "xiongan:" + strings.Repeat("k", 128)} {
		c := encodeListCursor(id)
		got, err := decodeListCursor(c)
		if err != nil || got != id {
			t.Errorf("%s: %q %v", id, got, err)
		}
		if _, _, err := decodePosition(c); err == nil {
			t.Errorf("list cursor %s accepted as a position", c)
		}
	}
	for _, pos := range []uint64{1, 42, 1<<64 - 1} {
		for _, epoch := range []string{"", "0f3a9c2b11d4e5f6"} {
			got, gotEpoch, err := decodePosition(encodePosition(pos, epoch))
			if err != nil || got != pos || gotEpoch != epoch {
				t.Errorf("%d %q: %d %q %v", pos, epoch, got, gotEpoch, err)
			}
		}
	}
	enc := func(s string) string { return cursorEncoding.EncodeToString([]byte(s)) }
	for _, bad := range []string{"", "!!", "Y", encodeListCursor("no-colon"), "Yy0x",
		enc("c12."), enc("c12.ABC"), enc("c.abc"), enc("c012.abc"), enc("c12.a.b"), enc("c12." + strings.Repeat("a", 65))} {
		if _, _, err := decodePosition(bad); err == nil {
			t.Errorf("position %q accepted", bad)
		}
		if _, err := decodeListCursor(bad); err == nil {
			t.Errorf("cursor %q accepted", bad)
		}
	}
}

func TestParseIfMatch(t *testing.T) {
	cases := []struct {
		in   []string
		want precondition
		bad  bool
	}{
		{nil, precondition{}, false},
		{[]string{"*"}, precondition{name: "If-Match", present: true, any: true}, false},
		{[]string{`"3"`}, precondition{name: "If-Match", present: true, version: 3}, false},
		{[]string{` 12 `}, precondition{name: "If-Match", present: true, version: 12}, false},
		{[]string{`W/"3"`}, precondition{name: "If-Match", present: true, never: true}, false},
		{[]string{`"abc"`}, precondition{name: "If-Match", present: true, never: true}, false},
		{[]string{`"0"`}, precondition{name: "If-Match", present: true, never: true}, false},
		{[]string{`0`}, precondition{name: "If-Match", present: true, never: true}, false},
		{[]string{`"1", "2"`}, precondition{}, true},
		{[]string{`"1"`, `"2"`}, precondition{}, true},
		{[]string{`v3`}, precondition{}, true},
		{[]string{`"3`}, precondition{}, true},
	}
	for _, c := range cases {
		h := http.Header{}
		for _, v := range c.in {
			h.Add("If-Match", v)
		}
		got, err := parseIfMatch(h)
		if c.bad {
			if err == nil {
				t.Errorf("%q: accepted as %+v", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v %v, want %+v", c.in, got, err, c.want)
		}
	}
}

func TestMatchText(t *testing.T) {
	body := json.RawMessage(`{"title":"CAR-T细胞治疗产品","keywords":["细胞治疗","GMP"],"owner_org":"南开大学","trl":"not a number"}`)
	for q, want := range map[string]bool{
		"car-t": true, "CAR-T": true, "gmp 南开": true, "南开 细胞": true, "南开 北大": false, "": true, "trl": false,
	} {
		terms := strings.Fields(strings.ToLower(q))
		if got := matchText(body, terms); got != want {
			t.Errorf("%q: %v", q, got)
		}
	}
	if matchText(json.RawMessage(`"not an object"`), []string{"x"}) {
		t.Error("matched a non-object body")
	}
}

// FuzzDecodeRecordFastPath holds decodeRecord's way through canonical
// requests (members sliced from the request, no encoding/json) to the
// encoding/json way: the same record, or the same problem, for any input.
func FuzzDecodeRecordFastPath(f *testing.F) {
	f.Add([]byte(`{"body":{"industry":"new-materials","keywords":["a"],"owner_org":"天津大学","summary":"s","title":"高镍三元正极材料","transfer_modes":["license"],"trl":6},"catalogue":"supply","visibility":"public"}`), "")
	f.Add([]byte(`{"body":{},"catalogue":"expert","created_at":"2024-01-01T00:00:00Z","id":"tianjin:exists","origin":"tianjin","version":3}`), "tianjin:exists")
	f.Add([]byte(`{"body":null,"catalogue":null,"expires_at":"2027-06-30T00:00:00+08:00","schema":1,"visibility":"centre"}`), "tianjin:new")
	f.Add([]byte(`{"a\"b":1,"catalogue":"supply"}`), "")
	f.Add([]byte(`{"catalogue":"sup\u00e9ly","deleted":false,"id":"tianjin:x","origin":"hebei","version":2}`), "")
	f.Add([]byte(`{"catalogue":5,"schema":1.5,"version":-1}`), "")
	f.Add([]byte(`{"catalogue":"supply","visibility":"federation","body":{"b":1,"a":2}}`), "")
	f.Fuzz(func(t *testing.T, data []byte, pathID string) {
		fast, fastErr := decodeRecordWith(data, pathID, "tianjin", true)
		slow, slowErr := decodeRecordWith(data, pathID, "tianjin", false)
		if (fastErr == nil) != (slowErr == nil) {
			t.Fatalf("fast way: %v; encoding/json's: %v", fastErr, slowErr)
		}
		if fastErr != nil {
			fj, _ := json.Marshal(fastErr)
			sj, _ := json.Marshal(slowErr)
			if string(fj) != string(sj) {
				t.Fatalf("problems differ:\nfast %s\nslow %s", fj, sj)
			}
			return
		}
		fj, _ := json.Marshal(fast.rec)
		sj, _ := json.Marshal(slow.rec)
		if string(fj) != string(sj) || fast.version != slow.version || fast.visibility != slow.visibility {
			t.Fatalf("records differ:\nfast %s %d %v\nslow %s %d %v", fj, fast.version, fast.visibility, sj, slow.version, slow.visibility)
		}
		if !bytes.Equal(fast.rec.Body, slow.rec.Body) {
			t.Fatalf("bodies differ: %q and %q", fast.rec.Body, slow.rec.Body)
		}
	})
}
