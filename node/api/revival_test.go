package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"liandong/auth"
)

// TestRevivedRecordKeepsCreatedAt holds the documented answer to "created_at
// on revival": a record deleted and written again under its id is the same
// record's next version (its version goes on from the tombstone's), so it
// keeps the created_at of the id's first version everywhere a partner reads
// it: GET, the change feed, and the signed entry other centres apply (the
// origin computes it, and every centre stores what the entry carries). The
// revival shows as history's "create" (and PUT's 201), at the revived
// version's updated_at. Documented in doc.go, README and the JSON Schema's
// created_at, which this test also reads.
func TestRevivedRecordKeepsCreatedAt(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	const id = "tianjin:revived-1"
	put := func(title string, header map[string]string) *resp {
		t.Helper()
		return e.do(t, req{method: "PUT", path: "/v1/records/" + id, token: w, header: header,
			body: envelope("supply", "federation", supplyBody(title))})
	}
	r := put("第一版", nil)
	wantStatus(t, r, http.StatusCreated)
	first := r.record(t)
	wantStatus(t, e.do(t, req{method: "DELETE", path: "/v1/records/" + id, token: w}), http.StatusOK)
	for i, header := range []map[string]string{{"If-None-Match": "*"}, nil} {
		if i == 1 { // revived by a plain PUT too
			wantStatus(t, e.do(t, req{method: "DELETE", path: "/v1/records/" + id, token: w}), http.StatusOK)
		}
		r = put("复活", header)
		wantStatus(t, r, http.StatusCreated)
		revived := r.record(t)
		if revived.Version != first.Version+2+2*uint64(i) || !revived.CreatedAt.Equal(first.CreatedAt) || !revived.UpdatedAt.After(first.CreatedAt) {
			t.Fatalf("revival %d: version %d, created_at %s, updated_at %s; want version %d, created_at %s and a later updated_at",
				i, revived.Version, revived.CreatedAt, revived.UpdatedAt, first.Version+2+2*uint64(i), first.CreatedAt)
		}
		r = e.do(t, req{method: "GET", path: "/v1/records/" + id, token: w})
		wantStatus(t, r, http.StatusOK)
		if got := r.record(t); !got.CreatedAt.Equal(first.CreatedAt) || !got.UpdatedAt.Equal(revived.UpdatedAt) {
			t.Fatalf("GET: created_at %s, updated_at %s", got.CreatedAt, got.UpdatedAt)
		}
		if got := e.feedHas(t, e.token(t, "tianjin", auth.ScopeRead), id); got == nil || got.Version != revived.Version || !got.CreatedAt.Equal(first.CreatedAt) {
			t.Fatalf("feed: %+v", got)
		}
		entries, _, err := e.node.Store().History(id, 0, 1)
		if err != nil || len(entries) != 1 || entries[0].Record.Version != revived.Version || !entries[0].Record.CreatedAt.Equal(first.CreatedAt) {
			t.Fatalf("signed entry: %v, %+v", err, entries)
		}
		r = e.do(t, req{method: "GET", path: "/v1/records/" + id + "/history?limit=2", token: w})
		wantStatus(t, r, http.StatusOK)
		var h historyResponse
		if err := json.Unmarshal(r.body, &h); err != nil || len(h.Items) != 2 {
			t.Fatalf("history %s: %v", r.body, err)
		}
		if it := h.Items[0]; it.Op != historyCreate || it.Version != revived.Version || !it.Time.Equal(revived.UpdatedAt) || h.Items[1].Op != historyDelete {
			t.Fatalf("history: %+v", h.Items)
		}
	}
	r = e.do(t, req{method: "GET", path: "/v1/schema/supply", token: w})
	wantStatus(t, r, http.StatusOK)
	var js struct {
		Properties map[string]struct {
			Title string `json:"title"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(r.body, &js); err != nil || !strings.Contains(js.Properties["created_at"].Title, "revived") {
		t.Fatalf("the JSON Schema's created_at does not say what a revival keeps: %q (%v)", js.Properties["created_at"].Title, err)
	}
	r = e.do(t, req{method: "GET", path: "/v1/openapi.json", token: w})
	wantStatus(t, r, http.StatusOK)
	var oa struct {
		Components struct {
			Schemas map[string]json.RawMessage `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(r.body, &oa); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(oa.Components.Schemas["SupplyRecord"], &js); err != nil || !strings.Contains(js.Properties["created_at"].Title, "revived") {
		t.Fatalf("the OpenAPI document's SupplyRecord.created_at does not say what a revival keeps: %q (%v)", js.Properties["created_at"].Title, err)
	}
}
