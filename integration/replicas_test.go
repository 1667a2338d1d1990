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
	"liandong/node/server/servertest"
)

// centreGroup is one centre on n replica processes.
type centreGroup struct {
	t       *testing.T
	dir     string
	centre  string
	opts    groupOptions
	cfgs    []server.Config
	ids     []string // replica ids
	peerIDs []string // libp2p peer ids
	configs []string
	urls    []string
	procs   []*proc
	clients []*client
	ca      *servertest.CA // with opts.tls
	// bins[i] is the liandong executable replica i runs ("": binary, or
	// the failpoints build with opts.faults).
	bins []string
}

// groupOptions tune how a centre's replicas are provisioned and run.
type groupOptions struct {
	// centre is the centre id; default tianjin.
	centre string
	// Raft snapshot settings written to every replica's config (zero: defaults).
	snapshotInterval  time.Duration
	snapshotThreshold uint64
	trailingLogs      uint64
	// logStore is raft.log_store of every replica ("bolt" or "wal"); empty:
	// the default, bbolt for the new data directories here.
	logStore string
	// walSegmentSize is raft.wal_segment_size of every replica; 0: the default.
	walSegmentSize int
	// logLevel of the processes; default warn.
	logLevel string
	// start is how many replicas newCentreGroupWith starts and waits for (default
	// all); the others are provisioned and listed in the bundle, for g.start later.
	start int
	// standalone runs a single replica the embedded way: no raft address.
	standalone bool
	// antiEntropy is the p2p anti-entropy interval; default 1 s.
	antiEntropy time.Duration
	// tls serves every replica's API over HTTPS, with certificates of a CA
	// the replicas trust through tls.ca (and the test's clients too).
	tls bool
	// faults runs the replicas from the failpoints build, each polling its own
	// faults file (faultsFile), and issues the admin tokens half an hour back,
	// as a partner's token would be, so that a replica whose clock is set back
	// by minutes still takes them.
	faults bool
	// raftHost is the host of every replica's raft.addr; default 127.0.0.1.
	raftHost string
	// bin is the liandong executable every replica starts with ("": binary),
	// e.g. an older build's (upgrade_test.go); g.bins changes it per replica.
	bin string
}

var centreNames = map[string][2]string{
	"hq": {"Headquarters", "本部"}, "tianjin": {"Tianjin", "天津中心"},
	"hebei": {"Hebei", "河北中心"}, "xiongan": {"Xiong'an", "雄安中心"},
}

