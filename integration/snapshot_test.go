package integration

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// compactedTo returns the highest raft index a process's log says it compacted
// its log up to (raft logs "compacting logs: from=A to=B" at info level).
var compactingRE = regexp.MustCompile(`compacting logs: from=(\d+) to=(\d+)`)

func compactedTo(p *proc) uint64 {
	var max uint64
	for _, m := range compactingRE.FindAllStringSubmatch(p.output.String(), -1) {
		if n, err := strconv.ParseUint(m[2], 10, 64); err == nil && n > max {
			max = n
		}
	}
	return max
}

// TestFollowerRestoresFromSnapshot: with small snapshot settings, a follower is
// killed, the others take a few hundred writes, snapshot and drop the log past
// what the follower holds; the restarted follower must install the leader's
// snapshot (raft logs "Installed remote snapshot") and catch up: same applied
// index, every acknowledged write readable locally, and the same records and
// the same change feed, position by position, on all three replicas.
//
// It runs on both kinds of raft log. raft-wal drops a compacted prefix only
// with the segment file that holds it (until then it still serves those
// entries, and a leader sends them rather than a snapshot), so its segments
// are made small here.
func TestFollowerRestoresFromSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	for _, logStore := range []string{"bolt", "wal"} {
		t.Run(logStore, func(t *testing.T) { followerRestoresFromSnapshot(t, logStore) })
	}
}

func followerRestoresFromSnapshot(t *testing.T, logStore string) {
	g := newCentreGroupWith(t, 3, groupOptions{
		snapshotInterval: time.Second, snapshotThreshold: 50, trailingLogs: 20, logLevel: "info",
		logStore: logStore, walSegmentSize: 64 << 10,
	})
	ctx := context.Background()
	load := newWriteLoad()
	leader := g.leader(-1)
	follower := (leader + 1) % 3
	other := 3 - leader - follower

	// Some writes every replica holds before the kill.
	for i := 0; i < 30; i++ {
		if err := load.put(ctx, g.clients[leader], fmt.Sprintf("tianjin:before-%d", i%10)); err != nil {
			t.Fatal(err)
		}
	}
	var held uint64
	waitFor(t, 10*time.Second, func() bool {
		lst, _, err1 := fedStatus(ctx, g.clients[leader])
		fst, _, err2 := fedStatus(ctx, g.clients[follower])
		held = fst.AppliedIndex
		return err1 == nil && err2 == nil && fst.AppliedIndex >= lst.AppliedIndex
	})
	g.procs[follower].kill()
	t.Logf("killed follower %s at applied index %d", g.ids[follower], held)

	// A few hundred writes through the leader and the other follower.
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			load.run(wctx, fmt.Sprintf("tianjin:w%d", w), 25, 80, 0, func(i int) *client {
				if i%2 == 0 {
					return g.clients[leader]
				}
				return g.clients[other]
			})
		}()
	}
	wg.Wait()
	_, ok := load.snapshot()
	if ok < 300 {
		t.Fatalf("only %d writes acknowledged: %v", ok, load)
	}
	t.Logf("%v in %v", load, time.Since(start).Round(time.Millisecond))

	// The leader snapshots within 1-2 s once 50 entries are past its last one, and
	// keeps 20 entries: wait until it has dropped entries past the follower's.
	if l := g.leader(follower); l != leader {
		t.Logf("leadership moved from %s to %s during the writes", g.ids[leader], g.ids[l])
		leader, other = l, leader
	}
	deadline := time.Now().Add(15 * time.Second)
	for n := 0; compactedTo(g.procs[leader]) <= held+1; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("leader did not compact its log past index %d within 15 s (compacted to %d)", held+1, compactedTo(g.procs[leader]))
		}
		if n%10 == 9 { // nudge the threshold along
			load.put(ctx, g.clients[leader], "tianjin:nudge")
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("leader compacted its log up to index %d; the follower holds up to %d", compactedTo(g.procs[leader]), held)

	// Restart the follower while a light writer keeps going: it must install the
	// leader's snapshot and catch up.
	bctx, stopBackground := context.WithCancel(ctx)
	background := make(chan struct{})
	go func() {
		defer close(background)
		load.run(bctx, "tianjin:during", 10, 2000, 20*time.Millisecond, func(int) *client { return g.clients[leader] })
	}()
	restarted := time.Now()
	g.start(follower)
	waitReady(t, g.procs[follower], g.urls[follower], 30*time.Second)
	waitFor(t, 20*time.Second, func() bool {
		return strings.Contains(g.procs[follower].output.String(), "Installed remote snapshot")
	})
	time.Sleep(time.Second)
	stopBackground()
	<-background
	if !strings.Contains(g.procs[leader].output.String(), "installing snapshot on") {
		t.Fatalf("leader did not log sending a snapshot:\n%s", g.procs[leader].output)
	}
	t.Logf("follower installed the snapshot %v after its restart", time.Since(restarted).Round(time.Millisecond))

	// One more write; then all three hold the same applied index and state.
	var last envelope
	if _, err := g.clients[follower].do(ctx, http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("after the snapshot"),
	}, &last); err != nil {
		t.Fatal(err)
	}
	var states [3]replicaState
	var heads [3]map[string]string
	waitFor(t, 20*time.Second, func() bool {
		for i := range g.procs {
			var err error
			if states[i], heads[i], err = fedStatus(ctx, g.clients[i]); err != nil {
				return false
			}
		}
		for i := range g.procs {
			if states[i].AppliedIndex != states[leader].CommitIndex || states[i].AppliedIndex == 0 ||
				fmt.Sprint(heads[i]) != fmt.Sprint(heads[leader]) {
				return false
			}
		}
		return true
	})
	if states[follower].AppliedIndex <= compactedTo(g.procs[leader]) {
		t.Fatalf("follower applied index %d is not past the leader's compaction (%d)", states[follower].AppliedIndex, compactedTo(g.procs[leader]))
	}
	acked, _ := load.snapshot()
	acked[last.ID] = last.Version
	for i := range g.procs {
		checkAcked(t, ctx, g.ids[i], g.clients[i], acked)
	}
	load.checkFailures(t)
	n := compareState(t, ctx, g.ids, g.clients)
	if n < 300 {
		t.Fatalf("feed has %d changes, want at least the %d writes", n, 300)
	}
	t.Logf("all three at applied index %d with heads %v; %d records, %d feed changes identical",
		states[leader].AppliedIndex, heads[leader], len(acked), n)

	// Killed again, the follower restarts from the restored state file and the
	// installed snapshot, and is the same as the others once more.
	g.procs[follower].kill()
	if _, err := g.clients[leader].do(ctx, http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("while the follower is down again"),
	}, &last); err != nil {
		t.Fatal(err)
	}
	acked[last.ID] = last.Version
	g.start(follower)
	waitReady(t, g.procs[follower], g.urls[follower], 30*time.Second)
	waitFor(t, 20*time.Second, func() bool {
		fst, fh, err1 := fedStatus(ctx, g.clients[follower])
		lst, lh, err2 := fedStatus(ctx, g.clients[leader])
		return err1 == nil && err2 == nil && fst.AppliedIndex == lst.CommitIndex && fmt.Sprint(fh) == fmt.Sprint(lh)
	})
	checkAcked(t, ctx, g.ids[follower], g.clients[follower], acked)
	compareState(t, ctx, g.ids, g.clients)
	for i, p := range g.procs {
		if err := p.stop(); err != nil {
			t.Errorf("%s: %v", g.ids[i], err)
		}
	}
}
