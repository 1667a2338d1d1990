package api

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"liandong/auth"
)

func (e *env) search(t *testing.T, token, query string) searchResponse {
	t.Helper()
	r := e.do(t, req{method: "GET", path: "/v1/records?" + query, token: token})
	wantStatus(t, r, http.StatusOK)
	var sr searchResponse
	if err := json.Unmarshal(r.body, &sr); err != nil {
		t.Fatal(err)
	}
	if len(sr.Hits) != len(sr.Items) {
		t.Fatalf("%d hits for %d items", len(sr.Hits), len(sr.Items))
	}
	return sr
}

func itemIDs(sr searchResponse) []string {
	var out []string
	for _, it := range sr.Items {
		out = append(out, it.ID)
	}
	return out
}

func TestSearchRecords(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	best := e.create(t, "supply", "federation", supplyBody("高镍三元正极材料连续化制备技术"))
	other := supplyBody("磷酸锰铁锂正极材料")
	other["keywords"] = []string{"储能电池"}
	second := e.create(t, "supply", "public", other)
	private := e.create(t, "supply", "private", supplyBody("高镍正极材料（内部）"))
	e.create(t, "need", "federation", needBody("风电齿轮箱轴承寿命预测"))

	// Ranked: the title match first; Chinese matched by character pairs.
	sr := e.search(t, w, "q="+url.QueryEscape("高镍 正极")+"&catalogue=supply")
	if got := itemIDs(sr); !slices.Equal(got, []string{best.ID, private.ID}) && !slices.Equal(got, []string{private.ID, best.ID}) {
		t.Fatalf("高镍 正极: %v", got)
	}
	if sr.Total != 2 || !slices.Equal(sr.Hits[0].Matched, []string{"高镍", "正极"}) || sr.Hits[0].Score <= 0 {
		t.Fatalf("hits %+v total %d", sr.Hits, sr.Total)
	}
	sr = e.search(t, w, "q="+url.QueryEscape("正极材料"))
	if sr.Total != 3 || sr.Items[2].ID != second.ID {
		t.Fatalf("正极材料: %v (total %d); the record without 高镍 should rank last", itemIDs(sr), sr.Total)
	}

	// Another centre's token does not see the private record; anonymous sees
	// public records only, redacted.
	sr = e.search(t, e.token(t, "hebei", auth.ScopeRead), "q="+url.QueryEscape("正极"))
	if slices.Contains(itemIDs(sr), private.ID) || sr.Total != 2 {
		t.Fatalf("hebei sees %v (total %d)", itemIDs(sr), sr.Total)
	}
	sr = e.search(t, "", "q="+url.QueryEscape("正极"))
	if !slices.Equal(itemIDs(sr), []string{second.ID}) || hasContact(sr.Items[0]) {
		t.Fatalf("anonymous sees %v", itemIDs(sr))
	}
	sr = e.search(t, w, "q="+url.QueryEscape("正极"))
	for _, it := range sr.Items {
		if !hasContact(it) {
			t.Errorf("contact redacted for the origin's pii token: %s", it.ID)
		}
	}

	// Relevance pages, one item at a time, and id order.
	var paged []string
	cursor := ""
	for i := 0; i < 10; i++ {
		path := "q=" + url.QueryEscape("正极") + "&limit=1"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		sr := e.search(t, w, path)
		paged = append(paged, itemIDs(sr)...)
		if cursor = sr.NextCursor; cursor == "" {
			break
		}
	}
	whole := e.search(t, w, "q="+url.QueryEscape("正极"))
	if !slices.Equal(paged, itemIDs(whole)) {
		t.Fatalf("paged %v, whole %v", paged, itemIDs(whole))
	}
	byID := e.search(t, w, "q="+url.QueryEscape("正极")+"&sort=id&limit=2")
	if !slices.IsSorted(itemIDs(byID)) || byID.NextCursor == "" {
		t.Fatalf("sort=id: %v next %q", itemIDs(byID), byID.NextCursor)
	}
	rest := e.search(t, w, "q="+url.QueryEscape("正极")+"&sort=id&limit=2&cursor="+byID.NextCursor)
	if len(rest.Items) != 1 || rest.NextCursor != "" {
		t.Fatalf("sort=id page 2: %v", itemIDs(rest))
	}

	// Written just now: found at once.
	fresh := e.create(t, "expert", "federation", map[string]any{"name": "王华", "affiliation": "天津大学", "fields": []string{"new-energy"}, "keywords": []string{"钙钛矿"}})
	if got := itemIDs(e.search(t, w, "q="+url.QueryEscape("钙钛矿")+"&catalogue=expert")); !slices.Equal(got, []string{fresh.ID}) {
		t.Fatalf("fresh record: %v", got)
	}

	// Bad input names the parameter.
	first := e.search(t, w, "q="+url.QueryEscape("正极")+"&limit=1")
	for _, c := range []struct{ query, param string }{
		{"sort=relevance", "sort"},
		{"q=x&sort=score", "sort"},
		{"q=" + url.QueryEscape("，。！"), "q"},
		{"q=" + url.QueryEscape("高镍") + "&limit=1&cursor=" + first.NextCursor, "cursor"}, // another query's cursor
		{"q=" + url.QueryEscape("正极") + "&sort=id&cursor=" + first.NextCursor, "cursor"},
		{"q=" + url.QueryEscape("正极") + "&cursor=" + byID.NextCursor, "cursor"},
	} {
		r := e.do(t, req{method: "GET", path: "/v1/records?" + c.query, token: w})
		wantStatus(t, r, http.StatusBadRequest)
		if p := r.problem(t); len(p.Errors) != 1 || p.Errors[0].Path != c.param {
			t.Errorf("%s: %+v, want the error on %s", c.query, p, c.param)
		}
	}
}