// provisionGroup creates the data directories, keys and configs of a centre's n
// replicas under dir: shared record and token keys, one libp2p identity each.
// Replica 0 bootstraps; the others join through it. It returns the centre's bundle
// member listing every replica's peer; writeFiles finishes the job once the
// bundle is known.
func provisionGroup(t *testing.T, dir string, n int, root *auth.KeyPair, now time.Time, opts groupOptions) (*centreGroup, auth.Member) {
	t.Helper()
	if opts.centre == "" {
		opts.centre = "tianjin"
	}
	if opts.logLevel == "" {
		opts.logLevel = "warn"
	}
	if opts.antiEntropy == 0 {
		opts.antiEntropy = time.Second
	}
	if opts.standalone && n != 1 {
		t.Fatalf("a standalone centre has one replica, not %d", n)
	}
	g := &centreGroup{t: t, dir: dir, centre: opts.centre, opts: opts}
	scheme := "http://"
	if opts.tls {
		g.ca = servertest.NewCA(t)
		scheme = "https://"
	}
	var member auth.Member
	for i := 0; i < n; i++ {
		cfg := server.Default()
		cfg.Centre = opts.centre
		cfg.DataDir = filepath.Join(dir, fmt.Sprintf("%s-r%d", opts.centre, i+1))
		cfg.HTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		cfg.Raft.ReplicaID = fmt.Sprintf("%s-%d", opts.centre, i+1)
		if !opts.standalone {
			host := opts.raftHost
			if host == "" {
				host = "127.0.0.1"
			}
			cfg.Raft.Addr = fmt.Sprintf("%s:%d", host, freePort(t))
		}
		cfg.Raft.SnapshotInterval = opts.snapshotInterval
		cfg.Raft.SnapshotThreshold = opts.snapshotThreshold
		cfg.Raft.TrailingLogs = opts.trailingLogs
		cfg.Raft.LogStore = opts.logStore
		cfg.Raft.WALSegmentSize = opts.walSegmentSize
		p2p := udpFree(t)
		cfg.P2P.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2p)}
		cfg.P2P.AntiEntropyInterval = opts.antiEntropy
		cfg.RootKeys = []string{root.ID}
		if i > 0 {
			cfg.Raft.Join = scheme + g.cfgs[0].HTTP
			cfg.Raft.JoinToken = "admin.token"
		}
		if opts.tls {
			g.ca.Issue(t, int64(i+2), cfg.Path("tls/api.crt"), cfg.Path("tls/api.key"))
			if err := os.WriteFile(cfg.Path("tls/ca.pem"), g.ca.PEM, 0o600); err != nil {
				t.Fatal(err)
			}
			cfg.TLS = server.TLSConfig{Cert: "tls/api.crt", Key: "tls/api.key", CA: "tls/ca.pem"}
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			// Every replica signs with the centre's keys.
			copyKeys(t, g.cfgs[0].DataDir, cfg.DataDir)
		}
		keys, err := server.EnsureKeys(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		names := centreNames[opts.centre]
		m := server.MemberFor(opts.centre, names[0], names[1], keys, cfg.P2P.Listen, nil, now.Add(-time.Hour))
		if i == 0 {
			member = m
		} else {
			member.Peers = append(member.Peers, m.Peers...)
		}
		g.cfgs = append(g.cfgs, cfg)
		g.ids = append(g.ids, cfg.Raft.ReplicaID)
		g.peerIDs = append(g.peerIDs, keys.PeerID.String())
		g.urls = append(g.urls, scheme+cfg.HTTP)
	}
	g.procs = make([]*proc, n)
	g.bins = make([]string, n)
	for i := range g.bins {
		g.bins[i] = opts.bin
	}
	return g, member
}

