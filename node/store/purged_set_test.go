package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"go.etcd.io/bbolt"

	"liandong/schema"
)

// TestGetRemoteCostsNoPurgeLookup: a Get of another centre's record, of an
// origin never purged, costs no more allocations than reading the record in a
// read transaction does (what a Get of an own record costs), whether no origin
// or another one was purged here. The bbolt lookup of the purge mark cost
// every such Get 7 (BenchmarkGetRemote).
func TestGetRemoteCostsNoPurgeLookup(t *testing.T) {
	hk := mustKey(t, "hebei")
	hebei := &applier{t: t, s: mustOpen(t, "hebei", hk)}
	if r := hebei.write(OpPut, "hebei:r0", supply("成果", schema.VisibilityFederation), 0); r.Err != nil {
		t.Fatal(r.Err)
	}
	entries, err := hebei.s.ReadRange("hebei", 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	tianjin := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
	if r := tianjin.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries}})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	read := testing.AllocsPerRun(50, func() {
		err := tianjin.s.view(func(tx *bbolt.Tx) error {
			_, err := unsafeGetRecord(tx, "hebei:r0")
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		name  string
		purge string
	}{
		{name: "no origin purged"},
		{name: "another origin purged", purge: "shanxi"},
	} {
		if tc.purge != "" {
			if r := tianjin.apply(&Command{Purge: &PurgeCommand{Origin: tc.purge, Limit: 10}})[0]; r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		get := testing.AllocsPerRun(50, func() {
			if _, err := tianjin.s.Get("hebei:r0"); err != nil {
				t.Fatal(err)
			}
		})
		if get != read {
			t.Errorf("%s: Get of hebei's record made %v allocations, reading it %v", tc.name, get, read)
		}
	}
}

// TestPurgedOriginsReloaded: which origins are purged is read from the file
// when the store opens and when a snapshot replaces its state, so a purge cut
// short (records of the origin still live) is served as whole after a
// restart, in a restored snapshot, and not past a restore of a state from
// before it.
func TestPurgedOriginsReloaded(t *testing.T) {
	hk, tk := mustKey(t, "hebei"), mustKey(t, "tianjin")
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{Centre: "tianjin", Signer: keySigner{tk}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()
	a := &applier{t: t, s: s}
	fillRemote(t, a, "hebei", hk, 3)
	var before bytes.Buffer
	if err := s.WriteSnapshot(&before); err != nil {
		t.Fatal(err)
	}
	if r := a.apply(&Command{Purge: &PurgeCommand{Origin: "hebei", Limit: 1}})[0]; r.Err != nil || !r.More {
		t.Fatalf("first chunk: %+v", r)
	}
	const live = "hebei:000000000002" // left live by the first chunk
	servedPurged := func(s *Store) bool {
		t.Helper()
		rec, err := s.Get(live)
		items, _, lerr := s.List(Query{Origin: "hebei", Limit: 10})
		if lerr != nil {
			t.Fatal(lerr)
		}
		switch {
		case errors.Is(err, ErrDeleted) && string(rec.Body) == "{}" && len(items) == 0:
			return true
		case err == nil && len(items) > 0:
			return false
		}
		t.Fatalf("Get: %v; List: %d records", err, len(items))
		return false
	}
	if !servedPurged(s) {
		t.Fatal("served live after the first chunk")
	}
	var after bytes.Buffer
	if err := s.WriteSnapshot(&after); err != nil {
		t.Fatal(err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, Options{Centre: "tianjin", Signer: keySigner{tk}}); err != nil {
		t.Fatal(err)
	}
	if !servedPurged(s) {
		t.Error("reopened: a record of the purged origin served live")
	}
	if err := s.Restore(bytes.NewReader(before.Bytes())); err != nil {
		t.Fatal(err)
	}
	if servedPurged(s) {
		t.Error("restored a state from before the purge: its records served as purged")
	}
	if err := s.Restore(bytes.NewReader(after.Bytes())); err != nil {
		t.Fatal(err)
	}
	if !servedPurged(s) {
		t.Error("restored a state with the purge: a record of the purged origin served live")
	}
	// A store that never purged (a new replica installing its first
	// snapshot) learns the purge from the snapshot alone.
	fresh := mustOpen(t, "tianjin", tk)
	if err := fresh.Restore(bytes.NewReader(after.Bytes())); err != nil {
		t.Fatal(err)
	}
	if !servedPurged(fresh) {
		t.Error("a new store restored a state with the purge: a record of the purged origin served live")
	}
}
