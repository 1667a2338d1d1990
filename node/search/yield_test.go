package search

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"liandong/schema"
)

func yieldSource(n int) *memSource {
	src := newMemSource()
	for i := range n {
		src.put(&schema.Record{ID: fmt.Sprintf("tianjin:r%d", i), Origin: "tianjin", Catalogue: schema.CatalogueSupply,
			Visibility: schema.VisibilityFederation, Body: []byte(`{"title":"钙钛矿叠层电池"}`)})
	}
	return src
}

// TestRunYieldsOneBatchAtATime: while Yield reports a catch-up, Run indexes
// one batch between pauses, and the rest at once when Yield turns false.
// The positions Run had reached each time it asked show its steps.
func TestRunYieldsOneBatchAtATime(t *testing.T) {
	src := yieldSource(25)
	var (
		mu   sync.Mutex
		seen []uint64
		ix   *Index
	)
	ready := make(chan struct{})
	ix, err := Open(filepath.Join(t.TempDir(), "search.db"), src, Options{Batch: 10, YieldPause: time.Millisecond,
		Yield: func() bool {
			<-ready
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, ix.Position())
			return len(seen) <= 2 // two rounds of catch-up, then done
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	close(ready)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ix.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for i := 0; ix.Position() < 25; i++ {
		if i == 1000 {
			mu.Lock()
			t.Fatalf("index at %d of 25 after 10 s; asked at %v", ix.Position(), seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []uint64{0, 10, 20}; !slices.Equal(seen, want) {
		t.Fatalf("positions when Run asked Yield: %v, want %v", seen, want)
	}
}

// TestYieldedIndexResumesAfterStop: an index stopped part-way through a
// yielded catch-up has committed what it indexed, with its position, and
// indexes the rest when it is opened again.
func TestYieldedIndexResumesAfterStop(t *testing.T) {
	src := yieldSource(25)
	path := filepath.Join(t.TempDir(), "search.db")
	ix, err := Open(path, src, Options{Batch: 10, YieldPause: time.Hour, Yield: func() bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); ix.Run(ctx) }()
	for i := 0; ix.Position() < 10; i++ {
		if i == 1000 {
			t.Fatal("no batch indexed after 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if got := ix.Position(); got != 10 {
		t.Fatalf("position %d after one yielded batch, want 10", got)
	}
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}
	ix = mustOpen(t, path, src)
	if got := ix.Position(); got != 10 {
		t.Fatalf("reopened at position %d, want 10", got)
	}
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	page, err := ix.Search(Query{Text: "钙钛矿", Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if ix.Len() != 25 || len(page.Hits) != 25 {
		t.Fatalf("after resuming: %d indexed, %d found, want 25", ix.Len(), len(page.Hits))
	}
}
