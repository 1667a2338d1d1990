package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"liandong/schema"
)

// Change is one change of a node's feed.
type Change struct {
	// Position is the opaque cursor of this change: pass it back as since (or
	// as Last-Event-ID) to continue after it.
	Position string         `json:"position"`
	Record   *schema.Record `json:"record"`
}

// FeedFilter narrows a change feed. Empty fields do not filter.
type FeedFilter struct {
	Catalogue string
	Origin    string
}

func (f FeedFilter) query(q url.Values) {
	if f.Catalogue != "" {
		q.Set("catalogue", f.Catalogue)
	}
	if f.Origin != "" {
		q.Set("origin", f.Origin)
	}
}

// Changes reads the change feed after since ("" or "0" for the beginning),
// waiting up to wait for a change when there is none yet (a long poll). It
// returns the changes and the cursor to pass next time, which moves on even when
// no change is returned: no changes with a cursor other than since is not the
// end of the feed (a filter or unreadable records passed over a stretch of it),
// so call again at once; the reader is caught up when no changes come back and
// the cursor is since.
func (c *Client) Changes(ctx context.Context, since string, f FeedFilter, limit int, wait time.Duration) ([]Change, string, error) {
	q := url.Values{}
	if since != "" {
		q.Set("since", since)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	if wait > 0 {
		q.Set("wait", strconv.FormatFloat(wait.Seconds(), 'f', -1, 64))
	}
	f.query(q)
	req, err := c.request(ctx, http.MethodGet, "/v1/changes", q, nil)
	if err != nil {
		return nil, since, err
	}
	var out struct {
		Changes    []Change `json:"changes"`
		NextCursor string   `json:"next_cursor"`
	}
	if _, err := c.do(req, &out); err != nil {
		return nil, since, err
	}
	for _, ch := range out.Changes {
		if ch.Record == nil {
			return nil, since, fmt.Errorf("%w: at position %q", errNoRecord, ch.Position)
		}
	}
	return out.Changes, out.NextCursor, nil
}

// StreamOptions configure Stream.
type StreamOptions struct {
	FeedFilter
	// OnCursor, when set, is called whenever the stream's cursor moves, also
	// past changes the caller may not read (which fn never sees). A partner that
	// persists its cursor persists this one.
	OnCursor func(cursor string)
	// MinRetry is the least wait before reconnecting (default: what the
	// server suggests, 2 s); MaxRetry caps the back-off after repeated failures
	// (default 30 s).
	MinRetry, MaxRetry time.Duration
}

// ErrStreamEnded is never returned by Stream; it is what fn may return to stop
// it without an error.
var ErrStreamEnded = errors.New("stream ended by the caller")

// Stream follows GET /v1/changes/stream from since ("" for the beginning) and
// calls fn for each change in order. When the connection ends (the node
// restarts, a proxy times out, the network fails) it reconnects after a pause,
// resuming from the last event id it received, so fn sees every change once.
// It returns when ctx ends (with the cursor reached and ctx's error), when fn
// returns an error (ErrStreamEnded stops it with a nil error), or when the
// node refuses the request with a 4xx problem (a bad cursor, a refused token,
// a cursor of a feed since rebuilt: IsFeedReset).
func (c *Client) Stream(ctx context.Context, since string, opts StreamOptions, fn func(Change) error) (string, error) {
	cursor := since
	retry := opts.MinRetry
	if opts.MaxRetry <= 0 {
		opts.MaxRetry = 30 * time.Second
	}
	failures := 0
	for {
		got, suggested, err := c.streamOnce(ctx, &cursor, opts, fn)
		switch {
		case errors.Is(err, ErrStreamEnded):
			return cursor, nil
		case errors.Is(err, errEventTooLong), errors.Is(err, errBadPosition), errors.Is(err, errNoRecord):
			return cursor, err // the same again at every reconnection
		case ctx.Err() != nil:
			return cursor, ctx.Err()
		case err != nil:
			var p *Problem
			if errors.As(err, &p) && p.Status >= 400 && p.Status < 500 && p.Status != http.StatusTooManyRequests {
				return cursor, err
			}
			var cbErr callbackError
			if errors.As(err, &cbErr) {
				return cursor, cbErr.err
			}
		}
		if suggested > 0 && opts.MinRetry == 0 {
			retry = suggested
		}
		if retry <= 0 {
			retry = 2 * time.Second
		}
		if got {
			failures = 0
		} else {
			failures++
		}
		wait := retry
		for i := 1; i < failures && wait < opts.MaxRetry; i++ {
			wait *= 2
		}
		wait = min(wait, opts.MaxRetry)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return cursor, ctx.Err()
		case <-t.C:
		}
	}
}

