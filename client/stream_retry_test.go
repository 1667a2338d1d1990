package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// TestStreamEndedReportsCursorToOnCursor: the change fn stopped on with
// ErrStreamEnded was handled, so the cursor Stream returns is past it, and
// OnCursor, which partners persist, says the same.
func TestStreamEndedReportsCursorToOnCursor(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(w, "event: change\nid: p%d\ndata: {\"position\":\"p%d\",\"record\":{\"id\":\"tianjin:r%d\"}}\n\n", i, i, i)
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	persisted := ""
	cursor, err := New(srv.URL, "").Stream(ctx, "", StreamOptions{OnCursor: func(cur string) { persisted = cur }}, func(ch Change) error {
		if ch.Position == "p2" {
			return ErrStreamEnded
		}
		return nil
	})
	if err != nil || cursor != "p2" || persisted != "p2" {
		t.Fatalf("Stream returned %q (%v), OnCursor last said %q; want p2 for both", cursor, err, persisted)
	}
}

// TestStreamTakesRetryAfterOfARefusal: a 503 refusing the stream (a replica
// replaying its log asks for 1 s, a node without a signing key for 30 s)
// says when to reconnect, and the stream takes it rather than its own 2 s.
func TestStreamTakesRetryAfterOfARefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(`{"type":"urn:liandong:problem:unavailable","title":"Service unavailable","status":503}`))
	}))
	defer srv.Close()
	cursor := ""
	got, retry, err := New(srv.URL, "").streamOnce(context.Background(), &cursor, StreamOptions{}, func(Change) error { return nil })
	if got || err == nil || retry != 5*time.Second {
		t.Fatalf("a 503 with Retry-After: 5: connected %v, retry %v, err %v; want the refusal and 5s", got, retry, err)
	}
}

// TestStreamRefusesAnEndlessEvent: a server that sends one data line without
// end (not a liandong node, or a broken one) ends the stream with an error
// once the line passes what the largest record needs, rather than growing the
// client's memory for as long as it sends, and is not reconnected to.
func TestStreamRefusesAnEndlessEvent(t *testing.T) {
	var sent, conns atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "event: change\nid: p1\ndata: ")
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for i := 0; i < 4096 && r.Context().Err() == nil; i++ { // at most 256 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
			sent.Add(int64(len(chunk)))
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := New(srv.URL, "").Stream(ctx, "", StreamOptions{}, func(Change) error { return nil })
	if !errors.Is(err, errEventTooLong) {
		t.Fatalf("an endless event: %v (server sent %d bytes), want errEventTooLong", err, sent.Load())
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("reconnected %d times to a server that sends endless events", n-1)
	}
}
