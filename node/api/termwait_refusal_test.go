package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
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

// TestLeaderWaitEndedByStopOrStuckLogIsNotMisread (review 155 of 52abfde):
// two ends of the leader's wait were answered as another. A stop's drain
// ends every request's context (node/server: its cause wraps
// node.ErrShutdown) while the client is still there, and the node words
// that as its ErrTimeout wrapping context.Canceled: it was answered 499
// "the client closed the request", which the client did read. And
// ErrLogNeedsRestart wraps ErrDiskFull, so it was answered as a full disk
// (Retry-After 30, "until space is freed"), though space alone does not
// cure it: the replica must be restarted.
func TestLeaderWaitEndedByStopOrStuckLogIsNotMisread(t *testing.T) {
	svc := &fakeService{}
	l := &leaderBehindOnTerm{replicaAt: &replicaAt{fakeService: svc, lead: true}}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = l })
	hebei := e.token(t, "hebei", auth.ScopeRead)
	behind := *svc.bundle
	behind.Members = behind.Members[:1]
	svc.bundle = &behind

	// A stop's drain: the request's context ends with a cause, as
	// node/server's errRequestsEnded, and the node answers ctx.Err().
	l.err = fmt.Errorf("%w: a new leader's log is not applied yet (the write was not proposed): %w", node.ErrTimeout, context.Canceled)
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(fmt.Errorf("the request was still under way when the stop's drain ended it: %w", node.ErrShutdown))
	rq := httptest.NewRequestWithContext(ctx, "GET", "/v1/changes?since=0", nil)
	rq.Header.Set("Authorization", "Bearer "+hebei)
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, rq)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "5" {
		t.Errorf("a request a stop's drain ended during the wait: %d Retry-After %q, want 503 Retry-After 5 (the node stopping; the client is there to read it)", rec.Code, rec.Header().Get("Retry-After"))
	}

	// raft-wal could not start its next segment, as node.raftError words it.
	l.err = fmt.Errorf("apply a new leader's log: %w: %w", node.ErrLogNeedsRestart, errors.New("raft-wal: sealed"))
	r := e.do(t, req{method: "GET", path: "/v1/changes?since=0", token: hebei})
	wantStatus(t, r, http.StatusServiceUnavailable) // a read: 507's "reads go on" would mislead, and no read route declares it
	if got := r.Header.Get("Retry-After"); got != "60" {
		t.Errorf("a leader whose raft log needs a restart: Retry-After %q, want 60", got)
	}
	if !strings.Contains(string(r.body), "restart") {
		t.Errorf("a leader whose raft log needs a restart: %s, which does not say it must be restarted", r.body)
	}
}
