package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// answerRT answers every request with one canned response, without a network.
type answerRT struct {
	status int
	header http.Header
	body   []byte
}

func (a answerRT) RoundTrip(req *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: a.status, Status: http.StatusText(a.status), Header: a.header.Clone(),
		Body: io.NopCloser(bytes.NewReader(a.body)), Request: req,
	}, nil
}

func cannedClient(status int, header http.Header, body []byte) *Client {
	c := New("http://127.0.0.1:1", "tok")
	c.HTTP = &http.Client{Transport: answerRT{status, header, body}}
	return c
}

// validHeaderValue reports whether s can be sent as a header value: no
// control characters but tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// FuzzStreamEvents: a change stream of any content is read to its end or
// refused, never a panic; every change handed on carries a position, the
// cursor is the last one reported to OnCursor, and it can be sent back as
// Last-Event-ID (else the reconnection fails for ever, unreported). A stream
// without CRs reads the same with its LFs written as CRs or CRLFs (the SSE
// spec's three line ends).
func FuzzStreamEvents(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzStreamEvents.
	f.Fuzz(func(t *testing.T, body []byte) {
		read := func(body []byte) (handed []string, cursor string, err error) {
			c := cannedClient(http.StatusOK, http.Header{"Content-Type": {"text/event-stream"}}, body)
			cursor = "start"
			reported := cursor
			opts := StreamOptions{OnCursor: func(cur string) { reported = cur }}
			_, retry, err := c.streamOnce(context.Background(), &cursor, opts, func(ch Change) error {
				if ch.Position == "" {
					t.Fatal("change handed on without a position")
				}
				if ch.Record == nil {
					t.Fatal("change handed on without its record")
				}
				handed = append(handed, ch.Position)
				return nil
			})
			if err != nil && errors.Is(err, errEventTooLong) && len(body) < maxStreamEventBytes {
				t.Fatalf("a %d-byte stream refused as too long", len(body))
			}
			if cursor != reported {
				t.Fatalf("cursor %q, but OnCursor last heard %q", cursor, reported)
			}
			if !validHeaderValue(cursor) {
				t.Fatalf("cursor %q cannot be sent back as Last-Event-ID", cursor)
			}
			if retry < 0 {
				t.Fatalf("negative retry %v", retry)
			}
			return handed, cursor, err
		}
		handed, cursor, err := read(body)
		if bytes.IndexByte(body, '\r') >= 0 {
			return
		}
		for _, eol := range []string{"\r", "\r\n"} {
			h, cur, e := read(bytes.ReplaceAll(body, []byte("\n"), []byte(eol)))
			if fmt.Sprint(h) != fmt.Sprint(handed) || cur != cursor || (e == nil) != (err == nil) {
				t.Fatalf("with line ends %q: changes %v, cursor %q, err %v; with LF: %v, %q, %v", eol, h, cur, e, handed, cursor, err)
			}
		}
	})
}

// FuzzReadProblem: a refusal of any body and Retry-After is read as a
// *Problem, never a panic: of the answer's own status whatever the body says
// (no problem document, or one naming another status), with a detail that is
// still UTF-8 where the body was, and a Retry-After that is never negative.
func FuzzReadProblem(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzReadProblem.
	f.Fuzz(func(t *testing.T, status int, body []byte, retryAfter string) {
		if status < 100 || status > 999 {
			return // no HTTP status
		}
		resp := &http.Response{
			StatusCode: status, Header: http.Header{"Retry-After": {retryAfter}},
			Body: io.NopCloser(bytes.NewReader(body)),
		}
		err := readProblem(resp)
		var p *Problem
		if !errors.As(err, &p) {
			t.Fatalf("not a *Problem: %v", err)
		}
		if p.RetryAfter < 0 {
			t.Fatalf("Retry-After %q read as %v", retryAfter, p.RetryAfter)
		}
		if p.Status != status {
			t.Fatalf("problem of status %d read from an answer of %d", p.Status, status)
		}
		if utf8.Valid(body) && !utf8.ValidString(p.Detail) {
			t.Fatalf("detail %q is not UTF-8, though the body was", p.Detail)
		}
		_ = p.Error()
		if p.Detail != "" && !strings.Contains(p.Error(), p.Detail) {
			t.Fatalf("message %q leaves out the detail", p.Error())
		}
	})
}

// countingRT counts the requests it passes on, and ends ctx at the limit.
type countingRT struct {
	next   http.RoundTripper
	n      *int
	limit  int
	cancel context.CancelFunc
}

func (c countingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	if *c.n++; *c.n >= c.limit {
		c.cancel()
	}
	return c.next.RoundTrip(req)
}

// TestStreamRefusesUnsendablePosition: a change whose position holds a line
// break (which no header can carry) ends Stream with an error, where it used
// to reconnect for ever, each attempt failing before it reached the node.
func TestStreamRefusesUnsendablePosition(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "id: e1.1\nevent: change\ndata: {\"position\":\"e1.1\\r\\nX-Evil: 1\",\"record\":null}\n\n")
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	requests := 0
	c := New(srv.URL, "tok")
	c.HTTP = &http.Client{Transport: countingRT{http.DefaultTransport, &requests, 5, cancel}}
	changes := 0
	cursor, err := c.Stream(ctx, "", StreamOptions{MinRetry: time.Millisecond, MaxRetry: time.Millisecond},
		func(Change) error { changes++; return nil })
	if !errors.Is(err, errBadPosition) {
		t.Fatalf("Stream = %q, %v after %d requests; want errBadPosition", cursor, err, requests)
	}
	if changes != 0 || cursor != "" || requests != 1 {
		t.Fatalf("handed on %d changes, cursor %q, %d requests; want none, \"\", 1", changes, cursor, requests)
	}
}

// TestChangeWithoutRecordIsRefused: a change whose record is null or absent
// is refused, by a poll and by a stream (at once, without reconnecting),
// rather than handed to a caller that would dereference it.
func TestChangeWithoutRecordIsRefused(t *testing.T) {
	for _, change := range []string{`{"position":"e1.1","record":null}`, `{"position":"e1.1"}`} {
		t.Run(change, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Accept") == "text/event-stream" {
					w.Header().Set("Content-Type", "text/event-stream")
					io.WriteString(w, "id: e1.1\nevent: change\ndata: "+change+"\n\n")
					return
				}
				w.Header().Set("Content-Type", "application/json")
				io.WriteString(w, `{"changes":[`+change+`],"next_cursor":"e1.1"}`)
			}))
			defer srv.Close()
			c := New(srv.URL, "tok")
			if changes, next, err := c.Changes(context.Background(), "", FeedFilter{}, 0, 0); !errors.Is(err, errNoRecord) {
				t.Fatalf("Changes = %v, %q, %v; want errNoRecord", changes, next, err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			requests := 0
			c.HTTP = &http.Client{Transport: countingRT{http.DefaultTransport, &requests, 5, cancel}}
			handed := 0
			cursor, err := c.Stream(ctx, "", StreamOptions{MinRetry: time.Millisecond, MaxRetry: time.Millisecond},
				func(Change) error { handed++; return nil })
			if !errors.Is(err, errNoRecord) || handed != 0 || requests != 1 {
				t.Fatalf("Stream = %q, %v after %d requests, %d changes handed on; want errNoRecord after 1, none", cursor, err, requests, handed)
			}
		})
	}
}
