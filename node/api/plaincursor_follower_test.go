package api

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"liandong/auth"
	"liandong/node/store"
)

// TestFollowerDoesNotNamePlainCursorPastItsHead: a cursor without a feed name
// past the feed's head may be of another life of the feed, which only the
// leader can tell (410). A follower that takes it must not hand it back named
// for this feed: named, no replica can refuse it any more, and the partner
// silently skips every change up to it.
func TestFollowerDoesNotNamePlainCursorPastItsHead(t *testing.T) {
	const epoch = "0f3a9c2b11d4e5f6"
	svc := &fakeService{feedEpoch: epoch, feedHead: 40, changes: func(_ context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
		return nil, since, nil
	}}
	rep := &replicaAt{fakeService: svc, lead: false}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = rep })
	tok := e.token(t, "tianjin", auth.ScopeRead)

	// A partner's cursor of the feed's previous life, at 1000, asked of a follower.
	r := e.do(t, req{method: "GET", path: "/v1/changes?since=" + encodePosition(1000, ""), token: tok})
	if r.StatusCode == http.StatusServiceUnavailable {
		// Not taken: the partner retries, and the leader (or this
		// replica, once past the cursor) decides. The stream likewise.
		s := e.do(t, req{method: "GET", path: "/v1/changes/stream", token: tok, header: map[string]string{"Last-Event-ID": encodePosition(1000, "")}})
		wantStatus(t, s, http.StatusServiceUnavailable)
		if s.Header.Get("Retry-After") == "" {
			t.Fatal("503 without Retry-After")
		}
		return
	}
	wantStatus(t, r, http.StatusOK)
	var page changesResponse
	if err := json.Unmarshal(r.body, &page); err != nil {
		t.Fatal(err)
	}
	// The partner polls on with what it was given; this time the leader answers.
	rep.lead = true
	r = e.do(t, req{method: "GET", path: "/v1/changes?since=" + page.NextCursor, token: tok})
	if r.StatusCode != http.StatusGone {
		pos, name, _ := decodePosition(page.NextCursor)
		t.Fatalf("the leader answered %d to the cursor the follower handed back (position %d, named %q): the partner skips positions 41..1000 of this feed for good; body %s", r.StatusCode, pos, name, r.body)
	}
}
