package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"liandong/auth"
)

// TestNotReadyUntilTheLogIsReplayed: after a machine restart the state file
// is moved aside and raft replays its log into a new one. Until the replay
// has passed every command the log held, the node is not ready (and the API
// refuses, node/api): it would answer 404 for records it acknowledged, and
// check tokens against an older trust bundle, and as leader it may not apply
// peers' entries (CanApply). Ready then stays ready, also
// after restarts whose log ends in entries that carry no command.
func TestNotReadyUntilTheLogIsReplayed(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	open := func(boot string) *Node {
		t.Helper()
		return mustOpenNodeWith(t, dir, key, func(c *Config) { c.BootID = func() string { return boot } })
	}
	ctx := context.Background()
	n := open("boot-1")
	ids := createConcurrently(t, n, 16, 250)
	n.Close()
	os.Remove(filepath.Join(dir, cleanMarker)) // a power cut, then another boot

	n = open("boot-2")
	replaying := false
	deadline := time.Now().Add(60 * time.Second)
	for err := n.Ready(); err != nil; err = n.Ready() {
		if !errors.Is(err, ErrReplaying) && !errors.Is(err, ErrNotReady) {
			t.Fatalf("not ready: %v", err)
		}
		if errors.Is(err, ErrReplaying) {
			replaying = true
			if n.CanApply() {
				t.Fatal("a leader replaying its log may apply peers' entries, verified against an older bundle")
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("still not ready after 60 s: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !replaying {
		t.Log("the replay ended before the first look: this run checked nothing of it")
	}
	missing := 0
	for _, id := range ids {
		if _, err := n.Get(ctx, id); err != nil {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("ready, yet %d of %d acknowledged records are not found", missing, len(ids))
	}
	// Clean restarts: the log now ends in the leader's no-op, which no state
	// file applies; the node must not wait for it.
	for range 2 {
		n.Close()
		n = open("boot-2")
		wait := time.Now().Add(10 * time.Second)
		for n.Ready() != nil && time.Now().Before(wait) {
			time.Sleep(5 * time.Millisecond)
		}
		if err := n.Ready(); err != nil {
			t.Fatalf("after a clean restart: %v", err)
		}
	}
	n.Close()
}

// createConcurrently creates writers × each supply records at n from as many
// goroutines and returns their ids.
func createConcurrently(t *testing.T, n *Node, writers, each int) []string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				r, err := n.Create(ctx, supplyRecord(fmt.Sprint("钙钛矿电池 ", w, " ", i)))
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				ids = append(ids, r.ID)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return ids
}
