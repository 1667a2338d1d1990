package main

import (
	"net"
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
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var held []net.Conn
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	go func() {
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
	tok := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(tok, []byte("not-checked-by-a-silent-node\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
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
