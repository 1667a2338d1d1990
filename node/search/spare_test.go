package search

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"
)

// TestKeptBatchWriter indexes random records, updates and deletes in many
// small batches, each taking the postings tables the batch before kept
// (takeWriter): every answer must still be the brute-force scorer's, and
// the postings consistent, as if every batch had tables of its own.
func TestKeptBatchWriter(t *testing.T) {
	c := newRandomCorpus(11)
	src := newMemSource()
	ix, err := Open(filepath.Join(t.TempDir(), "search.db"), src, Options{Batch: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	var ids []string
	for i := range 120 {
		ids = append(ids, fmt.Sprintf("%s:r%03d", []string{"tianjin", "hebei", "hq"}[i%3], i))
	}
	for round := range 5 {
		c.churn(src, ids, 60)
		if err := ix.Sync(); err != nil {
			t.Fatal(err)
		}
		ix.syncMu.Lock()
		kept := ix.spare != nil
		ix.syncMu.Unlock()
		if !kept {
			t.Fatalf("round %d: no postings tables kept for the next batch", round)
		}
		checkConsistent(t, ix)
		for range 20 {
			q := Query{Text: c.query(), Limit: 1000}
			p := search(t, ix, q)
			want := bruteSearch(src, q)
			if p.Total != len(want) || len(p.Hits) != len(want) {
				t.Fatalf("round %d %q: %d hits (total %d), brute force %d", round, q.Text, len(p.Hits), p.Total, len(want))
			}
			for i, h := range p.Hits {
				if h.Doc.ID != want[i].id || math.Abs(h.Score-want[i].score) > 1e-9 {
					t.Fatalf("round %d %q: hit %d is %s (%v), brute force %s (%v)", round, q.Text, i, h.Doc.ID, h.Score, want[i].id, want[i].score)
				}
			}
		}
	}
}

// TestIdleIndexDropsKeptTables: Run lets go of the kept postings tables once
// no change has come for spareIdle (20 ms here), so an idle index holds no
// batch's memory.
func TestIdleIndexDropsKeptTables(t *testing.T) {
	c := newRandomCorpus(12)
	src := newMemSource()
	ix, err := Open(filepath.Join(t.TempDir(), "search.db"), src, Options{Coalesce: time.Millisecond, BusyCoalesce: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	ix.spareIdle = 20 * time.Millisecond // before Run reads it
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ix.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	src.put(c.record("hebei:r001"))
	kept := func() bool {
		ix.syncMu.Lock()
		defer ix.syncMu.Unlock()
		return ix.spare != nil
	}
	// Indexed, and then, idle, dropped: both awaited, bounded in time.
	deadline := time.Now().Add(10 * time.Second)
	for ix.Position() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the change was not indexed")
		}
		time.Sleep(time.Millisecond)
	}
	for kept() {
		if time.Now().After(deadline) {
			t.Fatal("the kept postings tables were not dropped while idle")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestLargeTablesNotKeptForSmallBatches: tables grown by a large batch (a
// catch-up of varied text) are let go by the first batch that uses less than
// a quarter of them; the next batch makes tables of its own size and keeps
// those.
func TestLargeTablesNotKeptForSmallBatches(t *testing.T) {
	c := newRandomCorpus(13)
	src := newMemSource()
	ix, err := Open(filepath.Join(t.TempDir(), "search.db"), src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	spare := func() *batchWriter {
		ix.syncMu.Lock()
		defer ix.syncMu.Unlock()
		return ix.spare
	}
	big := newBatchWriter(1)
	big.adds = make([]posting, 0, 2*keptPostingsFloor)
	ix.spare = big
	src.put(c.record("hebei:r001"))
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	if w := spare(); w != nil {
		t.Fatalf("a batch of one record kept tables of %d postings", cap(w.adds))
	}
	src.put(c.record("hebei:r002"))
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	if w := spare(); w == nil || cap(w.adds) > keptPostingsFloor {
		t.Fatalf("kept %v after a batch of one record, want its own small tables", w)
	}
	checkConsistent(t, ix)
	if p := search(t, ix, Query{Text: "电池 储能 风 氢", Limit: 10}); p.Total > 2 {
		t.Fatalf("%d hits of 2 records", p.Total)
	}
}
