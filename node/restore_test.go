package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"liandong/auth"
	"liandong/node/store"
)

// TestRestoreStartsANewGroup: a backup taken while the node serves, restored
// into an empty directory, starts a new raft group holding what the backup
// held; its state machine applies the new group's entries (whose indexes
// start again from one) rather than skip them as already applied; the feed
// is named anew; later writes of the old node are not in it.
func TestRestoreStartsANewGroup(t *testing.T) {
	ctx := context.Background()
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, t.TempDir(), key)
	if err := n.NameFeed(ctx, store.Replica{}, ""); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 30 {
		rec, err := n.Create(ctx, supplyRecord(fmt.Sprint("成果", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	backup := filepath.Join(t.TempDir(), "tianjin.db")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	var announced store.BackupInfo
	size, err := n.Backup(f, func(i store.BackupInfo) { announced = i })
	if err != nil || f.Close() != nil {
		t.Fatal(err)
	}
	if announced.Size != size || announced.Centre != "tianjin" || announced.OwnSeq != 30 || announced.Records != 30 || announced.AppliedIndex == 0 {
		t.Fatalf("announced %+v, wrote %d bytes", announced, size)
	}
	later, err := n.Create(ctx, supplyRecord("备份之后"))
	if err != nil {
		t.Fatal(err)
	}
	oldFeed := n.FeedEpoch()
	n.Close()

	dir := t.TempDir()
	info, err := Restore(dir, "tianjin", backup)
	if err != nil {
		t.Fatal(err)
	}
	if info.OwnSeq != 30 || info.Records != 30 {
		t.Fatalf("restored %+v", info)
	}
	r := mustOpenNode(t, dir, key)
	defer r.Close()
	for _, id := range ids {
		if _, err := r.Get(ctx, id); err != nil {
			t.Fatalf("%s after the restore: %v", id, err)
		}
	}
	if _, err := r.Get(ctx, later.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a record written after the backup: %v, want not found", err)
	}
	rec, err := r.Create(ctx, supplyRecord("恢复之后"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := r.Get(ctx, rec.ID); err != nil || got.Version != 1 {
		t.Fatalf("a write after the restore: %v, %v", got, err)
	}
	if h, _ := r.st.Head("tianjin"); h.Seq != 31 {
		t.Fatalf("own log head %d after one write on a backup to 30", h.Seq)
	}
	if fe := r.FeedEpoch(); fe == oldFeed {
		t.Fatalf("the restored feed keeps the old name %q: partners past the backup would skip what it lacks", fe)
	}
	if reps, _ := r.st.Replicas(); len(reps) != 0 {
		t.Fatalf("the old group's replicas are still recorded: %+v", reps)
	}
}

// TestRestoreRefuses: a restore writes only into an empty data directory,
// only a liandong state file, and only one of the centre named.
func TestRestoreRefuses(t *testing.T) {
	key, _ := auth.GenerateKey("tianjin-rec")
	used := t.TempDir()
	n := mustOpenNode(t, used, key)
	backup := filepath.Join(t.TempDir(), "tianjin.db")
	f, _ := os.Create(backup)
	if _, err := n.Backup(f, nil); err != nil || f.Close() != nil {
		t.Fatal(err)
	}
	n.Close()
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, []byte("not a state file, not even close, but long enough to be read as one"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, dir, centre, from string
		want                    error
	}{
		{"into a used directory", used, "tianjin", backup, ErrDataDirInUse},
		{"of another centre", t.TempDir(), "hebei", backup, store.ErrNotBackup},
		{"not a state file", t.TempDir(), "tianjin", garbage, store.ErrNotBackup},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Restore(tc.dir, tc.centre, tc.from); !errors.Is(err, tc.want) {
				t.Fatalf("restore: %v, want %v", err, tc.want)
			}
			if tc.dir != used {
				if _, err := os.Stat(filepath.Join(tc.dir, "state.db")); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("a refused restore left a state file: %v", err)
				}
			}
		})
	}
}

// TestRestoredNodeRecoversItsOwnLog: the backup's own log may end before what
// the centre signed since, so a restored node of a federation begins an
// own-log recovery (writes wait for its peers), where a node that merely
// restarted on its state file would sign the next entry at once.
func TestRestoredNodeRecoversItsOwnLog(t *testing.T) {
	ctx := context.Background()
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, t.TempDir(), key)
	if _, err := n.Create(ctx, supplyRecord("成果")); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(t.TempDir(), "tianjin.db")
	f, _ := os.Create(backup)
	if _, err := n.Backup(f, nil); err != nil || f.Close() != nil {
		t.Fatal(err)
	}
	n.Close()
	dir := t.TempDir()
	if _, err := Restore(dir, "tianjin", backup); err != nil {
		t.Fatal(err)
	}
	r := mustOpenNodeWith(t, dir, key, func(c *Config) { c.RecoverOwnLog = true })
	defer r.Close()
	if _, err := r.Create(ctx, supplyRecord("恢复期间")); !errors.Is(err, ErrRecovering) {
		t.Fatalf("a write before the peers answered: %v, want ErrRecovering", err)
	}
}
