package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"liandong/auth"
)

// TestLogNotReachingBackToSnapshotIsRefused: the newest snapshot was found
// damaged and the operator moved it aside; the log had been compacted behind
// it, so it starts after the older snapshot ends. Raft would panic reading
// the missing entries at start; Open refuses, naming the gap and what to do.
func TestLogNotReachingBackToSnapshotIsRefused(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	tweak := func(c *Config) { c.TrailingLogs = 10 }
	n := mustOpenNodeWith(t, dir, key, tweak)
	ctx := context.Background()
	for round := range 2 {
		for i := range 100 {
			if _, err := n.Create(ctx, supplyRecord(fmt.Sprint("成果 ", round, " ", i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := n.raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
	}
	n.Close()
	snaps, _ := filepath.Glob(filepath.Join(dir, "raft", "snapshots", "*"))
	sort.Strings(snaps)
	if len(snaps) != 2 {
		t.Fatalf("snapshots: %v", snaps)
	}
	if err := os.Rename(snaps[1], filepath.Join(dir, "damaged-snapshot")); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig("tianjin", dir)
	cfg.RecordKey = key
	tweak(&cfg)
	var err error
	func() {
		defer func() {
			if v := recover(); v != nil {
				t.Fatalf("Open panicked: %v", v)
			}
		}()
		var n2 *Node
		if n2, err = Open(cfg); err == nil {
			n2.Close()
		}
	}()
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "starts at entry") || !strings.Contains(err.Error(), "put that snapshot back") {
		t.Fatalf("Open: %v, want ErrDamaged naming the gap", err)
	}
}
