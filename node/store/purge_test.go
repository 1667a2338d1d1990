package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
)

// TestPurgeAndRecover: purging an origin turns its records into tombstones and
// keeps later entries logged but unserved, deterministically; a recovery batch
// of the own log is taken only as such, and sets the epoch.
func TestPurgeAndRecover(t *testing.T) {
	hk := mustKey(t, "hebei")
	entries := ownLog(t, "hebei", hk, 9)
	stores := []*applier{
		{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))},
		{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))},
	}
	for _, a := range stores {
		if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries[:6]}})[0]; r.Err != nil {
			t.Fatal(r.Err)
		}
		if r := a.apply(&Command{Purge: &PurgeCommand{Origin: "hebei"}})[0]; r.Err != nil || r.Applied != 3 {
			t.Fatalf("purge: %+v", r)
		}
		if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries[6:]}})[0]; r.Err != nil || r.Applied != 3 {
			t.Fatalf("entries after the purge: %+v", r)
		}
		for _, id := range []string{"hebei:r0", "hebei:r1", "hebei:r2"} {
			if _, err := a.s.Get(id); !errors.Is(err, ErrDeleted) && !errors.Is(err, ErrNotFound) {
				t.Errorf("%s after purge: %v", id, err)
			}
		}
		if head, _ := a.s.Head("hebei"); head.Seq != 9 {
			t.Errorf("the log stopped at %d: purge must keep it whole", head.Seq)
		}
		if r := a.apply(&Command{Purge: &PurgeCommand{Origin: "tianjin"}})[0]; !errors.Is(r.Err, ErrNotOrigin) {
			t.Errorf("purging the own origin: %+v", r)
		}
	}
	d0, _ := stores[0].s.Digest()
	d1, _ := stores[1].s.Digest()
	if d0 != d1 {
		t.Fatal("two replicas applying the same purge differ")
	}

	// Recovery: hebei lost its state; its own entries come back only as a
	// recovery batch, which also restores the epoch its next write continues.
	a := &applier{t: t, s: mustOpen(t, "hebei", hk)}
	if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries}})[0]; !errors.Is(r.Err, ErrFork) {
		t.Fatalf("own entries without recovery: %+v", r)
	}
	if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries, Recover: true}})[0]; r.Err != nil || r.Applied != 9 {
		t.Fatalf("recovery: %+v", r)
	}
	if epoch, _ := a.s.Epoch(); epoch != entries[0].Epoch {
		t.Fatalf("epoch after recovery %q, want %q", epoch, entries[0].Epoch)
	}
	if r := a.write(OpPut, "hebei:r0", supply("恢复之后", "federation"), 0); r.Err != nil || r.Entry.Seq != 10 || r.Entry.PrevHash != entries[8].Hash() {
		t.Fatalf("write after recovery: %+v", r)
	}
	if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "tianjin", Entries: entries[:1], Recover: true}})[0]; !errors.Is(r.Err, ErrNotOrigin) {
		t.Fatalf("recovering another origin's log: %+v", r)
	}
}

