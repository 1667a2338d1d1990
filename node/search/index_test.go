package search

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"liandong/node/store"
	"liandong/schema"
)

func supplyRecord(id, title, summary string, keywords ...string) *schema.Record {
	body, _ := json.Marshal(map[string]any{"title": title, "summary": summary, "industry": "new-energy", "keywords": keywords,
		"owner_org": "天津大学", "disruptive": false, "trl": 5})
	origin, _, _ := schema.SplitID(id)
	return &schema.Record{ID: id, Catalogue: "supply", Origin: origin, Visibility: "federation", Schema: 1, Body: body}
}

func search(t *testing.T, ix *Index, q Query) *Page {
	t.Helper()
	p, err := ix.Search(q)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func ids(p *Page) []string {
	var out []string
	for _, h := range p.Hits {
		out = append(out, h.Doc.ID)
	}
	return out
}

// TestIndexFollowsFeed checks that writes, updates and deletes are searchable at
// once, and that a reopened index catches up from where it stopped.
func TestIndexFollowsFeed(t *testing.T) {
	src := newMemSource()
	path := filepath.Join(t.TempDir(), "search.db")
	ix := mustOpen(t, path, src)
	src.put(supplyRecord("tianjin:a", "钙钛矿叠层电池", "中试线"))
	src.put(supplyRecord("hebei:b", "液流电池储能", "长时储能", "储能"))
	if got := ids(search(t, ix, Query{Text: "电池"})); !slices.Equal(got, []string{"hebei:b", "tianjin:a"}) && !slices.Equal(got, []string{"tianjin:a", "hebei:b"}) {
		t.Fatalf("电池: %v", got)
	}
	// An update replaces the text; a delete removes the record.
	src.put(supplyRecord("tianjin:a", "氢燃料电池", "电堆"))
	if got := ids(search(t, ix, Query{Text: "钙钛矿"})); len(got) != 0 {
		t.Fatalf("old text still found: %v", got)
	}
	if got := ids(search(t, ix, Query{Text: "燃料电池"})); !slices.Equal(got, []string{"tianjin:a"}) {
		t.Fatalf("new text: %v", got)
	}
	src.delete("hebei:b")
	if got := ids(search(t, ix, Query{Text: "储能"})); len(got) != 0 {
		t.Fatalf("deleted record found: %v", got)
	}
	if ix.Len() != 1 {
		t.Fatalf("index holds %d docs", ix.Len())
	}
	pos := ix.Position()
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	// Written while the index was closed: found after reopening.
	src.put(supplyRecord("xiongan:c", "城市数字孪生", "雄安"))
	ix = mustOpen(t, path, src)
	if ix.Position() != pos || ix.Len() != 1 {
		t.Fatalf("reopened at %d with %d docs, want %d with 1", ix.Position(), ix.Len(), pos)
	}
	if got := ids(search(t, ix, Query{Text: "数字孪生"})); !slices.Equal(got, []string{"xiongan:c"}) {
		t.Fatalf("after reopening: %v", got)
	}
}

// TestIndexRebuildsForAnotherHistory opens an index file against a store whose
// feed differs (as after the state file was replaced): it starts over.
func TestIndexRebuildsForAnotherHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "search.db")
	a := newMemSource()
	a.put(supplyRecord("tianjin:a", "钙钛矿", ""))
	a.put(supplyRecord("tianjin:b", "储能", ""))
	ix := mustOpen(t, path, a)
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	ix.Close()

	b := newMemSource() // same length, other changes
	b.put(supplyRecord("hebei:x", "风电轴承", ""))
	b.put(supplyRecord("hebei:y", "碳纤维", ""))
	ix = mustOpen(t, path, b)
	if got := ids(search(t, ix, Query{Text: "钙钛矿"})); len(got) != 0 {
		t.Fatalf("records of the other history found: %v", got)
	}
	if got := ids(search(t, ix, Query{Text: "碳纤维"})); !slices.Equal(got, []string{"hebei:y"}) {
		t.Fatalf("碳纤维: %v", got)
	}
	ix.Close()

	// A shorter feed (a state file from before) also rebuilds.
	c := newMemSource()
	c.put(supplyRecord("hebei:x", "风电轴承", ""))
	ix = mustOpen(t, path, c)
	if got := ids(search(t, ix, Query{Text: "碳纤维"})); len(got) != 0 {
		t.Fatalf("found past the feed's end: %v", got)
	}
	ix.Close()

	// A file that is not an index at all is replaced.
	if err := os.WriteFile(path, []byte("not a bbolt file, not at all, no"), 0o600); err != nil {
		t.Fatal(err)
	}
	ix = mustOpen(t, path, c)
	if got := ids(search(t, ix, Query{Text: "风电"})); !slices.Equal(got, []string{"hebei:x"}) {
		t.Fatalf("after a garbage file: %v", got)
	}
}

