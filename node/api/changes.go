package api

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"liandong/auth"
	"liandong/node/store"
	"liandong/schema"
)

type changeItem struct {
	Position string         `json:"position"`
	Record   *schema.Record `json:"record"`
}

type changesResponse struct {
	Changes []changeItem `json:"changes"`
	// NextCursor is always present: the since of the next poll.
	NextCursor string `json:"next_cursor"`
}

// changes serves the change feed in this node's apply order. With wait > 0 and
// nothing new after since, it holds the request until a batch is applied, wait
// runs out, the server shuts down or the client leaves.
func (h *handler) changes(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionRead, nil); err != nil {
		return err
	}
	cp, err := parseChangesParams(r.URL.RawQuery, h.maxWait)
	if err != nil {
		return err
	}
	if err := h.checkOrigin(r.Context(), cp.Origin); errors.Is(err, errOriginForLeader) {
		return h.originAtLeader(w, r, false)
	} else if err != nil {
		return err
	}
	if err := h.checkCursor(r.Context(), cp.Since, cp.Epoch); errors.Is(err, errCursorForLeader) {
		return h.cursorAtLeader(w, r, false)
	} else if err != nil {
		return err
	}
	match := h.feedMatch(p, cp.Catalogue, cp.Origin)
	ctx := r.Context()
	var deadline <-chan time.Time
	if cp.Wait > 0 {
		t := time.NewTimer(cp.Wait)
		defer t.Stop()
		deadline = t.C
	}
	pos := cp.Since
	for {
		// Take the channel before reading, so a batch applied in between wakes us.
		wake := h.svc.Changed()
		found, last, err := h.svc.Changes(ctx, pos, cp.Limit, match)
		if err != nil {
			return err
		}
		if found, err = h.settleChanges(ctx, p, found); err != nil {
			return err
		}
		progressed := last > pos
		if progressed {
			pos = last
		}
		if len(found) > 0 || cp.Wait == 0 {
			h.writeChanges(w, p, found, pos)
			return nil
		}
		if progressed {
			// Only records this caller does not get were scanned; read on at once
			// unless time is up.
			select {
			case <-deadline:
				h.writeChanges(w, p, nil, pos)
				return nil
			case <-h.shutdown:
				h.writeChanges(w, p, nil, pos)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			default:
				continue
			}
		}
		select {
		case <-wake:
		case <-deadline:
			h.writeChanges(w, p, nil, pos)
			return nil
		case <-h.shutdown:
			h.writeChanges(w, p, nil, pos)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (h *handler) writeChanges(w http.ResponseWriter, p *auth.Principal, found []store.Change, pos uint64) {
	epoch := h.feedEpoch()
	resp := changesResponse{Changes: make([]changeItem, 0, len(found)), NextCursor: encodePosition(pos, epoch)}
	for _, c := range found {
		resp.Changes = append(resp.Changes, changeItem{Position: encodePosition(c.Position, epoch), Record: h.feedView(p, c)})
	}
	writeJSON(w, http.StatusOK, resp)
}

// feedEpocher is a Service that names its change feed (node.Node.FeedEpoch).
type feedEpocher interface{ FeedEpoch() string }

func (h *handler) feedEpoch() string {
	if fe, ok := h.svc.(feedEpocher); ok {
		return fe.FeedEpoch()
	}
	return ""
}

// checkCursor refuses a feed cursor of another life of this feed: by its name
// (checkFeedEpoch), or, without one, by its position (checkPlainCursor).
func (h *handler) checkCursor(ctx context.Context, since uint64, epoch string) error {
	if epoch != "" {
		return h.checkFeedEpoch(epoch)
	}
	return h.checkPlainCursor(ctx, since)
}

// feedNamer is a Service that tells where its change feed took its name
// (node.Node.FeedNamedAt).
type feedNamer interface {
	FeedNamedAt() (uint64, bool, error)
}

// feedHeader is a Service that tells its change feed's newest position.
type feedHeader interface{ FeedHead() (uint64, error) }

// checkPlainCursor catches what it can of a cursor without a feed name (issued
// by an older build, or before the feed was named) from another life of the
// feed. Where this replica recorded the position its feed was named at
// (store.Store.FeedNamedAt), one past that: every cursor issued after the
// naming carries the name, so a plain one past it is of another life
// however far this feed has grown since (a rebuilt feed named by this build).
// Otherwise (a feed not yet named, or named by an older build), one past the
// newest position. A follower may just be behind, so for that test only
// the leader decides, once a barrier has it apply everything committed; no
// replica of this feed can have issued a position past that. A follower
// does not take such a cursor (errCursorForLeader): it would hand it back, or
// the positions after it, named for this feed, and a named cursor is never
// checked against the head again, so the partner would skip every change up
// to it for good. A plain cursor at or before the naming position (or, for a
// feed without one, the head) cannot be told apart: named cursors are the
// real answer.
func (h *handler) checkPlainCursor(ctx context.Context, since uint64) error {
	if since == 0 {
		return nil
	}
	if fn, ok := h.svc.(feedNamer); ok {
		// Once this replica has applied the feed's name, no cursor of this
		// life past the position it was named at lacks the name: such a
		// cursor is of another life, even once the feed has grown past it
		// again (which the head check below cannot tell).
		if at, named, err := fn.FeedNamedAt(); err == nil && named && since > at {
			return feedReset()
		}
	}
	fh, ok := h.svc.(feedHeader)
	if !ok {
		return nil
	}
	if head, err := fh.FeedHead(); err != nil || since <= head {
		return nil
	}
	rep, ok := h.svc.(Replicated)
	if !ok {
		return nil
	}
	if !rep.IsLeader() {
		return errCursorForLeader
	}
	if rep.Barrier(ctx) != nil {
		return nil
	}
	if head, err := fh.FeedHead(); err != nil || since <= head {
		return nil
	}
	return feedReset()
}

// errCursorForLeader: a follower cannot tell whether the cursor is of this
// feed; the request goes to the leader (cursorAtLeader).
var errCursorForLeader = errors.New("a cursor without a feed name past this replica's head: the leader decides")

// cursorAtLeader sends a feed request whose cursor only the leader can judge
// to the leader, as a consistent read goes: a partner that asks one follower
// only (its load balancer's choice, or its configuration) would otherwise be
// answered 503 for ever, never told to reset. A request already forwarded is
// answered 503 (retry) instead, so a stale leader hint never loops.
func (h *handler) cursorAtLeader(w http.ResponseWriter, r *http.Request, stream bool) error {
	return h.leaderJudges(w, r, stream, "the cursor is past what this replica has applied of its centre's change feed, and it carries no feed name, so only the leader can tell whether it is of this feed; retry")
}

// originAtLeader sends a request whose origin= this follower does not know
// to the leader (errOriginForLeader), as cursorAtLeader does a cursor: the
// follower may only be behind, and a 400 from it would stop a partner's
// mirror of a centre the group knows.
func (h *handler) originAtLeader(w http.ResponseWriter, r *http.Request, stream bool) error {
	return h.leaderJudges(w, r, stream, "this replica does not know the origin, and may only be behind its centre's raft leader (a centre just added to the federation), which alone can tell; retry")
}

// leaderJudges forwards r to the leader, which alone can judge it; a request
// already forwarded is answered 503 with retry as its detail.
func (h *handler) leaderJudges(w http.ResponseWriter, r *http.Request, stream bool, retry string) error {
	rep, ok := h.svc.(Replicated)
	if !ok || r.Header.Get(ForwardedHeader) != "" {
		return unavailable(retry, 1, nil)
	}
	if stream {
		// Relayed as this replica's own stream is served (review 112): each
		// write gets its own deadline, not the server's WriteTimeout, which
		// would cut it after 75 s; and the partner leaving, which ends the
		// proxy's copy in panic(http.ErrAbortHandler), is the stream's
		// normal end, not a server failure.
		w = &relayedStream{ResponseWriter: w, rc: http.NewResponseController(w)}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler && r.Context().Err() != nil {
					return
				}
				panic(v)
			}
		}()
	}
	h.forwardToLeader(w, r, rep, nil)
	return nil
}

