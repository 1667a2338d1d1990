package node

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/node/store"
)

// TestFollowerLearnsPurgeFromSnapshot: a replica that joins after its
// leader's log was compacted installs the leader's snapshot (raft's
// InstallSnapshot, the state machine's Restore) and never sees the purge's
// command. The snapshot holds a purge cut short (records of the origin still
// live in the file): the new replica serves none of them, as its leader does.
// The store's in-memory set of purged origins (h140) is the only thing that
// decides this on a store that never applied a purge, so the set must come
// from the installed file.
func TestFollowerLearnsPurgeFromSnapshot(t *testing.T) {
	fed, signed := purgeFederation(t)
	dir := t.TempDir()
	open := func(i int) *Node {
		t.Helper()
		cfg := DefaultConfig("tianjin", filepath.Join(dir, "r"+strconv.Itoa(i)))
		cfg.ReplicaID = "tianjin-" + strconv.Itoa(i)
		cfg.RaftAddr = loopbackAddr(t)
		cfg.Bootstrap = i == 1
		cfg.RecordKey = fed.Members["tianjin"].RecordKey
		cfg.Bundle, cfg.BundleSigned = fed.Bundle, signed
		cfg.TrailingLogs = 1 // the new replica cannot catch up from the log
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	lead := open(1)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := lead.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	const records = PurgeChunk + 5
	fillOrigin(t, lead, fed, "hebei", records)
	if res, err := lead.propose(ctx, &store.Command{Purge: &store.PurgeCommand{Origin: "hebei", Limit: PurgeChunk}}); err != nil || res.Applied != PurgeChunk || !res.More {
		t.Fatalf("first chunk: %+v, %v", res, err)
	}
	if live, stored := liveOf(t, lead, "hebei", records), storedLive(t, lead, "hebei"); live != 0 || stored != 5 {
		t.Fatalf("leader after the first chunk: serves %d records of hebei, holds %d live; want 0 and 5", live, stored)
	}
	if err := lead.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}

	join := open(2)
	if err := lead.raft.AddNonvoter("tianjin-2", raft.ServerAddress(join.cfg.RaftAddr), 0, 20*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	want := lead.raft.AppliedIndex()
	// Bounded wait for the new replica to reach the leader's state (no
	// assertion of how long it takes).
	for {
		got := join.raft.AppliedIndex()
		if got >= want {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the new replica applied up to %d, the leader %d", got, want)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if snap := join.raft.Stats()["last_snapshot_index"]; snap == "0" || snap == "" {
		t.Fatalf("the new replica caught up without installing a snapshot (last_snapshot_index %q): the test proves nothing", snap)
	}
	if stored := storedLive(t, join, "hebei"); stored != 5 {
		t.Fatalf("the new replica holds %d live records of hebei, want the 5 the first chunk left", stored)
	}
	if live := liveOf(t, join, "hebei", records); live != 0 {
		t.Errorf("the new replica serves %d records of hebei, purged in the snapshot it installed", live)
	}
	if p, err := join.st.Purged("hebei"); err != nil || !p {
		t.Errorf("the new replica says hebei purged: %v, %v", p, err)
	}
}
