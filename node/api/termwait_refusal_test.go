package api

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"liandong/auth"
	"liandong/node"
)

// TestLeaderWaitForItsTermAnswersWhatEndedIt (review 154 of d225b07): the
// leader's wait for its term's log before refusing a token of an issuer its
// bundle lacks can end for reasons other than running out of time. Each was
// answered the same 503 "not applied yet", Retry-After 1: a leader whose disk
// is full (applying waits for its operators) or whose state machine failed
// (it never applies again: another replica) was asked again every second,
// and a client that left was logged and counted as the server's 503, not 499.
func TestLeaderWaitForItsTermAnswersWhatEndedIt(t *testing.T) {
	svc := &fakeService{}
	l := &leaderBehindOnTerm{replicaAt: &replicaAt{fakeService: svc, lead: true}}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = l })
	hebei := e.token(t, "hebei", auth.ScopeRead)
	behind := *svc.bundle
	behind.Members = behind.Members[:1]
	if behind.Members[0].ID != "tianjin" {
		t.Fatalf("premise: fixture's first member %q", behind.Members[0].ID)
	}
	svc.bundle = &behind

	for _, c := range []struct {
		name       string
		err        error
		retryAfter string
	}{
		{"timeout", fmt.Errorf("%w: a new leader's log is not applied yet: %w", node.ErrTimeout, context.DeadlineExceeded), "1"},
		{"disk full", fmt.Errorf("%w: the state file cannot grow", node.ErrDiskFull), "30"},
		{"state failed", fmt.Errorf("%w: disk on fire", node.ErrStateFailed), "10"},
		{"shutdown", node.ErrShutdown, "5"},
	} {
		l.err = c.err
		r := e.do(t, req{method: "GET", path: "/v1/changes?since=0", token: hebei})
		wantStatus(t, r, http.StatusServiceUnavailable)
		if got := r.Header.Get("Retry-After"); got != c.retryAfter {
			t.Errorf("%s: Retry-After %q, want %q", c.name, got, c.retryAfter)
		}
	}

	// The client left during the wait: 499 (client closed), which the
	// metrics do not count as the server's failure.
	// As node.Node.AwaitTermApplied words it: its ErrTimeout, then the cause.
	l.err = fmt.Errorf("%w: a new leader's log is not applied yet (the write was not proposed): %w", node.ErrTimeout, context.Canceled)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rq := httptest.NewRequestWithContext(ctx, "GET", "/v1/changes?since=0", nil)
	rq.Header.Set("Authorization", "Bearer "+hebei)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, rq)
	if rec.Code != statusClientClosed {
		t.Fatalf("a client that left during the wait: %d, want %d", rec.Code, statusClientClosed)
	}
}
