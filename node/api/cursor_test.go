package api

import (
	"context"
	"math"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
)

// A change cursor crafted at position 2^64-1 has no change after it: the
// store's seek to since+1 wrapped to the feed's start, so a poll answered
// changes before its since with a next_cursor that never moved, and a stream
// resent the feed's first changes in a loop without waiting, for as long as
// the client read.
func TestCursorAtLastPositionGetsNothing(t *testing.T) {
	e := newEnv(t, false, func(_ *node.Config, o *Options) { o.Heartbeat = 100 * time.Millisecond })
	// Named, as the server's membership loop names a running node's feed.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.node.NameFeed(ctx, store.Replica{RaftAddr: "127.0.0.1:1", HTTP: "http://127.0.0.1:1"}, ""); err != nil {
		t.Fatal(err)
	}
	tok := e.token(t, "tianjin", auth.ScopeRead)
	for range 3 {
		e.create(t, "supply", "federation", supplyBody("成果"))
	}
	crafted := encodePosition(math.MaxUint64, e.node.FeedEpoch())
	poll, _ := e.feed(t, tok, "?limit=5&since="+crafted)
	if len(poll.Changes) != 0 {
		t.Fatalf("poll since 2^64-1: %d changes, want none", len(poll.Changes))
	}
	s := openStream(t, e.srv.URL, "/v1/changes/stream", tok, map[string]string{"Last-Event-ID": crafted})
	changes := 0
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline) && changes < 100; {
		ev, err := s.next(t, 2*time.Second) // heartbeats every 100 ms keep this from waiting long
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if ev.name == "change" {
			changes++
		}
	}
	if changes != 0 {
		t.Fatalf("stream since 2^64-1 sent %d change events in a second, want none", changes)
	}
}
