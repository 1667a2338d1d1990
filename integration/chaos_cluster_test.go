package integration

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"liandong/auth"
	"liandong/integration/chaos"
)

// The chaos harness's federation: four centres, hq on three raft replicas, the
// others on one each, run by a backend (processes on loopback, or containers in
// Docker), and the faults the harness applies to them.

// chaosNode is one replica of the chaos federation.
type chaosNode struct {
	name   string // replica id: hq-1, tianjin-1 …
	centre string
	client *client
	// loopback: the replica's group and index.
	g *centreGroup
	i int
	// docker: the container and its address on each network.
	container string
	ips       map[string]string
}

// chaosBackend runs the replicas and applies faults to them. Every method
// returns once the fault is in place (or healed): start waits until the replica
// is ready.
type chaosBackend interface {
	kill(n *chaosNode)            // SIGKILL
	pause(n *chaosNode)           // SIGSTOP, or docker pause
	resume(n *chaosNode)          // SIGCONT, or docker unpause; harmless when not paused
	terminate(n *chaosNode) error // SIGTERM and wait for a clean exit
	start(n *chaosNode) error     // start a replica that is down, wait until ready
	down(n *chaosNode) bool
	// cut makes centre unreachable from others and others from it; mend undoes it.
	cut(centre string, others []string) error
	mend(centre string, others []string) error
	// isolate cuts one replica off from the rest of its raft group while clients
	// still reach it; rejoin undoes it.
	isolate(n *chaosNode) error
	rejoin(n *chaosNode) error
	// inject puts n's live faults (a clock offset, sync streams dropped per
	// member and direction) in force, replacing those before; the zero value
	// lifts them. Only with the fault hooks of a failpoints build (loopback).
	inject(n *chaosNode, lf liveFaults) error
	// restartRefusing restarts a single-replica centre with its connection
	// gater refusing others, or with none as configured. Loopback only.
	restartRefusing(centre string, others []string) error
	// healAll undoes every fault still in place but stopped processes.
	healAll() error
}

// chaosCluster is the federation under test and what the harness observed.
type chaosCluster struct {
	t       *testing.T
	backend chaosBackend
	centres []string
	start   time.Time
	nodes   []*chaosNode
	raft    []*chaosNode // hq's replicas

	// issuers issue a fresh token of each centre, for the token probe at a
	// replica whose clock is skewed (loopback only).
	issuers map[string]*auth.TokenIssuer
	// streamCuts says the backend partitions by dropping sync streams while
	// connections stay up (loopback), not by cutting the network (docker).
	streamCuts bool

	mu         sync.Mutex
	violations []string
	faults     []string // what was applied, with times, for the log
	summary    chaos.Summary
	leaders    []chaos.LeaderSeen
}

// Raft's election timeout as the node configures it (hashicorp/raft's default).
const chaosElectionTimeout = time.Second

func (cl *chaosCluster) add(n *chaosNode) {
	cl.nodes = append(cl.nodes, n)
	if n.centre == "hq" {
		cl.raft = append(cl.raft, n)
	}
	if !slices.Contains(cl.centres, n.centre) {
		cl.centres = append(cl.centres, n.centre)
	}
}

func (cl *chaosCluster) violate(format string, args ...any) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.violations = append(cl.violations, fmt.Sprintf(format, args...))
}

func (cl *chaosCluster) logf(format string, args ...any) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	cl.faults = append(cl.faults, fmt.Sprintf("%6.1fs ", time.Since(cl.start).Seconds())+fmt.Sprintf(format, args...))
}

func (cl *chaosCluster) centreNodes(centre string) []*chaosNode {
	var out []*chaosNode
	for _, n := range cl.nodes {
		if n.centre == centre {
			out = append(out, n)
		}
	}
	return out
}

// restart starts n again; a replica that does not come back is a finding.
func (cl *chaosCluster) restart(n *chaosNode) {
	if err := cl.backend.start(n); err != nil {
		cl.violate("%s did not come back after a restart: %v", n.name, err)
	}
}

// stop stops n with SIGTERM; a replica that does not exit cleanly is a finding.
func (cl *chaosCluster) stop(n *chaosNode) {
	if err := cl.backend.terminate(n); err != nil {
		cl.violate("%s: SIGTERM: %v", n.name, err)
	}
}

