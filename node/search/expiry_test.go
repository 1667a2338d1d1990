package search

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"liandong/schema"
)

// A need whose expires_at has passed is closed (DESIGN: needs close at their
// expiry): status=open leaves it out, status=closed finds it, and matchmaking
// suggests no candidate past its expiry, of any catalogue. The expiry is kept
// in the index file, so this holds after a reopen too.
func TestExpiredNeedsAreClosed(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	rec := func(id, catalogue string, body map[string]any, expires *time.Time) *schema.Record {
		js, _ := json.Marshal(body)
		return &schema.Record{ID: id, Catalogue: catalogue, Origin: "tianjin", Visibility: "federation", Schema: 1, Body: js, ExpiresAt: expires}
	}
	need := func(id, status string, expires *time.Time) *schema.Record {
		body := map[string]any{"title": "风电轴承寿命预测", "description": "风电轴承", "keywords": []string{"风电", "轴承"}, "enterprise": "某公司"}
		if status != "" {
			body["status"] = status
		}
		return rec(id, schema.CatalogueNeed, body, expires)
	}
	supply := func(id string, expires *time.Time) *schema.Record {
		return rec(id, schema.CatalogueSupply, map[string]any{"title": "风电轴承寿命预测技术", "summary": "风电轴承", "keywords": []string{"风电", "轴承"}}, expires)
	}
	src := newMemSource()
	path := filepath.Join(t.TempDir(), "search.db")
	ix := mustOpen(t, path, src)
	src.put(need("tianjin:open-live", "open", &future))
	src.put(need("tianjin:open-none", "", nil))
	src.put(need("tianjin:open-past", "open", &past))
	src.put(need("tianjin:nostatus-past", "", &past))
	src.put(need("tianjin:matched-past", "matched", &past))
	src.put(need("tianjin:closed", "closed", nil))
	src.put(supply("tianjin:s-live", &future))
	src.put(supply("tianjin:s-past", &past))

	check := func(ix *Index) {
		t.Helper()
		for status, want := range map[string][]string{
			schema.NeedOpen:    {"tianjin:open-live", "tianjin:open-none"},
			schema.NeedClosed:  {"tianjin:closed", "tianjin:nostatus-past", "tianjin:open-past"},
			schema.NeedMatched: {"tianjin:matched-past"},
		} {
			got := ids(search(t, ix, Query{Text: "寿命预测", Status: status, Now: now, Limit: 50}))
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("status=%s: %v, want %v", status, got, want)
			}
		}
		// An hour before, nothing had expired.
		got := ids(search(t, ix, Query{Text: "寿命预测", Status: schema.NeedOpen, Now: past.Add(-time.Minute), Limit: 50}))
		if len(got) != 4 {
			t.Errorf("status=open before the expiry: %v, want the four open needs", got)
		}

		res, err := ix.Match(supply("hebei:src", nil), MatchOptions{Catalogues: []string{schema.CatalogueNeed}, Limit: 10, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		var matched []string
		for _, m := range res.Lists[schema.CatalogueNeed] {
			matched = append(matched, m.Record.ID)
		}
		slices.Sort(matched)
		if want := []string{"tianjin:open-live", "tianjin:open-none"}; !slices.Equal(matched, want) {
			t.Errorf("needs matched: %v, want %v (no need past its expiry)", matched, want)
		}
		res, err = ix.Match(need("hebei:src", "open", nil), MatchOptions{Catalogues: []string{schema.CatalogueSupply}, Limit: 10, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		matched = matched[:0]
		for _, m := range res.Lists[schema.CatalogueSupply] {
			matched = append(matched, m.Record.ID)
		}
		if !slices.Equal(matched, []string{"tianjin:s-live"}) {
			t.Errorf("supply matched: %v, want [tianjin:s-live] (a profile past its expiry awaits renewal)", matched)
		}
	}
	check(ix)
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	check(mustOpen(t, path, src))
}

func TestExpiresNanos(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{time.Unix(0, 0), -1},
		{time.Time{}, minTime},
		{time.Unix(5, 0), 5e9},
	} {
		if got := expiresNanos(tc.at); got != tc.want {
			t.Errorf("expiresNanos(%v) = %d, want %d", tc.at, got, tc.want)
		}
		now := max(unixNanos(tc.at), minTime)
		if d := (&Doc{expires: expiresNanos(tc.at)}); !d.expiredAt(now) {
			t.Errorf("doc expiring at %v not expired then", tc.at)
		}
	}
	if (&Doc{}).expiredAt(0) {
		t.Error("a doc without an expiry is expired")
	}
}
