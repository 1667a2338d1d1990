package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

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
	size, err := n.Backup(f, func(i store.BackupInfo) error { announced = i; return nil })
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
	backup := takeBackupOf(t, n)
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
// restarted on its state file would sign the next entry at once; and
// p2p.skip_own_log_recovery, meant for a new centre, does not let it sign the
// backup's next seq at once either (review 101).
func TestRestoredNodeRecoversItsOwnLog(t *testing.T) {
	key, _ := auth.GenerateKey("tianjin-rec")
	backup, _ := backupOfRecords(t, key, 1)
	for _, tc := range []struct {
		name string
		skip bool
	}{{"recovery", false}, {"skip_own_log_recovery set", true}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := restoredDir(t, backup)
			r := mustOpenNodeWith(t, dir, key, func(c *Config) { c.RecoverOwnLog, c.SkipOwnLogRecovery = true, tc.skip })
			defer r.Close()
			if _, err := r.Create(context.Background(), supplyRecord("恢复期间")); !errors.Is(err, ErrRecovering) {
				t.Fatalf("a write before the peers answered: %v, want ErrRecovering", err)
			}
		})
	}
}

// backupOfRecords is a backup of a node that wrote count records, with their ids.
func backupOfRecords(t *testing.T, key *auth.KeyPair, count int) (string, []string) {
	t.Helper()
	n := mustOpenNode(t, t.TempDir(), key)
	defer n.Close()
	var ids []string
	for i := range count {
		rec, err := n.Create(context.Background(), supplyRecord(fmt.Sprint("成果", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	return takeBackupOf(t, n), ids
}

// takeBackupOf writes n's state file to a file and returns its path.
func takeBackupOf(t *testing.T, n *Node) string {
	t.Helper()
	backup := filepath.Join(t.TempDir(), "tianjin.db")
	f, err := os.Create(backup)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Backup(f, nil); err != nil || f.Close() != nil {
		t.Fatal(err)
	}
	return backup
}

// TestRestoredGroupJoinerHoldsTheBackup: the restored replica founds a new
// group and the others join it afresh (deploy/README.md); a joiner must hold
// the backup too, not only what came after it, or it would sign the centre's
// next write from an empty own log (review 101).
func TestRestoredGroupJoinerHoldsTheBackup(t *testing.T) {
	ctx := context.Background()
	key, _ := auth.GenerateKey("tianjin-rec")
	backup, ids := backupOfRecords(t, key, 5)

	base := t.TempDir()
	if _, err := Restore(filepath.Join(base, "r1"), "tianjin", backup); err != nil {
		t.Fatal(err)
	}
	var nodes []*Node
	for i := range 2 {
		cfg := DefaultConfig("tianjin", filepath.Join(base, fmt.Sprint("r", i+1)))
		cfg.ReplicaID = fmt.Sprintf("tianjin-%d", i+1)
		cfg.RaftAddr = loopbackAddr(t)
		cfg.Bootstrap = i == 0
		cfg.RecordKey = key
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := nodes[0].WaitLeader(wctx); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].raft.AddVoter(raft.ServerID("tianjin-2"), raft.ServerAddress(nodes[1].cfg.RaftAddr), 0, 10*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[0].Create(ctx, supplyRecord("恢复之后")); err != nil {
		t.Fatal(err)
	}
	if err := nodes[0].raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	want, _, _ := nodes[0].st.AppliedIndex()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got, _, _ := nodes[1].st.AppliedIndex(); got >= want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the joiner did not apply up to %d", want)
		}
	}
	lh, _ := nodes[0].st.Head("tianjin")
	jh, _ := nodes[1].st.Head("tianjin")
	if lh != jh {
		t.Errorf("own log head: leader %+v, joiner %+v", lh, jh)
		if e, _ := nodes[1].st.ReadRange("tianjin", 1, 1); len(e) == 1 {
			t.Errorf("the joiner's own entry 1 (the leader's is 成果0): %s", e[0].Record.Body)
		}
	}
	for _, id := range ids {
		if _, err := nodes[1].st.Get(id); err != nil {
			t.Errorf("%s at the joiner: %v", id, err)
		}
	}
}

// TestRestoredStateSurvivesAMachineRestart: after a restore, a machine
// restart while the node ran (no clean marker, another boot id) rebuilds the
// state file from raft's snapshot and log, which must hold the backup
// (review 101).
func TestRestoredStateSurvivesAMachineRestart(t *testing.T) {
	ctx := context.Background()
	key, _ := auth.GenerateKey("tianjin-rec")
	backup, ids := backupOfRecords(t, key, 5)
	dir := restoredDir(t, backup)
	open := func(boot string) *Node {
		return mustOpenNodeWith(t, dir, key, func(c *Config) { c.BootID = func() string { return boot } })
	}
	r := open("boot-1")
	if _, err := r.Create(ctx, supplyRecord("恢复之后")); err != nil {
		t.Fatal(err)
	}
	r.Close()
	os.Remove(filepath.Join(dir, cleanMarker)) // the machine went down while it ran

	r = open("boot-2")
	defer r.Close()
	holdsBackupAndAfter(t, r, ids, 6)
}

// TestCloseDuringBackup: a backup streams to a client that reads slowly (or
// not at all, for up to 30 s a write); Close (SIGTERM, after the HTTP
// server's shutdown timeout) must not wait for the client (review 101).
func TestCloseDuringBackup(t *testing.T) {
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, t.TempDir(), key)
	if _, err := n.Create(context.Background(), supplyRecord("成果")); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	backupDone := make(chan error, 1)
	go func() {
		_, err := n.Backup(pw, nil)
		backupDone <- err
	}()
	if _, err := pr.Read(make([]byte, 1)); err != nil { // the copy has begun
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() { closed <- n.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		pr.Close() // let the backup fail, so that Close can end
		<-backupDone
		<-closed
		t.Fatal("Close waited 10 s for a backup whose client stopped reading")
	}
	pr.Close()
	<-backupDone
}

// BenchmarkBackup: the copy of a state file of 5,000 records, taken through
// the local file (BENCHMARKS.md "Session 20").
func BenchmarkBackup(b *testing.B) {
	key, _ := auth.GenerateKey("tianjin-rec")
	cfg := DefaultConfig("tianjin", b.TempDir())
	cfg.RecordKey = key
	n, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		b.Fatal(err)
	}
	for i := range 5000 {
		if _, err := n.Create(ctx, supplyRecord(fmt.Sprint("成果", i))); err != nil {
			b.Fatal(err)
		}
	}
	var size int64
	for b.Loop() {
		if size, err = n.Backup(io.Discard, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(size)
}

// TestRestoredWALSurvivesRestarts: the restored group founded on a snapshot
// at index 1, with raft-wal as the log store, through a clean restart, a
// machine restart and a compaction.
func TestRestoredWALSurvivesRestarts(t *testing.T) {
	ctx := context.Background()
	key, _ := auth.GenerateKey("tianjin-rec")
	backup, ids := backupOfRecords(t, key, 5)
	dir := restoredDir(t, backup)
	open := func(boot string) *Node {
		return mustOpenNodeWith(t, dir, key, func(c *Config) {
			c.BootID = func() string { return boot }
			c.LogStore = LogStoreWAL
			c.SnapshotThreshold, c.TrailingLogs = 4, 2
		})
	}
	r := open("boot-1")
	r.Close() // a restart before the first write
	r = open("boot-1")
	for i := range 12 {
		if _, err := r.Create(ctx, supplyRecord(fmt.Sprint("恢复之后", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	os.Remove(filepath.Join(dir, cleanMarker))
	r = open("boot-2")
	defer r.Close()
	holdsBackupAndAfter(t, r, ids, 17)
}

// TestRestoredDirStartedToJoin: a restored data directory is for a replica
// that founds a new group (bootstrap). Started with raft.join instead (its
// old config), into a living group whose log still starts at entry 1, it
// must not replay that log on top of the backup: refuse at start, or take
// the leader's state whole.
func TestRestoredDirStartedToJoin(t *testing.T) {
	ctx := context.Background()
	key, _ := auth.GenerateKey("tianjin-rec")
	a := mustOpenNodeWith(t, t.TempDir(), key, func(c *Config) { c.ReplicaID, c.RaftAddr = "tianjin-1", loopbackAddr(t) })
	defer a.Close()
	for i := range 3 {
		if _, err := a.Create(ctx, supplyRecord(fmt.Sprint("成果", i))); err != nil {
			t.Fatal(err)
		}
	}
	backup := takeBackupOf(t, a)
	for i := range 2 {
		if _, err := a.Create(ctx, supplyRecord(fmt.Sprint("之后", i))); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "r2")
	if _, err := Restore(dir, "tianjin", backup); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig("tianjin", dir)
	cfg.ReplicaID, cfg.RaftAddr, cfg.Bootstrap, cfg.RecordKey = "tianjin-2", loopbackAddr(t), false, key
	b, err := Open(cfg)
	if err != nil {
		t.Logf("refused at start: %v", err)
		return
	}
	defer b.Close()
	if err := a.raft.AddVoter(raft.ServerID("tianjin-2"), raft.ServerAddress(cfg.RaftAddr), 0, 10*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := a.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	want, _, _ := a.st.AppliedIndex()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got, _, _ := b.st.AppliedIndex(); got >= want {
			break
		}
		if time.Now().After(deadline) {
			got, _, _ := b.st.AppliedIndex()
			t.Fatalf("the joiner applied up to %d, not %d", got, want)
		}
	}
	ah, _ := a.st.Head("tianjin")
	bh, _ := b.st.Head("tianjin")
	if ah != bh {
		t.Fatalf("own log head: leader %+v, restored joiner %+v", ah, bh)
	}
	ae, _ := a.st.ReadRange("tianjin", 1, 100)
	be, _ := b.st.ReadRange("tianjin", 1, 100)
	if len(ae) != len(be) {
		t.Fatalf("own log: leader %d entries, restored joiner %d", len(ae), len(be))
	}
	for i := range ae {
		if string(ae[i].Record.Body) != string(be[i].Record.Body) || ae[i].Record.ID != be[i].Record.ID {
			t.Fatalf("own entry %d: leader %s %s, joiner %s %s", i+1, ae[i].Record.ID, ae[i].Record.Body, be[i].Record.ID, be[i].Record.Body)
		}
	}
}

// TestBackupLeavesRoomOnTheDisk: the copy a backup streams from stays until
// the client has read it, so a backup that would leave the disk without room
// for the centre's writes is refused (ErrNoRoomForBackup, 507) before it copies
// anything (review 102).
func TestBackupLeavesRoomOnTheDisk(t *testing.T) {
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, t.TempDir(), key)
	defer n.Close()
	if _, err := n.Create(context.Background(), supplyRecord("成果")); err != nil {
		t.Fatal(err)
	}
	n.freeSpace = func(string) (float64, float64, bool) { return 1 << 20, 1 << 30, true }
	var buf bytes.Buffer
	if _, err := n.Backup(&buf, nil); !errors.Is(err, ErrNoRoomForBackup) || buf.Len() != 0 {
		t.Fatalf("a backup with 1 MiB free: %v, %d bytes sent; want ErrNoRoomForBackup before any", err, buf.Len())
	}
	if left, _ := filepath.Glob(filepath.Join(n.cfg.DataDir, backupTempPattern)); len(left) != 0 {
		t.Fatalf("a refused backup left %v", left)
	}
	n.freeSpace = func(string) (float64, float64, bool) { return 1 << 30, 1 << 31, true }
	if _, err := n.Backup(&buf, nil); err != nil || buf.Len() == 0 {
		t.Fatalf("a backup with 1 GiB free: %v, %d bytes", err, buf.Len())
	}
}

// holdsBackupAndAfter checks that r, its state file rebuilt from raft after a
// restore, holds the backup's records ids and its own log up to seq.
func holdsBackupAndAfter(t *testing.T, r *Node, ids []string, seq uint64) {
	t.Helper()
	if err := r.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := r.Get(context.Background(), id); err != nil {
			t.Errorf("%s from the backup, after the state file was rebuilt: %v", id, err)
		}
	}
	if h, _ := r.st.Head("tianjin"); h.Seq != seq {
		e, _ := r.st.ReadRange("tianjin", 1, 1)
		t.Errorf("own log head after the rebuild: %+v (want seq %d); entry 1 now: %+v", h, seq, e)
	}
}

// restoredDir is a new data directory with backup restored into it.
func restoredDir(t *testing.T, backup string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := Restore(dir, "tianjin", backup); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRestoreGivesFilesToTheDataDirOwner: a restore run as root (as the
// documented `liandong centre restore` on a systemd host or into a compose
// volume usually is) into a data directory owned by the node's user leaves
// files that user can open; before, state.db was root's 0600 and the node
// stopped at "permission denied". Chowning needs root, so it is skipped
// otherwise.
func TestRestoreGivesFilesToTheDataDirOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, t.TempDir(), key)
	backup := takeBackupOf(t, n)
	n.Close()
	const uid, gid = 10001, 10001
	dir := t.TempDir()
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(dir, "tianjin", backup); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"state.db", recoveryMarker, restoredMarker} {
		u, g, ok := store.FileOwner(filepath.Join(dir, name))
		if !ok || u != uid || g != gid {
			t.Errorf("%s belongs to %d:%d (known %v), want the data directory's owner %d:%d", name, u, g, ok, uid, gid)
		}
	}
	// A data directory of root's own keeps root's files.
	rootDir := t.TempDir()
	if _, err := Restore(rootDir, "tianjin", backup); err != nil {
		t.Fatal(err)
	}
	if u, _, _ := store.FileOwner(filepath.Join(rootDir, "state.db")); u != 0 {
		t.Errorf("state.db restored into root's directory belongs to uid %d", u)
	}
}

// TestRestoreAsRootFollowsNoLinks: the data directory belongs to the node's
// user, so whoever runs as that user (a compromised node) can leave links in
// it under the names a restore writes. Run as root, the restore wrote through
// them (truncating the target, or creating it where the link pointed) and then
// chowned the target to that user: any file of root's, or a new one in
// /etc/cron.d, became the node user's. A restore must replace such a name, not
// follow it, and give away only the files it made.
func TestRestoreAsRootFollowsNoLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the escalation needs a restore run as root")
	}
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, t.TempDir(), key)
	backup := takeBackupOf(t, n)
	n.Close()
	const uid, gid = 10001, 10001
	for _, name := range []string{"state.db.restore", recoveryMarker, restoredMarker} {
		t.Run(name, func(t *testing.T) {
			outside := t.TempDir() // root's
			victim := filepath.Join(outside, "root-owned")
			if err := os.WriteFile(victim, []byte("root's own\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			created := filepath.Join(outside, "cron-job") // a link to a name not yet there
			dir := t.TempDir()
			if err := os.Chown(dir, uid, gid); err != nil {
				t.Fatal(err)
			}
			for _, target := range []string{victim, created} {
				if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
				_, err := Restore(dir, "tianjin", backup)
				if u, _, ok := store.FileOwner(victim); !ok || u != 0 {
					t.Errorf("after a restore (err %v), %s belongs to uid %d", err, victim, u)
				}
				if b, _ := os.ReadFile(victim); string(b) != "root's own\n" {
					t.Errorf("after a restore (err %v), %s holds %.40q", err, victim, b)
				}
				if _, serr := os.Lstat(created); serr == nil {
					t.Errorf("after a restore (err %v), %s was created through the link", err, created)
				}
				if err != nil {
					t.Fatalf("restore over a link named %s: %v", name, err)
				}
				for _, f := range []string{"state.db", recoveryMarker, restoredMarker} {
					fi, err := os.Lstat(filepath.Join(dir, f))
					if err != nil || !fi.Mode().IsRegular() {
						t.Fatalf("%s after the restore: %v, %v", f, fi, err)
					}
					if u, _, _ := store.FileOwner(filepath.Join(dir, f)); u != uid {
						t.Errorf("%s belongs to uid %d, want %d", f, u, uid)
					}
				}
				// Start again: a fresh data directory with the next link.
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(dir, uid, gid); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestRestoreAsRootPreparesOnlyItsCopy: after the copy is made (and given to
// the data directory's owner), the restore opened it again by name to check
// it and prepare it for a new group (store.PrepareRestore), as root. The node
// user owns the directory, so it could swap a link in under that name
// meanwhile: root then rewrote whatever the link named (here another state
// file of root's, of the same centre, which Inspect takes for the backup:
// its applied index set to 1, its replicas and feed epoch dropped). A
// restore must prepare the file it made, whatever the name says by then.
func TestRestoreAsRootPreparesOnlyItsCopy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the escalation needs a restore run as root")
	}
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, t.TempDir(), key)
	backup := takeBackupOf(t, n)
	n.Close()
	victim := filepath.Join(t.TempDir(), "state.db") // root's, not the node user's
	data, err := os.ReadFile(backup)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim, data, 0o600); err != nil {
		t.Fatal(err)
	}
	const uid, gid = 10001, 10001
	dir := t.TempDir()
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	swapped := false
	restoreCopied = func(tmp string) {
		// What the node user may do at this point: replace the name.
		if err := os.Remove(tmp); err != nil {
			t.Errorf("remove %s: %v", tmp, err)
			return
		}
		if err := os.Symlink(victim, tmp); err != nil {
			t.Errorf("link %s: %v", tmp, err)
			return
		}
		swapped = true
	}
	t.Cleanup(func() { restoreCopied = nil })
	_, rerr := Restore(dir, "tianjin", backup)
	if !swapped {
		t.Fatal("the hook did not run: the test proves nothing")
	}
	if after, err := os.ReadFile(victim); err != nil || !bytes.Equal(after, data) {
		t.Errorf("the restore (err %v) rewrote %s, a file the link named (read: %v)", rerr, victim, err)
	}
	if u, _, _ := store.FileOwner(victim); u != 0 {
		t.Errorf("%s now belongs to uid %d", victim, u)
	}
	if rerr == nil {
		t.Errorf("the restore reported success with its copy replaced by a link")
	}
}