// TestRelevance runs the queries of testdata/queries.json over the labelled
// corpus: each expected record must be among the first k hits (k is the number
// expected unless given), and excluded ones must not match at all.
func TestRelevance(t *testing.T) {
	c := loadAll(t)
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), c.src)
	data, err := os.ReadFile("testdata/queries.json")
	if err != nil {
		t.Fatal(err)
	}
	var cases []struct {
		Q         string   `json:"q"`
		Catalogue string   `json:"catalogue"`
		Industry  string   `json:"industry"`
		Top       []string `json:"top"`
		K         int      `json:"k"`
		Exclude   []string `json:"exclude"`
	}
	if err := json.Unmarshal(data, &cases); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		p := search(t, ix, Query{Text: tc.Q, Catalogue: tc.Catalogue, Industry: tc.Industry, Limit: 100})
		got := hitKeys(c, p)
		k := tc.K
		if k == 0 {
			k = len(tc.Top)
		}
		if len(tc.Top) == 0 && len(got) != 0 {
			t.Errorf("%q: want no hits, got %s", tc.Q, fmtHits(c, p))
		}
		for _, want := range tc.Top {
			if i := slices.Index(got, want); i < 0 || i >= k {
				t.Errorf("%q: %s at rank %d, want within %d; hits %s", tc.Q, want, i+1, k, fmtHits(c, p))
			}
		}
		for _, no := range tc.Exclude {
			if slices.Contains(got, no) {
				t.Errorf("%q: %s should not match; hits %s", tc.Q, no, fmtHits(c, p))
			}
		}
		if tc.Industry != "" {
			for _, h := range p.Hits {
				if !slices.Contains(h.Doc.Industries, tc.Industry) {
					t.Errorf("%q: hit %s outside industry %s", tc.Q, h.Doc.ID, tc.Industry)
				}
			}
		}
	}
}

// TestPaging pages through a query two hits at a time, in relevance and in id
// order: every match once, in the order of the whole result.
func TestPaging(t *testing.T) {
	c := loadAll(t)
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), c.src)
	for _, order := range []Order{ByRelevance, ByID} {
		all := search(t, ix, Query{Text: "电池", Order: order, Limit: 1000})
		if all.Total < 10 || len(all.Hits) != all.Total || all.Next != nil {
			t.Fatalf("whole result: %d hits of %d, next %v", len(all.Hits), all.Total, all.Next)
		}
		// Pages end at Limit hits, or at MaxBytes of record bodies (with at
		// least one hit), and go on from their cursor either way.
		body := len(all.Hits[0].Record.Body)
		for _, c := range []struct{ limit, maxBytes int }{{2, 0}, {1000, 1}, {1000, 2 * body}, {3, 2 * body}} {
			var paged []string
			var after *Cursor
			for i := 0; ; i++ {
				p := search(t, ix, Query{Text: "电池", Order: order, Limit: c.limit, After: after, MaxBytes: c.maxBytes})
				if p.Total != all.Total {
					t.Fatalf("page total %d, want %d", p.Total, all.Total)
				}
				size := 0
				for j, h := range p.Hits {
					if c.maxBytes > 0 && size >= c.maxBytes {
						t.Fatalf("limit %d, max bytes %d: hit %d of a page already holding %d bytes", c.limit, c.maxBytes, j, size)
					}
					size += len(h.Record.Body)
				}
				if len(p.Hits) == 0 || p.Next != nil && len(p.Hits) < c.limit && size < c.maxBytes {
					t.Fatalf("limit %d, max bytes %d: a page of %d hits, %d bytes, with next %v", c.limit, c.maxBytes, len(p.Hits), size, p.Next)
				}
				paged = append(paged, ids(p)...)
				if p.Next == nil {
					break
				}
				after = p.Next
				if i > 100 {
					t.Fatal("paging does not end")
				}
			}
			if !slices.Equal(paged, ids(all)) {
				t.Fatalf("order %d, limit %d, max bytes %d: paged %v\nwhole %v", order, c.limit, c.maxBytes, paged, ids(all))
			}
			if order == ByID && !slices.IsSorted(paged) {
				t.Fatalf("id order: %v", paged)
			}
		}
	}
}

