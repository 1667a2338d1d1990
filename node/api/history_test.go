package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"liandong/auth"
)

// TestRecordHistory: GET /v1/records/{id}/history lists the versions the signed
// log carries, newest first, pages with a cursor, outlives a deletion, marks a
// withdrawal, and answers as the OpenAPI document says.
func TestRecordHistory(t *testing.T) {
	e := &validated{env: newEnv(t, false), v: mustValidator(t)}
	w := e.writer(t)
	reader := e.token(t, "hebei", auth.ScopeRead)
	history := func(path, token string, code int) historyResponse {
		t.Helper()
		r := e.call(t, req{method: "GET", path: path, token: token}, code == http.StatusBadRequest)
		wantStatus(t, r, code)
		var h historyResponse
		if code == http.StatusOK {
			if err := json.Unmarshal(r.body, &h); err != nil {
				t.Fatalf("%s: %v", r.body, err)
			}
		}
		return h
	}

	rec := e.create(t, "supply", "federation", supplyBody("高镍三元正极材料"))
	r := e.do(t, req{method: "PUT", path: "/v1/records/" + rec.ID, token: w, body: envelope("supply", "federation", supplyBody("高镍三元正极材料（第二版）"))})
	wantStatus(t, r, http.StatusOK)

	h := history("/v1/records/"+rec.ID+"/history", reader, http.StatusOK)
	if h.ID != rec.ID || h.Origin != "tianjin" || len(h.Items) != 2 || h.NextCursor != "" {
		t.Fatalf("history: %+v", h)
	}
	v2, v1 := h.Items[0], h.Items[1]
	if v2.Version != 2 || v2.Op != historyUpdate || v1.Version != 1 || v1.Op != historyCreate {
		t.Fatalf("versions and ops: %+v", h.Items)
	}
	if v2.PrevHash != v1.Hash || v1.Seq+1 != v2.Seq || v1.KeyID != e.recordKey.ID {
		t.Fatalf("chain: %+v", h.Items)
	}
	for _, it := range h.Items {
		if it.Verified != verifiedSignedHere || it.SignatureCheck != "valid" || it.Time.IsZero() {
			t.Fatalf("item %+v", it)
		}
	}

	// Paging.
	p1 := history("/v1/records/"+rec.ID+"/history?limit=1", reader, http.StatusOK)
	if len(p1.Items) != 1 || p1.Items[0].Version != 2 || p1.NextCursor == "" {
		t.Fatalf("first page: %+v", p1)
	}
	p2 := history("/v1/records/"+rec.ID+"/history?limit=1&cursor="+p1.NextCursor, reader, http.StatusOK)
	if len(p2.Items) != 1 || p2.Items[0].Version != 1 || p2.NextCursor != "" {
		t.Fatalf("second page: %+v", p2)
	}

	// A deleted record keeps its history for those who could read it.
	wantStatus(t, e.do(t, req{method: "DELETE", path: "/v1/records/" + rec.ID, token: w}), http.StatusOK)
	h = history("/v1/records/"+rec.ID+"/history", reader, http.StatusOK)
	if len(h.Items) != 3 || h.Items[0].Op != historyDelete {
		t.Fatalf("after delete: %+v", h.Items)
	}

	// A withdrawal (turned private) is one more entry; only the origin's tokens see it.
	other := e.create(t, "supply", "federation", supplyBody("碳纤维复合材料"))
	wantStatus(t, e.do(t, req{method: "PUT", path: "/v1/records/" + other.ID, token: w, body: envelope("supply", "private", supplyBody("碳纤维复合材料"))}), http.StatusOK)
	h = history("/v1/records/"+other.ID+"/history", w, http.StatusOK)
	if len(h.Items) != 2 || h.Items[0].Op != historyWithdraw || h.Items[0].Visibility != "private" {
		t.Fatalf("withdrawal: %+v", h.Items)
	}
	history("/v1/records/"+other.ID+"/history", reader, http.StatusNotFound)

	// A record that was always private never entered the log; anonymous callers
	// see no federation record's history.
	private := e.create(t, "supply", "private", supplyBody("内部成果"))
	if h := history("/v1/records/"+private.ID+"/history", w, http.StatusOK); len(h.Items) != 0 {
		t.Fatalf("private record has history: %+v", h.Items)
	}
	fed := e.create(t, "supply", "federation", supplyBody("联邦成果"))
	history("/v1/records/"+fed.ID+"/history", "", http.StatusNotFound)
	history("/v1/records/tianjin:missing/history", w, http.StatusNotFound)
	history("/v1/records/"+fed.ID+"/history?limit=0", w, http.StatusBadRequest)
	history("/v1/records/"+fed.ID+"/history?cursor=bogus", w, http.StatusBadRequest)
}