// waitReady polls base/readyz until it answers 200, exited says the replica is
// gone, or within passes.
func waitReadyURL(base string, within time.Duration, exited func() error) error {
	deadline := time.Now().Add(within)
	hc := &http.Client{Timeout: 2 * time.Second}
	for time.Now().Before(deadline) {
		if err := exited(); err != nil {
			return err
		}
		resp, err := hc.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %v", within)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// status reads one replica's raft block and heads with a short timeout.
func (cl *chaosCluster) status(ctx context.Context, n *chaosNode, within time.Duration) (replicaState, map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	return fedStatus(ctx, n.client)
}

// leader finds the hq replica that says it leads; nil when none does within 10 s.
func (cl *chaosCluster) leader() *chaosNode {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range cl.raft {
			if st, _, err := cl.status(context.Background(), n, time.Second); err == nil && st.State == "Leader" {
				return n
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// watchLeaders polls every hq replica's raft state until ctx ends, for the
// one-leader-per-term check.
func (cl *chaosCluster) watchLeaders(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range cl.raft {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if st, _, err := cl.status(ctx, n, time.Second); err == nil {
					cl.mu.Lock()
					cl.leaders = append(cl.leaders, chaos.LeaderSeen{At: time.Since(cl.start), Replica: n.name, State: st.State, Term: st.Term, Leader: st.Leader})
					cl.mu.Unlock()
				}
				sleepCtx(ctx, 100*time.Millisecond)
			}
		}()
	}
	wg.Wait()
}

// runLane applies one lane's faults in order, each at its time (or at once when
// the lane runs late), holding and healing each before the next.
func (cl *chaosCluster) runLane(faults []chaos.Fault) {
	for k, f := range faults {
		if wait := time.Until(cl.start.Add(f.At)); wait > 0 {
			time.Sleep(wait)
		}
		cl.apply(k, f)
	}
}

func (cl *chaosCluster) apply(k int, f chaos.Fault) {
	cl.mu.Lock()
	cl.summary.Fault(f.Kind)
	cl.mu.Unlock()
	b := cl.backend
	nodes := cl.centreNodes(f.Centre)
	var target *chaosNode
	switch {
	case f.Replica >= 0:
		target = nodes[f.Replica]
	case f.Kind == chaos.KillLeader || f.Kind == chaos.PauseLeader || f.Kind == chaos.IsolateLeader || f.Kind == chaos.SkewLeader:
		if target = cl.leader(); target == nil {
			target = nodes[k%len(nodes)]
			cl.logf("%s: no leader found, taking %s", f.Kind, target.name)
		}
	default:
		target = nodes[0]
	}
	switch f.Kind {
	case chaos.KillReplica, chaos.KillLeader, chaos.KillCentre:
		cl.logf("kill %s (SIGKILL, %s), down %.1fs", target.name, f.Kind, f.Hold.Seconds())
		b.kill(target)
		time.Sleep(f.Hold)
		cl.restart(target)
		cl.logf("%s restarted", target.name)
	case chaos.PauseReplica, chaos.PauseLeader, chaos.PauseCentre:
		cl.logf("pause %s (%s) for %.1fs", target.name, f.Kind, f.Hold.Seconds())
		b.pause(target)
		time.Sleep(f.Hold)
		b.resume(target)
		cl.logf("resume %s", target.name)
	case chaos.RestartReplica, chaos.RestartCentre:
		cl.logf("stop %s (SIGTERM, %s)", target.name, f.Kind)
		cl.stop(target)
		cl.restart(target)
		cl.logf("%s restarted", target.name)
	case chaos.KillAll:
		cl.logf("kill every replica of %s (SIGKILL), down %.1fs", f.Centre, f.Hold.Seconds())
		for _, n := range nodes {
			b.kill(n)
		}
		time.Sleep(f.Hold)
		var wg sync.WaitGroup
		for _, n := range nodes {
			wg.Add(1)
			go func() { defer wg.Done(); cl.restart(n) }()
		}
		wg.Wait()
		cl.logf("%s restarted", f.Centre)
	case chaos.Isolate, chaos.CutLinks:
		cl.logf("cut %s from %s for %.1fs (%s)", f.Centre, strings.Join(f.Block, ","), f.Hold.Seconds(), f.Kind)
		if err := b.cut(f.Centre, f.Block); err != nil {
			cl.violate("harness: cut %s from %v: %v", f.Centre, f.Block, err)
		}
		time.Sleep(f.Hold)
		cl.logf("%s during the cut: %s", f.Centre, cl.links(target, f.Block, cl.streamCuts))
		if err := b.mend(f.Centre, f.Block); err != nil {
			cl.violate("harness: mend %s and %v: %v", f.Centre, f.Block, err)
		}
		cl.logf("%s healed", f.Centre)
	case chaos.IsolateReplica, chaos.IsolateLeader:
		cl.logf("cut %s off its raft group for %.1fs (%s)", target.name, f.Hold.Seconds(), f.Kind)
		if err := b.isolate(target); err != nil {
			cl.violate("harness: isolate %s: %v", target.name, err)
		}
		time.Sleep(f.Hold)
		if err := b.rejoin(target); err != nil {
			cl.violate("harness: rejoin %s: %v", target.name, err)
		}
		cl.logf("%s rejoined", target.name)
	case chaos.SkewReplica, chaos.SkewLeader, chaos.SkewCentre:
		cl.logf("clock of %s off by %v for %.1fs (%s)", target.name, f.Offset, f.Hold.Seconds(), f.Kind)
		if err := b.inject(target, liveFaults{ClockOffset: f.Offset}); err != nil {
			cl.violate("harness: skew the clock of %s: %v", target.name, err)
		}
		time.Sleep(f.Hold)
		cl.probeToken(target, f.Offset)
		if err := b.inject(target, liveFaults{}); err != nil {
			cl.violate("harness: set the clock of %s right: %v", target.name, err)
		}
		cl.logf("clock of %s set right", target.name)
	case chaos.OneWay:
		lf, what := liveFaults{DropOut: f.Block}, "refuses to open sync streams to"
		if f.Inbound {
			lf, what = liveFaults{DropIn: f.Block}, "drops the sync streams opened by"
		}
		cl.logf("%s %s %s for %.1fs (%s)", f.Centre, what, strings.Join(f.Block, ","), f.Hold.Seconds(), f.Kind)
		if err := b.inject(target, lf); err != nil {
			cl.violate("harness: one-way cut at %s: %v", f.Centre, err)
		}
		time.Sleep(f.Hold)
		cl.logf("%s during the cut: %s", f.Centre, cl.links(target, f.Block, true))
		if err := b.inject(target, liveFaults{}); err != nil {
			cl.violate("harness: heal the one-way cut at %s: %v", f.Centre, err)
		}
		cl.logf("%s healed", f.Centre)
	case chaos.GaterCut:
		cl.logf("restart %s refusing %s at its gater for %.1fs (%s)", f.Centre, strings.Join(f.Block, ","), f.Hold.Seconds(), f.Kind)
		if err := b.restartRefusing(f.Centre, f.Block); err != nil {
			cl.violate("harness: restart %s refusing %v: %v", f.Centre, f.Block, err)
		}
		time.Sleep(f.Hold)
		cl.logf("%s during the cut: %s", f.Centre, cl.links(target, f.Block, false))
		if err := b.restartRefusing(f.Centre, nil); err != nil {
			cl.violate("harness: restart %s as configured: %v", f.Centre, err)
		}
		cl.logf("%s healed", f.Centre)
	default:
		cl.violate("harness: unknown fault kind %s", f.Kind)
	}
}

// probeTokenTTL is how long the probe's token is valid: offsets beyond it plus
// the leeway find it expired.
const probeTokenTTL = time.Minute

// probeToken presents a token of n's centre issued this moment to n, whose clock
// is off by offset, and judges the answer (chaos.TokenProbe): accepted within
// the verifier's leeway, refused 401 beyond it, as not yet valid when the clock
// is behind and as expired when it is ahead past the token's expiry. Anything
// else is a violation; an offset too close to a boundary, or no answer, is
// only counted.
func (cl *chaosCluster) probeToken(n *chaosNode, offset time.Duration) {
	want := chaos.TokenProbe(offset, probeTokenTTL, auth.DefaultLeeway, 3*time.Second)
	judged := func(ok bool) {
		cl.mu.Lock()
		defer cl.mu.Unlock()
		if ok {
			cl.summary.Probes++
		} else {
			cl.summary.Unjudged++
		}
	}
	iss := cl.issuers[n.centre]
	if iss == nil {
		judged(false)
		return
	}
	tok, err := iss.Issue("chaos-probe", []auth.Scope{auth.ScopeRead}, probeTokenTTL, time.Now())
	if err != nil {
		cl.violate("harness: issue a probe token: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	probe := &client{base: n.client.base, token: tok, http: n.client.http}
	status, err := probe.do(ctx, http.MethodGet, "/v1/records?limit=1", nil, nil)
	got := ""
	switch {
	case err == nil && status == http.StatusOK:
		got = chaos.ProbeAccepted
	case status == http.StatusUnauthorized && strings.Contains(err.Error(), chaos.ProbeNotYetValid):
		got = chaos.ProbeNotYetValid
	case status == http.StatusUnauthorized && strings.Contains(err.Error(), chaos.ProbeExpired):
		got = chaos.ProbeExpired
	case status == 0 || status >= 500:
		cl.logf("token probe at %s (clock %v): no answer: %d %v", n.name, offset, status, err)
		judged(false)
		return
	default:
		got = fmt.Sprintf("%d %v", status, err)
	}
	if want == "" {
		cl.logf("token probe at %s (clock %v, near a boundary): %s", n.name, offset, got)
		judged(false)
		return
	}
	judged(true)
	if got != want {
		cl.violate("token probe at %s with its clock %v off: %s, want %s", n.name, offset, got, want)
		return
	}
	cl.logf("token probe at %s (clock %v): %s, as it should", n.name, offset, got)
}

// links describes what n says of its connections to the members in others. A
// connection is expected to stay up when only streams are cut (streamCuts);
// otherwise one that is up is shouted, for the cut did not hold.
func (cl *chaosCluster) links(n *chaosNode, others []string, streamCuts bool) string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	var doc struct {
		Sync struct {
			Peers []struct {
				Member    string `json:"member"`
				Connected bool   `json:"connected"`
				Stalled   bool   `json:"stalled"`
			} `json:"peers"`
		} `json:"sync"`
	}
	if _, err := n.client.do(ctx, http.MethodGet, "/v1/federation", nil, &doc); err != nil {
		return err.Error()
	}
	var out []string
	for _, p := range doc.Sync.Peers {
		if slices.Contains(others, p.Member) {
			state := "disconnected"
			switch {
			case p.Connected && p.Stalled:
				state = "connected but stalled"
			case p.Connected && streamCuts:
				state = "connected (streams cut)"
			case p.Connected:
				state = "CONNECTED"
			}
			out = append(out, p.Member+" "+state)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// healAll brings every replica back: faults still in place are undone, paused
// replicas resumed, stopped ones started.
func (cl *chaosCluster) healAll() {
	if err := cl.backend.healAll(); err != nil {
		cl.violate("harness: heal: %v", err)
	}
	var wg sync.WaitGroup
	for _, n := range cl.nodes {
		cl.backend.resume(n)
		if cl.backend.down(n) {
			wg.Add(1)
			go func() { defer wg.Done(); cl.restart(n) }()
		}
	}
	wg.Wait()
}

// quiesce waits until every replica answers, hq has one leader and its replicas
// have applied all they committed, and every replica reports the same heads, the
// same for two polls a second apart. It returns the heads (origin → seq/hash),
// or nil and a report when that does not happen within the bound.
func (cl *chaosCluster) quiesce(within time.Duration) (map[string]string, string) {
	deadline := time.Now().Add(within)
	var prev, report string
	for time.Now().Before(deadline) {
		var lines []string
		var heads map[string]string
		ok := true
		leaders := 0
		var applied []uint64
		for _, n := range cl.nodes {
			st, h, err := cl.status(context.Background(), n, 3*time.Second)
			if err != nil {
				ok = false
				lines = append(lines, fmt.Sprintf("%s: %v", n.name, err))
				continue
			}
			lines = append(lines, fmt.Sprintf("%s: %s term %d commit %d applied %d heads %v", n.name, st.State, st.Term, st.CommitIndex, st.AppliedIndex, h))
			if n.centre == "hq" {
				if st.State == "Leader" {
					leaders++
				}
				applied = append(applied, st.AppliedIndex)
				ok = ok && st.AppliedIndex >= st.CommitIndex
			}
			if heads == nil {
				heads = h
			} else if fmt.Sprint(h) != fmt.Sprint(heads) {
				ok = false
			}
		}
		ok = ok && leaders == 1
		for _, a := range applied {
			ok = ok && a == applied[0]
		}
		report = strings.Join(lines, "\n")
		if ok {
			if now := fmt.Sprint(heads, applied); now == prev {
				return heads, report
			} else {
				prev = now
			}
		} else {
			prev = ""
		}
		time.Sleep(time.Second)
	}
	return nil, report
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