// copyKeys copies a centre's record and token keys from one data directory to another.
func copyKeys(t *testing.T, from, to string) {
	t.Helper()
	for _, k := range []string{"record.key", "token.key"} {
		data, err := os.ReadFile(filepath.Join(from, "keys", k))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(to, "keys"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, "keys", k), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// newTestBundle is a bundle of members signed by root.
func newTestBundle(root *auth.KeyPair, now time.Time, members ...auth.Member) *auth.Bundle {
	return &auth.Bundle{
		Federation: "jjj-test", Version: 1, IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour),
		Signers:   []auth.Key{{ID: root.ID, Public: root.Public, NotBefore: now.Add(-time.Hour)}},
		Threshold: 1, Members: members,
	}
}

// writeFiles signs bundle into every replica's data directory and writes an
// admin token and a config file for each.
func (g *centreGroup) writeFiles(bundle *auth.Bundle, root *auth.KeyPair, now time.Time) {
	t := g.t
	t.Helper()
	for i, cfg := range g.cfgs {
		if _, err := server.SignNewBundle(cfg.Path(cfg.Bundle), bundle, root); err != nil {
			t.Fatal(err)
		}
		keys, err := server.EnsureKeys(&g.cfgs[i])
		if err != nil {
			t.Fatal(err)
		}
		iss := auth.TokenIssuer{Centre: g.centre, Federation: bundle.Federation, Key: keys.Token}
		issued, ttl := now, time.Hour
		if g.opts.faults {
			issued, ttl = now.Add(-30*time.Minute), 2*time.Hour
		}
		tok, err := iss.Issue("it-admin", auth.AllScopes, ttl, issued)
		if err != nil {
			t.Fatal(err)
		}
		if err := server.WriteToken(cfg.Path("admin.token"), tok); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(g.dir, fmt.Sprintf("%s-r%d.yaml", g.centre, i+1))
		writeConfig(t, path, cfg, i == 0)
		g.configs = append(g.configs, path)
		c, err := newClient(g.urls[i], cfg.Path("admin.token"))
		if err != nil {
			t.Fatal(err)
		}
		if g.ca != nil {
			c.http.Transport = g.ca.Transport()
		}
		g.clients = append(g.clients, c)
	}
}

// writeConfig writes cfg as a YAML config file, raft section included.
func writeConfig(t *testing.T, path string, cfg server.Config, bootstrap bool) {
	t.Helper()
	file := configFile(cfg)
	r := map[string]any{"replica_id": cfg.Raft.ReplicaID, "bootstrap": bootstrap}
	if cfg.Raft.Addr != "" {
		r["addr"] = cfg.Raft.Addr
	}
	if cfg.Raft.Join != "" {
		r["join"], r["join_token"] = cfg.Raft.Join, cfg.Raft.JoinToken
	}
	if cfg.Raft.SnapshotInterval > 0 {
		r["snapshot_interval"] = cfg.Raft.SnapshotInterval.String()
	}
	if cfg.Raft.SnapshotThreshold > 0 {
		r["snapshot_threshold"] = cfg.Raft.SnapshotThreshold
	}
	if cfg.Raft.TrailingLogs > 0 {
		r["trailing_logs"] = cfg.Raft.TrailingLogs
	}
	if cfg.Raft.LogStore != "" {
		r["log_store"] = cfg.Raft.LogStore
	}
	if cfg.Raft.WALSegmentSize > 0 {
		r["wal_segment_size"] = cfg.Raft.WALSegmentSize
	}
	file["raft"] = r
	out, err := yaml.Marshal(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
}

// newCentreGroup provisions tianjin with n replicas, all listed in the bundle,
// starts them (replica 0 bootstraps, the others join through it) and waits for n
// voters.
func newCentreGroup(t *testing.T, n int) *centreGroup {
	return newCentreGroupWith(t, n, groupOptions{})
}

func newCentreGroupWith(t *testing.T, n int, opts groupOptions) *centreGroup {
	t.Helper()
	root, err := auth.GenerateKey("root")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	g, member := provisionGroup(t, t.TempDir(), n, root, now, opts)
	g.writeFiles(newTestBundle(root, now, member), root, now)
	start := n
	if opts.start > 0 && opts.start < n {
		start = opts.start
	}
	for i := 0; i < start; i++ {
		g.start(i)
		waitReady(t, g.procs[i], g.urls[i], 30*time.Second)
	}
	g.waitVoters(start, 30*time.Second)
	return g
}

func (g *centreGroup) start(i int) {
	g.procs[i] = g.launch(i, g.configs[i])
}

// launch starts replica i with config; with opts.faults, from the failpoints
// build, polling faultsFile(i).
func (g *centreGroup) launch(i int, config string) *proc {
	args := []string{"serve", "--config", config, "--log-level", g.opts.logLevel}
	if g.bins != nil && g.bins[i] != "" {
		return startProcWith(g.t, g.bins[i], nil, args...)
	}
	if !g.opts.faults {
		return startProc(g.t, args...)
	}
	return startProcWith(g.t, failpointsBinary(g.t), []string{"LIANDONG_FAULTS_FILE=" + g.faultsFile(i)}, args...)
}

// faultsFile is where replica i of a group with opts.faults reads its injected
// faults (node/server/faults_on.go); absent, none.
func (g *centreGroup) faultsFile(i int) string {
	return filepath.Join(g.dir, g.ids[i]+".faults.json")
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

// batchPut PUTs ten records in one POST /v1/batch through c and notes in
// acked the version each acknowledged item got; a refused item is not
// acknowledged, and neither is any item of a batch that got no answer.
func batchPut(ctx context.Context, c *client, w, i int, mu *sync.Mutex, acked map[string]uint64) error {
	items := make([]map[string]any, 10)
	for k := range items {
		id := fmt.Sprintf("tianjin:b%d-%d-%d", w, k, i%4)
		items[k] = map[string]any{"method": "PUT", "id": id,
			"record": map[string]any{"catalogue": "supply", "visibility": "federation", "body": supplyBody(id)}}
	}
	var answer struct {
		Items []struct {
			Status int      `json:"status"`
			Record envelope `json:"record"`
		} `json:"items"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/batch", map[string]any{"items": items}, &answer); err != nil {
		return err
	}
	if len(answer.Items) != len(items) {
		return fmt.Errorf("%d results for %d items", len(answer.Items), len(items))
	}
	mu.Lock()
	defer mu.Unlock()
	refused := 0
	for _, it := range answer.Items {
		if it.Status >= 300 {
			refused++
			continue
		}
		if it.Record.Version > acked[it.Record.ID] {
			acked[it.Record.ID] = it.Record.Version
		}
	}
	if refused > 0 {
		return fmt.Errorf("%d of %d items refused", refused, len(items))
	}
	return nil
}

// TestThreeReplicasSurviveLeaderKill: writes go to every replica (followers forward
// to the leader), one writer's in batches; the leader is killed with SIGKILL under load; writes resume on
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
				if w == 0 {
					// This writer sends batches: their items, acknowledged
					// one by one in the answer, must survive as PUTs do.
					err := batchPut(wctx, c, w, i, &mu, acked)
					if err != nil && wctx.Err() == nil {
						mu.Lock()
						if firstFail.IsZero() {
							firstFail = time.Now()
							t.Logf("first failed batch (replica %d): %v", target+1, err)
						}
						lastFail = time.Now()
						mu.Unlock()
						time.Sleep(20 * time.Millisecond)
					}
					continue
				}
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
	batched := 0
	for id := range acked {
		if strings.HasPrefix(id, "tianjin:b") {
			batched++
		}
	}
	if batched != 40 {
		t.Fatalf("%d of the 40 records written in batches acknowledged", batched)
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
	// A consistent read at the replica just back answers what the leader
	// holds, a write of a moment ago included, caught up or not.
	var fresh envelope
	if _, err := g.clients[newLeader].do(ctx, http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("after the restart"),
	}, &fresh); err != nil {
		t.Fatal(err)
	}
	var page struct{ Items []envelope }
	if _, err := g.clients[old].do(ctx, http.MethodGet, "/v1/records?consistent=true&ids="+last.ID+","+fresh.ID, nil, &page); err != nil ||
		len(page.Items) != 2 || page.Items[0].ID != last.ID || page.Items[1].ID != fresh.ID {
		t.Fatalf("a consistent read at the restarted replica: %+v (%v)", page.Items, err)
	}
	waitFor(t, 20*time.Second, func() bool {
		code, _ := g.clients[old].do(ctx, http.MethodGet, "/v1/records/"+last.ID, nil, nil)
		return code == http.StatusOK
	})
	check(old)

	// A create-only write revives a tombstone once the new leader has heard
	// from every replica that its build checks the condition (it asks each
	// /healthz every 5 s; the restarted one was down when it took over):
	// 503 until then, never a plain write.
	if _, err := g.clients[newLeader].do(ctx, http.MethodDelete, "/v1/records/"+last.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	revive := map[string]any{"items": []any{map[string]any{"method": "PUT", "id": last.ID, "if_none_match": "*",
		"record": map[string]any{"catalogue": "supply", "visibility": "federation", "body": supplyBody("revived")}}}}
	var answers []int
	waitFor(t, 20*time.Second, func() bool {
		var out struct{ Items []struct{ Status int } }
		if _, err := g.clients[old].do(ctx, http.MethodPost, "/v1/batch", revive, &out); err != nil || len(out.Items) != 1 {
			t.Fatalf("batch at the restarted replica: %+v (%v)", out, err)
		}
		answers = append(answers, out.Items[0].Status)
		return out.Items[0].Status != http.StatusServiceUnavailable
	})
	if st := answers[len(answers)-1]; st != http.StatusCreated {
		t.Fatalf("reviving a tombstone with if_none_match: %v", answers)
	}
	var again struct{ Items []struct{ Status int } }
	if _, err := g.clients[newLeader].do(ctx, http.MethodPost, "/v1/batch", revive, &again); err != nil || again.Items[0].Status != http.StatusPreconditionFailed {
		t.Fatalf("a create-only write over the revived record: %+v (%v)", again, err)
	}
	t.Logf("create-only revive answered %v", answers)

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
	// Followers apply what the leader committed a moment later, so the
	// revival just written may not be in every replica's feed yet: wait
	// until all three hold the same feed before reading across them.
	var whole []string
	waitFor(t, 20*time.Second, func() bool {
		whole = all(old, "")
		n := len(whole)
		return n == len(all(newLeader, "")) && n == len(all((newLeader+1)%3, ""))
	})
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
