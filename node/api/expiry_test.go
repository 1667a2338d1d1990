package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"liandong/node"
)

// A need closes at its expires_at (DESIGN): once the clock passes it, lists
// and search with status=open leave it out and status=closed finds it. A
// write refuses to set an expiry already past (422 naming expires_at), but a
// record already expired can still be edited with its past expiry.
func TestExpiredNeedsCloseAndPastExpiryIsRefused(t *testing.T) {
	start := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	var offset atomic.Int64
	now := func() time.Time { return start.Add(time.Duration(offset.Load())) }
	e := newEnv(t, false, func(_ *node.Config, opts *Options) { opts.Now = now })
	w := e.writer(t)
	in := func(d time.Duration) string { return start.Add(d).Format(time.RFC3339) }
	needWith := func(title, expires string) map[string]any {
		env := envelope("need", "federation", needBody(title))
		if expires != "" {
			env["expires_at"] = expires
		}
		return env
	}
	refused := func(r *resp) {
		t.Helper()
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if p := r.problem(t); len(p.Errors) != 1 || p.Errors[0].Path != "expires_at" {
			t.Fatalf("%s %s: errors %+v, want one naming expires_at", r.Request.Method, r.Request.URL.Path, p.Errors)
		}
	}

	// Past expiries refused on every way of creating a record.
	refused(e.do(t, req{method: "POST", path: "/v1/records", token: w, body: needWith("轴承寿命预测", in(-time.Minute))}))
	refused(e.do(t, req{method: "PUT", path: "/v1/records/tianjin:n-past", token: w, body: needWith("轴承寿命预测", in(-time.Minute))}))
	refused(e.do(t, req{method: "PUT", path: "/v1/records/tianjin:n-past", token: w, body: needWith("轴承寿命预测", in(-time.Minute)),
		header: map[string]string{"If-None-Match": "*"}}))
	r := e.do(t, req{method: "POST", path: "/v1/batch", token: w, body: map[string]any{"items": []map[string]any{
		{"method": "POST", "record": needWith("轴承寿命预测", in(-time.Minute))}}}})
	wantStatus(t, r, http.StatusOK)
	var br struct {
		Items []struct {
			Status  int `json:"status"`
			Problem *struct {
				Errors []FieldError `json:"errors"`
			} `json:"problem"`
		} `json:"items"`
	}
	if err := json.Unmarshal(r.body, &br); err != nil || len(br.Items) != 1 || br.Items[0].Status != http.StatusUnprocessableEntity ||
		br.Items[0].Problem == nil || len(br.Items[0].Problem.Errors) != 1 || br.Items[0].Problem.Errors[0].Path != "expires_at" {
		t.Fatalf("batch item with a past expiry: %s (%v)", r.body, err)
	}

	soon := e.do(t, req{method: "POST", path: "/v1/records", token: w, body: needWith("轴承寿命预测甲", in(time.Hour))})
	wantStatus(t, soon, http.StatusCreated)
	later := e.do(t, req{method: "POST", path: "/v1/records", token: w, body: needWith("轴承寿命预测乙", in(48*time.Hour))})
	wantStatus(t, later, http.StatusCreated)
	never := e.do(t, req{method: "POST", path: "/v1/records", token: w, body: needWith("轴承寿命预测丙", "")})
	wantStatus(t, never, http.StatusCreated)
	soonID, laterID, neverID := soon.record(t).ID, later.record(t).ID, never.record(t).ID

	listed := func(query string) []string {
		t.Helper()
		r := e.do(t, req{method: "GET", path: "/v1/records?" + query, token: w})
		wantStatus(t, r, http.StatusOK)
		var lr listResponse
		if err := json.Unmarshal(r.body, &lr); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, it := range lr.Items {
			ids = append(ids, it.ID)
		}
		slices.Sort(ids)
		return ids
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	q := url.QueryEscape("寿命预测")
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"catalogue=need&status=open", sorted(soonID, laterID, neverID)},
		{"catalogue=need&status=closed", nil},
		{"q=" + q + "&status=open", sorted(soonID, laterID, neverID)},
	} {
		if got := listed(tc.query); !slices.Equal(got, tc.want) {
			t.Fatalf("before any expiry, %s: %v, want %v", tc.query, got, tc.want)
		}
	}

	offset.Store(int64(2 * time.Hour)) // soon has expired
	for _, tc := range []struct {
		query string
		want  []string
	}{
		{"catalogue=need&status=open", sorted(laterID, neverID)},
		{"status=open", sorted(laterID, neverID)},
		{"catalogue=need&status=closed", []string{soonID}},
		{"q=" + q + "&status=open", sorted(laterID, neverID)},
		{"q=" + q + "&status=closed", []string{soonID}},
		{"catalogue=need", sorted(soonID, laterID, neverID)}, // still readable, as expired
	} {
		if got := listed(tc.query); !slices.Equal(got, tc.want) {
			t.Errorf("after soon's expiry, %s: %v, want %v", tc.query, got, tc.want)
		}
	}

	// The expired need can be edited (closed) with its past expiry; a live
	// record cannot be given one.
	closed := needWith("轴承寿命预测甲", in(time.Hour))
	closed["body"].(map[string]any)["status"] = "closed"
	wantStatus(t, e.do(t, req{method: "PUT", path: "/v1/records/" + soonID, token: w, body: closed}), http.StatusOK)
	refused(e.do(t, req{method: "PUT", path: "/v1/records/" + laterID, token: w, body: needWith("轴承寿命预测乙", in(time.Hour))}))
	refused(e.do(t, req{method: "PUT", path: "/v1/records/" + neverID, token: w, body: needWith("轴承寿命预测丙", in(time.Hour))}))
}

