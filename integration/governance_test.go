package integration

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"liandong/auth"
	"liandong/node/server"
)

// liandongCLI runs the binary with args and returns its combined output; a
// non-zero exit fails the test unless wantFail.
func liandongCLI(t *testing.T, wantFail bool, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
	if (err != nil) != wantFail {
		t.Fatalf("liandong %s: err %v (want failure %v):\n%s", strings.Join(args, " "), err, wantFail, out)
	}
	return string(out)
}

// issueToken issues a token at centre i's token key for subject with scopes.
func (f *federation) issueToken(i int, subject string, scopes ...auth.Scope) string {
	f.t.Helper()
	cfg := server.Default()
	cfg.Centre, cfg.DataDir = centreIDs[i], filepath.Join(f.dir, centreIDs[i])
	keys, err := server.EnsureKeys(&cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	iss := auth.TokenIssuer{Centre: centreIDs[i], Federation: "jjj-test", Key: keys.Token}
	tok, err := iss.Issue(subject, scopes, time.Hour, time.Now().Add(-time.Minute))
	if err != nil {
		f.t.Fatal(err)
	}
	return tok
}

// bundleVersions returns each running centre's trust bundle version.
func (f *federation) bundleVersions() []uint64 {
	out := make([]uint64, len(f.urls))
	for i := range f.urls {
		var doc struct {
			Bundle struct {
				Version uint64 `json:"version"`
			} `json:"bundle"`
		}
		if _, err := f.clients[i].do(context.Background(), http.MethodGet, "/v1/federation", nil, &doc); err == nil {
			out[i] = doc.Bundle.Version
		}
	}
	return out
}

// nextBundle builds, signs with the root key and returns the path of the next
// bundle version made by `liandong federation <change> args…` from centre hq's
// current bundle file.
func (f *federation) nextBundle(t *testing.T, base string, change string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "next.json")
	liandongCLI(t, false, append([]string{"federation", change, "--bundle", base, "--out", out}, args...)...)
	liandongCLI(t, false, "federation", "sign", "--bundle", out, "--key", f.rootKey)
	return out
}

func status(c *client, path string) int {
	code, _ := c.do(context.Background(), http.MethodGet, path, nil, nil)
	return code
}

