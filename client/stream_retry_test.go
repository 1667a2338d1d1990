package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
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
