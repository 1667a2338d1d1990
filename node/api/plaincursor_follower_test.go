package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"liandong/auth"
	"liandong/node/store"
)

// TestFollowerSendsPlainCursorPastItsHeadToTheLeader: a cursor without a feed
// name past the feed's head may be of another life of the feed, which only
// the leader can tell (410). A follower must not take it (it would hand it
// back named for this feed, and the partner would skip every change up to it
// for good, review 108), nor answer 503 for ever to a partner that asks it
// only (review 109): it sends the request, poll or stream, to the leader, with
// the partner's token, and relays the answer. A request already forwarded is
// answered 503, and a cursor within its head is served where it is.
func TestFollowerSendsPlainCursorPastItsHeadToTheLeader(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Path+" "+r.Header.Get("Authorization")+" forwarded:"+r.Header.Get(ForwardedHeader))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusGone)
		json.NewEncoder(w).Encode(feedReset())
	}))
	defer leader.Close()
	svc := &fakeService{feedEpoch: "0f3a9c2b11d4e5f6", feedHead: 40, changes: func(_ context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
		return nil, since, nil
	}}
	rep := &replicaAt{fakeService: svc, leader: leader.URL}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = rep })
	tok := e.token(t, "tianjin", auth.ScopeRead)
	plain := encodePosition(1000, "")

	r := e.do(t, req{method: "GET", path: "/v1/changes?since=" + plain, token: tok})
	wantStatus(t, r, http.StatusGone)
	var p struct{ Type string }
	if err := json.Unmarshal(r.body, &p); err != nil || p.Type != ProblemTypePrefix+"feed-reset" {
		t.Fatalf("poll: the leader's answer was not relayed: %s", r.body)
	}
	s := e.do(t, req{method: "GET", path: "/v1/changes/stream", token: tok, header: map[string]string{"Last-Event-ID": plain}})
	wantStatus(t, s, http.StatusGone)
	mu.Lock()
	want := []string{"/v1/changes Bearer " + tok + " forwarded:tianjin", "/v1/changes/stream Bearer " + tok + " forwarded:tianjin"}
	if len(asked) != 2 || asked[0] != want[0] || asked[1] != want[1] {
		t.Fatalf("the leader was asked %q, want %q", asked, want)
	}
	mu.Unlock()

	f := e.do(t, req{method: "GET", path: "/v1/changes?since=" + plain, token: tok, header: map[string]string{ForwardedHeader: "tianjin"}})
	wantStatus(t, f, http.StatusServiceUnavailable)
	if f.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	within := e.do(t, req{method: "GET", path: "/v1/changes?since=" + encodePosition(40, ""), token: tok})
	wantStatus(t, within, http.StatusOK)
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 {
		t.Fatalf("the leader was asked again: %q", asked)
	}
}
