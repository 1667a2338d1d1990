package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node/store"
)

// TestPlainCursorPastTheNamingOfARegrownFeed: a cursor without a feed name
// from another life of this feed (a partner that last polled before the
// centre rebuilt its state, or through an older build) was caught only while
// past the rebuilt feed's head. Once the feed had grown past it again, it was
// taken, and the partner skipped every change up to it for good. Cursors
// issued after the naming all carry the name, so a plain one past the
// position the feed was named at is now a 410 feed-reset, however far the
// feed has grown; one at or before it (issued before the naming) is still
// taken, on the poll and on the stream.
func TestPlainCursorPastTheNamingOfARegrownFeed(t *testing.T) {
	e := newEnv(t, false)
	tok := e.token(t, "tianjin", auth.ScopeRead)
	for range 3 {
		e.create(t, "supply", "federation", supplyBody("成果"))
	}
	before, _ := e.feed(t, tok, "?since=0") // plain: the feed has no name yet
	if pos, epoch, err := decodePosition(before.NextCursor); err != nil || epoch != "" || pos != 3 {
		t.Fatalf("cursor before the naming: %d %q %v", pos, epoch, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.node.NameFeed(ctx, store.Replica{RaftAddr: "127.0.0.1:1", HTTP: "http://127.0.0.1:1"}, ""); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		e.create(t, "supply", "federation", supplyBody("成果"))
	}
	if at, named, err := e.node.FeedNamedAt(); err != nil || !named || at != 3 {
		t.Fatalf("FeedNamedAt = %d, %v, %v; want 3", at, named, err)
	}
	otherLife := encodePosition(6, "") // within the regrown feed (8), past its naming (3)
	for _, path := range []string{"/v1/changes?since=" + otherLife, "/v1/changes/stream?since=" + otherLife} {
		r := e.do(t, req{method: "GET", path: path, token: tok})
		wantStatus(t, r, http.StatusGone)
		if p := r.problem(t); p.Type != ProblemTypePrefix+"feed-reset" {
			t.Fatalf("%s: %+v", path, p)
		}
	}
	r := e.do(t, req{method: "GET", path: "/v1/changes/stream", token: tok, header: map[string]string{"Last-Event-ID": otherLife}})
	wantStatus(t, r, http.StatusGone)

	// This life's cursor from before the naming: the changes after it,
	// handed on under the name.
	after, _ := e.feed(t, tok, "?since="+before.NextCursor)
	if len(after.Changes) != 5 {
		t.Fatalf("%d changes after the pre-naming cursor, want 5", len(after.Changes))
	}
	if _, epoch, _ := decodePosition(after.NextCursor); epoch != e.node.FeedEpoch() {
		t.Fatalf("next cursor named %q, want %q", epoch, e.node.FeedEpoch())
	}
	s := openStream(t, e.srv.URL, "/v1/changes/stream", tok, map[string]string{"Last-Event-ID": before.NextCursor})
	if ev := s.nextChange(t, 10*time.Second); ev.id == "" {
		t.Fatal("stream from the pre-naming cursor sent no change")
	}
}

// TestPlainCursorPastTheNamingAtAFollower: the naming position is the same at
// every replica (raft applies the naming at one point of the log), so a
// follower that has applied it answers a plain cursor past it 410 itself,
// within its head or past it, with no barrier and nothing sent to the leader;
// one at or before it is served.
func TestPlainCursorPastTheNamingAtAFollower(t *testing.T) {
	svc := &fakeService{feedHead: 40, feedEpoch: "0f3a9c2b11d4e5f6", namedAt: 10, changes: func(_ context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
		return nil, since, nil
	}}
	rep := &replicaAt{fakeService: svc, lead: false, leader: "http://127.0.0.1:1"} // a leader that would not answer
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = rep })
	tok := e.token(t, "tianjin", auth.ScopeRead)
	for _, c := range []struct {
		since  uint64
		status int
	}{{10, http.StatusOK}, {11, http.StatusGone}, {40, http.StatusGone}, {41, http.StatusGone}} {
		for _, path := range []string{"/v1/changes?since=", "/v1/changes/stream?since="} {
			if c.status == http.StatusOK && path != "/v1/changes?since=" {
				continue // a stream that is served does not end
			}
			r := e.do(t, req{method: "GET", path: path + encodePosition(c.since, ""), token: tok})
			wantStatus(t, r, c.status)
			if c.status == http.StatusGone {
				if p := r.problem(t); p.Type != ProblemTypePrefix+"feed-reset" {
					t.Fatalf("since %d: %+v", c.since, p)
				}
			}
		}
	}
	if rep.barriers != 0 {
		t.Fatalf("%d barriers: the naming position needs none", rep.barriers)
	}
}
