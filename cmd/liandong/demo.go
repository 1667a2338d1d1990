package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"liandong/auth"
	"liandong/node/server"
	"liandong/node/store"
	"liandong/schema/sample"
)

// demoCentres are the federation's four centres, in port order.
var demoCentres = []struct{ id, name, nameZH string }{
	{"hq", "Headquarters", "京津冀国家技术创新中心本部"},
	{"tianjin", "Tianjin Centre", "天津中心"},
	{"hebei", "Hebei Centre", "河北中心"},
	{"xiongan", "Xiong'an Centre", "雄安中心"},
}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "directory for the four centres' data (default: a new temporary directory)")
	basePort := fs.Int("base-port", 8700, "HTTP on base+1 … base+4 (hq, tianjin, hebei, xiongan); libp2p on base+11 …")
	perCatalogue := fs.Int("records", 12, "sample records per catalogue and centre")
	logLevel := fs.String("log-level", "warn", "debug, info, warn or error")
	replicas := fs.Int("replicas", 1, "run tianjin on this many replicas (1, 3 or 5): the extras serve HTTP on base+5 …, raft on base+21 …")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *basePort < 1 || *basePort > 65500-20 {
		return usagef("--base-port %d: want 1-65480", *basePort)
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "liandong-demo-")
		if err != nil {
			return err
		}
		*dir = d
	}
	logger := newLogger(stderr, *logLevel)
	if *replicas != 1 && *replicas != 3 && *replicas != 5 {
		return usagef("--replicas %d: want 1, 3 or 5", *replicas)
	}
	servers, err := startFederation(ctx, *dir, demoPorts(*basePort, *replicas), *replicas, *basePort+21, "", logger)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w; move every port of the demo with --base-port", err)
	}
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(servers))
	runCtx, stopAll := context.WithCancel(ctx)
	defer stopAll()
	for _, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(runCtx); err != nil {
				errs <- err
			}
		}()
	}
	seedErr := seedFederation(ctx, servers[:len(demoCentres)], *dir, *perCatalogue)
	if seedErr == nil {
		fmt.Fprintf(stdout, "liandong demo: four centres on loopback, data in %s\n", *dir)
		for i, c := range demoCentres {
			fmt.Fprintf(stdout, "  %-8s %-28s %s   token: %s\n", c.id, c.nameZH, servers[i].URL, filepath.Join(*dir, c.id, "admin.token"))
		}
		for _, s := range servers[len(demoCentres):] {
			fmt.Fprintf(stdout, "  %-8s %-28s %s   (another replica of %s)\n", "", "", s.URL, demoReplicated)
		}
		fmt.Fprintf(stdout, "try: curl -H \"Authorization: Bearer $(cat %s)\" '%s/v1/records?catalogue=supply&limit=5'\n",
			filepath.Join(*dir, "hebei", "admin.token"), servers[2].URL)
		fmt.Fprintln(stdout, "press Ctrl-C to stop")
		select {
		case <-ctx.Done():
		case err := <-errs:
			seedErr = err
		}
	}
	stopAll()
	wg.Wait()
	close(errs)
	for err := range errs {
		seedErr = errors.Join(seedErr, err)
	}
	if seedErr == nil {
		fmt.Fprintln(stdout, "stopped")
	}
	return seedErr
}

// centrePorts are one centre's HTTP and libp2p (TCP and UDP) ports.
type centrePorts struct{ http, p2p int }

// demoPorts lays the centres out from base: HTTP on base+1…, libp2p on base+11…;
// extra replicas follow the four centres.
func demoPorts(base, replicas int) []centrePorts {
	out := make([]centrePorts, len(demoCentres)+replicas-1)
	for i := range out {
		out[i] = centrePorts{http: base + 1 + i, p2p: base + 11 + i}
	}
	return out
}

// demoReplicated is the centre that `demo --replicas N` runs on N replicas.
const demoReplicated = "tianjin"

// startFederation provisions (or reuses) the four centres under dir and starts
// them. ports[i] are centre i's; with replicas > 1, tianjin's extra replicas take
// ports[4:] and a raft address each (raftBase+k), and join its first replica.
// The returned servers are the four centres' first replicas, then the extras.
func startFederation(ctx context.Context, dir string, ports []centrePorts, replicas, raftBase int, logStore string, logger *slog.Logger) ([]*server.Server, error) {
	all, err := provisionFederation(dir, ports, replicas, raftBase, logStore)
	if err != nil {
		return nil, err
	}
	var servers []*server.Server
	for i := range all {
		all[i].Logger = logger.With("centre", all[i].Centre, "replica", all[i].Raft.ReplicaID)
		s, err := server.Start(ctx, all[i])
		if err != nil {
			for _, s := range servers {
				s.Close()
			}
			return nil, fmt.Errorf("start %s: %w", all[i].Raft.ReplicaID, err)
		}
		servers = append(servers, s)
	}
	return servers, nil
}

