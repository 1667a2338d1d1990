package store

import (
	"errors"
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
