package main

import (
	"slices"
	"strings"
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