func TestFiltersAndAllow(t *testing.T) {
	c := loadAll(t)
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), c.src)
	p := search(t, ix, Query{Text: "电池", Origin: "hq", Limit: 100})
	for _, h := range p.Hits {
		if h.Doc.Origin != "hq" {
			t.Errorf("origin filter let %s through", h.Doc.ID)
		}
	}
	p = search(t, ix, Query{Text: "电池", Allow: func(d *Doc) bool { return d.Catalogue == "expert" }, Limit: 100})
	if p.Total != len(p.Hits) || p.Total == 0 {
		t.Fatalf("allow: %d hits, total %d", len(p.Hits), p.Total)
	}
	for _, h := range p.Hits {
		if h.Doc.Catalogue != "expert" || h.Record == nil || h.Record.ID != h.Doc.ID {
			t.Errorf("allow let %s through (record %v)", h.Doc.ID, h.Record)
		}
	}
	p = search(t, ix, Query{Text: "电池", Status: "open", Catalogue: "need", UpdatedSince: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), Limit: 100})
	if p.Total == 0 {
		t.Fatal("no open needs about 电池")
	}
	if _, err := ix.Search(Query{Text: " ，。 the "}); err != ErrEmptyQuery {
		t.Fatalf("empty query: %v", err)
	}
}

// TestQueryDoesNotWaitForABacklog: a query waits for a few changes (a client
// finds what it just wrote) but not for a backlog beyond QueryCatchUp (a
// centre taking in a peer's log), which it reports as Behind instead.
func TestQueryDoesNotWaitForABacklog(t *testing.T) {
	src := newMemSource()
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
	src.put(supplyRecord("tianjin:first", "钙钛矿叠层电池", "中试线"))
	if p := search(t, ix, Query{Text: "钙钛矿"}); len(p.Hits) != 1 || p.Behind != 0 {
		t.Fatalf("a fresh write: %d hits, behind %d; want it found", len(p.Hits), p.Behind)
	}
	for i := range QueryCatchUp + 10 {
		src.put(supplyRecord(fmt.Sprintf("hebei:r%05d", i), "液流电池储能", "长时储能"))
	}
	pos := ix.Position()
	p := search(t, ix, Query{Text: "钙钛矿"})
	if p.Behind != QueryCatchUp+10 || ix.Position() != pos {
		t.Fatalf("behind %d, index moved from %d to %d: the query waited for a backlog of %d", p.Behind, pos, ix.Position(), QueryCatchUp+10)
	}
	if len(p.Hits) != 1 {
		t.Fatalf("what was indexed is not found while behind: %v", ids(p))
	}
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	if p := search(t, ix, Query{Text: "液流"}); p.Behind != 0 || p.Total != QueryCatchUp+10 {
		t.Fatalf("after catching up: behind %d, %d hits", p.Behind, p.Total)
	}
}

