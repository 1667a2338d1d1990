package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"liandong/node"
)

// TestCentreReplicasListsFeatures: the table names each replica's recorded
// features, which tell an operator why a create-only write over a deleted
// record is refused (a replica not listing if-absent).
func TestCentreReplicasListsFeatures(t *testing.T) {
	url, tok := devNode(t)
	fs := node.Features()
	slices.Sort(fs)
	features := strings.Join(fs, ",") // as the group records them
	var out string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		var code int
		code, out = runCLI(t, 10*time.Second, "centre", "replicas", "--node", url, "--token", tok)
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, out)
		}
		if strings.Contains(out, features) {
			break
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasSuffix(strings.TrimSpace(lines[0]), "FEATURES") || !strings.HasSuffix(lines[1], features) {
		t.Fatalf("centre replicas:\n%s", out)
	}
}

// TestCentreCommandsGiveUpOnASilentNode: a node that accepts the connection
// and never answers (a wedged process, a one-way cut) ends each command with
// a message saying what to do, instead of a wait with no end.
func TestCentreCommandsGiveUpOnASilentNode(t *testing.T) {
	silent := silentListener(t)
	tok := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tok, []byte("not-checked-by-a-silent-node\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "http://" + silent
	for _, args := range [][]string{
		{"replicas"},
		{"remove-replica", "--id", "tianjin-b"},
		{"purge-origin", "--origin", "hebei"},
		{"backup", "--out", filepath.Join(t.TempDir(), "tianjin.db")}, // its probe is bounded
	} {
		t.Run(args[0], func(t *testing.T) {
			argv := append([]string{"centre"}, args...)
			argv = append(argv, "--node", url, "--token", tok, "--timeout", "300ms")
			code, out := runCLI(t, 20*time.Second, argv...)
			if code == 0 || !strings.Contains(out, "timed out (--timeout 300ms bounds the wait for its answer to begin)") || !strings.Contains(out, "--timeout") {
				t.Fatalf("exit %d, want a failure saying the node did not answer and what to do:\n%s", code, out)
			}
		})
	}
}

// TestCentreBackupGivesUpOnASilentLeader (review 122): a backup asked of a
// follower is redirected (307) to its leader, which alone takes it; the
// probe that --timeout bounds was of the follower only, so a leader that
// accepts the connection and never answers held the command for ever (the
// follower answers at once, and the backup itself is unbounded while the
// node copies its state file). Each server the backup goes to is probed.
func TestCentreBackupGivesUpOnASilentLeader(t *testing.T) {
	silent := silentListener(t)
	leader := "http://" + silent
	follower := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"status":"ok"}`))
			return
		}
		w.Header().Set("Location", leader+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer follower.Close()
	tok := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tok, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := runCLI(t, 20*time.Second, "centre", "backup", "--out", filepath.Join(t.TempDir(), "tianjin.db"),
		"--node", follower.URL, "--token", tok, "--timeout", "300ms")
	if code == 0 || !strings.Contains(out, "timed out (--timeout 300ms bounds the wait for its answer to begin)") || !strings.Contains(out, silent) {
		t.Fatalf("exit %d, want a failure saying the leader %s did not answer:\n%s", code, leader, out)
	}
}

// TestCentreBackupProbesTheNodeBehindAPrefix (review 123): a node's API may
// sit under a path behind a proxy (https://gw/tianjin-1), as the client and
// the leader's Location (advertise_http + path) allow. The probe went to the
// scheme and host only (https://gw/healthz), which the gateway itself
// answers: a wedged node behind it held the backup for ever, and one probe
// stood for every node behind the same gateway, the leader a follower
// redirects to among them. The probe is of the node's own /healthz.
func TestCentreBackupProbesTheNodeBehindAPrefix(t *testing.T) {
	release := make(chan struct{})
	gw := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/healthz":
			http.NotFound(w, r) // the gateway's own answer: no node there
		case r.URL.Path == "/tianjin-0/healthz":
			_, _ = w.Write([]byte(`{"status":"ok"}`))
		case r.URL.Path == "/tianjin-0/v1/admin/backup":
			w.Header().Set("Location", "http://"+r.Host+"/tianjin-1/v1/admin/backup")
			w.WriteHeader(http.StatusTemporaryRedirect)
		default: // tianjin-1, wedged behind the gateway: never answers
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
	}))
	defer gw.Close()
	defer close(release) // before gw.Close, which waits for the handlers
	tok := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tok, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, node, silent string }{
		{"the node named", gw.URL + "/tianjin-1", gw.URL + "/tianjin-1"},
		{"the leader redirected to", gw.URL + "/tianjin-0/", gw.URL + "/tianjin-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runCLI(t, 10*time.Second, "centre", "backup", "--out", filepath.Join(t.TempDir(), "tianjin.db"),
				"--node", tc.node, "--token", tok, "--timeout", "300ms")
			if code == 0 || !strings.Contains(out, tc.silent+" timed out (--timeout 300ms bounds the wait for its answer to begin)") {
				t.Fatalf("exit %d, want a failure saying %s did not answer:\n%s", code, tc.silent, out)
			}
		})
	}
}

// silentListener listens on a loopback port whose connections are accepted
// and never read or answered (a wedged process, a one-way cut), until the
// test ends; it returns the address.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // read nothing, answer nothing
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	})
	return ln.Addr().String()
}
