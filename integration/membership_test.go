package integration

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/node/server"
	"liandong/sync/exchange"
)

// newPeerID makes a libp2p identity in dir and returns its peer id.
func newPeerID(t *testing.T, dir string) string {
	t.Helper()
	key, err := exchange.LoadOrCreateIdentity(filepath.Join(dir, "p2p.key"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return id.String()
}

// rogueReplica provisions a process of g's centre that asks to join through
// replica via with replica id id: it has the centre's keys, bundle and admin
// token, and a libp2p identity of its own that the bundle does not list.
func (g *centreGroup) rogueReplica(id string, via int) (configPath string) {
	t := g.t
	t.Helper()
	cfg := server.Default()
	cfg.Centre = g.centre
	cfg.DataDir = filepath.Join(g.dir, "rogue-"+id)
	cfg.HTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg.Raft.ReplicaID = id
	cfg.Raft.Addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg.Raft.Join = g.urls[via]
	cfg.Raft.JoinToken = "admin.token"
	cfg.P2P.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", udpFree(t))}
	cfg.RootKeys = g.cfgs[0].RootKeys
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	copyKeys(t, g.cfgs[0].DataDir, cfg.DataDir)
	for _, f := range []string{"bundle.json", "admin.token"} {
		data, err := os.ReadFile(filepath.Join(g.cfgs[0].DataDir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(cfg.DataDir, f), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := server.EnsureKeys(&cfg); err != nil {
		t.Fatal(err)
	}
	configPath = filepath.Join(g.dir, "rogue-"+id+".yaml")
	writeConfig(t, configPath, cfg, false)
	return configPath
}

// TestAddRemoveReplicaUnderLoad: a centre starts on one replica under a steady
// writer; a second and a third replica join (raft.join); replicas that are not
// the centre's (an id of another centre, a libp2p peer the bundle does not list)
// are refused with 422 and never become voters. Then a follower is removed with
// DELETE /v1/admin/replicas/{id} and left running for a while (it must not
// disturb the group: same leader, same term) before its process is stopped; a
// fourth replica joins; and the leader is removed (it hands leadership over and
// the new leader removes it, which the audit log records) and stopped. GET
// /v1/admin/replicas shows the right voters at each step, writes keep being
// acknowledged (brief 503s allowed) and every acknowledged write is on the two
// replicas that remain, which hold the same records and change feed.
func TestAddRemoveReplicaUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six processes")
	}
	g := newCentreGroupWith(t, 4, groupOptions{start: 1})
	ctx := context.Background()
	g.waitVoterIDs(10*time.Second, []string{"tianjin-1"}, 0)

	// The writer sends to the replicas in targets, in turn.
	load := newWriteLoad()
	var mu sync.Mutex
	targets := []int{0}
	setTargets := func(ts ...int) {
		mu.Lock()
		targets = ts
		mu.Unlock()
	}
	wctx, stopWriters := context.WithTimeout(ctx, 60*time.Second)
	defer stopWriters()
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			load.run(wctx, fmt.Sprintf("tianjin:w%d", w), 30, 100000, 20*time.Millisecond, func(i int) *client {
				mu.Lock()
				defer mu.Unlock()
				return g.clients[targets[(w+i)%len(targets)]]
			})
		}()
	}
	okBefore := 0
	step := func(what string) {
		t.Helper()
		time.Sleep(time.Second) // let some writes land in this configuration
		_, ok := load.snapshot()
		if ok <= okBefore {
			t.Fatalf("%s: no write acknowledged since the last step: %v", what, load)
		}
		t.Logf("%s: %v", what, load)
		okBefore = ok
	}
	step("one replica")

	// Grow to two, then three voters.
	g.start(1)
	waitReady(t, g.procs[1], g.urls[1], 30*time.Second)
	g.waitVoterIDs(20*time.Second, []string{"tianjin-1", "tianjin-2"}, 0, 1)
	setTargets(0, 1)
	step("two replicas")
	g.start(2)
	waitReady(t, g.procs[2], g.urls[2], 30*time.Second)
	all := []string{"tianjin-1", "tianjin-2", "tianjin-3"}
	g.waitVoterIDs(20*time.Second, all, 0, 1, 2)
	setTargets(0, 1, 2)
	step("three replicas")

	// Refused: an id of another centre (with a peer the bundle lists), and an id of
	// this centre whose peer the bundle does not list. Asked at a follower, which
	// forwards to the leader.
	leader := g.leader(-1)
	follower := (leader + 1) % 3
	outsiderPeer := newPeerID(t, t.TempDir())
	for _, bad := range []struct{ id, peer, why string }{
		{"hebei-9", g.peerIDs[0], "must be tianjin-<name>"},
		{"tianjin-9", outsiderPeer, "not listed for tianjin in the trust bundle"},
		{"tianjin-9", "", "not listed for tianjin in the trust bundle"},
	} {
		body := map[string]string{
			"id": bad.id, "raft_addr": fmt.Sprintf("127.0.0.1:%d", freePort(t)),
			"http": fmt.Sprintf("http://127.0.0.1:%d", freePort(t)), "peer_id": bad.peer,
		}
		code, err := g.clients[follower].do(ctx, http.MethodPost, "/v1/admin/replicas", body, nil)
		if code != http.StatusUnprocessableEntity || err == nil || !strings.Contains(err.Error(), bad.why) {
			t.Fatalf("adding %s with peer %q: got %d (%v), want 422 saying %q", bad.id, bad.peer, code, err, bad.why)
		}
		t.Logf("refused as it should be: %v", err)
	}
	// The same as real processes that keep asking to join.
	rogues := []*proc{
		startProc(t, "serve", "--config", g.rogueReplica("hebei-9", follower), "--log-level", "warn"),
		startProc(t, "serve", "--config", g.rogueReplica("tianjin-9", leader), "--log-level", "warn"),
	}
	for _, p := range rogues {
		waitFor(t, 15*time.Second, func() bool {
			return strings.Count(p.output.String(), "422") >= 2 && strings.Count(p.output.String(), "replica refused") >= 2
		})
	}
	g.waitVoterIDs(5*time.Second, all, 0, 1, 2)
	for i, p := range rogues {
		p.kill()
		if !strings.Contains(p.output.String(), []string{"must be tianjin-<name>", "not listed for tianjin in the trust bundle"}[i]) {
			t.Fatalf("rogue %d refused for another reason:\n%s", i, p.output)
		}
	}
	step("three replicas, after refusing two")

	// Remove a follower, asking the leader. Left running, the removed replica
	// must not disturb the others; then its process is stopped.
	others := func(skip ...int) (idx []int, ids []string) {
		for i := range g.procs {
			if g.procs[i] != nil && !slices.Contains(skip, i) {
				select {
				case <-g.procs[i].done:
					continue
				default:
				}
				idx, ids = append(idx, i), append(ids, g.ids[i])
			}
		}
		return idx, ids
	}
	leader = g.leader(-1)
	before, _, err := fedStatus(ctx, g.clients[leader])
	if err != nil {
		t.Fatal(err)
	}
	gone := (leader + 1) % 3
	rest, restIDs := others(gone)
	setTargets(rest...)
	if _, err := g.clients[leader].do(ctx, http.MethodDelete, "/v1/admin/replicas/"+g.ids[gone], nil, nil); err != nil {
		t.Fatalf("remove %s: %v", g.ids[gone], err)
	}
	g.waitVoterIDs(20*time.Second, restIDs, rest...)
	step("two replicas, the removed follower still running")
	step("two replicas, the removed follower still running, a second later")
	step("two replicas, the removed follower still running, two seconds later")
	after, _, err := fedStatus(ctx, g.clients[leader])
	if err != nil {
		t.Fatal(err)
	}
	if after.State != "Leader" || after.Term != before.Term {
		t.Fatalf("removing follower %s disturbed the group: leader %s in term %d before, %s %s in term %d after",
			g.ids[gone], g.ids[leader], before.Term, g.ids[leader], after.State, after.Term)
	}
	if err := g.procs[gone].stop(); err != nil {
		t.Errorf("stop removed replica %s: %v", g.ids[gone], err)
	}

	// A fourth replica joins the two.
	g.start(3)
	waitReady(t, g.procs[3], g.urls[3], 30*time.Second)
	rest, restIDs = others()
	g.waitVoterIDs(20*time.Second, restIDs, rest...)
	setTargets(rest...)
	step(fmt.Sprintf("three replicas %v", restIDs))

	// Remove the leader, asking a follower; stop its process.
	leader = g.leader(-1)
	rest, restIDs = others(leader)
	removedAt := time.Now()
	// A handover that times out on a loaded machine (a follower behind)
	// answers 503 having removed nothing: ask again, as an operator would.
	for try := 1; ; try++ {
		code, err := g.clients[rest[0]].do(ctx, http.MethodDelete, "/v1/admin/replicas/"+g.ids[leader], nil, nil)
		if err == nil || try > 1 && code == http.StatusNotFound { // 404: the timed-out try went through
			break
		}
		if code != http.StatusServiceUnavailable || try == 3 {
			t.Fatalf("remove %s (try %d): %v", g.ids[leader], try, err)
		}
		t.Logf("remove %s (try %d): %v", g.ids[leader], try, err)
		time.Sleep(time.Second)
	}
	setTargets(rest...)
	g.waitVoterIDs(20*time.Second, restIDs, rest...)
	t.Logf("removed the leader %s; %v later %v lead", g.ids[leader], time.Since(removedAt).Round(time.Millisecond), g.ids[g.leader(leader)])
	step(fmt.Sprintf("two replicas %v after removing the leader, still running", restIDs))
	if err := g.procs[leader].stop(); err != nil {
		t.Errorf("stop removed replica %s: %v", g.ids[leader], err)
	}
	step(fmt.Sprintf("two replicas %v, the old leader stopped", restIDs))
	stopWriters()
	wg.Wait()

	// Every acknowledged write is on both remaining replicas, which agree.
	newLeader := g.leader(leader)
	var last envelope
	if _, err := g.clients[newLeader].do(ctx, http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("after the removal"),
	}, &last); err != nil {
		t.Fatal(err)
	}
	acked, _ := load.snapshot()
	acked[last.ID] = last.Version
	for _, i := range rest {
		waitFor(t, 10*time.Second, func() bool {
			code, _ := g.clients[i].do(ctx, http.MethodGet, "/v1/records/"+last.ID, nil, nil)
			return code == http.StatusOK
		})
		checkAcked(t, ctx, g.ids[i], g.clients[i], acked)
	}
	n := compareState(t, ctx, restIDs, []*client{g.clients[rest[0]], g.clients[rest[1]]})
	// The feed was named (at the start, tianjin-1 alone) and the name
	// reached every replica since: both give the same first position, and
	// it carries the name.
	var firsts []string
	for _, i := range rest {
		var page struct {
			Changes []struct{ Position string } `json:"changes"`
		}
		if _, err := g.clients[i].do(ctx, http.MethodGet, "/v1/changes?limit=1", nil, &page); err != nil || len(page.Changes) != 1 {
			t.Fatalf("feed of %s: %v %+v", g.ids[i], err, page)
		}
		firsts = append(firsts, page.Changes[0].Position)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(firsts[0]); err != nil || !strings.Contains(string(raw), ".") || firsts[0] != firsts[1] {
		t.Errorf("first feed positions %q (%q): want the same, naming the feed", firsts, raw)
	}
	// Both removals are in the audit log: the leader's is recorded by the
	// replica it handed leadership to.
	var audit struct {
		Events []struct{ Action, Detail string } `json:"events"`
	}
	if _, err := g.clients[newLeader].do(ctx, http.MethodGet, "/v1/audit?limit=500", nil, &audit); err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, e := range audit.Events {
		// A try that timed out is audited as such, and its retry again
		// (or not at all, when the try went through): count it once.
		id := strings.TrimSuffix(e.Detail, " (outcome unknown: timed out)")
		if e.Action == "replica.remove" && (len(removed) == 0 || removed[len(removed)-1] != id) {
			removed = append(removed, id)
		}
	}
	if want := []string{g.ids[gone], g.ids[leader]}; !slices.Equal(removed, want) {
		t.Errorf("audited removals %v, want %v", removed, want)
	}
	// A write in flight to a replica as it was removed and stopped may go
	// unanswered (its outcome unknown to the client, which is allowed); any
	// other unanswered write is a failure.
	load.checkFailures(t, g.urls[gone], g.urls[leader])
	load.mu.Lock()
	defer load.mu.Unlock()
	if load.maxGap > 8*time.Second {
		t.Errorf("no write acknowledged for %v (until %v)", load.maxGap, load.gapAt.Format(time.StampMilli))
	}
	t.Logf("%d records, %d feed changes, identical on %v", len(acked), n, restIDs)
}