// TestPurgeInChunks: a purge proposed in chunks (PurgeCommand.Limit) takes at
// most Limit records a command, says whether more are left, marks the origin
// purged from the first chunk, and ends in the state one unbounded purge
// makes, byte for byte (records, indexes, counts, the feed's order). Between
// chunks the state itself says what is left (UnfinishedPurges), so a purge
// a crash cut short continues on a reopened store.
func TestPurgeInChunks(t *testing.T) {
	const records = 10
	hk := mustKey(t, "hebei")
	whole := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
	fillRemote(t, whole, "hebei", hk, records)
	if n := whole.purgeAll("hebei"); n != records {
		t.Fatalf("unbounded purge took %d of %d", n, records)
	}
	want, err := whole.s.Digest()
	if err != nil {
		t.Fatal(err)
	}
	for _, limit := range []int{1, 3, 7, records, 100} {
		t.Run(fmt.Sprintf("limit=%d", limit), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			key := mustKey(t, "tianjin")
			open := func() *Store {
				s, err := Open(path, Options{Centre: "tianjin", Signer: keySigner{key}})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			a := &applier{t: t, s: open()}
			defer func() { a.s.Close() }()
			fillRemote(t, a, "hebei", hk, records)
			total := 0
			for i := 0; i <= records; i++ {
				r := a.apply(&Command{Purge: &PurgeCommand{Origin: "hebei", Limit: limit}})[0]
				if r.Err != nil || r.Applied > limit {
					t.Fatalf("chunk %d: %+v", i, r)
				}
				total += r.Applied
				if r.More != (total < records) {
					t.Fatalf("chunk %d: More %v with %d of %d purged", i, r.More, total, records)
				}
				if p, _ := a.s.Purged("hebei"); !p {
					t.Fatalf("chunk %d: hebei not marked purged", i)
				}
				// Readers see the origin purged whole from the first chunk:
				// Get, List and the feed alike.
				for seq := range records {
					if rec, err := a.s.Get(fmt.Sprintf("hebei:%012d", seq)); !errors.Is(err, ErrDeleted) || string(rec.Body) != "{}" {
						t.Fatalf("chunk %d: hebei record %d read with %d body bytes, %v; want its tombstone", i, seq, len(rec.Body), err)
					}
				}
				if items, _, err := a.s.List(Query{Origin: "hebei", Limit: 100}); err != nil || len(items) != 0 {
					t.Fatalf("chunk %d: List of hebei: %d records, %v", i, len(items), err)
				}
				if items, _, err := a.s.List(Query{Limit: 100}); err != nil || len(items) != 0 {
					t.Fatalf("chunk %d: List of all: %d records, %v", i, len(items), err)
				}
				changes, _, err := a.s.Changes(0, 1000, nil)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range changes {
					if !c.Record.Deleted {
						t.Fatalf("chunk %d: feed position %d serves %s live", i, c.Position, c.Record.ID)
					}
				}
				left, err := a.s.UnfinishedPurges()
				if err != nil {
					t.Fatal(err)
				}
				if (len(left) == 1 && left[0] == "hebei") != r.More {
					t.Fatalf("chunk %d: unfinished purges %v, More %v", i, left, r.More)
				}
				if !r.More {
					break
				}
				// A crash between chunks: what is left is in the file.
				if err := a.s.Close(); err != nil {
					t.Fatal(err)
				}
				a.s = open()
			}
			if total != records {
				t.Fatalf("chunks purged %d of %d", total, records)
			}
			if got, _ := a.s.Digest(); got != want {
				t.Fatal("the chunked purge left another state than the unbounded one")
			}
			// A chunk of an origin already purged changes nothing.
			if r := a.apply(&Command{Purge: &PurgeCommand{Origin: "hebei", Limit: limit}})[0]; r.Err != nil || r.Applied != 0 || r.More {
				t.Fatalf("chunk after the end: %+v", r)
			}
			if got, _ := a.s.Digest(); got != want {
				t.Fatal("a chunk after the end changed the state")
			}
		})
	}
}

// TestPurgeCommandEncoding: a chunk travels as a kind of its own, which
// builds from before chunks refuse rather than read as a whole purge; a
// whole purge keeps the old kind, and a limit smuggled into it is dropped, as
// those builds drop it, so that every replica purges alike; limits outside
// 1..MaxPurgeChunk are refused on every replica alike.
func TestPurgeCommandEncoding(t *testing.T) {
	for _, tc := range []struct {
		data      string
		wantLimit int
		wantErr   bool
	}{
		{data: `P{"origin":"hebei"}`},
		{data: `P{"origin":"hebei","limit":5}`},
		{data: `Q{"origin":"hebei","limit":5}`, wantLimit: 5},
		{data: `Q{"origin":"hebei"}`, wantErr: true},
		{data: `Q{"origin":"hebei","limit":"x"}`, wantErr: true},
	} {
		c, err := DecodeCommand([]byte(tc.data))
		if (err != nil) != tc.wantErr {
			t.Errorf("%s: error %v, want one: %v", tc.data, err, tc.wantErr)
			continue
		}
		if err == nil && (c.Purge == nil || c.Purge.Limit != tc.wantLimit) {
			t.Errorf("%s: decoded %+v, want limit %d", tc.data, c.Purge, tc.wantLimit)
		}
	}
	for _, tc := range []struct {
		limit int
		kind  byte
	}{{0, 'P'}, {1, 'Q'}, {MaxPurgeChunk, 'Q'}} {
		data, err := EncodeCommand(&Command{Purge: &PurgeCommand{Origin: "hebei", Limit: tc.limit}})
		if err != nil || data[0] != tc.kind {
			t.Errorf("limit %d: encoded %q, %v; want kind %c", tc.limit, data, err, tc.kind)
		}
	}
	a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
	fillRemote(t, a, "hebei", mustKey(t, "hebei"), 2)
	for _, limit := range []int{-1, MaxPurgeChunk + 1} {
		if r := a.apply(&Command{Purge: &PurgeCommand{Origin: "hebei", Limit: limit}})[0]; r.Err == nil || r.Applied != 0 {
			t.Errorf("limit %d: %+v, want a refusal", limit, r)
		}
	}
	if p, _ := a.s.Purged("hebei"); p {
		t.Error("a refused chunk marked the origin purged")
	}
}