// TestGovernanceRevocationSpreads publishes a revocation of a partner at one
// centre and measures how long until every centre refuses the partner's token.
// A replayed older bundle and one without enough valid signatures are refused
// at every centre, and each centre's audit log records the change.
func TestGovernanceRevocationSpreads(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	f := newFederation(t, fedOptions{})
	v1 := filepath.Join(f.dir, "hq", "bundle.json")
	partner := f.issueToken(1, "partner-x", auth.ScopeRead)
	partnerAt := make([]*client, len(f.urls))
	for i, u := range f.urls {
		partnerAt[i] = &client{base: u, token: partner, http: &http.Client{Timeout: 10 * time.Second}}
		if code := status(partnerAt[i], "/v1/records?limit=1"); code != http.StatusOK {
			t.Fatalf("%s: partner token answered %d before any revocation", centreIDs[i], code)
		}
	}

	v2 := f.nextBundle(t, v1, "revoke", "--subject", "sub:tianjin/partner-x", "--reason", "leaked")
	published := time.Now()
	out := liandongCLI(t, false, "federation", "publish", "--bundle", v2, "--node", f.urls[0], "--token", filepath.Join(f.dir, "hq", "admin.token"))
	if !strings.Contains(out, "v2 installed") {
		t.Fatalf("publish said: %s", out)
	}
	refused := make([]time.Duration, len(f.urls))
	deadline := time.Now().Add(30 * time.Second)
	for i := range f.urls {
		for status(partnerAt[i], "/v1/records?limit=1") != http.StatusUnauthorized {
			if time.Now().After(deadline) {
				t.Fatalf("%s still accepts the revoked token 30 s after publishing; bundle versions %v", centreIDs[i], f.bundleVersions())
			}
			time.Sleep(20 * time.Millisecond)
		}
		refused[i] = time.Since(published)
	}
	t.Logf("revocation took effect after publish at: %v", refused)
	if v := f.bundleVersions(); fmt.Sprint(v) != "[2 2 2 2]" {
		t.Fatalf("bundle versions %v, want v2 everywhere", v)
	}
	// Another partner of tianjin is unaffected.
	other := &client{base: f.urls[2], token: f.issueToken(1, "partner-y", auth.ScopeRead), http: &http.Client{Timeout: 10 * time.Second}}
	if code := status(other, "/v1/records?limit=1"); code != http.StatusOK {
		t.Fatalf("an unrevoked partner got %d", code)
	}

	// Refusals, at every centre: the replayed v1, a v3 signed by a stranger.
	stranger := filepath.Join(t.TempDir(), "stranger.key")
	liandongCLI(t, false, "keygen", "--out", stranger, "--prefix", "root")
	v3 := filepath.Join(t.TempDir(), "v3.json")
	liandongCLI(t, false, "federation", "revoke", "--bundle", v2, "--out", v3, "--subject", "sub:hq/it-admin")
	// Signed in Go: the CLI refuses a key that is not a signer.
	signAs(t, v3, stranger)
	for i := range f.urls {
		tok := filepath.Join(f.dir, centreIDs[i], "admin.token")
		out := liandongCLI(t, true, "federation", "publish", "--bundle", v1, "--node", f.urls[i], "--token", tok)
		if !strings.Contains(out, "older than the one held") {
			t.Errorf("%s: replayed v1: %s", centreIDs[i], out)
		}
		out = liandongCLI(t, true, "federation", "publish", "--bundle", v3, "--node", f.urls[i], "--token", tok)
		if !strings.Contains(out, "lacks enough valid signatures") {
			t.Errorf("%s: v3 signed by a stranger: %s", centreIDs[i], out)
		}
	}
	if v := f.bundleVersions(); fmt.Sprint(v) != "[2 2 2 2]" {
		t.Fatalf("bundle versions %v after refused offers, want v2 everywhere", v)
	}

	// The audit logs: hq records who published, the others that sync brought it.
	for i := range f.urls {
		var doc struct {
			Events []struct {
				Actor, Action, Detail string
			} `json:"events"`
		}
		if _, err := f.clients[i].do(context.Background(), http.MethodGet, "/v1/audit", nil, &doc); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range doc.Events {
			got = append(got, e.Action+" by "+e.Actor)
		}
		want := "bundle.install by sync:"
		if i == 0 {
			want = "bundle.install by hq/it-admin"
		}
		if len(got) != 1 || !strings.HasPrefix(got[0], want) {
			t.Errorf("%s: audit log %v, want one %q", centreIDs[i], got, want)
		}
	}
	// The audit log exports, its chain and signatures checked by the CLI.
	export := filepath.Join(t.TempDir(), "audit.jsonl")
	out = liandongCLI(t, false, "centre", "audit", "--node", f.urls[2], "--token", filepath.Join(f.dir, "hebei", "admin.token"), "--out", export)
	if !strings.Contains(out, "1 audit events written") || !strings.Contains(out, "verified against trust bundle v2") {
		t.Errorf("centre audit: %s", out)
	}
	// With headquarters down, a restarted centre runs on the bundle it kept, so
	// the partner's token stays refused.
	if err := f.procs[0].stop(); err != nil {
		t.Fatal(err)
	}
	if err := f.procs[2].stop(); err != nil {
		t.Fatal(err)
	}
	f.restart(2)
	if code := status(partnerAt[2], "/v1/records?limit=1"); code != http.StatusUnauthorized {
		t.Fatalf("hebei after restart: revoked token answered %d", code)
	}
}

