//go:build !failpoints

package node

import (
	"strings"
	"testing"

	"liandong/auth"
)

type neverIsolated struct{}

func (neverIsolated) RaftIsolated() bool { return false }

// TestRaftFaultsNeedFailpointsBuild: the default build has no fault injection,
// and says so rather than ignoring the hook.
func TestRaftFaultsNeedFailpointsBuild(t *testing.T) {
	key, _ := auth.GenerateKey("tianjin-rec")
	cfg := DefaultConfig("tianjin", t.TempDir())
	cfg.RecordKey = key
	cfg.RaftFaults = neverIsolated{}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "-tags failpoints") {
		t.Fatalf("validate: %v, want a refusal naming the build tag", err)
	}
}
