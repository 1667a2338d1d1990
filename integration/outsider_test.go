package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"liandong/auth"
	"liandong/node/server"
)

// TestOutsiderCannotJoin: a node whose peer id is not in the federation's bundle
// dials headquarters with a bundle of its own making. Headquarters' connection gater
// refuses it: nothing flows either way, and headquarters lists no such peer.
func TestOutsiderCannotJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("starts five processes")
	}
	f := newFederation(t, fedOptions{})
	hqBundle, err := server.LoadBundle(filepath.Join(f.dir, "hq", "bundle.json"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hq, _ := hqBundle.Member("hq")

	// The outsider: its own root, its own bundle naming itself and (truly) hq.
	cfg := server.Default()
	cfg.Centre, cfg.DataDir = "zgc", filepath.Join(f.dir, "zgc")
	cfg.HTTP = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	p2p := udpFree(t)
	cfg.P2P.Listen = []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", p2p)}
	cfg.P2P.AntiEntropyInterval = time.Second
	cfg.P2P.SkipOwnLogRecovery = true // nobody will answer it: it must not wait for its own log
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	keys, err := server.EnsureKeys(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := auth.GenerateKey("evil-root")
	now := time.Now().UTC()
	b := &auth.Bundle{
		Federation: hqBundle.Federation, Version: hqBundle.Version + 100, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
		Signers:   []auth.Key{{ID: root.ID, Public: root.Public, NotBefore: now.Add(-time.Hour)}},
		Threshold: 1,
		Members:   []auth.Member{*hq, server.MemberFor("zgc", "zgc", "中关村", keys, cfg.P2P.Listen, nil, now.Add(-time.Hour))},
	}
	if _, err := server.SignNewBundle(cfg.Path(cfg.Bundle), b, root); err != nil {
		t.Fatal(err)
	}
	iss := auth.TokenIssuer{Centre: "zgc", Federation: b.Federation, Key: keys.Token}
	tok, _ := iss.Issue("x", auth.AllScopes, time.Hour, now)
	server.WriteToken(cfg.Path("admin.token"), tok)
	out, _ := yaml.Marshal(configFile(cfg))
	cfgPath := filepath.Join(f.dir, "zgc.yaml")
	os.WriteFile(cfgPath, out, 0o600)
	p := startProc(t, "serve", "--config", cfgPath, "--log-level", "warn")
	url := "http://" + cfg.HTTP
	waitReady(t, p, url, 30*time.Second)
	zc, _ := newClient(url, cfg.Path("admin.token"))

	var rec envelope
	if _, err := zc.do(context.Background(), http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "public", "body": supplyBody("伪装成果"),
	}, &rec); err != nil {
		t.Fatal(err)
	}
	hqRec := f.create(0, "supply", "public", supplyBody("本部成果"))

	// Several anti-entropy rounds and redials.
	time.Sleep(5 * time.Second)
	if code, _ := f.clients[0].do(context.Background(), http.MethodGet, "/v1/records/"+rec.ID, nil, nil); code != http.StatusNotFound {
		t.Fatalf("hq answers %d for the outsider's record", code)
	}
	if code, _ := zc.do(context.Background(), http.MethodGet, "/v1/records/"+hqRec.ID, nil, nil); code != http.StatusNotFound {
		t.Fatalf("the outsider got hq's record (%d)", code)
	}
	var doc struct {
		Sync struct {
			Peers []struct {
				PeerID    string `json:"peer_id"`
				Member    string `json:"member"`
				Connected bool   `json:"connected"`
			} `json:"peers"`
		} `json:"sync"`
	}
	if _, err := f.clients[0].do(context.Background(), http.MethodGet, "/v1/federation", nil, &doc); err != nil {
		t.Fatal(err)
	}
	for _, pe := range doc.Sync.Peers {
		if pe.PeerID == keys.PeerID.String() && pe.Connected {
			t.Fatalf("hq shows the outsider connected: %+v", pe)
		}
	}
}