// relayedStream is a stream's ResponseWriter that moves the write deadline
// before each write, as flushStream does for a stream served here.
type relayedStream struct {
	http.ResponseWriter
	rc *http.ResponseController
	// relayed, when not nil, is told of each write: the leader spoke
	// (forwardToLeader bounds its silence).
	relayed func()
}

func (s *relayedStream) WriteHeader(code int) {
	if s.relayed != nil {
		s.relayed()
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *relayedStream) Write(b []byte) (int, error) {
	if s.relayed != nil {
		s.relayed()
	}
	_ = s.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	return s.ResponseWriter.Write(b)
}

func (s *relayedStream) Flush() { _ = s.rc.Flush() }

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *relayedStream) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func feedReset() *problem {
	return newProblem(http.StatusGone, "feed-reset",
		"the cursor is not of this node's change feed: it was issued by another centre's node (each centre's feed counts its own positions), or before this centre rebuilt its state from its peers, which counts positions anew; read the feed again from the beginning (since=0) and reconcile what you hold")
}

// checkFeedEpoch refuses a cursor named for another life of this feed: after a
// centre lost its state and rebuilt it from its peers, positions count anew and
// the cursor would skip changes.
func (h *handler) checkFeedEpoch(cursorEpoch string) error {
	switch local := h.feedEpoch(); local {
	case cursorEpoch:
		return nil
	case "":
		// A replica that has yet to apply the name its leader gave the feed
		// (or an older build behind the same Service) cannot judge: another
		// will shortly.
		return unavailable("this replica does not know its change feed's name yet; retry", 1, nil)
	default:
		return feedReset()
	}
}