// callbackError carries fn's error out of streamOnce.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }
func (e callbackError) Unwrap() error { return e.err }

// streamOnce reads one connection of the stream. got reports whether the
// connection was established; retry is the server's suggested delay.
func (c *Client) streamOnce(ctx context.Context, cursor *string, opts StreamOptions, fn func(Change) error) (got bool, retry time.Duration, err error) {
	q := url.Values{}
	opts.FeedFilter.query(q)
	req, err := c.request(ctx, http.MethodGet, "/v1/changes/stream", q, nil)
	if err != nil {
		return false, 0, err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *cursor != "" {
		req.Header.Set("Last-Event-ID", *cursor)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return false, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		err := readProblem(resp)
		// A 503 (a replica replaying its log, a node without a signing
		// key) says when to ask again.
		var p *Problem
		if errors.As(err, &p) && p.RetryAfter > 0 {
			return false, p.RetryAfter, err
		}
		return false, 0, err
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		return false, 0, fmt.Errorf("change stream: Content-Type %q, want text/event-stream", ct)
	}
	lines := lineReader{r: bufio.NewReaderSize(resp.Body, 64<<10)}
	var ev sseEvent
	for {
		line, err := lines.readLine(maxStreamEventBytes - ev.data.Len())
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil // the server ended the stream: reconnect
			}
			return true, retry, err
		}
		if line != "" {
			ev.field(line, &retry)
			continue
		}
		// A blank line dispatches the event.
		if ev.hasID && ev.id != *cursor {
			if ev.data.Len() == 0 || ev.name != "change" {
				*cursor = ev.id
				if opts.OnCursor != nil {
					opts.OnCursor(ev.id)
				}
			}
		}
		switch {
		case ev.name == "error" && ev.data.Len() > 0:
			p := &Problem{}
			if json.Unmarshal([]byte(ev.data.String()), p) == nil && p.Status != 0 {
				return true, retry, p
			}
			return true, retry, fmt.Errorf("change stream error: %s", ev.data.String())
		case ev.name == "change" && ev.data.Len() > 0:
			var ch Change
			if err := json.Unmarshal([]byte(ev.data.String()), &ch); err != nil {
				return true, retry, fmt.Errorf("change stream: decode event %s: %w", ev.id, err)
			}
			if ch.Position == "" {
				ch.Position = ev.id
			}
			if ch.Position == "" || !validCursor(ch.Position) {
				// Without one, the cursor would go back to the start (and
				// OnCursor would persist that); with control characters it
				// could not be sent back as Last-Event-ID, and every
				// reconnection would fail before reaching the node.
				return true, retry, fmt.Errorf("%w: event %q, position %q", errBadPosition, ev.id, ch.Position)
			}
			if ch.Record == nil {
				// A callback would dereference it: what a change is made of
				// is missing, and a reconnection gets the same again.
				return true, retry, fmt.Errorf("%w: event %q", errNoRecord, ev.id)
			}
			if err := fn(ch); err != nil {
				if errors.Is(err, ErrStreamEnded) {
					// fn handled this change: the cursor Stream returns is
					// past it, and OnCursor hears so too.
					*cursor = ch.Position
					if opts.OnCursor != nil {
						opts.OnCursor(ch.Position)
					}
					return true, retry, err
				}
				return true, retry, callbackError{err}
			}
			*cursor = ch.Position
			if opts.OnCursor != nil {
				opts.OnCursor(ch.Position)
			}
		}
		ev = sseEvent{}
	}
}

