package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"liandong/node"
)

// TestNodeRefusalsAreUnavailable: the node's refusals that an operator or a
// retry resolves answer 503 with a Retry-After, and say what to do.
func TestNodeRefusalsAreUnavailable(t *testing.T) {
	for _, c := range []struct {
		err   error
		retry string
	}{
		{fmt.Errorf("%w: this node's clock reads 2020-01-01T00:00:00Z; check the clock", node.ErrNoSigningKey), "30"},
		{node.ErrRecovering, "2"},
		{node.ErrShutdown, "5"},
	} {
		p := toProblem(c.err, "req-1")
		if p.Status != http.StatusServiceUnavailable || p.header.Get("Retry-After") != c.retry {
			t.Errorf("%v: status %d, Retry-After %q; want 503 and %s", c.err, p.Status, p.header.Get("Retry-After"), c.retry)
		}
	}
	if p := toProblem(fmt.Errorf("%w: check the clock", node.ErrNoSigningKey), "req-2"); p.Detail == "" || !strings.Contains(p.Detail, "check the clock") {
		t.Errorf("detail %q does not say what to do", p.Detail)
	}
}

// TestFullDiskProblems: a full disk answers 507; the detail says whether
// freeing space is enough or the replica must be restarted too (raft-wal that
// could not start its next segment).
func TestFullDiskProblems(t *testing.T) {
	for _, c := range []struct {
		err     error
		restart bool
	}{
		{fmt.Errorf("apply: %w: the state file cannot grow", node.ErrDiskFull), false},
		{fmt.Errorf("raft apply: %w: segment is sealed", node.ErrLogNeedsRestart), true},
	} {
		p := toProblem(c.err, "req-1")
		if p.Status != http.StatusInsufficientStorage || p.Type != "urn:liandong:problem:insufficient-storage" {
			t.Errorf("%v: status %d type %s, want 507 insufficient-storage", c.err, p.Status, p.Type)
		}
		if got := strings.Contains(p.Detail, "restart it"); got != c.restart {
			t.Errorf("%v: detail %q; asks for a restart: %v, want %v", c.err, p.Detail, got, c.restart)
		}
	}
}