// An expires_at whose year leaves 0000–9999 once in UTC is a 422 naming it,
// not a 500 from encoding the record; a far expiry in UTC is accepted.
func TestExpiresAtOutsideFourDigitYears(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	for exp, status := range map[string]int{
		"9999-12-31T23:59:59-05:00": http.StatusUnprocessableEntity,
		"0000-01-01T00:00:00+08:00": http.StatusUnprocessableEntity,
		"9999-12-31T23:59:59Z":      http.StatusCreated,
	} {
		env := envelope("supply", "federation", supplyBody("永不过期"))
		env["expires_at"] = exp
		r := e.do(t, req{method: "POST", path: "/v1/records", token: w, body: env})
		if r.StatusCode != status {
			t.Errorf("expires_at %s: status %d, want %d; body %s", exp, r.StatusCode, status, r.body)
			continue
		}
		if status != http.StatusCreated {
			if p := r.problem(t); len(p.Errors) != 1 || p.Errors[0].Path != "expires_at" {
				t.Errorf("expires_at %s: errors %+v, want one naming expires_at", exp, p.Errors)
			}
		}
	}
}

// updated_since=…+08:00 typed unescaped arrives with a space for the +, and
// is read as the offset it was, not refused as not RFC 3339.
func TestUpdatedSinceUnescapedOffset(t *testing.T) {
	e := newEnv(t, false)
	rec := e.create(t, "supply", "federation", supplyBody("时区"))
	since := rec.UpdatedAt.Add(-time.Hour).In(time.FixedZone("CST", 8*3600)).Format(time.RFC3339)
	r := e.do(t, req{method: "GET", path: "/v1/records?updated_since=" + since, token: e.writer(t)})
	wantStatus(t, r, http.StatusOK)
	var lr listResponse
	if err := json.Unmarshal(r.body, &lr); err != nil || len(lr.Items) != 1 {
		t.Fatalf("updated_since=%s: %s (%v), want the record", since, r.body, err)
	}
	later := rec.UpdatedAt.Add(time.Hour).In(time.FixedZone("CST", 8*3600)).Format(time.RFC3339)
	r = e.do(t, req{method: "GET", path: "/v1/records?updated_since=" + later, token: e.writer(t)})
	wantStatus(t, r, http.StatusOK)
	if err := json.Unmarshal(r.body, &lr); err != nil || len(lr.Items) != 0 {
		t.Fatalf("updated_since=%s: %s (%v), want none", later, r.body, err)
	}
}
