package store

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"go.etcd.io/bbolt"

	"liandong/schema"
)

// TestSequentialBucketsFillPages holds the buckets whose keys grow with time
// (records under ULID ids, a centre's log, the change feed) to mostly full
// pages. bbolt's default split leaves each page half empty when keys only
// grow, and every page is written by the transaction that fills it: a half
// full bucket is twice the writes of a catch-up and twice the file.
func TestSequentialBucketsFillPages(t *testing.T) {
	k := mustKey(t, "tianjin")
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}
	const n = 600
	for done := 0; done < n; {
		var cmds []*Command
		for i := 0; i < 50; i, done = i+1, done+1 {
			rec := supply(fmt.Sprintf("record %04d 的标题", done), schema.VisibilityFederation)
			cmds = append(cmds, &Command{Write: &WriteCommand{Op: OpCreate, ID: fmt.Sprintf("tianjin:01J%023d", done), Record: rec, At: t0, Epoch: "E1"}})
		}
		for _, r := range a.apply(cmds...) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	err := a.s.db.View(func(tx *bbolt.Tx) error {
		for _, b := range []struct {
			name   string
			bucket *bbolt.Bucket
		}{
			{"records", tx.Bucket(bucketRecords)},
			{"logs/tianjin", tx.Bucket(bucketLogs).Bucket([]byte("tianjin"))},
			{"feed", tx.Bucket(bucketFeed)},
		} {
			st := b.bucket.Stats()
			alloc := st.LeafAlloc
			if alloc == 0 || st.KeyN != n {
				t.Fatalf("%s: %d keys in %d leaf bytes, want %d keys", b.name, st.KeyN, alloc, n)
			}
			// The last page of each is partly filled, and the values
			// (about 400 bytes here) leave part of a page when they do not
			// divide it.
			if fill := float64(st.LeafInuse) / float64(alloc); fill < 0.8 {
				t.Errorf("%s: leaf pages %.0f%% full (%d of %d bytes), want at least 80%%", b.name, 100*fill, st.LeafInuse, alloc)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestCatchUpBucketsFillPages: a catch-up's records arrive in id order for
// each origin, so the history bucket (keyed by record id and version) and
// the index bucket (by field, value and record id) take keys at the end of
// each origin's range, as the records bucket does, and must split pages
// full too: at bbolt's default they were left half empty, some 20 MB more
// written by a catch-up of 100,000 entries.
func TestCatchUpBucketsFillPages(t *testing.T) {
	a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
	const n = 3000
	origins := []string{"hebei", "hq", "xiongan"}
	for _, origin := range origins {
		fillRemote(t, a, origin, mustKey(t, origin), n)
	}
	err := a.s.db.View(func(tx *bbolt.Tx) error {
		for _, b := range []struct {
			name   string
			bucket *bbolt.Bucket
			keys   int
		}{
			{"history", tx.Bucket(bucketHistory), n * len(origins)},
			// catalogue, origin and industry of each record
			{"index", tx.Bucket(bucketIndex), 3 * n * len(origins)},
		} {
			st := b.bucket.Stats()
			if st.LeafAlloc == 0 || st.KeyN != b.keys {
				t.Fatalf("%s: %d keys in %d leaf bytes, want %d keys", b.name, st.KeyN, st.LeafAlloc, b.keys)
			}
			if fill := float64(st.LeafInuse) / float64(st.LeafAlloc); fill < 0.8 {
				t.Errorf("%s: leaf pages %.0f%% full (%d of %d bytes), want at least 80%%", b.name, 100*fill, st.LeafInuse, st.LeafAlloc)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUpdatedHistoryKeepsPagesFilled: a later version of an older record
// puts its history key in the middle of its origin's range. Split full
// there, a page becomes a full one and one holding a key or two, and
// nothing is ever deleted from the history bucket for bbolt to merge them:
// steady updates left its pages a few percent full. The batches here end
// with a new record (a key at the range's end) after each update, as a
// catch-up's mixed batch may, so the fill the update needs must hold for the
// whole transaction.
func TestUpdatedHistoryKeepsPagesFilled(t *testing.T) {
	a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
	id := func(i int) string { return fmt.Sprintf("tianjin:01J%023d", i) }
	created := 0
	create := func() *Command {
		rec := supply(fmt.Sprintf("record %d", created), schema.VisibilityFederation)
		created++
		return &Command{Write: &WriteCommand{Op: OpCreate, ID: id(created - 1), Record: rec, At: t0, Epoch: "E1"}}
	}
	for created < 2000 {
		var cmds []*Command
		for range 500 {
			cmds = append(cmds, create())
		}
		a.apply(cmds...)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 60 {
		var cmds []*Command
		for range 10 {
			rec := supply("updated", schema.VisibilityFederation)
			cmds = append(cmds,
				&Command{Write: &WriteCommand{Op: OpPut, ID: id(rng.IntN(created)), Record: rec, At: t0, Epoch: "E1"}},
				create())
		}
		for _, r := range a.apply(cmds...) {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	err := a.s.db.View(func(tx *bbolt.Tx) error {
		st := tx.Bucket(bucketHistory).Stats()
		if st.KeyN != created+600 {
			t.Fatalf("history: %d keys, want %d", st.KeyN, created+600)
		}
		if fill := float64(st.LeafInuse) / float64(st.LeafAlloc); fill < 0.4 {
			t.Errorf("history: leaf pages %.0f%% full (%d of %d bytes in %d pages), want at least 40%%", 100*fill, st.LeafInuse, st.LeafAlloc, st.LeafPageN)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