// maxStreamEventBytes bounds one event of the change stream (its lines
// together): a record is at most schema.MaxEntryBytes, so a node, or anything
// posing as one, sending more is not followed into unbounded memory.
const maxStreamEventBytes = 4*schema.MaxEntryBytes + 64<<10

// errEventTooLong: a stream line longer than the event may still be.
var errEventTooLong = errors.New("change stream: an event longer than the largest record allows; the node is not a liandong node, or is broken")

// errBadPosition: a change without a position (in its data or as the event's
// id), or with one holding control characters, which cannot be sent back as
// Last-Event-ID to resume after it.
var errBadPosition = errors.New("change stream: a change without a position to resume after, or with one that cannot be sent back (control characters); the node is not a liandong node, or is broken")

// errNoRecord: a change without its record (`"record": null` or absent).
var errNoRecord = errors.New("change feed: a change without its record; the node is not a liandong node, or is broken")

// validCursor reports whether a cursor can be sent back as a header value:
// no control characters but tab. (The SSE spec ignores an id holding NUL;
// any other control character would fail the reconnection instead.)
func validCursor(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

// maxMillis is the largest count of milliseconds a time.Duration holds.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// lineReader reads the lines of an event stream, which the SSE spec ends
// with CRLF, LF or a bare CR.
type lineReader struct {
	r *bufio.Reader
	// afterCR: the last line ended with a CR, so an LF that comes next is
	// the rest of its CRLF. It is skipped at the next read rather than
	// looked for at the CR: that would hold an event ended by a bare CR
	// until the server sends more, a heartbeat away.
	afterCR bool
}

// readLine reads one line of at most limit bytes (its line end counted),
// without its line end. At the end of the stream it returns what it read
// with the error.
func (lr *lineReader) readLine(limit int) (string, error) {
	if lr.afterCR {
		lr.afterCR = false
		if b, err := lr.r.Peek(1); err == nil && b[0] == '\n' {
			lr.r.Discard(1)
		}
	}
	var line []byte
	for {
		if _, err := lr.r.Peek(1); err != nil {
			return string(line), err
		}
		buf, _ := lr.r.Peek(lr.r.Buffered())
		i := bytes.IndexAny(buf, "\r\n")
		if i < 0 {
			i = len(buf)
		}
		if len(line)+i >= limit {
			return "", errEventTooLong
		}
		line = append(line, buf[:i]...)
		if i == len(buf) {
			lr.r.Discard(i)
			continue
		}
		lr.afterCR = buf[i] == '\r'
		lr.r.Discard(i + 1)
		return string(line), nil
	}
}

// sseEvent accumulates the fields of one server-sent event.
type sseEvent struct {
	id    string
	hasID bool
	name  string
	data  strings.Builder
}

func (e *sseEvent) field(line string, retry *time.Duration) {
	if strings.HasPrefix(line, ":") {
		return // a comment: heartbeat
	}
	name, value, _ := strings.Cut(line, ":")
	value = strings.TrimPrefix(value, " ")
	switch name {
	case "id":
		if validCursor(value) {
			e.id, e.hasID = value, true
		}
	case "event":
		e.name = value
	case "data":
		if e.data.Len() > 0 {
			e.data.WriteByte('\n')
		}
		e.data.WriteString(value)
	case "retry":
		if n, err := strconv.ParseInt(value, 10, 64); err == nil && n >= 0 {
			// Capped, as a product past the largest Duration would wrap
			// round to any value, negative or short.
			*retry = time.Duration(min(n, maxMillis)) * time.Millisecond
		}
	}
}
