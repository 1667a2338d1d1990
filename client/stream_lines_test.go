package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// change1 is the data of one change event.
const change1 = `{"position":"e1.1","record":{"id":"tianjin:s-1","origin":"tianjin","catalogue":"supply","version":1,"body":{"title":"t"}}}`

// TestStreamLineEnds: the SSE spec ends a line with CRLF, LF or a bare CR, so
// a stream written with any of them, or a mix, hands on the same changes and
// cursor; a CRLF split between two reads is one line end, not two (which
// would dispatch the event before its data).
func TestStreamLineEnds(t *testing.T) {
	event := func(eol string) string {
		return ": heartbeat" + eol + eol + "id: e1.1" + eol + "event: change" + eol + "data: " + change1 + eol + eol +
			"id: e1.2" + eol + "event: change" + eol + "data: " + strings.Replace(change1, "e1.1", "e1.2", 1) + eol + eol
	}
	for _, c := range []struct{ name, body string }{
		{"LF", event("\n")},
		{"CRLF", event("\r\n")},
		{"CR", event("\r")},
		{"mixed", "id: e1.1\revent: change\r\ndata: " + change1 + "\n\r\n" +
			"id: e1.2\nevent: change\rdata: " + strings.Replace(change1, "e1.1", "e1.2", 1) + "\r\r"},
	} {
		for _, oneByte := range []bool{false, true} {
			name := c.name
			if oneByte {
				name += ", a byte per read"
			}
			t.Run(name, func(t *testing.T) {
				c := cannedClient(http.StatusOK, http.Header{"Content-Type": {"text/event-stream"}}, []byte(c.body))
				if oneByte {
					c.HTTP.Transport = oneByteRT{c.HTTP.Transport}
				}
				cursor := ""
				var got []string
				_, _, err := c.streamOnce(context.Background(), &cursor, StreamOptions{}, func(ch Change) error {
					got = append(got, ch.Position+" "+ch.Record.ID)
					return nil
				})
				if err != nil || strings.Join(got, ",") != "e1.1 tianjin:s-1,e1.2 tianjin:s-1" || cursor != "e1.2" {
					t.Fatalf("changes %q, cursor %q, err %v; want e1.1 and e1.2, cursor e1.2", got, cursor, err)
				}
			})
		}
	}
}

// oneByteRT hands out each answer's body a byte per read.
type oneByteRT struct{ next http.RoundTripper }

func (o oneByteRT) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := o.next.RoundTrip(req)
	if err == nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{iotest.OneByteReader(resp.Body), resp.Body}
	}
	return resp, err
}

// TestStreamDispatchesOnABareCR: an event ended by a bare CR is handed on at
// once, not when the next byte comes (a heartbeat may be many seconds away):
// the reader must not wait to see whether an LF follows the CR.
func TestStreamDispatchesOnABareCR(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "id: e1.1\revent: change\rdata: "+change1+"\r\r")
		w.(http.Flusher).Flush()
		select { // nothing more until the test ends
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := New(srv.URL, "tok")
	cursor, err := c.Stream(ctx, "", StreamOptions{}, func(ch Change) error { return ErrStreamEnded })
	if err != nil || cursor != "e1.1" {
		t.Fatalf("Stream = %q, %v; want e1.1 handed on before the server said more", cursor, err)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("the change was handed on only when the stream was cut")
	}
}