// feedMatch selects the changes a caller's feed carries: the records it may
// read, tombstones included, and changes that took a record away from it
// (withdrawn, or made federation-only while it reads only public records), as
// tombstones (feedView). A partner mirroring the feed must learn that a record
// it holds was deleted or withdrawn: absence never means deletion. But a
// tombstone still tells an id, catalogue, origin, version and times, so it
// goes only to callers that could have read the record: a deleted record keeps
// its last visibility, and is shown as a record of that visibility is (the
// tombstone of a record private from the start goes to no one but its
// origin's readers); a change that narrowed the visibility carries the one
// before it (store.Change.Was).
//
// Changes applied by older builds carry no Was, only their own centre's
// withdrawals marked. For those the filter, which runs inside the store's
// read and cannot look up a withdrawal's history, lets every withdrawal
// through for anonymous callers, and dropUnseenWithdrawals decides after the
// read.
func (h *handler) feedMatch(p *auth.Principal, catalogue, origin string) store.ChangeFilter {
	return func(c *store.Change) bool {
		rec := c.Record
		if catalogue != "" && rec.Catalogue != catalogue || origin != "" && rec.Origin != origin {
			return false
		}
		if h.authz.Authorize(p, auth.ActionRead, rec).Allow {
			return true
		}
		if c.Was != "" {
			return h.authz.Authorize(p, auth.ActionRead, &schema.Record{ID: rec.ID, Catalogue: rec.Catalogue, Origin: rec.Origin, Visibility: c.Was}).Allow
		}
		if !h.isWithdrawal(rec, c.Withdrawn) {
			return false
		}
		// Every shared record is federation-visible at least: a caller who may
		// read that could see it. Anonymous callers only saw it if it was
		// public once, which is decided later.
		vis := schema.VisibilityFederation
		if p == nil || p.Anonymous {
			vis = schema.VisibilityPublic
		}
		return h.authz.Authorize(p, auth.ActionRead, &schema.Record{ID: rec.ID, Catalogue: rec.Catalogue, Origin: rec.Origin, Visibility: vis}).Allow
	}
}

// isWithdrawal reports whether a change turned a shared record private: the
// store marks its own centre's (withdrawn), and a private record of another
// origin can only be one, as private records never leave their origin (the
// signed log carries a withdrawal as a private tombstone).
func (h *handler) isWithdrawal(rec *schema.Record, withdrawn bool) bool {
	if rec.Shared() {
		return false // a purge's tombstone: shown by its visibility
	}
	return withdrawn || rec.Deleted && rec.Origin != h.centre
}

// settleChanges is what the feed hands a caller of the changes a read found:
// those a later change took back shown as tombstones, then the withdrawals an
// anonymous caller never saw left out.
func (h *handler) settleChanges(ctx context.Context, p *auth.Principal, found []store.Change) ([]store.Change, error) {
	found, err := h.tombstoneTakenBack(ctx, p, found)
	if err != nil {
		return nil, err
	}
	return h.dropUnseenWithdrawals(p, found)
}

