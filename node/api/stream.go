package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"liandong/auth"
	"liandong/node/store"
	"liandong/schema"
)

// DefaultHeartbeat is how often an idle change stream sends a comment line, so
// proxies and clients can tell a quiet stream from a dead one.
const DefaultHeartbeat = 15 * time.Second

// streamBatch bounds the changes read per store call while streaming.
const streamBatch = 200

// streamWriteTimeout bounds one write to a stream's client: a client that stops
// reading is dropped rather than held forever.
const streamWriteTimeout = 30 * time.Second

// streamRetryMillis is the reconnection delay the stream suggests to EventSource
// clients (the SSE "retry" field).
const streamRetryMillis = 2000

// changesStream serves GET /v1/changes/stream: the change feed as server-sent
// events, one "change" event per change with the position cursor as its id. The
// stream starts after since, or after the Last-Event-ID header when a client
// reconnects (the header wins: it is what EventSource sends). Changes the caller
// may not read advance the position silently with an event that has an id and no
// data, which EventSource records without dispatching, so a reconnect does not
// rescan them. Idle streams get a heartbeat comment every Options.Heartbeat; a
// server shutdown ends every stream at once. A stream opened with a token ends
// with an "error" event (a 401 problem) when the token expires, or when a new
// trust bundle arrives that it no longer verifies against (a revocation). The
// stream has no end otherwise.
func (h *handler) changesStream(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionRead, nil); err != nil {
		return err
	}
	sp, err := parseStreamParams(r)
	if err != nil {
		return err
	}
	if err := h.checkOrigin(r.Context(), sp.Origin); errors.Is(err, errOriginForLeader) {
		return h.originAtLeader(w, r, true)
	} else if err != nil {
		return err
	}
	if err := h.checkCursor(r.Context(), sp.Since, sp.Epoch); errors.Is(err, errCursorForLeader) {
		return h.cursorAtLeader(w, r, true)
	} else if err != nil {
		return err
	}
	sa := h.newStreamAuth(r, p)
	defer sa.stop()
	match := h.feedMatch(p, sp.Catalogue, sp.Origin)
	ctx := r.Context()
	pos := sp.Since
	// Read everything before committing to a 200, so a failing store is still a
	// problem document rather than a stream that ends at once.
	wake := h.svc.Changed()
	found, last, err := h.svc.Changes(ctx, pos, streamBatch, match)
	if err == nil {
		found, err = h.settleChanges(ctx, p, found)
	}
	if err != nil {
		return err
	}

	rc := http.NewResponseController(w)
	// The server's read and write timeouts are for ordinary requests: a stream
	// lives longer. The read deadline would cancel the request context; writes
	// get a deadline of their own below.
	_ = rc.SetReadDeadline(time.Time{})
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream; charset=utf-8")
	hdr.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	buf.WriteString(": liandong change stream; reconnect with Last-Event-ID to resume\n")
	buf.WriteString("retry: ")
	buf.WriteString(strconv.Itoa(streamRetryMillis))
	buf.WriteString("\n\n")

	every := h.heartbeat
	if every <= 0 {
		every = DefaultHeartbeat
	}
	heartbeat := time.NewTicker(every)
	defer heartbeat.Stop()
	shuttingDown := func() {
		buf.WriteString(": server shutting down; reconnect with Last-Event-ID\n\n")
		flushStream(rc, w, &buf)
	}
	// fail ends the stream with an error event: too late for a problem answer.
	fail := func(err error) {
		pr := toProblem(err, info(r).id)
		info(r).err = err
		out := pr.Problem
		out.Instance, out.RequestID = r.URL.Path, info(r).id
		js, _ := json.Marshal(out)
		buf.WriteString("event: error\ndata: ")
		buf.Write(js)
		buf.WriteString("\n\n")
		flushStream(rc, w, &buf)
	}
	for {
		// Checked before anything is sent: changes read while the token was
		// good are not the caller's once it has expired or been revoked.
		if err := sa.check(); err != nil {
			fail(err)
			return nil
		}
		epoch := h.feedEpoch()
		for _, c := range found {
			h.writeChangeEvent(&buf, p, c, epoch)
		}
		if last > pos && (len(found) == 0 || found[len(found)-1].Position < last) {
			// Scanned past records this caller does not get: move its cursor.
			buf.WriteString("id: " + encodePosition(last, epoch) + "\n\n")
		}
		more := len(found) == streamBatch || last > pos
		pos = max(pos, last)
		if buf.Len() > 0 {
			if err := flushStream(rc, w, &buf); err != nil {
				return nil // the client is gone; nothing to answer
			}
		}
		if more {
			select {
			case <-h.shutdown:
				shuttingDown()
				return nil
			case <-ctx.Done():
				return nil
			default:
			}
		} else {
		wait:
			for {
				select {
				case <-wake:
					break wait
				case <-sa.expired():
					fail(sa.expiredProblem())
					return nil
				case <-heartbeat.C:
					// An idle stream learns of a new bundle here at the latest.
					if err := sa.check(); err != nil {
						fail(err)
						return nil
					}
					buf.WriteString(": heartbeat\n\n")
					if err := flushStream(rc, w, &buf); err != nil {
						return nil
					}
				case <-h.shutdown:
					shuttingDown()
					return nil
				case <-ctx.Done():
					return nil
				}
			}
		}
		wake = h.svc.Changed()
		found, last, err = h.svc.Changes(ctx, pos, streamBatch, match)
		if err == nil {
			found, err = h.settleChanges(ctx, p, found)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The client reconnects from its last id.
			fail(err)
			return nil
		}
	}
}

