package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"liandong/schema"
)

// TestPutIfAbsent: PutIfAbsent and Write.IfAbsent send If-None-Match: *, and
// the answers a caller branches on are told apart: a 412 (the record
// exists), and an older node's refusal of the precondition itself.
func TestPutIfAbsent(t *testing.T) {
	var header string
	var item map[string]any
	answer := func(w http.ResponseWriter, status int, body string) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
	status, body := 0, ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header = r.Header.Get("If-None-Match")
		if r.URL.Path == "/v1/batch" {
			var b struct{ Items []map[string]any }
			if err := json.NewDecoder(r.Body).Decode(&b); err != nil || len(b.Items) != 1 {
				t.Errorf("batch %+v: %v", b, err)
			}
			item = b.Items[0]
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"items":[{"status":%d,"problem":%s}]}`, status, body)
			return
		}
		answer(w, status, body)
	}))
	defer srv.Close()
	c := New(srv.URL, "tok")
	rec := &schema.Record{Catalogue: "supply", Body: json.RawMessage(`{"title":"t"}`)}
	problem := func(status int, detail, path string) string {
		errs := ""
		if path != "" {
			var rule string
			path, rule, _ = strings.Cut(path, " ")
			errs = fmt.Sprintf(`,"errors":[{"path":%q,"rule":%q,"message":"m"}]`, path, rule)
		}
		return fmt.Sprintf(`{"type":"urn:liandong:problem:x","title":"x","status":%d,"detail":%q%s}`, status, detail, errs)
	}
	for _, c2 := range []struct {
		name             string
		status           int
		body             string
		exists, refusing bool
	}{
		{"exists", 412, problem(412, "If-None-Match given but record tianjin:a exists", ""), true, false},
		// What a node from before If-None-Match answered, on PUT and in a batch.
		{"older node, PUT", 400, problem(400, "If-None-Match: not supported on PUT; use If-Match, or POST to create under a new id", "If-None-Match unsupported"), false, true},
		{"older node, batch", 400, problem(400, `want a write: {"method": "POST"|"PUT"|"DELETE", "id", "if_match", "record"}: json: unknown field "if_none_match"`, ""), false, true},
		{"another 400", 400, problem(400, "the record does not pass validation", "body.title required"), false, false},
		// What this build answers that names the precondition: not a refusal of it.
		{"a malformed item", 400, problem(400, `want a write: {"method": "POST"|"PUT"|"DELETE", "id", "if_match", "if_none_match", "record"}: json: unknown field "x"`, ""), false, false},
		{"a bad If-None-Match", 400, problem(400, "If-None-Match: want *", "If-None-Match format"), false, false},
		{"a body member of that name", 400, problem(400, "duplicate member", "body.If-None-Match duplicate"), false, false},
	} {
		status, body = c2.status, c2.body
		_, err := c.PutIfAbsent(context.Background(), "tianjin:a", rec)
		if header != "*" || IsPreconditionFailed(err) != c2.exists || RefusesIfAbsent(err) != c2.refusing {
			t.Errorf("%s, PUT: If-None-Match %q, err %v: exists %v, refusing %v", c2.name, header, err, IsPreconditionFailed(err), RefusesIfAbsent(err))
		}
		out, err := c.Batch(context.Background(), []Write{{Method: http.MethodPut, ID: "tianjin:a", IfAbsent: true, Record: rec}})
		if err != nil || item["if_none_match"] != "*" || IsPreconditionFailed(out[0].Err) != c2.exists || RefusesIfAbsent(out[0].Err) != c2.refusing {
			t.Errorf("%s, batch: sent %v, %v: %+v", c2.name, item, err, out)
		}
	}
	out, err := c.Batch(context.Background(), []Write{{Method: http.MethodPut, ID: "tianjin:a", Record: rec}})
	if _, sent := item["if_none_match"]; err != nil || sent || len(out) != 1 {
		t.Errorf("a plain PUT sent if_none_match: %v, %v", item, err)
	}
}