// provisionFederation writes (or reuses) the keys, the signed bundle and an
// admin token of every replica startFederation runs, and returns their
// configurations, the four centres' first replicas first.
func provisionFederation(dir string, ports []centrePorts, replicas, raftBase int, logStore string) ([]server.Config, error) {
	now := time.Now().UTC()
	members := make([]auth.Member, len(demoCentres))
	var cfgs []server.Config
	var extra []server.Config
	for i, c := range demoCentres {
		n := 1
		if c.id == demoReplicated && replicas > 1 {
			n = replicas
		}
		for k := 0; k < n; k++ {
			cfg := server.Default()
			cfg.Centre = c.id
			cfg.Raft.LogStore = logStore
			cfg.DataDir = filepath.Join(dir, c.id)
			p := ports[i]
			if k > 0 {
				cfg.DataDir = filepath.Join(dir, fmt.Sprintf("%s-%d", c.id, k+1))
				p = ports[len(demoCentres)+k-1]
			}
			cfg.HTTP = fmt.Sprintf("127.0.0.1:%d", p.http)
			cfg.P2P.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p.p2p), fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", p.p2p)}
			cfg.P2P.AntiEntropyInterval = time.Second
			if n > 1 {
				cfg.Raft.ReplicaID = fmt.Sprintf("%s-%d", c.id, k+1)
				cfg.Raft.Addr = fmt.Sprintf("127.0.0.1:%d", raftBase+k)
			}
			if k > 0 {
				cfg.Raft.Join = "http://" + cfgs[i].HTTP
				cfg.Raft.JoinToken = "admin.token"
				// Every replica of a centre signs with the centre's keys.
				for _, name := range []string{"record.key", "token.key"} {
					if err := copyKeyFile(filepath.Join(cfgs[i].DataDir, "keys", name), filepath.Join(cfg.DataDir, "keys", name)); err != nil {
						return nil, err
					}
				}
			}
			if err := cfg.Validate(); err != nil {
				return nil, err
			}
			keys, err := server.EnsureKeys(&cfg)
			if err != nil {
				return nil, fmt.Errorf("keys of %s: %w", c.id, err)
			}
			m := server.MemberFor(c.id, c.name, c.nameZH, keys, cfg.P2P.Listen, []string{"http://" + cfg.HTTP}, now.Add(-time.Hour))
			if k == 0 {
				members[i] = m
				cfgs = append(cfgs, cfg)
			} else {
				members[i].Peers = append(members[i].Peers, m.Peers...)
				members[i].HTTP = append(members[i].HTTP, m.HTTP...)
				extra = append(extra, cfg)
			}
		}
	}
	root, err := loadOrCreateRoot(filepath.Join(dir, "hq", "keys", "root.key"))
	if err != nil {
		return nil, err
	}
	bundle := &auth.Bundle{
		Federation: "jjj-demo", Version: 1, IssuedAt: now, ExpiresAt: now.AddDate(1, 0, 0),
		Signers:   []auth.Key{{ID: root.ID, Public: root.Public, NotBefore: now.Add(-time.Hour)}},
		Threshold: 1, Members: members,
	}
	all := append(cfgs, extra...)
	for i, cfg := range all {
		if _, err := server.SignNewBundle(cfg.Path(cfg.Bundle), bundle, root); err != nil {
			return nil, err
		}
		keys, err := server.EnsureKeys(&all[i])
		if err != nil {
			return nil, err
		}
		iss := auth.TokenIssuer{Centre: cfg.Centre, Federation: bundle.Federation, Key: keys.Token}
		tok, err := iss.Issue("demo-admin", auth.AllScopes, 30*24*time.Hour, now)
		if err != nil {
			return nil, err
		}
		if err := server.WriteToken(cfg.Path("admin.token"), tok); err != nil {
			return nil, err
		}
	}
	for i := range all {
		all[i].RootKeys = []string{root.ID}
	}
	return all, nil
}

func copyKeyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("copy centre key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
		return err
	}
	if existing, err := os.ReadFile(to); err == nil && bytes.Equal(existing, data) {
		return nil
	}
	return os.WriteFile(to, data, 0o600)
}

func loadOrCreateRoot(path string) (*auth.KeyPair, error) {
	k, err := auth.LoadKey(path)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if k, err = auth.GenerateKey("root"); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	return k, auth.SaveKey(path, k)
}

// seedFederation writes sample catalogues at every centre through its API, once:
// a centre that already holds records is left as it is.
func seedFederation(ctx context.Context, servers []*server.Server, dir string, n int) error {
	client := &http.Client{Timeout: 30 * time.Second}
	for i, s := range servers {
		c := demoCentres[i]
		if err := s.Node.WaitLeader(ctx); err != nil {
			return err
		}
		tok, err := os.ReadFile(filepath.Join(dir, c.id, "admin.token"))
		if err != nil {
			return err
		}
		if own, _, _ := s.Node.Store().List(store.Query{Origin: c.id, Limit: 1}); len(own) > 0 {
			continue // seeded by an earlier run on this directory
		}
		// A fresh centre first asks its peers how far its own log went and is
		// not ready until they have told it: wait for that here rather than
		// have the writes below answered 503, each logged as a warning.
		for wait := 0; s.Node.Ready() != nil && wait < 600; wait++ {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		for _, rec := range sample.Records(c.id, n, uint64(i+1)) {
			body, _ := json.Marshal(map[string]any{"catalogue": rec.Catalogue, "visibility": rec.Visibility, "body": rec.Body})
			// A 503 (leadership moved, recovery began again) is retried for a
			// bounded while.
			for attempt := 0; ; attempt++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/v1/records", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
				req.Header.Set("Content-Type", "application/json")
				resp, err := client.Do(req)
				if err != nil {
					return fmt.Errorf("seed %s: %w", c.id, err)
				}
				msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable && attempt < 600 {
					select {
					case <-ctx.Done():
						return ctx.Err()
					case <-time.After(100 * time.Millisecond):
					}
					continue
				}
				if resp.StatusCode != http.StatusCreated {
					return fmt.Errorf("seed %s: %s: %s", c.id, resp.Status, msg)
				}
				break
			}
		}
	}
	return nil
}
