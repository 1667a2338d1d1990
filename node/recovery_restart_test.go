package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/auth"
)

// TestRestartInPartialRecoveryKeepsRecovering: recovery pulls the own log in
// batches. After the first batch the state file holds seq 1, but peers hold
// seq 3. A restart now must keep recovering (its marker says so): taking the
// non-empty own log for the whole of it, the next write would be signed as
// seq 2, which peers already hold with other content: a fork.
func TestRestartInPartialRecoveryKeepsRecovering(t *testing.T) {
	key, _ := auth.GenerateKey("tianjin-rec")
	ctx := context.Background()

	// The centre's log as the partners hold it: seq 1..3.
	src := mustOpenNodeWith(t, t.TempDir(), key, nil)
	for _, title := range []string{"一", "二", "三"} {
		if _, err := src.Create(ctx, supplyRecord(title)); err != nil {
			t.Fatal(err)
		}
	}
	held, err := src.st.ReadRange("tianjin", 1, 10)
	if err != nil || len(held) != 3 {
		t.Fatalf("partners' log: %d entries, %v", len(held), err)
	}
	src.Close()

	dir := t.TempDir()
	open := func() *Node {
		return mustOpenNodeWith(t, dir, key, func(c *Config) { c.RecoverOwnLog = true })
	}
	n := open()
	if !n.Recovering() {
		t.Fatal("an empty centre should start recovering")
	}
	// The first pulled batch arrives: seq 1 only.
	if err := n.ApplyEntries(ctx, "tianjin", held[:1]); err != nil {
		t.Fatal(err)
	}
	n.Close() // restart before the rest was pulled and recovery ended

	n = open()
	defer n.Close()
	if !n.Recovering() {
		_, err := n.Create(ctx, supplyRecord("分叉"))
		e, _ := n.st.ReadRange("tianjin", 2, 1)
		forked := len(e) == 1 && fmt.Sprint(e[0].Hash()) != fmt.Sprint(held[1].Hash())
		t.Fatalf("restarted in the middle of own-log recovery (peers hold seq 3, state file seq 1): recovering=false; write err=%v; seq 2 differs from the partners' seq 2: %v", err, forked)
	}
}

// TestFollowersLearnRecoveryEndedFromTheWrites: a multi-replica centre
// recovers its own log; the leader ends the recovery
// (EndRecovery runs only where the exchange runs: the leader) and writes.
// The followers learn it from the write they apply: otherwise recovering
// stayed true in memory and the marker on disk, and after a failover the new
// leader refused every write
// with ErrRecovering until it hears a majority of partners again.
func TestFollowersLearnRecoveryEndedFromTheWrites(t *testing.T) {
	nodes := openReplicas(t, func(i int, c *Config) { c.RecoverOwnLog = true })
	l := leaderOf(t, nodes, nil, 10*time.Second)
	l.EndRecovery(0, 3) // partners heard: nothing more of the own log
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := l.Create(ctx, supplyRecord("恢复后")); err != nil {
		t.Fatal(err)
	}
	var f *Node
	for _, n := range nodes {
		if n != l {
			f = n
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if h, _ := f.st.Head("tianjin"); h.Seq == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, statErr := os.Stat(filepath.Join(f.cfg.DataDir, recoveryMarker))
	t.Logf("follower %s: recovering=%v, marker present=%v", f.cfg.ReplicaID, f.Recovering(), statErr == nil)
	if err := l.raft.LeadershipTransferToServer(raft.ServerID(f.cfg.ReplicaID), raft.ServerAddress(f.cfg.RaftAddr)).Error(); err != nil {
		t.Fatal(err)
	}
	nl := leaderOf(t, nodes, l, 10*time.Second)
	var err error
	for time.Now().Before(deadline.Add(5 * time.Second)) {
		if _, err = nl.Create(ctx, supplyRecord("换主后")); err == nil || errors.Is(err, ErrRecovering) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("after a failover the centre, whose recovery ended and which has written seq 1, refuses writes: %v", err)
	}
}
