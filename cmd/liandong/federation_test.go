package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFederationInitKeepsBundle: a second `federation init` on the same data
// directory, with any flags, refuses and leaves the bundle as it was.
func TestFederationInitKeepsBundle(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "hq")
	if code, out := runCLI(t, 30*time.Second, "federation", "init", "--data", dir, "--centre", "hq"); code != 0 {
		t.Fatalf("first init: exit %d\n%s", code, out)
	}
	path := filepath.Join(dir, "bundle.json")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--centre", "hq"},
		{"--centre", "tianjin", "--federation", "other", "--ttl", "1h"},
	} {
		code, out := runCLI(t, 30*time.Second, append([]string{"federation", "init", "--data", dir}, args...)...)
		if code == 0 || !strings.Contains(out, "refusing to overwrite") || !strings.Contains(out, "another --data") {
			t.Errorf("init %v again: exit %d\n%s", args, code, out)
		}
		if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
			t.Fatalf("init %v again changed %s", args, path)
		}
	}
}
