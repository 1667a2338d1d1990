package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"liandong/auth"
	"liandong/schema"
)

// TestReadMany: GET /v1/records?ids= answers the records named that the
// caller may read, in the order named, each once; absent, deleted and
// unreadable ones are left out, so private ids do not leak.
func TestReadMany(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	pub := e.create(t, "supply", "public", supplyBody("公开成果"))
	fed := e.create(t, "need", "federation", needBody("联盟需求"))
	priv := e.create(t, "supply", "private", supplyBody("内部成果"))
	gone := e.create(t, "supply", "public", supplyBody("撤回"))
	wantStatus(t, e.do(t, req{method: "DELETE", path: "/v1/records/" + gone.ID, token: w}), http.StatusOK)

	ids := []string{fed.ID, "tianjin:never-was", pub.ID, priv.ID, gone.ID, fed.ID}
	read := func(token string) []string {
		t.Helper()
		r := e.do(t, req{method: "GET", path: "/v1/records?ids=" + url.QueryEscape(strings.Join(ids, ",")), token: token})
		wantStatus(t, r, http.StatusOK)
		var page struct {
			Items      []schema.Record `json:"items"`
			NextCursor *string         `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		if page.NextCursor != nil {
			t.Fatalf("a cursor on an ids answer: %s", r.body)
		}
		var got []string
		for _, rec := range page.Items {
			got = append(got, rec.ID)
		}
		return got
	}
	// As by id, personal data only with the pii scope.
	for token, contact := range map[string]bool{w: true, e.token(t, "tianjin", auth.ScopeRead): false} {
		r := e.do(t, req{method: "GET", path: "/v1/records?ids=" + pub.ID, token: token})
		var page struct{ Items []*schema.Record }
		if err := json.Unmarshal(r.body, &page); err != nil || len(page.Items) != 1 || hasContact(page.Items[0]) != contact {
			t.Fatalf("pii scope %v: answered %s", contact, r.body)
		}
	}
	for _, c := range []struct {
		name, token string
		want        []string
	}{
		{"writer of the centre", w, []string{fed.ID, pub.ID, priv.ID}},
		{"another centre's partner", e.token(t, "hebei", auth.ScopeRead), []string{fed.ID, pub.ID}},
		{"anonymous", "", []string{pub.ID}},
	} {
		if got := read(c.token); fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s read %v, want %v", c.name, got, c.want)
		}
	}
}

// TestReadManyRefusals: ids names records and nothing else.
func TestReadManyRefusals(t *testing.T) {
	e := newFakeEnv(t, &fakeService{})
	many := strings.TrimSuffix(strings.Repeat("tianjin:a,", MaxLimit+1), ",")
	for _, q := range []string{
		"ids=" + many,
		"ids=tianjin:a,nocentre",
		"ids=tianjin:a,",
		"ids=tianjin:a&catalogue=supply",
		"ids=tianjin:a&limit=5",
		"ids=tianjin:a&ids=tianjin:b",
		"ids=",
		"ids=&limit=1",
	} {
		r := doHTTP(t, e.cli, e.srv.URL, req{method: "GET", path: "/v1/records?" + q})
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, r.StatusCode, r.body)
			continue
		}
		if p := r.problem(t); len(p.Errors) == 0 || p.Errors[0].Path != "ids" {
			t.Errorf("%s: blamed %+v", q, p.Errors)
		}
	}
}

// TestReadManyFailingPartWay: an ids answer is written as its records are
// read; a read that fails before anything was written is a problem (500), one
// that fails after cuts the connection, so the client sees no whole answer,
// and the request is counted and logged as the failure it is.
func TestReadManyFailingPartWay(t *testing.T) {
	big := `{"title":"` + strings.Repeat("长", 20000) + `"}` // ~60 KB
	failAt := ""
	svc := &fakeService{get: func(_ context.Context, id string) (*schema.Record, error) {
		if id == failAt {
			return nil, errBoom
		}
		return &schema.Record{ID: id, Catalogue: "supply", Origin: "tianjin", Version: 1, Visibility: "public", Body: json.RawMessage(big)}, nil
	}}
	logged := &lineCounter{phrase: "part-way through an ids answer"}
	e := newFakeEnv(t, svc, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(logged, nil)) })
	ids := "tianjin:a,tianjin:b,tianjin:c,tianjin:d,tianjin:e,tianjin:f,tianjin:g"

	failAt = "tianjin:nothing"
	r := e.do(t, req{method: "GET", path: "/v1/records?ids=" + ids})
	wantStatus(t, r, http.StatusOK)
	var page struct{ Items []*schema.Record }
	if err := json.Unmarshal(r.body, &page); err != nil || len(page.Items) != 7 || string(page.Items[6].Body) != big {
		t.Fatalf("the whole answer: %d items (%v)", len(page.Items), err)
	}

	failAt = "tianjin:a"
	wantStatus(t, e.do(t, req{method: "GET", path: "/v1/records?ids=" + ids}), http.StatusInternalServerError)

	failAt = "tianjin:f" // after more than a flush's worth is out
	resp, err := e.cli.Get(e.srv.URL + "/v1/records?ids=" + ids)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if body, err := io.ReadAll(resp.Body); err == nil {
		t.Fatalf("a read failing part-way gave a whole answer: %d, %d bytes", resp.StatusCode, len(body))
	}
	// The server counts the request after it cut the connection.
	failed := func() float64 {
		return testutil.ToFloat64(e.h.(*handler).metrics.requests.WithLabelValues("/v1/records", "GET", "500"))
	}
	for deadline := time.Now().Add(5 * time.Second); failed() < 2 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := failed(); n != 2 || logged.count() != 1 {
		t.Errorf("%v requests counted 500 (want 2: the problem and the cut answer); %d log lines name the cut read", n, logged.count())
	}
}
