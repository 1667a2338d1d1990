//go:build failpoints

package node

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// TestAwaitTermAppliedFloodSharesOneBarrier (review 154 of d225b07): a flood
// of tokens of no member at a leader just elected whose applying is held back
// each waits (AwaitTermApplied) no longer than the apply timeout, and all of
// them share the term's one barrier: the leader's log gains at most one entry
// for them, and their goroutines end with the wait.
func TestAwaitTermAppliedFloodSharesOneBarrier(t *testing.T) {
	const applyTimeout = 2 * time.Second
	nodes := openReplicas(t, func(_ int, cfg *Config) { cfg.ApplyTimeout = applyTimeout })
	l, next := nodes[0], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	release := holdApplying(t, next)
	leadWithABacklog(ctx, t, nodes, l, next, nodes[1])
	// The first call starts the term's barrier; then the log's last index.
	first := make(chan error, 1)
	go func() { first <- next.AwaitTermApplied(context.Background()) }()
	time.Sleep(200 * time.Millisecond)
	before := next.raft.LastIndex()
	base := runtime.NumGoroutine()

	const flood = 500
	start := time.Now()
	errs := make(chan error, flood)
	for range flood {
		go func() { errs <- next.AwaitTermApplied(context.Background()) }()
	}
	for range flood {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrTimeout) {
				t.Fatalf("AwaitTermApplied in a flood: %v, want ErrTimeout", err)
			}
		case <-time.After(5 * applyTimeout):
			t.Fatalf("a flood's wait outlasted %v (apply timeout %v)", 5*applyTimeout, applyTimeout)
		}
	}
	took := time.Since(start)
	<-first
	if got := next.raft.LastIndex(); got > before+1 {
		t.Errorf("the flood appended %d entries to the leader's log, want at most 1 (one barrier a term)", got-before)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base+5 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > base+5 {
		t.Errorf("%d goroutines after the flood, %d before", g, base)
	}
	t.Logf("%d waits ended in %v; log %d -> %d", flood, took.Round(time.Millisecond), before, next.raft.LastIndex())
	release()
	if err := next.AwaitTermApplied(ctx); err != nil {
		t.Fatalf("AwaitTermApplied once the applying resumed: %v", err)
	}
}
