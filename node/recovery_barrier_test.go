package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"liandong/auth"
)

// A centre that lost its disk starts empty and enters own-log recovery; its
// partners are unreachable, so recovery has not ended. The replica restarts
// (an upgrade, a crash, a pod rescheduled): raft now holds the bootstrap
// configuration and the leader's no-op, HasExistingState says true, and
// recovery is dropped. The first write is signed as seq 1 of a log the
// partners still hold: a fork.
func TestRestartDuringRecoveryKeepsRecovering(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	open := func() *Node {
		return mustOpenNodeWith(t, dir, key, func(c *Config) { c.RecoverOwnLog = true })
	}
	n := open()
	if !n.Recovering() {
		t.Fatal("an empty centre should start recovering")
	}
	n.Close() // restart before any partner answered

	n = open()
	defer n.Close()
	if !n.Recovering() {
		_, err := n.Create(context.Background(), supplyRecord("恢复未完成"))
		head, _ := n.st.Head("tianjin")
		t.Fatalf("restarted while recovering its own log (nothing heard from peers): recovering=false, write err=%v, own log now at seq %d", err, head.Seq)
	}
}

// A new leader that loses its quorum before its barrier commits: nothing of
// the write was proposed, yet the caller is told ErrTimeout, "it may still
// be applied: check before retrying" (raftError's words for an Apply). And
// a second writer, whose ctx allows 100 ms, waits on termMu past it.
func TestNewLeaderBarrierLostIsNotMaybeApplied(t *testing.T) {
	nodes := openReplicas(t, nil)
	l := leaderOf(t, nodes, nil, 10*time.Second)
	for _, n := range nodes {
		if n != l {
			n.Close()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	type res struct {
		err  error
		took time.Duration
		end  time.Time
	}
	second := make(chan res, 1)
	go func() {
		time.Sleep(20 * time.Millisecond) // after the first holds termMu
		c2, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel2()
		start := time.Now()
		_, err := l.Create(c2, supplyRecord("第二个"))
		second <- res{err, time.Since(start), time.Now()}
	}()
	_, err := l.Create(ctx, supplyRecord("无法提交"))
	firstEnd := time.Now()
	t.Logf("first write: %v", err)
	if errors.Is(err, ErrTimeout) || strings.Contains(fmt.Sprint(err), "may still be applied") {
		t.Errorf("a write never proposed (its barrier lost leadership) is reported as maybe applied: %v", err)
	}
	s := <-second
	t.Logf("second write (100ms ctx) returned after %v: %v", s.took, s.err)
	// Compared with the first write's end rather than a bound in time: the
	// first waits until the lost leadership is noticed (a lease, about a
	// second), and a second writer held on termMu would return after it.
	if !s.end.Before(firstEnd) {
		t.Errorf("a writer whose ctx allowed 100ms waited %v on termMu, until the first write (ended %v before it) gave up", s.took, s.end.Sub(firstEnd))
	}
}
