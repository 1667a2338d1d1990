package node

import (
	"context"
	"testing"
	"time"

	"liandong/node/search"
	"liandong/node/store"
)

// TestSearchTotalLeavesOutAPurgedOrigin: from a purge's first chunk on, Get,
// List and the feed serve the purged origin's records as tombstones, and a
// search page leaves them out; but the total, counted from the index, still
// counted the records whose chunk was still to come, so a partner read a total
// it could never page through, for as long as the purge stayed unfinished
// (a leader lost part-way, a replica of an older build in the group).
func TestSearchTotalLeavesOutAPurgedOrigin(t *testing.T) {
	fed, signed := purgeFederation(t)
	cfg := DefaultConfig("tianjin", t.TempDir())
	cfg.RecordKey = fed.Members["tianjin"].RecordKey
	cfg.Bundle, cfg.BundleSigned = fed.Bundle, signed
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	const records = 7
	fillOrigin(t, n, fed, "hebei", records)
	fillOrigin(t, n, fed, "beijing", 3)
	search := func(origin string, limit int) *search.Page {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			page, err := n.Search(ctx, search.Query{Text: "京津冀", Origin: origin, Limit: limit})
			if err != nil {
				t.Fatal(err)
			}
			if page.Behind == 0 {
				return page
			}
			if time.Now().After(deadline) {
				t.Fatalf("the search index is still %d changes behind", page.Behind)
			}
		}
	}
	if p := search("", 100); p.Total != records+3 || len(p.Hits) != records+3 {
		t.Fatalf("before the purge: total %d, %d hits; want %d", p.Total, len(p.Hits), records+3)
	}
	if res, err := n.propose(ctx, &store.Command{Purge: &store.PurgeCommand{Origin: "hebei", Limit: 2}}); err != nil || res.Applied != 2 || !res.More {
		t.Fatalf("first chunk: %+v, %v", res, err)
	}
	// A page of one: the total must not rest on the page having read
	// (and found gone) every leftover.
	for origin, want := range map[string]int{"": 3, "hebei": 0, "beijing": 3} {
		p := search(origin, 1)
		if p.Total != want || len(p.Hits) != min(want, 1) {
			t.Errorf("origin %q after the first chunk: total %d, %d hits; want a total of %d", origin, p.Total, len(p.Hits), want)
		}
	}
}
