package integration

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"liandong/auth"
	"liandong/node/server"
)

// centreIDs are the federation's centres in the order tests index them.
var centreIDs = []string{"hq", "tianjin", "hebei", "xiongan"}

// federation is four real `liandong serve` processes on loopback, one per centre,
// with one trust bundle signed by a root key the test holds.
type federation struct {
	t       *testing.T
	dir     string
	configs []string // config file per centre
	urls    []string
	procs   []*proc
	clients []*client
	// rootKey is the file of the key that signed the bundle (its only signer).
	rootKey string
	// bins[i] is the liandong executable centre i runs ("": binary).
	bins []string
}

type fedOptions struct {
	// block[i] lists centres centre i refuses to connect to (a cut link).
	block map[string][]string
	// bin is the liandong executable every centre starts with ("": binary),
	// e.g. an older build's (upgrade_test.go); f.bins changes it per centre.
	bin string
}

func udpFree(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		port := freePort(t)
		c, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return port
		}
	}
	t.Fatal("no free port for TCP and UDP")
	return 0
}

func newFederation(t *testing.T, opts fedOptions) *federation {
	t.Helper()
	f := &federation{t: t, dir: t.TempDir()}
	now := time.Now().UTC()
	root, err := auth.GenerateKey("root")
	if err != nil {
		t.Fatal(err)
	}
	f.rootKey = filepath.Join(f.dir, "root.key")
	if err := auth.SaveKey(f.rootKey, root); err != nil {
		t.Fatal(err)
	}
	var members []auth.Member
	cfgs := make([]server.Config, len(centreIDs))
	for i, id := range centreIDs {
		cfg := server.Default()
		cfg.Centre = id
		cfg.DataDir = filepath.Join(f.dir, id)
		cfg.HTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		p2p := udpFree(t)
		cfg.P2P.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2p), fmt.Sprintf("/ip4/127.0.0.1/udp/%d/quic-v1", p2p)}
		cfg.P2P.AntiEntropyInterval = time.Second
		cfg.P2P.Block = opts.block[id]
		cfg.RootKeys = []string{root.ID}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		keys, err := server.EnsureKeys(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, server.MemberFor(id, id, id, keys, cfg.P2P.Listen, []string{"http://" + cfg.HTTP}, now.Add(-time.Hour)))
		cfgs[i] = cfg
		f.urls = append(f.urls, "http://"+cfg.HTTP)
	}
	bundle := &auth.Bundle{
		Federation: "jjj-test", Version: 1, IssuedAt: now, ExpiresAt: now.Add(24 * time.Hour),
		Signers:   []auth.Key{{ID: root.ID, Public: root.Public, NotBefore: now.Add(-time.Hour)}},
		Threshold: 1, Members: members,
	}
	for i, cfg := range cfgs {
		if _, err := server.SignNewBundle(cfg.Path(cfg.Bundle), bundle, root); err != nil {
			t.Fatal(err)
		}
		keys, _ := server.EnsureKeys(&cfgs[i])
		iss := auth.TokenIssuer{Centre: cfg.Centre, Federation: bundle.Federation, Key: keys.Token}
		tok, err := iss.Issue("it-admin", auth.AllScopes, time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := server.WriteToken(cfg.Path("admin.token"), tok); err != nil {
			t.Fatal(err)
		}
		out, err := yaml.Marshal(configFile(cfg))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(f.dir, cfg.Centre+".yaml")
		if err := os.WriteFile(path, out, 0o600); err != nil {
			t.Fatal(err)
		}
		f.configs = append(f.configs, path)
		c, err := newClient(f.urls[i], cfg.Path("admin.token"))
		if err != nil {
			t.Fatal(err)
		}
		f.clients = append(f.clients, c)
	}
	f.procs = make([]*proc, len(centreIDs))
	f.bins = make([]string, len(centreIDs))
	for i := range f.bins {
		f.bins[i] = opts.bin
	}
	for i := range centreIDs {
		f.start(i)
	}
	for i := range centreIDs {
		waitReady(t, f.procs[i], f.urls[i], 30*time.Second)
	}
	return f
}

