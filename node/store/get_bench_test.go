package store

import (
	"fmt"
	"path/filepath"
	"testing"

	"liandong/auth"
	"liandong/schema"
)

// BenchmarkGetRemote measures Get of another centre's record (the read path
// that h129 gave a bbolt lookup of the origin's purge mark, and h140 took
// back for origins never purged: Store.purged) and of an own
// record, over 10,000 remote records.
func BenchmarkGetRemote(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{Centre: "tianjin", Signer: keySigner{mustKey(b, "tianjin")}, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	a := &applier{t: b, s: s}
	a.write(OpPut, "tianjin:own1", supply("本中心记录", schema.VisibilityFederation), 0)
	const n = 10_000
	k := mustKey(b, "hebei")
	var head schema.Head
	for done := 0; done < n; {
		es := make([]*schema.Entry, 0, 1000)
		for ; done < n && len(es) < 1000; done++ {
			rec := supply(fmt.Sprintf("成果%d", done), schema.VisibilityFederation)
			rec.ID = fmt.Sprintf("hebei:%012d", done)
			rec.Origin, rec.Broker, rec.Version = "hebei", "hebei", 1
			rec.CreatedAt, rec.UpdatedAt = t0, t0
			e, err := schema.NewEntry(schema.EntryPayload{Origin: "hebei", Epoch: "E1", Seq: head.Seq + 1, PrevHash: head.Hash, KeyID: k.ID, SignedAt: t0, Record: rec})
			if err != nil {
				b.Fatal(err)
			}
			if err := auth.SignEntry(k, e); err != nil {
				b.Fatal(err)
			}
			head = schema.Head{Origin: "hebei", Epoch: "E1", Seq: e.Seq, Hash: e.Hash()}
			es = append(es, e)
		}
		if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: es}})[0]; r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	b.Run("remote", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := s.Get(fmt.Sprintf("hebei:%012d", i%n)); err != nil {
				b.Fatal(err)
			}
			i += 7919
		}
	})
	b.Run("own", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Get("tianjin:own1"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPurged measures what a search query pays per origin among its
// candidates to leave out a purged origin's leftovers (search.PurgedSource).
//
//	go test ./node/store -run '^$' -bench BenchmarkPurged -benchtime 200000x
func BenchmarkPurged(b *testing.B) {
	s := mustOpen(b, "tianjin", mustKey(b, "tianjin"))
	b.ReportAllocs()
	for b.Loop() {
		if p, err := s.Purged("hebei"); err != nil || p {
			b.Fatal(p, err)
		}
	}
}
