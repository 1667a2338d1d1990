package integration

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSyncFlowsThroughLeaderChange: hq and hebei on one replica each, tianjin on
// three (every replica its own libp2p host, all listed for tianjin in the bundle).
// Writers at hq and at tianjin (through any replica) run throughout; tianjin's
// leader is killed with SIGKILL mid-way and restarted. At the end every centre and
// every tianjin replica report the same head per origin, every acknowledged write
// of every origin is readable everywhere, and nothing was applied twice: in every
// replica's change feed each (id, version) appears once, each origin has as many
// changes as its log head's seq, and each record's versions run 1..n.
func TestSyncFlowsThroughLeaderChange(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five processes")
	}
	f := newMultiFederation(t,
		groupSpec{1, groupOptions{centre: "hq", standalone: true}},
		groupSpec{3, groupOptions{centre: "tianjin"}},
		groupSpec{1, groupOptions{centre: "hebei", standalone: true}},
	)
	hq, tj := f.groups["hq"], f.groups["tianjin"]
	ctx := context.Background()

	load := newWriteLoad()
	var mu sync.Mutex
	down := -1 // the tianjin replica that is down
	wctx, stopWriters := context.WithTimeout(ctx, 30*time.Second)
	defer stopWriters()
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load.run(wctx, fmt.Sprintf("hq:w%d", w), 20, 100000, 25*time.Millisecond, func(int) *client { return hq.clients[0] })
		}()
	}
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load.run(wctx, fmt.Sprintf("tianjin:w%d", w), 20, 100000, 25*time.Millisecond, func(i int) *client {
				mu.Lock()
				defer mu.Unlock()
				r := (w + i) % 3
				if r == down {
					r = (r + 1) % 3 // a client fails over to another replica
				}
				return tj.clients[r]
			})
		}()
	}

	time.Sleep(3 * time.Second)
	leader := tj.leader(-1)
	mu.Lock()
	down = leader
	mu.Unlock()
	tj.procs[leader].kill()
	killedAt := time.Now()
	newLeader := tj.leader(leader)
	t.Logf("killed tianjin's leader %s; %s leads %v later; %v", tj.ids[leader], tj.ids[newLeader], time.Since(killedAt).Round(time.Millisecond), load)
	time.Sleep(3 * time.Second)
	tj.start(leader)
	waitReady(t, tj.procs[leader], tj.urls[leader], 30*time.Second)
	mu.Lock()
	down = -1
	mu.Unlock()
	t.Logf("restarted %s; %v", tj.ids[leader], load)
	time.Sleep(3 * time.Second)
	stopWriters()
	wg.Wait()
	stoppedAt := time.Now()
	t.Logf("writers stopped: %v", load)

	// Every replica of every centre reports the same heads.
	all := f.all()
	var heads map[string]string
	deadline := time.Now().Add(30 * time.Second)
	for {
		var report []string
		heads = nil
		same := true
		for _, r := range all {
			_, h, err := fedStatus(ctx, r.client())
			report = append(report, fmt.Sprintf("%s: %v %v", r, h, err))
			if err != nil || heads != nil && fmt.Sprint(h) != fmt.Sprint(heads) {
				same = false
			}
			if heads == nil {
				heads = h
			}
		}
		if same && len(heads) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heads did not converge within 30 s:\n%s", strings.Join(report, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	converged := time.Now()

	acked, ok := load.snapshot()
	perOrigin := map[string]uint64{}
	for id, v := range acked {
		perOrigin[strings.SplitN(id, ":", 2)[0]] += v
	}
	for _, r := range all {
		checkAcked(t, ctx, r.String(), r.client(), acked)
		feed, err := readFeed(ctx, r.client())
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		checkFeedOnce(t, r.String(), feed, heads)
	}
	// An origin's log holds at least every acknowledged version of its records.
	for origin, n := range perOrigin {
		if headSeq(heads[origin]) < n {
			t.Fatalf("%s's log head %s is below the %d versions acknowledged", origin, heads[origin], n)
		}
	}
	n := compareState(t, ctx, tj.ids, tj.clients)
	load.checkFailures(t, tj.urls[leader])
	t.Logf("%d writes acknowledged on %d records; heads %v equal on %d replicas (converged %v after the writers stopped); tianjin's three feeds identical (%d changes)",
		ok, len(acked), heads, len(all), converged.Sub(stoppedAt).Round(time.Millisecond), n)
}