// TestTopHitsIsSortPrefix: selecting the best k equals sorting all and taking
// k, for every k and with tied scores (the id breaks ties).
func TestTopHitsIsSortPrefix(t *testing.T) {
	order := func(a, b Hit) int {
		if a.Score != b.Score {
			if a.Score > b.Score {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Doc.ID, b.Doc.ID)
	}
	var hits []Hit
	for i := range 200 {
		hits = append(hits, Hit{Doc: &Doc{ID: fmt.Sprintf("d%03d", (i*37)%200)}, Score: float64((i * 7919) % 13)})
	}
	all := slices.Clone(hits)
	slices.SortFunc(all, order)
	for _, k := range []int{1, 2, 7, 20, 199, 200, 500} {
		got := topHits(hits, k, order)
		want := all[:min(k, len(all))]
		if len(got) != len(want) {
			t.Fatalf("k=%d: %d hits, want %d", k, len(got), len(want))
		}
		for i := range want {
			if got[i].Doc.ID != want[i].Doc.ID {
				t.Fatalf("k=%d: hit %d is %s, want %s", k, i, got[i].Doc.ID, want[i].Doc.ID)
			}
		}
	}
}

// TestTornBlockFoundByQueryRebuilds: a postings block that does not decode
// (the index is not fsynced, so a power cut can tear it) is skipped by the
// query that meets it, and the index is rebuilt from the store at the next
// Sync, or at once by Run though nothing is written, after which the query
// finds everything again.
func TestTornBlockFoundByQueryRebuilds(t *testing.T) {
	src := newMemSource()
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
	src.put(supplyRecord("tianjin:a", "钙钛矿叠层电池", "中试线"))
	src.put(supplyRecord("hebei:b", "液流电池储能", "长时储能"))
	want := []string{"hebei:b", "tianjin:a"}
	found := func() []string { return ids(search(t, ix, Query{Text: "电池", Order: ByID})) }
	if got := found(); !slices.Equal(got, want) {
		t.Fatalf("before: %v", got)
	}
	tear := func() { t.Helper(); tearFirstBlock(t, ix, "电池") }

	tear()
	if got := found(); slices.Equal(got, want) {
		t.Fatalf("the torn block was read: %v", got)
	}
	if !ix.torn.Load() {
		t.Fatal("the query did not note the torn block")
	}
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	if got := found(); !slices.Equal(got, want) || ix.torn.Load() {
		t.Fatalf("after Sync: %v (torn %v)", got, ix.torn.Load())
	}

	startRun(t, ix)
	// Let Run index a write and wait for the next: only the query's note
	// can wake it now (a search catches up only with writes).
	src.put(supplyRecord("xiongan:c", "储氢材料", "固态储氢"))
	last, err := src.LastPosition()
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ix.pos.Load() < last; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not index the write")
		}
	}
	time.Sleep(100 * time.Millisecond)
	tear()
	found() // notes it; Run rebuilds without a write
	deadline := time.Now().Add(10 * time.Second)
	for ix.torn.Load() || ix.pos.Load() < last {
		if time.Now().After(deadline) {
			t.Fatalf("Run did not rebuild the torn index (torn %v, at %d of %d)", ix.torn.Load(), ix.pos.Load(), last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := found(); !slices.Equal(got, want) {
		t.Fatalf("after Run: %v", got)
	}
}

// TestBehindReadWithTheQuery: a reset between a query's catch-up and its read
// (a torn block found by another query, say) leaves the query reading an empty
// index; its Behind must count every change, not the 0 its catch-up measured.
func TestBehindReadWithTheQuery(t *testing.T) {
	src := newMemSource()
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
	src.put(supplyRecord("tianjin:a", "钙钛矿叠层电池", "中试线"))
	src.put(supplyRecord("hebei:b", "液流电池储能", "长时储能"))
	synced, err := ix.syncForQuery()
	if err != nil {
		t.Fatal(err)
	}
	last, _ := src.LastPosition()
	if p, err := ix.search(Query{Text: "电池", Limit: 10}, parseQuery("电池"), synced); err != nil || p.Behind != 0 || p.Total != 2 {
		t.Fatalf("caught up: %+v, %v", p, err)
	}
	ix.mu.Lock()
	err = ix.reset()
	ix.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ix.search(Query{Text: "电池", Limit: 10}, parseQuery("电池"), synced)
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 0 || p.Behind != last {
		t.Fatalf("after a reset: %d hits, Behind %d; want 0 hits, Behind %d", p.Total, p.Behind, last)
	}
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}

	// Between a batch's commit and the doc table taking its documents, a
	// query skips the batch's postings: Behind must count the batch.
	src.put(supplyRecord("xiongan:c", "固态电池", "储能"))
	last, _ = src.LastPosition()
	var during *Page
	ix.afterCommit = func() {
		during, err = ix.search(Query{Text: "电池", Limit: 10}, parseQuery("电池"), last)
	}
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	ix.afterCommit = nil
	if err != nil {
		t.Fatal(err)
	}
	if during.Total != 2 || during.Behind != 1 {
		t.Fatalf("between commit and doc table: %d hits, Behind %d; want 2 hits, Behind 1", during.Total, during.Behind)
	}
}

// TestQueryLeavesRebuildToRun: a query whose own catch-up meets a torn block
// answers from the emptied index with Behind saying so, instead of re-indexing
// the whole feed while its client waits; the reset wakes a parked Run, which
// rebuilds with no further write.
func TestQueryLeavesRebuildToRun(t *testing.T) {
	src := newMemSource()
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
	for i := range 30 {
		src.put(supplyRecord(fmt.Sprintf("tianjin:r%02d", i), "液流电池储能", "长时储能"))
	}
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	tearFirstBlock(t, ix, "电池")
	// The new record's postings for 电池 go to the torn block: the query's
	// catch-up meets it while writing.
	src.put(supplyRecord("hebei:new", "钠离子电池", "储能"))
	last, _ := src.LastPosition()
	p := search(t, ix, Query{Text: "储能"})
	if got := ix.Position(); got != 0 {
		t.Fatalf("the query rebuilt the index itself (position %d of %d)", got, last)
	}
	if p.Behind != last {
		t.Fatalf("Behind %d after the reset, want %d", p.Behind, last)
	}

	// Run, started now, would rebuild in its first Sync whatever woke it:
	// let that pass, park it, and reset again as apply does. The wake the
	// query's reset left is taken first, so Run parks at once after its Sync.
	select {
	case <-ix.rebuildCh:
	default:
		t.Fatal("the query's reset did not ask Run to rebuild")
	}
	startRun(t, ix)
	waitPosition := func(what string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); ix.Position() < last; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: at %d of %d", what, ix.Position(), last)
			}
		}
	}
	waitPosition("Run's first Sync did not rebuild")
	time.Sleep(100 * time.Millisecond)
	ix.mu.Lock()
	err := ix.reset()
	ix.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	waitPosition("the reset did not wake Run")
	if p := search(t, ix, Query{Text: "储能"}); p.Total != 31 || p.Behind != 0 {
		t.Fatalf("after Run's rebuild: %d hits, Behind %d", p.Total, p.Behind)
	}
}

