package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime/metrics"
	"strings"
	"sync"
	"time"

	"liandong/auth"
	"liandong/integration/bench"
	"liandong/node"
	"liandong/node/server"
	"liandong/node/store"

	"github.com/prometheus/client_golang/prometheus"
)

// freeCentrePorts picks n centres' loopback ports that were free a moment ago,
// all distinct: the HTTP port and the libp2p port, free for TCP and UDP.
//
// They come from below the kernel's ephemeral range (32768 up on Linux): a
// port the kernel hands out for ":0" and this process then releases can be
// handed to another socket (a libp2p dial of a centre started just before)
// before the centre binds it, which failed bench runs with "address already in
// use". integration/'s freePort does the same for the same reason.
func freeCentrePorts(n int) ([]centrePorts, error) {
	given := map[int]bool{}
	pick := func(udp bool) (int, error) {
		for range 1000 {
			port := lowPort + rand.IntN(highPort-lowPort)
			if given[port] {
				continue
			}
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
			if err != nil {
				continue
			}
			l.Close()
			if udp {
				u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
				if err != nil {
					continue
				}
				u.Close()
			}
			given[port] = true
			return port, nil
		}
		return 0, fmt.Errorf("no free loopback port in %d-%d after 1000 tries", lowPort, highPort)
	}
	out := make([]centrePorts, n)
	for i := range out {
		var err error
		if out[i].http, err = pick(false); err != nil {
			return nil, err
		}
		if out[i].p2p, err = pick(true); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// The range freeCentrePorts picks from: below the ephemeral range, above the
// ports the demo uses by default.
const lowPort, highPort = 20000, 32000

// runFederation starts the four centres under dir and returns them with a stop
// function that shuts them down and waits.
func runFederation(ctx context.Context, dir, logStore string, logger *slog.Logger) ([]*server.Server, []*bench.API, func(), error) {
	ports, err := freeCentrePorts(len(demoCentres))
	if err != nil {
		return nil, nil, nil, err
	}
	servers, err := startFederation(ctx, dir, ports, 1, 0, logStore, logger)
	if err != nil {
		return nil, nil, nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	apis := make([]*bench.API, len(servers))
	for i, s := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(runCtx) }()
		tok, err := os.ReadFile(filepath.Join(dir, demoCentres[i].id, "admin.token"))
		if err != nil {
			cancel()
			wg.Wait()
			return nil, nil, nil, err
		}
		apis[i] = bench.NewAPI(s.URL, strings.TrimSpace(string(tok)), 64)
	}
	stop := func() { cancel(); wg.Wait() }
	for _, s := range servers {
		if err := waitWritable(ctx, s, time.Minute); err != nil {
			stop()
			return nil, nil, nil, err
		}
	}
	return servers, apis, stop, nil
}

// waitWritable waits until a single-replica centre takes writes: it has a raft
// leader and, when its own log was empty, its peers have said how far it went.
func waitWritable(ctx context.Context, s *server.Server, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		err := s.Node.Ready()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("centre %s not writable within %v: %w", s.Node.Centre(), within, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// benchConverge writes at rate records/s spread over the four centres for d and
// measures, for each write, the delay from the origin's acknowledgement until the
// record appears in the change feed of every other centre.
//
// The other two results are the receivers' own histograms, from the entry's
// signed_at (the time the origin's leader proposed the write, so the origin's
// commit is included) to the arrival of the origin's push at each receiver
// (liandong_replication_push_delay_seconds), and to its apply there
// (liandong_replication_delay_seconds), per receiver, not the worst of three.
// The push delay counts entries applied from their origin's push (not those
// pulled); the gap between the two is the receiver's wait for the origin's
// apply lock, verification and raft commit. The gap between the applied
// delay and the first result is the change feed and its long poll.
//
// With processes, the four centres run as processes of their own
// (runFederationProcesses) instead of in this one.
func benchConverge(ctx context.Context, dir string, rate int, d time.Duration, logStore string, processes bool, logger *slog.Logger) ([]bench.Result, error) {
	var apis []*bench.API
	var gatherers []prometheus.Gatherer
	var procs *federationProcs
	if processes {
		f, err := runFederationProcesses(ctx, dir, logStore)
		if err != nil {
			return nil, err
		}
		defer f.stop() // on an error; stopped below otherwise
		apis, gatherers, procs = f.apis, f.gatherers, f
	} else {
		servers, a, stop, err := runFederation(ctx, dir, logStore, logger)
		if err != nil {
			return nil, err
		}
		defer stop()
		apis = a
		for _, s := range servers {
			gatherers = append(gatherers, s.Registry)
		}
	}

	var mu sync.Mutex
	acked := map[string]time.Time{}
	origin := map[string]int{}
	seen := make([]map[string]time.Time, len(apis))
	watchCtx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, api := range apis {
		seen[i] = map[string]time.Time{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cursor := ""
			for watchCtx.Err() == nil {
				var page struct {
					Changes []struct {
						Record struct {
							ID string `json:"id"`
						} `json:"record"`
					} `json:"changes"`
					NextCursor string `json:"next_cursor"`
				}
				path := "/v1/changes?limit=500&wait=5"
				if cursor != "" {
					path += "&since=" + url.QueryEscape(cursor)
				}
				if err := api.Do(watchCtx, "GET", path, nil, &page); err != nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				now := time.Now()
				mu.Lock()
				for _, c := range page.Changes {
					if _, ok := seen[i][c.Record.ID]; !ok {
						seen[i][c.Record.ID] = now
					}
				}
				mu.Unlock()
				cursor = page.NextCursor
			}
		}()
	}

	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	end := time.Now().Add(d)
	var writers sync.WaitGroup
	errs := 0
	for n := 0; time.Now().Before(end) && ctx.Err() == nil; n++ {
		<-tick.C
		i := n % len(apis)
		writers.Add(1)
		go func() {
			defer writers.Done()
			var rec struct {
				ID string `json:"id"`
			}
			if err := apis[i].Do(ctx, "POST", "/v1/records", bench.RecordJSON(n, 1024), &rec); err != nil {
				mu.Lock()
				errs++
				mu.Unlock()
				return
			}
			t := time.Now()
			mu.Lock()
			acked[rec.ID], origin[rec.ID] = t, i
			mu.Unlock()
		}()
	}
	writers.Wait()

	// Wait (bounded) for the last writes to arrive everywhere.
	allSeen := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for id, o := range origin {
			for j := range apis {
				if _, ok := seen[j][id]; !ok && j != o {
					return false
				}
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); !allSeen() && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	stopWatch()
	wg.Wait()

	var delays []time.Duration
	missing := 0
	for id, t := range acked {
		var worst time.Duration
		ok := true
		for j := range apis {
			if j == origin[id] {
				continue
			}
			s, found := seen[j][id]
			if !found {
				ok = false
				break
			}
			worst = max(worst, s.Sub(t))
		}
		if !ok {
			missing++
			continue
		}
		delays = append(delays, max(worst, 0))
	}
	r := bench.Summarise("converge", len(apis), delays, errs+missing, d)
	r.PerSec = float64(len(acked)) / d.Seconds()
	r.Note = fmt.Sprintf("ack at origin → in all 3 other change feeds; %d/s offered, %d never arrived", rate, missing)
	if processes {
		r.Note += "; centres as separate processes"
	}

	if procs != nil {
		if dead := procs.exitedEarly(); len(dead) > 0 {
			return nil, fmt.Errorf("converge: centres %v exited during the run (their logs are in %s)", dead, dir)
		}
	}
	var gatherErr error
	stage := func(scenario, metric, note string) bench.Result {
		h, err := gatherHistogram(gatherers, metric)
		if err != nil && gatherErr == nil {
			gatherErr = err
		}
		return bench.Result{Scenario: scenario, Clients: len(apis), Ops: int(h.count), Elapsed: d,
			PerSec: float64(h.count) / d.Seconds(), P50: h.quantile(0.5), P99: h.quantile(0.99), Max: h.quantile(1), Note: note}
	}
	rs := []bench.Result{r,
		stage("converge-pushed", "liandong_replication_push_delay_seconds",
			"proposed at origin → its push at each receiver (the nodes' push-delay histogram, interpolated in its buckets)"),
		stage("converge-applied", "liandong_replication_delay_seconds",
			"proposed at origin → applied at each receiver (the nodes' replication-delay histogram, interpolated in its buckets)"),
	}
	if gatherErr != nil {
		return nil, fmt.Errorf("converge: read the receivers' histograms: %w", gatherErr)
	}
	if procs != nil {
		stopped, killed := procs.stop()
		rs[0].Note += fmt.Sprintf(", %d stopped when asked and %d killed at the end", stopped, killed)
	}
	return rs, nil
}

// histogram is the sum of one histogram's series over several registries.
type histogram struct {
	count  uint64
	bounds []float64 // upper bounds, seconds
	counts []uint64  // cumulative
}

func gatherHistogram(regs []prometheus.Gatherer, name string) (histogram, error) {
	var h histogram
	for _, reg := range regs {
		mfs, err := reg.Gather()
		if err != nil {
			return h, err
		}
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
			for _, m := range mf.GetMetric() {
				hm := m.GetHistogram()
				if hm == nil {
					continue
				}
				h.count += hm.GetSampleCount()
				i := 0
				for _, b := range hm.GetBucket() {
					// The text format lists the +Inf bucket, which a
					// registry's gathering leaves out: its count is the total.
					if math.IsInf(b.GetUpperBound(), +1) {
						continue
					}
					if i == len(h.bounds) {
						h.bounds = append(h.bounds, b.GetUpperBound())
						h.counts = append(h.counts, 0)
					}
					h.counts[i] += b.GetCumulativeCount()
					i++
				}
			}
		}
	}
	return h, nil
}

// quantile interpolates linearly within the bucket holding q, as Prometheus's
// histogram_quantile does.
func (h histogram) quantile(q float64) time.Duration {
	if h.count == 0 {
		return 0
	}
	rank := q * float64(h.count)
	lower, below := 0.0, uint64(0)
	for i, c := range h.counts {
		if float64(c) >= rank {
			in := float64(c - below)
			frac := 1.0
			if in > 0 {
				frac = (rank - float64(below)) / in
			}
			return time.Duration((lower + (h.bounds[i]-lower)*frac) * float64(time.Second))
		}
		lower, below = h.bounds[i], c
	}
	return time.Duration(lower * float64(time.Second))
}

// benchCatchup gives hq, tianjin and hebei n entries in all (n/3 of each origin,
// already replicated among them), starts the federation with xiongan empty and
// measures how fast xiongan's heads reach theirs.
func benchCatchup(ctx context.Context, dir string, n int, logStore string, profile func() (stop func(), err error), logger *slog.Logger) (bench.Result, error) {
	// Provision keys and bundle by starting and stopping the federation once.
	_, _, stop, err := runFederation(ctx, dir, logStore, logger)
	if err != nil {
		return bench.Result{}, err
	}
	stop()
	holders := demoCentres[:3]
	stores := make([]*store.Store, len(holders))
	for i, c := range holders {
		cfg := server.Default()
		cfg.Centre, cfg.DataDir = c.id, filepath.Join(dir, c.id)
		key, err := auth.LoadKey(cfg.Path(cfg.Keys.Record))
		if err != nil {
			return bench.Result{}, err
		}
		if stores[i], err = store.Open(filepath.Join(cfg.DataDir, "state.db"), store.Options{Centre: c.id, Signer: node.KeySigner(key), NoSync: true}); err != nil {
			return bench.Result{}, err
		}
	}
	t0 := time.Now()
	per := n / len(holders)
	for i, c := range holders {
		if _, err := preloadRecords(stores[i], c.id, per, func(k int) []byte { return bench.RecordJSON(k, 1024) }); err != nil {
			return bench.Result{}, err
		}
		// Replicate to the other holders directly through the same apply path.
		for from := uint64(1); ; {
			entries, err := stores[i].ReadRange(c.id, from, 512)
			if err != nil {
				return bench.Result{}, err
			}
			if len(entries) == 0 {
				break
			}
			data, err := store.EncodeCommand(&store.Command{Remote: &store.RemoteCommand{Origin: c.id, Entries: entries}})
			if err != nil {
				return bench.Result{}, err
			}
			for j := range holders {
				if j != i {
					if _, err := stores[j].Apply([]store.Log{{Data: data}}); err != nil {
						return bench.Result{}, err
					}
				}
			}
			from += uint64(len(entries))
		}
	}
	// The holders' search indexes are built before the clock starts: a
	// running centre keeps its index current as it applies, and a rebuild of
	// three indexes at start would take the joiner's CPU and be counted as
	// its catch-up.
	for i, c := range holders {
		if err := buildSearchIndex(filepath.Join(dir, c.id), stores[i]); err != nil {
			return bench.Result{}, err
		}
	}
	for _, s := range stores {
		s.Close()
	}
	fmt.Fprintf(os.Stderr, "(preloaded and indexed %d entries in %s)\n", per*len(holders), time.Since(t0).Round(time.Millisecond))

	servers, _, stop, err := runFederation(ctx, dir, logStore, logger)
	if err != nil {
		return bench.Result{}, err
	}
	defer stop()
	stopProfile, err := profile()
	if err != nil {
		return bench.Result{}, err
	}
	defer stopProfile()
	start, cpu0, alloc0 := time.Now(), bench.ProcessCPU(), heapAllocs()
	target := map[string]uint64{}
	heads, _ := servers[0].Node.Store().Heads()
	for _, h := range heads {
		target[h.Origin] = h.Seq
	}
	joiner := servers[3].Node.Store()
	for deadline := start.Add(10 * time.Minute); time.Now().Before(deadline) && ctx.Err() == nil; time.Sleep(20 * time.Millisecond) {
		hs, _ := joiner.Heads()
		got := 0
		for _, h := range hs {
			if target[h.Origin] > 0 && h.Seq >= target[h.Origin] {
				got++
			}
		}
		if got == len(holders) {
			el, cpuHeads := time.Since(start), bench.ProcessCPU()
			// The joiner's search index trails its store: say how long
			// after the heads it is current, so that a change that merely
			// moves indexing past the heads (tried in session 22) shows.
			note := "empty centre joins; entries verified and applied per second"
			if last, err := joiner.LastPosition(); err == nil {
				note += searchLagNote(ctx, deadline, servers[3].Node.SearchPosition, last, start.Add(el))
			}
			ops := per * len(holders)
			r := bench.Result{Scenario: "catchup", Clients: 1, Ops: ops, Elapsed: el,
				PerSec: float64(ops) / el.Seconds(), Note: note}
			// CPU per entry counts the whole process (the holders serving
			// too) until the joiner's index is current, so that work moved
			// past the heads still counts; the share spent by the heads is
			// noted. With other work on the same cores this is the steadier
			// figure to compare builds by, entries/s the noisier one.
			if cpu0 > 0 {
				r.CPUPerOp = (bench.ProcessCPU() - cpu0) / time.Duration(ops)
				r.Note += fmt.Sprintf("; %s CPU/entry by its heads", ((cpuHeads - cpu0) / time.Duration(ops)).Round(100*time.Nanosecond))
			}
			// Bytes allocated, which the neighbours on the cores do not move.
			r.Note += fmt.Sprintf("; %.1f KB allocated/entry", float64(heapAllocs()-alloc0)/float64(ops)/1000)
			return r, nil
		}
	}
	return bench.Result{}, fmt.Errorf("catch-up did not finish")
}

// startCentre runs one centre (tianjin) on n replicas in this process, alone in
// its federation, and returns an API client for each replica.
func startCentre(ctx context.Context, dir string, n int, logStore string, logger *slog.Logger) ([]*bench.API, func(), error) {
	ports, err := freeCentrePorts(2 * n)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now().UTC()
	var cfgs []server.Config
	var member auth.Member
	for k := 0; k < n; k++ {
		cfg := server.Default()
		cfg.Centre = "tianjin"
		cfg.DataDir = filepath.Join(dir, fmt.Sprintf("tianjin-%d", k+1))
		cfg.Raft.LogStore = logStore
		cfg.HTTP = fmt.Sprintf("127.0.0.1:%d", ports[k].http)
		cfg.P2P.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[k].p2p)}
		cfg.Logger = logger
		if n > 1 {
			cfg.Raft.ReplicaID = fmt.Sprintf("tianjin-%d", k+1)
			cfg.Raft.Addr = fmt.Sprintf("127.0.0.1:%d", ports[n+k].http)
		}
		if k > 0 {
			cfg.Raft.Join = "http://" + cfgs[0].HTTP
			cfg.Raft.JoinToken = "admin.token"
			for _, name := range []string{"record.key", "token.key"} {
				if err := copyKeyFile(filepath.Join(cfgs[0].DataDir, "keys", name), filepath.Join(cfg.DataDir, "keys", name)); err != nil {
					return nil, nil, err
				}
			}
		}
		if err := cfg.Validate(); err != nil {
			return nil, nil, err
		}
		keys, err := server.EnsureKeys(&cfg)
		if err != nil {
			return nil, nil, err
		}
		m := server.MemberFor("tianjin", "Tianjin", "天津中心", keys, cfg.P2P.Listen, nil, now.Add(-time.Hour))
		if k == 0 {
			member = m
		} else {
			member.Peers = append(member.Peers, m.Peers...)
		}
		cfgs = append(cfgs, cfg)
	}
	root, err := auth.GenerateKey("root")
	if err != nil {
		return nil, nil, err
	}
	bundle := &auth.Bundle{Federation: "jjj-bench", Version: 1, IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour),
		Signers: []auth.Key{{ID: root.ID, Public: root.Public, NotBefore: now.Add(-time.Hour)}}, Threshold: 1,
		Members: []auth.Member{member}}
	var tok string
	for i := range cfgs {
		if _, err := server.SignNewBundle(cfgs[i].Path(cfgs[i].Bundle), bundle, root); err != nil {
			return nil, nil, err
		}
		keys, _ := server.EnsureKeys(&cfgs[i])
		iss := auth.TokenIssuer{Centre: "tianjin", Federation: bundle.Federation, Key: keys.Token}
		if tok, err = iss.Issue("bench", auth.AllScopes, time.Hour, now); err != nil {
			return nil, nil, err
		}
		if err := server.WriteToken(cfgs[i].Path("admin.token"), tok); err != nil {
			return nil, nil, err
		}
	}
	runCtx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	stop := func() { cancel(); wg.Wait() }
	var apis []*bench.API
	for i := range cfgs {
		s, err := server.Start(ctx, cfgs[i])
		if err != nil {
			stop()
			return nil, nil, err
		}
		wg.Add(1)
		go func() { defer wg.Done(); s.Run(runCtx) }()
		if err := s.Node.WaitLeader(ctx); err != nil {
			stop()
			return nil, nil, err
		}
		apis = append(apis, bench.NewAPI(s.URL, tok, 256))
	}
	// Wait until every replica is a voter.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		var doc struct {
			Replicas []struct{ Suffrage string } `json:"replicas"`
		}
		if err := apis[0].Do(ctx, "GET", "/v1/admin/replicas", nil, &doc); err == nil && len(doc.Replicas) == n {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("replicas did not join")
		}
	}
	return apis, stop, nil
}

// heapAllocs is the bytes this process has allocated on the Go heap so far.
func heapAllocs() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// searchLagNote waits (until deadline, or ctx ends) for the joiner's search
// index to reach last, the store's position, and says how long after heads
// (when the store had caught up) it did; or, when it did not, that it was
// not current then, and where it stood: a result must not call an index
// current that never got there (review 122).
func searchLagNote(ctx context.Context, deadline time.Time, pos func() uint64, last uint64, heads time.Time) string {
	for time.Now().Before(deadline) && ctx.Err() == nil && pos() < last {
		time.Sleep(20 * time.Millisecond)
	}
	lag := time.Since(heads).Round(10 * time.Millisecond)
	if at := pos(); at < last {
		return fmt.Sprintf("; its search index NOT current %s later (at position %d of %d)", lag, at, last)
	}
	return fmt.Sprintf("; its search index current %s later", lag)
}
