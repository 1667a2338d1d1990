package integration

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// heartbeatTimedOut is what hashicorp/raft (v1.8) logs when a follower starts
// an election because it heard from no leader for its heartbeat timeout.
const heartbeatTimedOut = "heartbeat timeout reached, starting election"

// TestLeaderHandsOverOnSIGTERM: a leader stopped gracefully transfers leadership
// before it exits, so the group has a new leader at once rather than after an
// election timeout, and a write through a surviving replica succeeds.
func TestLeaderHandsOverOnSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	g := newCentreGroup(t, 3)
	old := g.leader(-1)
	// Without a hand-over, a follower waits out raft's heartbeat timeout (at
	// least 1 s, randomised up to 2 s) and says so before it starts the
	// election; with one, the old leader's TimeoutNow starts it. So the
	// survivors' logs, not the time taken (which a loaded machine stretches
	// past the timeout, hand-over or not), tell which happened.
	seen := make([]int, len(g.procs))
	for i, p := range g.procs {
		seen[i] = len(p.output.String())
	}
	start := time.Now()
	if err := g.procs[old].stop(); err != nil {
		t.Fatalf("leader did not stop cleanly: %v", err)
	}
	stopped := time.Since(start)
	next := g.leader(old)
	if next == old {
		t.Fatal("the stopped replica still leads")
	}
	for i, p := range g.procs {
		if i == old {
			continue
		}
		if since := p.output.String()[seen[i]:]; strings.Contains(since, heartbeatTimedOut) {
			t.Fatalf("replica %d reached raft's heartbeat timeout after the leader's SIGTERM: leadership was not handed over; its log since:\n%s", i+1, since)
		}
	}
	var env envelope
	if _, err := g.clients[(old+1)%3].do(context.Background(), http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("交接之后"),
	}, &env); err != nil {
		t.Fatalf("write after the hand-over: %v", err)
	}
	var doc struct {
		Replica struct {
			State  string `json:"state"`
			Leader string `json:"leader"`
		} `json:"replica"`
	}
	if _, err := g.clients[next].do(context.Background(), http.MethodGet, "/v1/federation", nil, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Replica.State != "Leader" {
		t.Fatalf("replica %d reports state %q", next+1, doc.Replica.State)
	}
	t.Logf("leader stopped in %v; new leader %s", stopped.Round(time.Millisecond), doc.Replica.Leader)
}