// tearFirstBlock overwrites the first postings block of term with bytes no
// block decodes from, as a power cut can leave it.
func tearFirstBlock(t *testing.T, ix *Index, term string) {
	t.Helper()
	err := ix.db.Update(func(tx *bbolt.Tx) error {
		k, _ := tx.Bucket(bucketPost).Cursor().Seek(append([]byte(term), 0))
		if k == nil || !strings.HasPrefix(string(k), term+"\x00") {
			return fmt.Errorf("no block of %s", term)
		}
		return tx.Bucket(bucketPost).Put(bytes.Clone(k), []byte{0xff, 0xff, 0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// startRun runs ix.Run until the test ends.
func startRun(t *testing.T, ix *Index) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ix.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// TestAllowRecordDecidesOnTheStoreRecord: a record turned private after the
// query read the index still passes Allow (the index's copy says public);
// AllowRecord, asked of the record as the store holds it, leaves it out, and
// the page is filled from the next hit.
func TestAllowRecordDecidesOnTheStoreRecord(t *testing.T) {
	src := &racingSource{memSource: newMemSource()}
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
	public := func(id, title string) *schema.Record {
		r := supplyRecord(id, title, "中试线")
		r.Visibility = schema.VisibilityPublic
		return r
	}
	src.put(public("tianjin:a", "钙钛矿叠层电池 钙钛矿"))
	src.put(public("tianjin:b", "钙钛矿电池"))
	src.write = func() {
		r := public("tianjin:a", "钙钛矿叠层电池 钙钛矿")
		r.Visibility = schema.VisibilityPrivate
		src.put(r)
	}
	p := search(t, ix, Query{Text: "钙钛矿", Limit: 1,
		Allow:       func(d *Doc) bool { return d.Visibility == schema.VisibilityPublic },
		AllowRecord: func(r *schema.Record) bool { return r.Visibility == schema.VisibilityPublic },
	})
	if got := ids(p); !slices.Equal(got, []string{"tianjin:b"}) {
		t.Fatalf("hits %v, want only tianjin:b: the private record was served", got)
	}
	for _, h := range p.Hits {
		if h.Record.Visibility != schema.VisibilityPublic {
			t.Errorf("hit %s is %s", h.Record.ID, h.Record.Visibility)
		}
	}
}

// TestTotalLeavesOutWhatThePageFoundGone: a record deleted, or turned
// private, after the query read the index and before it read the page's
// records is left off the page, and was still counted in Total: the one
// answer a partner reads said more matches than it held, with no more pages
// to find them on. Total now counts no hit the page found gone; one ranked
// beyond the page still counts until the next query (Page.Total).
func TestTotalLeavesOutWhatThePageFoundGone(t *testing.T) {
	public := func(id, title string) *schema.Record {
		r := supplyRecord(id, title, "中试线")
		r.Visibility = schema.VisibilityPublic
		return r
	}
	for name, race := range map[string]func(src *racingSource){
		"deleted": func(src *racingSource) { src.delete("tianjin:a") },
		"turned private": func(src *racingSource) {
			r := public("tianjin:a", "钙钛矿叠层电池 钙钛矿")
			r.Visibility = schema.VisibilityPrivate
			src.put(r)
		},
	} {
		t.Run(name, func(t *testing.T) {
			src := &racingSource{memSource: newMemSource()}
			ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
			src.put(public("tianjin:a", "钙钛矿叠层电池 钙钛矿"))
			src.put(public("tianjin:b", "钙钛矿电池"))
			src.put(public("tianjin:c", "钙钛矿组件"))
			src.write = func() { race(src) }
			p := search(t, ix, Query{Text: "钙钛矿", Limit: 10,
				Allow:       func(d *Doc) bool { return d.Visibility == schema.VisibilityPublic },
				AllowRecord: func(r *schema.Record) bool { return r.Visibility == schema.VisibilityPublic },
			})
			if len(p.Hits) != 2 || p.Total != 2 || p.Next != nil {
				t.Fatalf("%v, total %d, next %v: want 2 hits, a total of 2 and no next page", ids(p), p.Total, p.Next)
			}
		})
	}
}

// purgingSource is a memSource whose origins in purged are purged: Get serves
// their records as tombstones, as the store does from a purge's first chunk,
// while the feed has yet to carry their deletions.
type purgingSource struct {
	*memSource
	purged map[string]bool
}

func (s *purgingSource) Purged(origin string) (bool, error) { return s.purged[origin], nil }

func (s *purgingSource) Get(id string) (*schema.Record, error) {
	r, err := s.memSource.Get(id)
	if err == nil && s.purged[r.Origin] {
		r.Deleted, r.Body = true, json.RawMessage("{}")
		return r, store.ErrDeleted
	}
	return r, err
}

// TestQueryLeavesOutAPurgedOrigin: the index keeps a purged origin's records
// whose chunk is still to come; a query counts none of them, as a page shows
// none (node's TestSearchTotalLeavesOutAPurgedOrigin runs it on a real store).
func TestQueryLeavesOutAPurgedOrigin(t *testing.T) {
	src := &purgingSource{memSource: newMemSource(), purged: map[string]bool{}}
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
	// tianjin:a ranks first: a page of one never reads hebei's records,
	// so the total cannot rest on the page finding them gone.
	src.put(supplyRecord("tianjin:a", "钙钛矿 钙钛矿", "钙钛矿"))
	src.put(supplyRecord("hebei:b", "钙钛矿叠层电池的中试与量产工艺", "中试线"))
	src.put(supplyRecord("hebei:c", "钙钛矿组件封装与户外可靠性验证", "中试线"))
	if p := search(t, ix, Query{Text: "钙钛矿"}); p.Total != 3 {
		t.Fatalf("before the purge: total %d", p.Total)
	}
	src.purged["hebei"] = true
	if p := search(t, ix, Query{Text: "钙钛矿", Limit: 1}); len(p.Hits) != 1 || p.Hits[0].Doc.ID != "tianjin:a" {
		t.Fatalf("before the purge, the first hit is %v, want tianjin:a", ids(p))
	}
	for origin, want := range map[string]int{"": 1, "hebei": 0} {
		p := search(t, ix, Query{Text: "钙钛矿", Origin: origin, Limit: 1})
		if len(p.Hits) != want || p.Total != want || p.Next != nil {
			t.Errorf("origin %q: %v, total %d, next %v; want %d of each", origin, ids(p), p.Total, p.Next, want)
		}
	}
}
