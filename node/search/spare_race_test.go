package search

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestKeptTablesUnderConcurrentUse: Run drops the kept postings tables
// after an idle spell of a millisecond, between and during bursts of
// writes, while queries catch the index up themselves (apply taking and
// keeping the tables from another goroutine than Run's), and Close comes
// while Run still runs. Under -race this holds every access to the kept
// tables to syncMu; the answers afterwards must be the brute-force scorer's
// (no postings of a batch left in the tables for the next), and Run must
// stop at the closed index.
func TestKeptTablesUnderConcurrentUse(t *testing.T) {
	c := newRandomCorpus(21)
	src := newMemSource()
	ix, err := Open(filepath.Join(t.TempDir(), "search.db"), src, Options{Batch: 5, Coalesce: time.Millisecond, BusyCoalesce: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ix.spareIdle = time.Millisecond // before Run reads it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ix.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after its context ended")
		}
	}()

	var ids []string
	for i := range 60 {
		ids = append(ids, fmt.Sprintf("%s:r%03d", []string{"tianjin", "hebei", "hq"}[i%3], i))
	}
	queries := make([]string, 20)
	for i := range queries {
		queries[i] = c.query()
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() { // queries, each catching the index up first
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := ix.Search(Query{Text: queries[i%len(queries)], Limit: 10}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for range 8 {
		c.churn(src, ids, 40)
		// Idle long enough for Run to drop the tables (awaited: dropped or
		// taken again by a query's catch-up, either way bounded).
		deadline := time.Now().Add(5 * time.Second)
		for {
			last, _ := src.LastPosition()
			ix.syncMu.Lock()
			dropped := ix.spare == nil
			ix.syncMu.Unlock()
			if ix.Position() == last && dropped || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	close(stop)
	wg.Wait()
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, ix)
	for _, text := range queries {
		q := Query{Text: text, Limit: 1000}
		p := search(t, ix, q)
		want := bruteSearch(src, q)
		if p.Total != len(want) || len(p.Hits) != len(want) {
			t.Fatalf("%q: %d hits (total %d), brute force %d", q.Text, len(p.Hits), p.Total, len(want))
		}
		for i, h := range p.Hits {
			if h.Doc.ID != want[i].id || math.Abs(h.Score-want[i].score) > 1e-9 {
				t.Fatalf("%q: hit %d is %s (%v), brute force %s (%v)", q.Text, i, h.Doc.ID, h.Score, want[i].id, want[i].score)
			}
		}
	}
	if err := ix.Close(); err != nil { // while Run runs
		t.Fatal(err)
	}
	// Woken by a change, Run meets the closed index and stops by itself.
	src.put(c.record(ids[0]))
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not stop at the closed index")
	}
}
