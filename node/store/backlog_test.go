package store

import "testing"

// TestTakingInBacklog: a remote command of BacklogEntries entries or more
// marks a catch-up; a smaller one (a push's) or a refused one does not.
func TestTakingInBacklog(t *testing.T) {
	hk := mustKey(t, "hebei")
	entries := ownLog(t, "hebei", hk, BacklogEntries+1)
	for _, tc := range []struct {
		name  string
		apply func(a *applier)
		want  bool
	}{
		{"nothing applied", func(*applier) {}, false},
		{"a push's few entries", func(a *applier) {
			a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries[:BacklogEntries-1]}})
		}, false},
		{"a pulled backlog", func(a *applier) {
			a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries[:BacklogEntries]}})
		}, true},
		{"a backlog held already", func(a *applier) {
			a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries[:2]}})
			a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries}}) // 2 skipped, 255 applied
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
			tc.apply(a)
			if got := a.s.TakingInBacklog(); got != tc.want {
				t.Fatalf("TakingInBacklog() = %v, want %v", got, tc.want)
			}
		})
	}
}
