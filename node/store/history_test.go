package store

import (
	"fmt"
	"testing"

	"liandong/schema"
)

// TestHistoryIndex: every version that enters a log is indexed in the same
// transaction, own writes and remote entries alike; History pages newest first
// and keeps records whose ids share a prefix apart.
func TestHistoryIndex(t *testing.T) {
	k := mustKey(t, "tianjin")
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}
	for i := 0; i < 3; i++ {
		if r := a.write(OpPut, "tianjin:a", supply(fmt.Sprint("版本", i), schema.VisibilityFederation), 0); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	a.write(OpPut, "tianjin:ab", supply("另一条", schema.VisibilityFederation), 0)
	a.write(OpPut, "tianjin:p", supply("内部", schema.VisibilityPrivate), 0)
	a.write(OpDelete, "tianjin:a", nil, 0)

	entries, more, err := a.s.History("tianjin:a", 0, 10)
	if err != nil || more || len(entries) != 4 {
		t.Fatalf("history: %d entries, more %v, %v", len(entries), more, err)
	}
	for i, e := range entries {
		if e.Record.ID != "tianjin:a" || e.Record.Version != uint64(4-i) {
			t.Fatalf("entry %d: %s v%d", i, e.Record.ID, e.Record.Version)
		}
	}
	if !entries[0].Record.Deleted {
		t.Fatal("newest entry is not the deletion")
	}
	page, more, _ := a.s.History("tianjin:a", 3, 1)
	if len(page) != 1 || page[0].Record.Version != 2 || !more {
		t.Fatalf("page below v3: %d entries, more %v", len(page), more)
	}
	if e, _, _ := a.s.History("tianjin:ab", 0, 10); len(e) != 1 {
		t.Fatalf("tianjin:ab has %d entries", len(e))
	}
	if e, _, _ := a.s.History("tianjin:p", 0, 10); len(e) != 0 {
		t.Fatalf("a private record has %d log entries", len(e))
	}

	// Remote entries are indexed as they are appended.
	hb := mustKey(t, "hebei")
	b := &applier{t: t, s: mustOpen(t, "hebei", hb)}
	for i := 0; i < 2; i++ {
		b.write(OpPut, "hebei:x", supply(fmt.Sprint("河北", i), schema.VisibilityFederation), 0)
	}
	log, err := b.s.ReadRange("hebei", 1, 10)
	if err != nil {
		t.Fatal(err)
	}
	if res := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: log}}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	remote, _, err := a.s.History("hebei:x", 0, 10)
	if err != nil || len(remote) != 2 || remote[0].Seq != 2 || remote[0].Hash() != log[1].Hash() {
		t.Fatalf("remote history: %d entries, %v", len(remote), err)
	}
}