// configFile is the YAML form of a server config (durations as strings).
func configFile(c server.Config) map[string]any {
	file := map[string]any{
		"centre": c.Centre, "data_dir": c.DataDir, "http": c.HTTP,
		"p2p": map[string]any{"listen": c.P2P.Listen, "anti_entropy_interval": c.P2P.AntiEntropyInterval.String(), "block": c.P2P.Block,
			"skip_own_log_recovery": c.P2P.SkipOwnLogRecovery},
		"bundle":    c.Bundle,
		"root_keys": c.RootKeys,
	}
	if c.TLS != (server.TLSConfig{}) {
		file["tls"] = map[string]any{"cert": c.TLS.Cert, "key": c.TLS.Key, "ca": c.TLS.CA}
	}
	return file
}

func (f *federation) start(i int) {
	bin := binary
	if f.bins != nil && f.bins[i] != "" {
		bin = f.bins[i]
	}
	f.procs[i] = startProcWith(f.t, bin, nil, "serve", "--config", f.configs[i], "--log-level", "warn")
}

// loseState stops centre i and empties its data directory but for its keys,
// trust bundle and admin token: a centre whose state was lost (a disk replaced)
// or is about to be restored from a backup.
func (f *federation) loseState(i int) {
	f.t.Helper()
	if err := f.procs[i].stop(); err != nil {
		f.t.Fatal(err)
	}
	dir := filepath.Join(f.dir, centreIDs[i])
	entries, err := os.ReadDir(dir)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range entries {
		switch e.Name() {
		case "keys", "bundle.json", "admin.token":
		default:
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				f.t.Fatal(err)
			}
		}
	}
}

func (f *federation) restart(i int) {
	f.start(i)
	waitReady(f.t, f.procs[i], f.urls[i], 30*time.Second)
}

// heads returns centre i's local heads (origin → "seq/hash").
func (f *federation) heads(i int) (map[string]string, error) {
	var doc struct {
		Sync struct {
			Origins []struct {
				Origin string `json:"origin"`
				Local  *struct {
					Seq  uint64 `json:"seq"`
					Hash string `json:"hash"`
				} `json:"local"`
			} `json:"origins"`
		} `json:"sync"`
	}
	if _, err := f.clients[i].do(context.Background(), http.MethodGet, "/v1/federation", nil, &doc); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, o := range doc.Sync.Origins {
		if o.Local != nil && o.Local.Seq > 0 {
			out[o.Origin] = fmt.Sprintf("%d/%s", o.Local.Seq, o.Local.Hash)
		}
	}
	return out, nil
}

// waitConverged waits until every running centre reports the same heads for every
// origin, and returns them.
func (f *federation) waitConverged(within time.Duration, running ...int) map[string]string {
	f.t.Helper()
	if len(running) == 0 {
		running = []int{0, 1, 2, 3}
	}
	deadline := time.Now().Add(within)
	var last []string
	for time.Now().Before(deadline) {
		last = last[:0]
		var first map[string]string
		same := true
		for _, i := range running {
			h, err := f.heads(i)
			if err != nil {
				same = false
				last = append(last, fmt.Sprintf("%s: %v", centreIDs[i], err))
				continue
			}
			last = append(last, fmt.Sprintf("%s: %v", centreIDs[i], h))
			if first == nil {
				first = h
			} else if fmt.Sprint(h) != fmt.Sprint(first) {
				same = false
			}
		}
		if same && first != nil {
			return first
		}
		time.Sleep(100 * time.Millisecond)
	}
	f.t.Fatalf("centres did not converge within %v:\n%s", within, strings.Join(last, "\n"))
	return nil
}

// create writes a record at centre i and returns the envelope.
func (f *federation) create(i int, catalogue, visibility string, body map[string]any) envelope {
	f.t.Helper()
	var env envelope
	if _, err := f.clients[i].do(context.Background(), http.MethodPost, "/v1/records", map[string]any{
		"catalogue": catalogue, "visibility": visibility, "body": body,
	}, &env); err != nil {
		f.t.Fatal(err)
	}
	return env
}

// waitRecord waits until centre i answers GET id with a version ≥ v (or, for
// gone, a 404) and returns what it saw.
func (f *federation) waitRecord(i int, id string, v uint64, gone bool, within time.Duration) envelope {
	f.t.Helper()
	deadline := time.Now().Add(within)
	var lastErr error
	for time.Now().Before(deadline) {
		var env envelope
		code, err := f.clients[i].do(context.Background(), http.MethodGet, "/v1/records/"+id, nil, &env)
		switch {
		case gone && code == http.StatusNotFound:
			return env
		case !gone && err == nil && env.Version >= v:
			return env
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	f.t.Fatalf("%s: record %s v%d (gone=%v) not seen within %v: %v", centreIDs[i], id, v, gone, within, lastErr)
	return envelope{}
}
