package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStatusReplicaNotReady: a replica that knows its leader but cannot serve
// (its state file stopped applying: /readyz answers 503, writes are refused)
// reports why in /v1/federation's replica.not_ready; `liandong status` must
// make that a problem (exit 1), not "OK: nothing needs attention".
func TestStatusReplicaNotReady(t *testing.T) {
	now := time.Now().UTC()
	doc := statusDoc(now, 4, "hq")
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	raw["replica"].(map[string]any)["not_ready"] = "state file failed: undecodable command"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(raw)
	}))
	defer srv.Close()
	tokFile := filepath.Join(t.TempDir(), "tok")
	os.WriteFile(tokFile, []byte("tok\n"), 0o600)
	code, out := runCLI(t, 10*time.Second, "status", "--node", srv.URL, "--token", tokFile)
	if code != 1 || !strings.Contains(out, "[not-ready]") || !strings.Contains(out, "state file failed") {
		t.Errorf("status of a replica that cannot serve: exit %d, want 1 with a not-ready problem saying why\n%s", code, out)
	}
}
