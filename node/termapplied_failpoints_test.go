//go:build failpoints

package node

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestAwaitTermAppliedIsBounded (review 152): the API has a leader judge a
// token whose issuer or key its bundle lacks only once it has applied its
// predecessors' log (AwaitTermApplied), and a request's context, a follower's
// forward among them, may last far longer than the apply timeout. With the
// new leader's applying held back (applyHook, as a state file retrying a
// batch on a full disk holds it), the call must return, an ErrTimeout, within
// the apply timeout, and nil once the applying resumes; a follower is told
// ErrNotLeader at once.
func TestAwaitTermAppliedIsBounded(t *testing.T) {
	const applyTimeout = 2 * time.Second
	nodes := openReplicas(t, func(_ int, cfg *Config) { cfg.ApplyTimeout = applyTimeout })
	l, next := nodes[0], nodes[2]
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := next.AwaitTermApplied(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("AwaitTermApplied at a follower: %v, want ErrNotLeader", err)
	}

	release := holdApplying(t, next)
	// Something for next to apply once it leads: its barrier waits behind it.
	leadWithABacklog(ctx, t, nodes, l, next, nodes[1])

	// A request's context: ended only by its client.
	req, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- next.AwaitTermApplied(req) }()
	select {
	case err := <-done:
		if !errors.Is(err, ErrTimeout) {
			t.Fatalf("AwaitTermApplied while the new leader's applying is held back: %v, want ErrTimeout", err)
		}
	case <-time.After(10 * applyTimeout):
		stop()
		release()
		<-done
		t.Fatalf("AwaitTermApplied still waited %v after the new leader's applying was held back (apply timeout %v)", 10*applyTimeout, applyTimeout)
	}
	release()
	if err := next.AwaitTermApplied(ctx); err != nil {
		t.Fatalf("AwaitTermApplied once the applying resumed: %v", err)
	}
}
