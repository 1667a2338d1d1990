package server

import (
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"liandong/node/api"
	"liandong/node/api/openapitest"
)

// TestFederationMatchesOpenAPI starts a real one-centre server (raft, libp2p
// host, API) and validates its /v1/federation and /readyz answers against the
// API's OpenAPI document.
func TestFederationMatchesOpenAPI(t *testing.T) {
	doc, err := api.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	v, err := openapitest.New(doc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Default()
	cfg.Centre = "tianjin"
	cfg.DataDir = t.TempDir()
	cfg.HTTP = "127.0.0.1:0"
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	tokPath, err := DevSetup(&cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(tokPath)
	if err != nil {
		t.Fatal(err)
	}
	s := runTestServer(t, cfg)
	cli := &http.Client{Timeout: 10 * time.Second}
	for _, path := range []string{"/v1/federation", "/readyz", "/v1/openapi.json"} {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
		resp, body := v.Do(t, cli, req, nil, false)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		if path == "/v1/federation" && !strings.Contains(string(body), `"sync"`) {
			t.Errorf("federation without sync state: %s", body)
		}
	}
}
