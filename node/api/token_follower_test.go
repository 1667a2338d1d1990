package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"liandong/auth"
)

// TestFollowerSendsATokenOfAnIssuerItDoesNotKnowToTheLeader (review 150):
// the bundle that lists a centre just added, or a key just added, reaches a
// follower through raft, as the origin= check's bundle does
// (TestFollowerSendsAnOriginItDoesNotKnowToTheLeader). A follower that had
// not applied it yet answered the new centre's partners 401 on every read
// (the feed, its stream, lists), which the Go client's feed follower takes as
// final, while the leader and caught-up replicas answered 200: the origin
// fix never ran, the token being checked first. The follower now sends a
// read whose token names an issuer or key it does not know to the leader,
// with the token and query as they came, and relays its answer; a request
// already forwarded is a 503 (retry); a token it can judge (a bad
// signature) is still its own 401.
func TestFollowerSendsATokenOfAnIssuerItDoesNotKnowToTheLeader(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Path+"?"+r.URL.RawQuery+" "+r.Header.Get("Authorization")+" forwarded:"+r.Header.Get(ForwardedHeader))
		mu.Unlock()
		if r.URL.Path == "/v1/changes/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK) // the stream ends with the handler
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"items": []any{}, "changes": []any{}, "next_cursor": encodePosition(7, "")})
	}))
	defer leader.Close()
	svc := &fakeService{feedHead: 7}
	rep := &replicaAt{fakeService: svc, leader: leader.URL}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = rep })
	hebei := e.token(t, "hebei", auth.ScopeRead)
	// This follower has yet to apply the bundle that lists hebei.
	behind := *svc.bundle
	behind.Members = behind.Members[:1]
	if behind.Members[0].ID != "tianjin" {
		t.Fatalf("premise: fixture's first member %q", behind.Members[0].ID)
	}
	svc.bundle = &behind

	paths := []string{"/v1/records?origin=hebei&limit=3", "/v1/changes?origin=hebei&since=0", "/v1/changes/stream?origin=hebei"}
	for _, path := range paths {
		r := e.do(t, req{method: "GET", path: path, token: hebei})
		wantStatus(t, r, http.StatusOK)
	}
	mu.Lock()
	if len(asked) != len(paths) {
		t.Fatalf("the leader was asked %q, want the %d requests", asked, len(paths))
	}
	for i, a := range asked {
		if want := paths[i] + " Bearer " + hebei + " forwarded:tianjin"; a != want {
			t.Errorf("the leader was asked %q, want %q", a, want)
		}
	}
	mu.Unlock()

	// Already forwarded (a stale leader hint): retry, not a verdict.
	f := e.do(t, req{method: "GET", path: paths[0], token: hebei, header: map[string]string{ForwardedHeader: "tianjin"}})
	wantStatus(t, f, http.StatusServiceUnavailable)
	if f.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	// A token this follower can judge is judged here: a known issuer's
	// token with a broken signature.
	tj := e.token(t, "tianjin", auth.ScopeRead)
	bad := tj[:len(tj)-4] + "AAAA"
	if bad == tj {
		bad = tj[:len(tj)-4] + "BBBB"
	}
	wantStatus(t, e.do(t, req{method: "GET", path: paths[0], token: bad}), http.StatusUnauthorized)
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != len(paths) {
		t.Fatalf("the leader was asked again: %q", asked)
	}
}
