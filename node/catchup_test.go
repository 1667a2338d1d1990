package node

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/auth"
)

// TestFollowerCaughtUpOnlyOnceItsStateFileHolds: a replica that awaits its
// leader's commit index (what the server's membership loop learns from the
// leader's /healthz) is not caught up while its state file still lacks what
// the leader had committed. Raft's AppliedIndex moves when raft hands a
// batch to the state machine's queue, before it is applied.
func TestFollowerCaughtUpOnlyOnceItsStateFileHolds(t *testing.T) {
	key, err := auth.GenerateKey("tianjin-rec")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := func(i int, boot bool) *Node {
		cfg := DefaultConfig("tianjin", filepath.Join(dir, fmt.Sprint("r", i)))
		cfg.ReplicaID = fmt.Sprintf("tianjin-%d", i)
		cfg.RaftAddr = loopbackAddr(t)
		cfg.Bootstrap = boot
		cfg.RecordKey = key
		cfg.AwaitLeaderCommit = true
		cfg.SnapshotThreshold = 1 << 30 // replicate by log, not by snapshot
		cfg.SnapshotInterval = time.Hour
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	l := open(1, true)
	if err := l.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	ids := createConcurrently(t, l, 16, 150)
	want, _, _ := l.st.AppliedIndex()

	f := open(2, false)
	f.SetLeaderCommit(l.CommitIndex()) // what /healthz of the leader says
	if err := l.raft.AddVoter(raft.ServerID("tianjin-2"), raft.ServerAddress(f.cfg.RaftAddr), 0, 30*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for f.CaughtUp() != nil {
		if time.Now().After(deadline) {
			t.Fatal("never caught up")
		}
		time.Sleep(100 * time.Microsecond)
	}
	applied, _, _ := f.st.AppliedIndex()
	missing := 0
	for _, id := range ids {
		if _, err := f.Get(ctx, id); err != nil {
			missing++
		}
	}
	if applied < want || missing > 0 {
		t.Fatalf("caught up (raft applied %d, leader commit said %d) with the state file at %d of the leader's %d: %d of %d acknowledged records missing",
			f.raft.AppliedIndex(), f.leaderCommit.Load(), applied, want, missing, len(ids))
	}
}
