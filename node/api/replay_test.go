package api

import (
	"net/http"
	"sync/atomic"
	"testing"

	"liandong/auth"
	"liandong/node"
)

// While the node replays its raft log after a restart, every /v1 request is
// a 503 with Retry-After, before its token is looked at: the records are
// partial (an acknowledged record would be a 404) and the trust bundle may be
// one a later, not yet replayed, version revoked the token from. /readyz
// says not ready; /healthz stays up. Once caught up, requests are served.
func TestReplayingNodeRefusesRequests(t *testing.T) {
	var replaying atomic.Bool
	replaying.Store(true)
	svc := &fakeService{caughtUp: func() error {
		if replaying.Load() {
			return node.ErrReplaying
		}
		return nil
	}}
	svc.ready = svc.caughtUp
	e := newFakeEnv(t, svc)
	tok := e.token(t, "tianjin", auth.ScopeRead)
	for _, rq := range []req{
		{method: "GET", path: "/v1/records/tianjin:a", token: tok},
		{method: "GET", path: "/v1/records", token: tok},
		{method: "GET", path: "/v1/changes", token: tok},
		{method: "GET", path: "/v1/records", token: "not-a-token"},
		{method: "GET", path: "/readyz"},
	} {
		r := e.do(t, rq)
		wantStatus(t, r, http.StatusServiceUnavailable)
		if r.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s: 503 without Retry-After", rq.method, rq.path)
		}
	}
	wantStatus(t, e.do(t, req{method: "GET", path: "/healthz"}), http.StatusOK)
	replaying.Store(false)
	wantStatus(t, e.do(t, req{method: "GET", path: "/v1/records", token: tok}), http.StatusOK)
	wantStatus(t, e.do(t, req{method: "GET", path: "/readyz"}), http.StatusOK)
}