// streamAuth keeps a stream to what its token allows over time. The token
// was verified once, at connect, but a stream lives for hours: it must end
// when the token expires, and when a new trust bundle arrives (revocations
// come with bundles) the token is verified again against it.
type streamAuth struct {
	h      *handler
	token  string // "" for the anonymous principal: nothing to expire or revoke
	until  time.Time
	bundle *auth.Bundle // the bundle the token last verified against
	timer  *time.Timer  // fires at until
}

func (h *handler) newStreamAuth(r *http.Request, p *auth.Principal) *streamAuth {
	sa := &streamAuth{h: h}
	if p == nil || p.Anonymous {
		return sa
	}
	// authenticate verified p from this header.
	sa.token, _ = bearerToken(r.Header.Get("Authorization"))
	sa.until = h.verifier.Expiry(p)
	sa.bundle = h.trustBundle()
	sa.timer = time.NewTimer(max(0, sa.until.Sub(h.verifierNow())))
	return sa
}

// expired fires when the token expires; never for the anonymous principal.
func (sa *streamAuth) expired() <-chan time.Time {
	if sa.timer == nil {
		return nil
	}
	return sa.timer.C
}

func (sa *streamAuth) stop() {
	if sa.timer != nil {
		sa.timer.Stop()
	}
}

// check returns the 401 problem that ends the stream when its token has
// expired or no longer verifies against the current trust bundle.
func (sa *streamAuth) check() error {
	if sa.token == "" {
		return nil
	}
	if !sa.h.verifierNow().Before(sa.until) {
		return sa.expiredProblem()
	}
	b := sa.h.trustBundle()
	if b == sa.bundle {
		return nil
	}
	if _, err := sa.h.verifier.Verify(sa.token); err != nil {
		return streamUnauthorized("the bearer token was refused under the new trust bundle: "+err.Error()+"; reconnect with a valid token and Last-Event-ID", err)
	}
	sa.bundle = b
	return nil
}

func (sa *streamAuth) expiredProblem() error {
	return streamUnauthorized("the bearer token expired at "+sa.until.UTC().Format(time.RFC3339)+"; reconnect with a new token and Last-Event-ID", auth.ErrTokenExpired)
}

func streamUnauthorized(detail string, cause error) error {
	p := newProblem(http.StatusUnauthorized, "unauthorized", detail)
	p.cause = cause
	return p
}

// trustBundle is the bundle the verifier checks tokens against.
func (h *handler) trustBundle() *auth.Bundle {
	if h.verifier.Bundle != nil {
		return h.verifier.Bundle()
	}
	return h.svc.Bundle()
}

// verifierNow is the time by the verifier's clock, which decided the token's
// expiry at connect.
func (h *handler) verifierNow() time.Time {
	if h.verifier.Now != nil {
		return h.verifier.Now()
	}
	return time.Now()
}

// writeChangeEvent appends one change as an SSE event.
func (h *handler) writeChangeEvent(buf *bytes.Buffer, p *auth.Principal, c store.Change, epoch string) {
	cur := encodePosition(c.Position, epoch)
	var data bytes.Buffer
	enc := json.NewEncoder(&data)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(changeItem{Position: cur, Record: h.feedView(p, c)}); err != nil {
		return // only values of ours: cannot fail
	}
	buf.WriteString("id: ")
	buf.WriteString(cur)
	buf.WriteString("\nevent: change\n")
	// Encoded JSON has no raw newlines except the one Encode appends; split
	// anyway, as SSE requires one data line per line.
	for _, line := range strings.Split(strings.TrimRight(data.String(), "\n"), "\n") {
		buf.WriteString("data: ")
		buf.WriteString(line)
		buf.WriteByte('\n')
	}
	buf.WriteByte('\n')
}

func flushStream(rc *http.ResponseController, w http.ResponseWriter, buf *bytes.Buffer) error {
	_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	_, err := w.Write(buf.Bytes())
	buf.Reset()
	if err != nil {
		return err
	}
	return rc.Flush()
}

// streamParams are the parameters of GET /v1/changes/stream.
type streamParams struct {
	Since             uint64
	Epoch             string // the feed's name in the cursor, if any
	Catalogue, Origin string
}

func parseStreamParams(r *http.Request) (streamParams, error) {
	var sp streamParams
	q, err := parseQuery(r.URL.RawQuery, "since", "catalogue", "origin")
	if err != nil {
		return sp, err
	}
	if sp.Catalogue, err = catalogueParam(q); err != nil {
		return sp, err
	}
	if sp.Origin, err = originParam(q); err != nil {
		return sp, err
	}
	if s, ok := q["since"]; ok && s != "0" {
		if sp.Since, sp.Epoch, err = decodePosition(s); err != nil {
			return sp, badParam("since", schema.RuleFormat, "malformed cursor; pass a change's position (the event id) unchanged, or 0 for the beginning")
		}
	}
	if vals := r.Header.Values("Last-Event-ID"); len(vals) > 0 {
		if len(vals) > 1 {
			return sp, badParam("Last-Event-ID", "repeated", "send one Last-Event-ID header")
		}
		switch v := strings.TrimSpace(vals[0]); v {
		case "":
		case "0":
			sp.Since, sp.Epoch = 0, ""
		default:
			if sp.Since, sp.Epoch, err = decodePosition(v); err != nil {
				return sp, badParam("Last-Event-ID", schema.RuleFormat, "malformed event id; send the id of the last event received unchanged")
			}
		}
	}
	return sp, nil
}
