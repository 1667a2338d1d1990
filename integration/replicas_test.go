package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"liandong/auth"
	"liandong/node/server"
)

// centreGroup is one centre on three replica processes.
type centreGroup struct {
	t       *testing.T
	dir     string
	configs []string
	urls    []string
	procs   []*proc
	clients []*client
}

// newCentreGroup provisions tianjin with n replicas: shared record and token keys,
// one libp2p identity each, all listed in the bundle. Replica 0 bootstraps; the
// others join through it.
func newCentreGroup(t *testing.T, n int) *centreGroup {
	t.Helper()
	g := &centreGroup{t: t, dir: t.TempDir()}
	now := time.Now().UTC()
	root, _ := auth.GenerateKey("root")
	cfgs := make([]server.Config, n)
	var member auth.Member
	for i := 0; i < n; i++ {
		cfg := server.Default()
		cfg.Centre = "tianjin"
		cfg.DataDir = filepath.Join(g.dir, fmt.Sprintf("r%d", i+1))
		cfg.HTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		cfg.Raft.ReplicaID = fmt.Sprintf("tianjin-%d", i+1)
		cfg.Raft.Addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p2p := udpFree(t)
		cfg.P2P.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2p)}
		cfg.RootKeys = []string{root.ID}
		if i > 0 {
			cfg.Raft.Join = "http://" + cfgs[0].HTTP
			cfg.Raft.JoinToken = "admin.token"
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			// Every replica signs with the centre's keys.
			for _, k := range []string{"record.key", "token.key"} {
				data, err := os.ReadFile(filepath.Join(cfgs[0].DataDir, "keys", k))
				if err != nil {
					t.Fatal(err)
				}
				os.MkdirAll(filepath.Join(cfg.DataDir, "keys"), 0o700)
				if err := os.WriteFile(filepath.Join(cfg.DataDir, "keys", k), data, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		keys, err := server.EnsureKeys(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		m := server.MemberFor("tianjin", "Tianjin", "天津中心", keys, cfg.P2P.Listen, nil, now.Add(-time.Hour))
		if i == 0 {
			member = m
		} else {
			member.Peers = append(member.Peers, m.Peers...)
		}
		cfgs[i] = cfg
		g.urls = append(g.urls, "http://"+cfg.HTTP)
	}
	bundle := &auth.Bundle{
		Federation: "jjj-test", Version: 1, IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour),
		Signers:   []auth.Key{{ID: root.ID, Public: root.Public, NotBefore: now.Add(-time.Hour)}},
		Threshold: 1, Members: []auth.Member{member},
	}
	for i, cfg := range cfgs {
		if _, err := server.SignNewBundle(cfg.Path(cfg.Bundle), bundle, root); err != nil {
			t.Fatal(err)
		}
		keys, _ := server.EnsureKeys(&cfgs[i])
		iss := auth.TokenIssuer{Centre: "tianjin", Federation: bundle.Federation, Key: keys.Token}
		tok, _ := iss.Issue("it-admin", auth.AllScopes, time.Hour, now)
		server.WriteToken(cfg.Path("admin.token"), tok)
		file := configFile(cfg)
		file["raft"] = map[string]any{"replica_id": cfg.Raft.ReplicaID, "addr": cfg.Raft.Addr, "bootstrap": i == 0, "join": cfg.Raft.Join, "join_token": cfg.Raft.JoinToken}
		out, _ := yaml.Marshal(file)
		path := filepath.Join(g.dir, fmt.Sprintf("r%d.yaml", i+1))
		os.WriteFile(path, out, 0o600)
		g.configs = append(g.configs, path)
		c, _ := newClient(g.urls[i], cfg.Path("admin.token"))
		g.clients = append(g.clients, c)
	}
	g.procs = make([]*proc, n)
	for i := 0; i < n; i++ {
		g.start(i)
		waitReady(t, g.procs[i], g.urls[i], 30*time.Second)
	}
	g.waitVoters(n, 30*time.Second)
	return g
}

func (g *centreGroup) start(i int) {
	g.procs[i] = startProc(g.t, "serve", "--config", g.configs[i], "--log-level", "warn")
}

type replicaView struct {
	ID       string `json:"id"`
	Leader   bool   `json:"leader"`
	Suffrage string `json:"suffrage"`
	HTTP     string `json:"http"`
}

func (g *centreGroup) replicas(i int) ([]replicaView, error) {
	var doc struct {
		Replicas []replicaView `json:"replicas"`
	}
	_, err := g.clients[i].do(context.Background(), http.MethodGet, "/v1/admin/replicas", nil, &doc)
	return doc.Replicas, err
}

// waitVoters waits until replica 0's group has n voters with recorded addresses.
func (g *centreGroup) waitVoters(n int, within time.Duration) {
	g.t.Helper()
	deadline := time.Now().Add(within)
	var last []replicaView
	var lastErr error
	for time.Now().Before(deadline) {
		for i := range g.procs {
			if last, lastErr = g.replicas(i); lastErr == nil {
				break
			}
		}
		ok := len(last) == n
		for _, r := range last {
			ok = ok && r.Suffrage == "Voter" && r.HTTP != ""
		}
		if ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.t.Fatalf("group did not reach %d voters: %+v %v", n, last, lastErr)
}

// leader returns the index of the replica that leads, asking the living ones.
func (g *centreGroup) leader(skip int) int {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for i := range g.procs {
			if i == skip {
				continue
			}
			list, err := g.replicas(i)
			if err != nil {
				continue
			}
			for _, r := range list {
				if r.Leader {
					for j := range g.urls {
						if g.urls[j] == r.HTTP && j != skip {
							return j
						}
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.t.Fatal("no leader")
	return -1
}

// TestThreeReplicasSurviveLeaderKill: writes go to every replica (followers forward
// to the leader); the leader is killed with SIGKILL under load; writes resume on
// a new leader; every acknowledged write is on the survivors and, after restart,
// on the killed replica; a partner's change-feed cursor works on any replica.
func TestThreeReplicasSurviveLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	g := newCentreGroup(t, 3)
	ctx := context.Background()

	var mu sync.Mutex
	acked := map[string]uint64{}
	killed := -1
	var firstFail, lastFail time.Time
	wctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; wctx.Err() == nil && i < 100000; i++ {
				target := (w + i) % 3
				mu.Lock()
				if target == killed {
					target = (target + 1) % 3 // a client fails over to another replica
				}
				mu.Unlock()
				c := g.clients[target]
				id := fmt.Sprintf("tianjin:w%d-%d", w, i%40)
				var env envelope
				_, err := c.do(wctx, http.MethodPut, "/v1/records/"+id, map[string]any{
					"catalogue": "supply", "visibility": "federation", "body": supplyBody(id),
				}, &env)
				mu.Lock()
				if err != nil {
					if wctx.Err() == nil {
						now := time.Now()
						if firstFail.IsZero() {
							firstFail = now
							t.Logf("first failed write (replica %d): %v", target+1, err)
						}
						lastFail = now
					}
				} else if env.Version > acked[id] {
					acked[id] = env.Version
				}
				mu.Unlock()
				if err != nil {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	old := g.leader(-1)
	g.procs[old].kill()
	killedAt := time.Now()
	mu.Lock()
	killed = old
	mu.Unlock()
	wg.Wait()
	cancel()
	if !firstFail.IsZero() {
		t.Logf("unavailability: writes failed from %v to %v after the kill (window %v)",
			firstFail.Sub(killedAt).Round(time.Millisecond), lastFail.Sub(killedAt).Round(time.Millisecond), lastFail.Sub(firstFail).Round(time.Millisecond))
	}
	newLeader := g.leader(old)
	if newLeader == old {
		t.Fatal("killed replica still leads")
	}
	check := func(i int) {
		for id, v := range acked {
			var env envelope
			if _, err := g.clients[i].do(ctx, http.MethodGet, "/v1/records/"+id+"?consistent=false", nil, &env); err != nil || env.Version < v {
				t.Fatalf("replica %d: %s acknowledged v%d, has v%d (%v)", i+1, id, v, env.Version, err)
			}
		}
	}
	// A write after the failover makes every survivor catch up to it.
	var last envelope
	if _, err := g.clients[newLeader].do(ctx, http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("after failover"),
	}, &last); err != nil {
		t.Fatal(err)
	}
	for i := range g.procs {
		if i == old {
			continue
		}
		waitFor(t, 10*time.Second, func() bool {
			code, _ := g.clients[i].do(ctx, http.MethodGet, "/v1/records/"+last.ID, nil, nil)
			return code == http.StatusOK
		})
		check(i)
	}
	g.start(old)
	waitReady(t, g.procs[old], g.urls[old], 30*time.Second)
	waitFor(t, 20*time.Second, func() bool {
		code, _ := g.clients[old].do(ctx, http.MethodGet, "/v1/records/"+last.ID, nil, nil)
		return code == http.StatusOK
	})
	check(old)

	// The change feed is the same on every replica: read half at one, the rest at
	// another with the same cursor; every change appears exactly once.
	feed := func(i int, since string, limit int) ([]string, string) {
		var page struct {
			Changes []struct {
				Position string `json:"position"`
				Record   struct {
					ID      string `json:"id"`
					Version uint64 `json:"version"`
				} `json:"record"`
			} `json:"changes"`
			NextCursor string `json:"next_cursor"`
		}
		path := fmt.Sprintf("/v1/changes?limit=%d", limit)
		if since != "" {
			path += "&since=" + since
		}
		if _, err := g.clients[i].do(ctx, http.MethodGet, path, nil, &page); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range page.Changes {
			out = append(out, fmt.Sprintf("%s@%d", c.Record.ID, c.Record.Version))
		}
		return out, page.NextCursor
	}
	all := func(i int, since string) []string {
		var out []string
		for page := 0; page < 1000; page++ {
			got, next := feed(i, since, 500)
			if len(got) == 0 {
				return out
			}
			out, since = append(out, got...), next
		}
		t.Fatal("feed did not end")
		return nil
	}
	whole := all(old, "")
	first, cursor := feed(newLeader, "", 200)
	joined := append(first, all((newLeader+1)%3, cursor)...)
	if strings.Join(joined, ",") != strings.Join(whole, ",") {
		t.Fatalf("feed across replicas differs: %d changes vs %d", len(joined), len(whole))
	}
	seen := map[string]bool{}
	for _, c := range joined {
		if seen[c] {
			t.Fatalf("change %s seen twice", c)
		}
		seen[c] = true
	}
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	t.Logf("%d records acknowledged under load, all on three replicas; %d feed changes", len(ids), len(whole))
}

func waitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("condition not met within %v", within)
}
