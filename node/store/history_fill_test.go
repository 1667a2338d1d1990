package store

import (
	"fmt"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"liandong/auth"
	"liandong/schema"
)

// TestHistoryFillChoice: the history bucket splits full only while the keys
// land at the end of their origin's range. The seek must tell an origin's
// end from the start of another whose name begins with it ("hq" then "hqa",
// whose ids sort right after "hq:"'s) and from one that ends with it before
// ("hq-2:" sorts before "hq:"), treat the bucket's last origin and an empty
// bucket as an end, and keep the middle's fill once one key chose it.
func TestHistoryFillChoice(t *testing.T) {
	held := []string{"hq-2:b", "hq:b", "hq:d", "hqa:b"}
	hkey := func(id string, version uint64) []byte {
		return append(historyPrefix(id), u64(version)...)
	}
	for _, tc := range []struct {
		name   string
		held   []string // ids held at version 1
		puts   []string // "id" put at version 2, origin from the id, one after another
		want   float64
		reason string
	}{
		{"empty bucket", nil, []string{"hq:a"}, 1.0, "nothing after the key"},
		{"last origin's end", held, []string{"hqa:c"}, 1.0, "nothing after the key"},
		{"end before an origin it prefixes", held, []string{"hq:e"}, 1.0, `"hqa:b" is another origin's`},
		{"end of an origin it prefixes", held, []string{"hq-2:c"}, 1.0, `"hq:b" is another origin's`},
		{"an update at the end", held, []string{"hq:d"}, 1.0, `version 2 of "hq:d" sorts after its version 1, before "hqa:b"`},
		{"an update in the middle", held, []string{"hq:b"}, historyInsertFill, `"hq:d" follows`},
		{"a new id in the middle", held, []string{"hq:c"}, historyInsertFill, `"hq:d" follows`},
		{"the start of an origin", held, []string{"hq:a"}, historyInsertFill, `"hq:b" follows`},
		{"an end after the middle", held, []string{"hq:c", "hq:e", "hqa:c"}, historyInsertFill, "the middle's fill holds for the transaction"},
		{"the middle after an end", held, []string{"hq:e", "hq-2:a"}, historyInsertFill, `"hq-2:b" follows`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db, err := bbolt.Open(filepath.Join(t.TempDir(), "h.db"), 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			err = db.Update(func(tx *bbolt.Tx) error {
				b, err := tx.CreateBucket(bucketHistory)
				if err != nil {
					return err
				}
				for _, id := range tc.held {
					if err := b.Put(hkey(id, 1), u64(1)); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bbolt.Tx) error {
				for i, id := range tc.puts {
					origin, _, err := schema.SplitID(id)
					if err != nil {
						return err
					}
					rec := &schema.Record{ID: id, Origin: origin, Version: 2}
					if err := unsafeIndexHistory(tx, &schema.Entry{EntryPayload: schema.EntryPayload{Origin: origin, Seq: uint64(i + 1), Record: rec}}); err != nil {
						return err
					}
				}
				// The handle the puts used: bbolt keeps one per bucket and
				// transaction, and its FillPercent is what splits at commit.
				if got := tx.Bucket(bucketHistory).FillPercent; got != tc.want {
					t.Errorf("puts %q: FillPercent %v, want %v (%s)", tc.puts, got, tc.want, tc.reason)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestMixedTransactionsKeepHistoryFilled: raft batches several commands in
// one transaction, so a local update (a key in the middle of this centre's
// range) shares it with remote batches of other origins, whose keys land at
// their ends ("hq-2" sorting before "hq", which begins its name). The
// update's fill must hold over the remote keys put after it, whichever
// command put them, or the pages the update splits are left a key or two
// each.
func TestMixedTransactionsKeepHistoryFilled(t *testing.T) {
	a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
	id := func(i int) string { return fmt.Sprintf("tianjin:01J%023d", i) }
	const local = 2000
	for done := 0; done < local; {
		var cmds []*Command
		for ; len(cmds) < 500; done++ {
			cmds = append(cmds, &Command{Write: &WriteCommand{Op: OpCreate, ID: id(done), Record: supply(fmt.Sprint(done), schema.VisibilityFederation), At: t0, Epoch: "E1"}})
		}
		a.apply(cmds...)
	}
	type author struct {
		origin string
		key    *auth.KeyPair
		head   schema.Head
	}
	authors := []*author{{origin: "hq"}, {origin: "hq-2"}}
	for _, au := range authors {
		au.key = mustKey(t, au.origin)
	}
	next := func(au *author) *schema.Entry {
		seq := au.head.Seq + 1
		rec := supply(fmt.Sprint(seq), schema.VisibilityFederation)
		rec.ID = fmt.Sprintf("%s:%012d", au.origin, seq)
		rec.Origin, rec.Broker, rec.Version = au.origin, au.origin, 1
		rec.CreatedAt, rec.UpdatedAt = t0, t0
		e, err := schema.NewEntry(schema.EntryPayload{Origin: au.origin, Epoch: "E1", Seq: seq, PrevHash: au.head.Hash, KeyID: au.key.ID, SignedAt: t0, Record: rec})
		if err != nil {
			t.Fatal(err)
		}
		if err := auth.SignEntry(au.key, e); err != nil {
			t.Fatal(err)
		}
		au.head = schema.Head{Origin: au.origin, Epoch: "E1", Seq: seq, Hash: e.Hash()}
		return e
	}
	const rounds, updates, remote = 60, 10, 3
	for r := range rounds {
		var cmds []*Command
		for u := range updates {
			// Spread over the range, a different record each time.
			i := (r*updates + u) * 7919 % local
			cmds = append(cmds, &Command{Write: &WriteCommand{Op: OpPut, ID: id(i), Record: supply("updated", schema.VisibilityFederation), At: t0, Epoch: "E1"}})
			for _, au := range authors {
				var es []*schema.Entry
				for range remote {
					es = append(es, next(au))
				}
				cmds = append(cmds, &Command{Remote: &RemoteCommand{Origin: au.origin, Entries: es}})
			}
		}
		for _, res := range a.apply(cmds...) {
			if res.Err != nil {
				t.Fatal(res.Err)
			}
		}
	}
	err := a.s.db.View(func(tx *bbolt.Tx) error {
		st := tx.Bucket(bucketHistory).Stats()
		if want := local + rounds*updates*(1+remote*len(authors)); st.KeyN != want {
			t.Fatalf("history: %d keys, want %d", st.KeyN, want)
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