// tombstoneTakenBack shows as a tombstone (no body) a change whose record a
// later change put out of the caller's reach (withdrawn, narrowed, or deleted
// as a record it may no longer read): a reader catching up from an older
// cursor must not get a body its origin has since taken back from it, and what
// it mirrors of the record ends deleted either way. A change whose record was
// deleted by a change the caller gets too comes without personal data. Every
// position is still handed out, so cursors and counts are as before; a change
// superseded by one the caller may read is otherwise handed as it was.
func (h *handler) tombstoneTakenBack(ctx context.Context, p *auth.Principal, found []store.Change) ([]store.Change, error) {
	for i, c := range found {
		if c.Record.Deleted {
			continue
		}
		cur, err := h.svc.Get(ctx, c.Record.ID)
		switch {
		case err == nil, errors.Is(err, store.ErrDeleted):
		case errors.Is(err, store.ErrNotFound):
			continue
		default:
			return nil, err
		}
		if !supersedes(cur, c.Record) {
			continue
		}
		if h.authz.Authorize(p, auth.ActionRead, cur).Allow {
			if cur.Deleted {
				// Deleted since, by a change this caller gets too: the
				// change stays as it was, for a reader that rebuilds the
				// log from the feed, but its personal data went with the
				// record.
				found[i].Record = schema.RedactContact(c.Record)
			}
			continue
		}
		gone := c.Record.Clone()
		gone.Deleted, gone.Body = true, json.RawMessage("{}")
		found[i].Record = gone
	}
	return found, nil
}

// supersedes reports whether cur, a record as stored now, is a later change
// than r: a higher version, or the same version made a tombstone (a purge
// keeps the version).
func supersedes(cur, r *schema.Record) bool {
	return cur != nil && (cur.Version > r.Version || cur.Version == r.Version && cur.Deleted && !r.Deleted)
}

// dropUnseenWithdrawals leaves out of an anonymous caller's changes the
// withdrawals, applied by older builds (without Was), of records that were
// never public: the caller never saw them,
// and the tombstone would hand it their ids. The record's signed history
// says whether a version was public; without one (a Service that keeps no
// history, or entries from before the history index) the withdrawal is kept:
// a mirror that never learns of it keeps serving a record its origin took
// back, which is worse than an id.
func (h *handler) dropUnseenWithdrawals(p *auth.Principal, found []store.Change) ([]store.Change, error) {
	if p != nil && !p.Anonymous {
		return found, nil
	}
	hs, ok := h.svc.(Historian)
	if !ok {
		return found, nil
	}
	out := found[:0]
	for _, c := range found {
		if c.Was != "" || h.authz.Authorize(p, auth.ActionRead, c.Record).Allow || !h.isWithdrawal(c.Record, c.Withdrawn) {
			out = append(out, c)
			continue
		}
		seen, err := wasPublic(hs.Store(), c.Record)
		if err != nil {
			return nil, err
		}
		if seen {
			out = append(out, c)
		}
	}
	return out, nil
}

// wasPublic reports whether a version of rec before this one was public, by
// its origin's signed log; true when the log holds no earlier version.
func wasPublic(st *store.Store, rec *schema.Record) (bool, error) {
	before, logged := rec.Version, false
	for {
		entries, more, err := st.History(rec.ID, before, MaxHistoryLimit)
		if err != nil {
			return false, err
		}
		for _, e := range entries {
			logged = true
			if e.Record.Visibility == schema.VisibilityPublic {
				return true, nil
			}
			before = e.Record.Version
		}
		if !more || len(entries) == 0 {
			return !logged, nil
		}
	}
}

// feedView is the change's record as a caller's feed shows it.
func (h *handler) feedView(p *auth.Principal, c store.Change) *schema.Record {
	rec := c.Record
	if v, ok := h.view(p, rec); ok {
		return v
	}
	return &schema.Record{
		ID: rec.ID, Catalogue: rec.Catalogue, Origin: rec.Origin, Version: rec.Version,
		Visibility: rec.Visibility, Schema: rec.Schema, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt,
		Deleted: true, Body: json.RawMessage("{}"),
	}
}
