package store

import "testing"

// TestPurgeLeavesNoBodiesInFeed: after a purge, the change feed read from the
// start must not hand out the purged origin's records as live records with
// their bodies: purge "stops serving the records of a centre that left".
func TestPurgeLeavesNoBodiesInFeed(t *testing.T) {
	hk := mustKey(t, "hebei")
	entries := ownLog(t, "hebei", hk, 6)
	a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
	if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries}})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := a.apply(&Command{Purge: &PurgeCommand{Origin: "hebei"}})[0]; r.Err != nil {
		t.Fatal(r.Err)
	}
	changes, _, err := a.s.Changes(0, 1000, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Record.Origin == "hebei" && !c.Record.Deleted {
			t.Errorf("feed position %d still serves purged %s v%d with its body (%d bytes)", c.Position, c.Record.ID, c.Record.Version, len(c.Record.Body))
		}
	}
}
