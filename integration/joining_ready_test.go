package integration

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"
)

// batchPutIDs writes n records prefix-0… through /v1/batch at c (500 a
// request) and returns id → acknowledged version.
func batchPutIDs(t *testing.T, c *client, prefix string, n int) map[string]uint64 {
	t.Helper()
	acked := map[string]uint64{}
	for done := 0; done < n; {
		var items []map[string]any
		for k := 0; k < 500 && done+k < n; k++ {
			id := fmt.Sprintf("%s-%d", prefix, done+k)
			items = append(items, map[string]any{"method": "PUT", "id": id, "record": map[string]any{
				"catalogue": "supply", "visibility": "federation", "body": supplyBody("钙钛矿 " + id)}})
		}
		var resp struct {
			Items []struct {
				Status int       `json:"status"`
				Record *envelope `json:"record"`
			} `json:"items"`
		}
		if _, err := c.do(context.Background(), http.MethodPost, "/v1/batch", map[string]any{"items": items}, &resp); err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.Items {
			if r.Record != nil {
				acked[r.Record.ID] = r.Record.Version
			}
		}
		done += len(items)
	}
	return acked
}

// TestJoiningReplicaNotReadyUntilCaughtUp: a replica joining a centre says
// ready (/readyz 200) as soon as it knows a leader, while it holds none of the
// centre's records yet.
func TestJoiningReplicaNotReadyUntilCaughtUp(t *testing.T) {
	g := newCentreGroupWith(t, 3, groupOptions{start: 1, snapshotInterval: time.Second, snapshotThreshold: 200, trailingLogs: 50})
	acked := batchPutIDs(t, g.clients[0], "tianjin:join", 6000)
	if len(acked) != 6000 {
		t.Fatalf("%d acked", len(acked))
	}
	time.Sleep(2 * time.Second) // a snapshot is taken
	g.start(1)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if status(g.clients[1], "/readyz") == http.StatusOK {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	missing := 0
	for id := range acked {
		if status(g.clients[1], "/v1/records/"+id) != http.StatusOK {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("tianjin-2 answered /readyz 200, yet %d of %d acknowledged records answered other than 200 right after", missing, len(acked))
	}
}

// TestHuntKillWhileJoining: a replica is SIGKILLed at several moments while
// it joins (snapshot install, log catch-up) and started again; it must come
// up, become a voter and hold every acknowledged write with the leader's feed.
func TestHuntKillWhileJoining(t *testing.T) {
	g := newCentreGroupWith(t, 3, groupOptions{start: 2, snapshotInterval: time.Second, snapshotThreshold: 200, trailingLogs: 50})
	ctx := context.Background()
	L := g.leader(-1)
	acked := batchPutIDs(t, g.clients[L], "tianjin:join", 6000)
	time.Sleep(2 * time.Second)
	for k, delay := range []time.Duration{300 * time.Millisecond, 800 * time.Millisecond, 1500 * time.Millisecond, 50 * time.Millisecond} {
		g.start(2)
		time.Sleep(delay)
		g.procs[2].kill()
		t.Logf("kill %d after %v", k, delay)
		more := batchPutIDs(t, g.clients[L], fmt.Sprintf("tianjin:more%d", k), 300)
		for id, v := range more {
			acked[id] = v
		}
	}
	g.start(2)
	waitReady(t, g.procs[2], g.urls[2], 60*time.Second)
	g.waitVoterIDs(30*time.Second, []string{"tianjin-1", "tianjin-2", "tianjin-3"}, 0, 1, 2)
	// Consistent reads at the follower are forwarded; read from its own state.
	waitFor(t, 30*time.Second, func() bool {
		l, _, err1 := fedStatus(ctx, g.clients[L])
		f, _, err2 := fedStatus(ctx, g.clients[2])
		return err1 == nil && err2 == nil && f.AppliedIndex >= l.AppliedIndex
	})
	checkAcked(t, ctx, "tianjin-3", g.clients[2], acked)
	lf, err := readFeed(ctx, g.clients[L])
	if err != nil {
		t.Fatal(err)
	}
	ff, err := readFeed(ctx, g.clients[2])
	if err != nil {
		t.Fatal(err)
	}
	if len(lf) != len(ff) {
		t.Fatalf("feed lengths: leader %d, joined replica %d", len(lf), len(ff))
	}
	for i := range lf {
		if fmt.Sprint(lf[i]) != fmt.Sprint(ff[i]) {
			t.Fatalf("feed differs at %d: %v vs %v", i, lf[i], ff[i])
		}
	}
	compareState(t, ctx, []string{g.ids[L], "tianjin-3"}, []*client{g.clients[L], g.clients[2]})
}
