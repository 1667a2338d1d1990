//go:build !failpoints

package server

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestFaultsFileNeedsFailpointsBuild: the default build injects no fault, and
// refuses to start when asked to rather than run without them.
func TestFaultsFileNeedsFailpointsBuild(t *testing.T) {
	cfg := Default()
	cfg.Centre = "tianjin"
	cfg.DataDir = t.TempDir()
	cfg.FaultsFile = filepath.Join(t.TempDir(), "faults.json")
	if _, err := Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "-tags failpoints") {
		t.Fatalf("start: %v, want a refusal naming the build tag", err)
	}
}
