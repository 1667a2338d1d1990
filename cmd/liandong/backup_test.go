package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"liandong/client"
	"liandong/node/store"
	"liandong/schema"
)

// TestBackupRestoreCLI: centre backup writes a checked copy of a running
// node's state file; centre restore lays it into an empty directory and
// refuses one in use; what goes wrong says what to do.
func TestBackupRestoreCLI(t *testing.T) {
	url, tokFile := devNode(t)
	tok, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"title": "备份的成果", "summary": "摘要", "industry": "new-energy", "trl": 5})
	_, err = client.New(url, strings.TrimSpace(string(tok))).Create(context.Background(), &schema.Record{Catalogue: "supply", Visibility: "federation", Body: body})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "tianjin.db")
	code, text := runCLI(t, 30*time.Second, "centre", "backup", "--node", url, "--token", tokFile, "--out", out)
	if code != 0 || !strings.Contains(text, "own log to seq 1, 1 live records") {
		t.Fatalf("centre backup: exit %d:\n%s", code, text)
	}
	if code, text = runCLI(t, 30*time.Second, "centre", "backup", "--node", url, "--token", tokFile, "--out", out); code != 1 || !strings.Contains(text, "exists") {
		t.Fatalf("a backup over an existing file: exit %d:\n%s", code, text)
	}
	dir := filepath.Join(t.TempDir(), "restored")
	if code, text = runCLI(t, 30*time.Second, "centre", "restore", "--from", out, "--data", dir, "--centre", "tianjin"); code != 0 || !strings.Contains(text, "bootstrap: true") {
		t.Fatalf("centre restore: exit %d:\n%s", code, text)
	}
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err != nil {
		t.Fatal(err)
	}
	if code, text = runCLI(t, 30*time.Second, "centre", "restore", "--from", out, "--data", dir, "--centre", "tianjin"); code != 1 || !strings.Contains(text, "new, empty data directory") {
		t.Fatalf("a restore into a used directory: exit %d:\n%s", code, text)
	}
	if code, text = runCLI(t, 10*time.Second, "centre", "restore", "--data", dir); code != 2 || !strings.Contains(text, "--from") {
		t.Fatalf("restore without --from: exit %d:\n%s", code, text)
	}
}

// TestBackupRefusesADamagedCopy: a copy that arrives damaged is not named as
// the backup, whatever the node announced.
func TestBackupRefusesADamagedCopy(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Liandong-Backup-Centre", "tianjin")
		w.Header().Set("Liandong-Backup-Applied-Index", "7")
		junk := strings.Repeat("not a bbolt file ", 1000)
		w.Header().Set("Content-Length", strconv.Itoa(len(junk)))
		w.Write([]byte(junk))
	}))
	defer srv.Close()
	tokFile := filepath.Join(t.TempDir(), "admin.token")
	os.WriteFile(tokFile, []byte("x"), 0o600)
	out := filepath.Join(t.TempDir(), "tianjin.db")
	code, text := runCLI(t, 30*time.Second, "centre", "backup", "--node", srv.URL, "--token", tokFile, "--out", out)
	if code != 1 || !strings.Contains(text, "not usable") {
		t.Fatalf("a damaged copy: exit %d:\n%s", code, text)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
		t.Fatalf("a damaged copy left %v", entries)
	}
}

// TestBackupWaitsForANodeStillCopyingItsState: a node copies its whole state
// file to its own disk before it sends the answer's headers (node.Backup),
// which for a large file takes longer than any fixed bound; --timeout, meant
// for a node that never answers, must not cut that copy short. Here the
// node's copy takes longer than --timeout; its /healthz answers at once.
func TestBackupWaitsForANodeStillCopyingItsState(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.db")
	st, err := store.Open(state, store.Options{Centre: "tianjin"})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	info, err := store.Inspect(state)
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	const timeout = 200 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"status":"ok"}`))
			return
		}
		select { // the node's copy of its state file
		case <-time.After(5 * timeout):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Liandong-Backup-Centre", info.Centre)
		w.Header().Set("Liandong-Backup-Applied-Index", strconv.FormatUint(info.AppliedIndex, 10))
		w.Header().Set("Content-Length", strconv.Itoa(len(file)))
		w.Write(file)
	}))
	defer srv.Close()
	tokFile := filepath.Join(t.TempDir(), "admin.token")
	os.WriteFile(tokFile, []byte("x"), 0o600)
	out := filepath.Join(t.TempDir(), "tianjin.db")
	code, text := runCLI(t, 30*time.Second, "centre", "backup", "--node", srv.URL, "--token", tokFile, "--out", out, "--timeout", timeout.String())
	if code != 0 {
		t.Fatalf("a backup the node took longer than --timeout to begin: exit %d:\n%s", code, text)
	}
	if _, err := store.Inspect(out); err != nil {
		t.Fatal(err)
	}
}