// TestGovernanceAddAndRemoveCentre adds a fifth centre at runtime while hq
// writes, checks that it catches up and that its own records reach everyone;
// then removes it and checks that its records stay readable as history while
// its new writes no longer arrive.
func TestGovernanceAddAndRemoveCentre(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five nodes")
	}
	f := newFederation(t, fedOptions{})
	for i := range centreIDs {
		f.create(i, "supply", "federation", supplyBody(centreIDs[i]+" 的成果"))
	}

	// Background load at hq while the centre joins.
	ctx, stop := context.WithCancel(context.Background())
	loadDone := make(chan int)
	go func() {
		n := 0
		defer func() { loadDone <- n }()
		for ctx.Err() == nil && n < 400 {
			if _, err := f.clients[0].do(ctx, http.MethodPost, "/v1/records", map[string]any{
				"catalogue": "supply", "visibility": "federation", "body": supplyBody(fmt.Sprintf("负载 %d", n)),
			}, nil); err == nil {
				n++
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// The new centre makes its keys and member entry; hq's operator adds it.
	zdir := filepath.Join(f.dir, "zgc")
	cfg := server.Default()
	cfg.Centre, cfg.DataDir = "zgc", zdir
	cfg.HTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p2p := udpFree(t)
	cfg.P2P.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2p)}
	cfg.P2P.AntiEntropyInterval = time.Second
	member := filepath.Join(t.TempDir(), "zgc.json")
	liandongCLI(t, false, "federation", "member", "--data", zdir, "--centre", "zgc", "--name", "Zhongguancun", "--name-zh", "中关村",
		"--p2p-addr", cfg.P2P.Listen[0], "--http", "http://"+cfg.HTTP, "--out", member)
	v2 := f.nextBundle(t, filepath.Join(f.dir, "hq", "bundle.json"), "add-centre", "--member", member)
	liandongCLI(t, false, "federation", "publish", "--bundle", v2, "--node", f.urls[0], "--token", filepath.Join(f.dir, "hq", "admin.token"))
	waitFor(t, 30*time.Second, func() bool { return fmt.Sprint(f.bundleVersions()) == "[2 2 2 2]" })

	// Start zgc on the new bundle.
	data, err := os.ReadFile(v2)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfg.Path(cfg.Bundle), data, 0o644); err != nil {
		t.Fatal(err)
	}
	keys, err := server.EnsureKeys(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	iss := auth.TokenIssuer{Centre: "zgc", Federation: "jjj-test", Key: keys.Token}
	tok, err := iss.Issue("it-admin", auth.AllScopes, time.Hour, time.Now().Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := server.WriteToken(cfg.Path("admin.token"), tok); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(f.dir, "zgc.yaml")
	yml, err := yaml.Marshal(configFile(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, yml, 0o600); err != nil {
		t.Fatal(err)
	}
	zp := startProc(t, "serve", "--config", cfgPath, "--log-level", "warn")
	zurl := "http://" + cfg.HTTP
	waitReady(t, zp, zurl, 30*time.Second)
	zc, err := newClient(zurl, cfg.Path("admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	var rec envelope
	if _, err := zc.do(context.Background(), http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("中关村 的成果"),
	}, &rec); err != nil {
		t.Fatal(err)
	}
	stop()
	written := <-loadDone
	t.Logf("hq wrote %d records while zgc joined", written)
	for i := range f.urls {
		f.waitRecord(i, rec.ID, rec.Version, false, 30*time.Second)
	}
	// zgc catches up with everything the four hold: compare heads.
	want := f.waitConverged(60 * time.Second)
	waitFor(t, 60*time.Second, func() bool {
		h, err := headsOf(zc)
		if err != nil {
			return false
		}
		for o, v := range want {
			if h[o] != v {
				return false
			}
		}
		return true
	})

	// Remove zgc: its record stays readable everywhere, its new writes do not arrive.
	v3 := f.nextBundle(t, v2, "remove-centre", "--centre", "zgc")
	liandongCLI(t, false, "federation", "publish", "--bundle", v3, "--node", f.urls[1], "--token", filepath.Join(f.dir, "tianjin", "admin.token"))
	waitFor(t, 30*time.Second, func() bool { return fmt.Sprint(f.bundleVersions()) == "[3 3 3 3]" })
	var after envelope
	if _, err := zc.do(context.Background(), http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("移除之后"),
	}, &after); err != nil && !errors.Is(err, context.Canceled) {
		t.Logf("write at the removed centre: %v", err) // it may refuse; either way nothing must arrive
	}
	time.Sleep(3 * time.Second) // several anti-entropy rounds
	for i := range f.urls {
		f.waitRecord(i, rec.ID, rec.Version, false, 5*time.Second)
		req, _ := http.NewRequest(http.MethodGet, f.urls[i]+"/v1/records/"+rec.ID, nil)
		req.Header.Set("Authorization", "Bearer "+f.clients[i].token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Liandong-Origin-Removed") == "" {
			t.Errorf("%s: zgc's record answered %d without marking its origin as removed", centreIDs[i], resp.StatusCode)
		}
		if after.ID != "" {
			if code := status(f.clients[i], "/v1/records/"+after.ID); code != http.StatusNotFound {
				t.Errorf("%s: a record written at zgc after its removal answered %d, want 404", centreIDs[i], code)
			}
		}
	}
	// hebei's operator purges zgc: its record is gone there (and leaves hebei's
	// change feed as a deletion), still served as history at the others.
	fail := liandongCLI(t, true, "centre", "purge-origin", "--node", f.urls[2], "--token", filepath.Join(f.dir, "hebei", "admin.token"), "--origin", "tianjin")
	if !strings.Contains(fail, "not a removed member") || strings.Contains(fail, "Record exists") {
		t.Errorf("purging a member: %s", fail)
	}
	out := liandongCLI(t, false, "centre", "purge-origin", "--node", f.urls[2], "--token", filepath.Join(f.dir, "hebei", "admin.token"), "--origin", "zgc")
	if !strings.Contains(out, "1 records of zgc withdrawn") {
		t.Errorf("purge-origin said: %s", out)
	}
	if code := status(f.clients[2], "/v1/records/"+rec.ID); code != http.StatusNotFound {
		t.Errorf("hebei still serves zgc's record after the purge: %d", code)
	}
	f.waitRecord(0, rec.ID, rec.Version, false, 5*time.Second)
	f.waitConverged(30 * time.Second) // the logs stay whole: sync neither loops nor forks
	zp.kill()
}

// headsOf returns a node's local heads (origin → "seq/hash").
func headsOf(c *client) (map[string]string, error) {
	f := &federation{clients: []*client{c}}
	return f.heads(0)
}

// TestGovernanceRecordKeyRotation rotates hq's record key mid-stream: hq holds
// the new key, the bundle that lists it spreads, hq signs with it once it is
// valid. A centre that was down throughout comes back on the old bundle and
// must verify hq's entries signed with the old key and with the new one.
func TestGovernanceRecordKeyRotation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	f := newFederation(t, fedOptions{})
	if err := f.procs[3].stop(); err != nil { // xiongan sleeps through the rotation
		t.Fatal(err)
	}
	before := f.create(0, "supply", "federation", supplyBody("轮换之前"))

	// hq gets the new key and restarts holding both.
	newKey := filepath.Join(f.dir, "hq", "keys", "record-2.key")
	out := liandongCLI(t, false, "keygen", "--out", newKey, "--prefix", "hq-rec")
	kid := strings.Fields(out)[1]
	cfg := server.Default()
	cfg.Centre, cfg.DataDir = "hq", filepath.Join(f.dir, "hq")
	raw, err := os.ReadFile(f.configs[0])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m["keys"] = map[string]any{"record": cfg.Keys.Record, "token": cfg.Keys.Token, "p2p": cfg.Keys.P2P, "record_rotation": []string{newKey}}
	if raw, err = yaml.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.configs[0], raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.procs[0].stop(); err != nil {
		t.Fatal(err)
	}
	f.restart(0)
	mid := f.create(0, "supply", "federation", supplyBody("持有两把钥匙"))

	v2 := f.nextBundle(t, filepath.Join(f.dir, "hq", "bundle.json"), "rotate-key",
		"--centre", "hq", "--kind", "record", "--key", newKey, "--activate-in", "3s", "--retire-after", "1h")
	liandongCLI(t, false, "federation", "publish", "--bundle", v2, "--node", f.urls[0], "--token", filepath.Join(f.dir, "hq", "admin.token"))
	waitFor(t, 30*time.Second, func() bool { return fmt.Sprint(f.bundleVersions()[:3]) == "[2 2 2]" })
	time.Sleep(3500 * time.Millisecond) // until the new key is valid
	after := f.create(0, "supply", "federation", supplyBody("轮换之后"))

	kids := func(i int, id string) []string {
		var doc struct {
			Items []struct {
				KeyID string `json:"kid"`
			} `json:"items"`
		}
		if _, err := f.clients[i].do(context.Background(), http.MethodGet, "/v1/records/"+id+"/history", nil, &doc); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range doc.Items {
			out = append(out, v.KeyID)
		}
		return out
	}
	if got := kids(0, after.ID); len(got) != 1 || got[0] != kid {
		t.Fatalf("record written after the rotation signed by %v, want %s", got, kid)
	}
	if got := kids(0, before.ID); len(got) != 1 || got[0] == kid {
		t.Fatalf("record written before the rotation signed by %v, want the old key", got)
	}

	// xiongan comes back on bundle v1 and must take both.
	f.restart(3)
	for _, rec := range []envelope{before, mid, after} {
		f.waitRecord(3, rec.ID, rec.Version, false, 30*time.Second)
	}
	f.waitConverged(30 * time.Second)
	if v := f.bundleVersions(); fmt.Sprint(v) != "[2 2 2 2]" {
		t.Fatalf("bundle versions %v, want v2 everywhere", v)
	}
	// And a restart of a centre that verified both keeps working on v2.
	if err := f.procs[1].stop(); err != nil {
		t.Fatal(err)
	}
	f.restart(1)
	f.create(0, "supply", "federation", supplyBody("重启之后"))
	f.waitConverged(30 * time.Second)
}

// signAs adds the signature of the key in keyFile to the bundle file path,
// whoever that key is.
func signAs(t *testing.T, path, keyFile string) {
	t.Helper()
	k, err := auth.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := auth.ParseSignedBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.Sign(k); err != nil {
		t.Fatal(err)
	}
	if err := server.WriteSignedBundle(path, sb); err != nil {
		t.Fatal(err)
	}
}
