package integration

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
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

// TestStopFitsAKillGrace: a replica stopped (SIGTERM) while it cannot finish
// what it is doing stops well within a 30 s kill grace (systemd's, docker
// stop's with -t 30, Kubernetes' default), cleanly (exit 0), and every write
// it acknowledged is there when it starts again. A leader whose raft
// receives nothing (a one-way cut, failpoints build) stopped in 10 s: raft's
// Shutdown waited out its transport timeout on every RPC held by the cut. A
// follower with writes forwarded to a paused leader under way stopped in
// 19.6 s: its HTTP shutdown waited its whole shutdown_timeout (20 s) for
// them, and raft's stop came after.
func TestStopFitsAKillGrace(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	for _, c := range []struct {
		name   string
		faults bool
		// cut makes the fault, given the leader, and returns the replica to
		// stop and what ends the fault.
		cut    func(t *testing.T, g *centreGroup, leader int) (stopping int, undo func())
		within time.Duration
	}{{
		name:   "a leader whose raft receives nothing",
		faults: true,
		cut: func(t *testing.T, g *centreGroup, leader int) (int, func()) {
			p := g.procs[leader]
			before := strings.Count(p.output.String(), faultsApplied)
			if err := os.WriteFile(g.faultsFile(leader), []byte(`{"raft_drop_in": true}`), 0o600); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for strings.Count(p.output.String(), faultsApplied) == before {
				if time.Now().After(deadline) {
					t.Fatal("the cut was not put in force within 5 s")
				}
				time.Sleep(20 * time.Millisecond)
			}
			return leader, func() { os.Remove(g.faultsFile(leader)) }
		},
		within: 5 * time.Second,
	}, {
		name: "a follower forwarding writes to a paused leader",
		cut: func(t *testing.T, g *centreGroup, leader int) (int, func()) {
			pid := g.procs[leader].cmd.Process.Pid
			syscall.Kill(pid, syscall.SIGSTOP)
			return (leader + 1) % 3, func() { syscall.Kill(pid, syscall.SIGCONT) }
		},
		within: 15 * time.Second,
	}} {
		t.Run(c.name, func(t *testing.T) {
			g := newCentreGroupWith(t, 3, groupOptions{faults: c.faults})
			leader := g.leader(-1)
			var mu sync.Mutex
			var acked []string
			for range 5 {
				var env envelope
				if _, err := g.clients[leader].do(context.Background(), http.MethodPost, "/v1/records", map[string]any{
					"catalogue": "supply", "visibility": "federation", "body": supplyBody("故障之前"),
				}, &env); err != nil {
					t.Fatal(err)
				}
				acked = append(acked, env.ID)
			}
			stopping, undo := c.cut(t, g, leader)
			undone := false
			heal := func() {
				if !undone {
					undo()
					undone = true
				}
			}
			defer heal()
			// Writers as patient as the API allows (a forward waits up to
			// 75 s), so that it is the stop that ends what they wait on.
			wc := *g.clients[stopping]
			wc.http = &http.Client{Timeout: 90 * time.Second}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			answers := map[int]int{} // refusals by status (0: no answer)
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for k := 0; k < 200 && ctx.Err() == nil; k++ {
						var env envelope
						status, err := wc.do(ctx, http.MethodPost, "/v1/records", map[string]any{
							"catalogue": "supply", "visibility": "federation", "body": supplyBody("停止之前"),
						}, &env)
						mu.Lock()
						if err == nil {
							acked = append(acked, env.ID)
						} else {
							answers[status]++
						}
						mu.Unlock()
						time.Sleep(10 * time.Millisecond)
					}
				}()
			}
			time.Sleep(3 * time.Second) // writes under way, held by the fault
			start := time.Now()
			err := g.procs[stopping].stop()
			took := time.Since(start)
			cancel()
			wg.Wait()
			t.Logf("replica %d stopped in %v; %d writes acknowledged (5 before the fault); refused, by status: %v", stopping+1, took.Round(time.Millisecond), len(acked), answers)
			if err != nil {
				t.Fatalf("replica %d did not stop cleanly: %v", stopping+1, err)
			}
			if took >= c.within {
				t.Fatalf("replica %d took %v to stop, want under %v", stopping+1, took.Round(time.Millisecond), c.within)
			}
			heal()
			g.start(stopping)
			waitReady(t, g.procs[stopping], g.urls[stopping], 30*time.Second)
			deadline := time.Now().Add(30 * time.Second)
			for _, id := range acked {
				for {
					var env envelope
					if _, err := g.clients[stopping].do(context.Background(), http.MethodGet, "/v1/records/"+id, nil, &env); err == nil {
						break
					} else if time.Now().After(deadline) {
						t.Fatalf("acknowledged write %s is not on replica %d after its restart: %v", id, stopping+1, err)
					}
					time.Sleep(50 * time.Millisecond)
				}
			}
		})
	}
}
