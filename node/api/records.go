package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

type listResponse struct {
	Items      []*schema.Record `json:"items"`
	NextCursor string           `json:"next_cursor,omitempty"`
}

// view is rec as p may see it, redacted unless the Authorizer says otherwise,
// and false when p may not read rec at all. A denied record must be left out
// (or answered 404), never answered redacted: redaction removes personal data,
// while a denial protects the record's existence and its whole body.
func (h *handler) view(p *auth.Principal, rec *schema.Record) (*schema.Record, bool) {
	d := h.authz.Authorize(p, auth.ActionRead, rec)
	switch {
	case !d.Allow:
		return nil, false
	case d.Redact:
		return schema.RedactContact(rec), true
	}
	return rec, true
}

func (h *handler) listRecords(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionRead, nil); err != nil {
		return err
	}
	lp, err := parseListParams(r.URL.RawQuery)
	if err != nil {
		return err
	}
	if lp.Consistent {
		if err := h.barrier(r.Context()); err != nil {
			return err
		}
	}
	if lp.IDs != nil {
		return h.readMany(w, r, p, lp.IDs)
	}
	if err := h.checkOrigin(r.Context(), lp.Origin); errors.Is(err, errOriginForLeader) {
		return h.originAtLeader(w, r, false)
	} else if err != nil {
		return err
	}
	if s, ok := h.svc.(Searcher); ok && lp.Query != "" {
		return h.searchRecords(w, r, p, lp, s)
	}
	items, next, err := h.svc.List(r.Context(), store.Query{
		Catalogue:    lp.Catalogue,
		Origin:       lp.Origin,
		Industry:     lp.Industry,
		Status:       lp.Status,
		UpdatedSince: lp.UpdatedSince,
		Now:          h.now(),
		After:        lp.After,
		Limit:        lp.Limit,
		Match: func(rec *schema.Record) bool {
			return h.authz.Authorize(p, auth.ActionRead, rec).Allow && matchText(rec.Body, lp.Terms)
		},
	})
	if err != nil {
		return err
	}
	resp := listResponse{Items: make([]*schema.Record, 0, len(items))}
	for _, rec := range items {
		// Match authorised this very record inside the store's read; checked
		// again so that no path hands out a record on a decision made elsewhere.
		if v, ok := h.view(p, rec); ok {
			resp.Items = append(resp.Items, v)
		}
	}
	if next != "" {
		resp.NextCursor = encodeListCursor(next)
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// readMany answers the records ids names (GET /v1/records?ids=) that p may
// read, in the order named: as GET /v1/records/{id} each, but for a record
// that is absent, deleted or unreadable, which is left out, as a list leaves
// it out, rather than answered 404. A client loading a catalogue (liandong
// import) reads hundreds of records so in one request.
//
// The answer is written as the records are read, so that 500 records of the
// largest size (64 KiB each) are never held at once. A read that fails before
// anything was written is answered as a problem; one that fails after cuts
// the connection, so that a shortened answer does not pass for a whole one.
func (h *handler) readMany(w http.ResponseWriter, r *http.Request, p *auth.Principal, ids []string) error {
	const flushAt = 256 << 10
	out := append(make([]byte, 0, 4<<10), `{"items":[`...)
	started, n := false, 0
	send := func() {
		if !started {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusOK)
			started = true
		}
		w.Write(out)
		out = out[:0]
	}
	for _, id := range ids {
		rec, err := h.svc.Get(r.Context(), id)
		switch {
		case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrDeleted):
			continue
		case err != nil && !started:
			return err
		case err != nil:
			info(r).err = fmt.Errorf("read %s part-way through an ids answer: %w", id, err)
			panic(http.ErrAbortHandler) // ServeHTTP counts and logs it, then cuts the connection
		}
		v, ok := h.view(p, rec)
		if !ok {
			continue
		}
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = appendRecordAnswer(out, v)
		if len(out) >= flushAt {
			send()
		}
	}
	out = append(out, "]}\n"...)
	send()
	return nil
}

// pathID returns the {id} of the URL, refusing one that is not "<centre>:<key>".
func pathID(r *http.Request) (string, error) {
	id := r.PathValue("id")
	if _, _, err := schema.SplitID(id); err != nil {
		return "", badParam("id", "format", "want <centre>:<key>, the key 1-128 letters, digits, '-', '_' or '.'")
	}
	return id, nil
}

// notFound answers a record that does not exist, or that p may not see: the two
// are indistinguishable, so private ids do not leak.
func notFound(id string, p *auth.Principal) error {
	detail := "no record " + id
	if p == nil || p.Anonymous {
		detail += " readable without a token"
	}
	return newProblem(http.StatusNotFound, "not-found", detail)
}

func (h *handler) getRecord(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionRead, nil); err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, err := parseQuery(r.URL.RawQuery, "consistent")
	if err != nil {
		return err
	}
	consistent, err := consistentParam(q)
	if err != nil {
		return err
	}
	if consistent {
		if err := h.barrier(r.Context()); err != nil {
			return err
		}
	}
	rec, err := h.svc.Get(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrDeleted) && rec != nil:
		if h.authz.Authorize(p, auth.ActionRead, rec).Allow {
			return newProblem(http.StatusNotFound, "not-found",
				fmt.Sprintf("record %s was deleted at version %d", id, rec.Version))
		}
		return notFound(id, p)
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrDeleted):
		return notFound(id, p)
	case err != nil:
		return err
	}
	v, ok := h.view(p, rec)
	if !ok {
		return notFound(id, p)
	}
	w.Header().Set("ETag", etag(rec.Version))
	if m, ok := h.svc.Bundle().Member(rec.Origin); ok && m.Removed != nil {
		// History from a centre that left: still served, marked as such.
		w.Header().Set(OriginRemovedHeader, m.Removed.UTC().Format(time.RFC3339))
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// OriginRemovedHeader marks a record whose origin centre has left the
// federation; its value is when the centre was removed.
const OriginRemovedHeader = "Liandong-Origin-Removed"

// written answers a record the caller just wrote.
func (h *handler) written(w http.ResponseWriter, p *auth.Principal, status int, rec *schema.Record) {
	w.Header().Set("ETag", etag(rec.Version))
	if status == http.StatusCreated {
		w.Header().Set("Location", "/v1/records/"+url.PathEscape(rec.ID))
	}
	writeJSON(w, status, h.writtenView(p, rec))
}

// writtenView is what a caller learns of a record it just wrote. A writer
// that may not read it (a token with write but not read) learns the envelope
// the write made, and of the body only what is left without personal data:
// it sent that body itself, or, for a DELETE, the tombstone has none.
func (h *handler) writtenView(p *auth.Principal, rec *schema.Record) *schema.Record {
	v, ok := h.view(p, rec)
	if !ok {
		v = schema.RedactContact(rec)
	}
	return v
}

func (h *handler) createRecord(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionWrite, nil); err != nil {
		return err
	}
	if r.Header.Get("If-None-Match") != "" {
		return badParam("If-None-Match", schema.RuleForbidden, ifNoneMatchOnPost)
	}
	if r.Header.Get("If-Match") != "" {
		// Refused rather than ignored, as a batch item's if_match is: a
		// caller sending one expects a condition no POST can check.
		return badParam("If-Match", schema.RuleForbidden, ifMatchOnPost)
	}
	data, err := readBody(w, r, h.maxBody)
	if err != nil {
		return err
	}
	req, err := decodeRecord(data, "", h.centre)
	if err != nil {
		return err
	}
	out, err := h.create(r.Context(), req.rec)
	if err != nil {
		return err
	}
	h.written(w, p, http.StatusCreated, out)
	return nil
}

// create creates rec, refusing an expiry already past.
func (h *handler) create(ctx context.Context, rec *schema.Record) (*schema.Record, error) {
	if err := h.checkExpiry(rec, nil); err != nil {
		return nil, err
	}
	return h.svc.Create(ctx, rec)
}

// checkExpiry refuses a write that would set rec's expires_at to a time
// already past: the record would be born expired (a need closed, a profile
// awaiting renewal), which is a mistyped date far more often than a wish. A
// record already expired may be written with a past expiry, so that it can
// still be edited (closed, corrected) without renewing it; the console, which
// shows expiries as dates, sends back the end of the day shown rather than the
// instant stored. Records other centres replicate are not checked: their
// origin decided.
func (h *handler) checkExpiry(rec, live *schema.Record) error {
	now := h.now()
	if rec.ExpiresAt == nil || !rec.Expired(now) || live != nil && live.Expired(now) {
		return nil
	}
	return &schema.ValidationError{Errors: []schema.FieldError{{Path: "expires_at", Rule: schema.RuleMin,
		Message: fmt.Sprintf("%s is already past: give a future expiry, or none", rec.ExpiresAt.UTC().Format(time.RFC3339))}}}
}

// current returns the live record id (nil when absent) and its tombstone (nil
// unless deleted).
func (h *handler) current(ctx context.Context, id string) (live, tombstone *schema.Record, err error) {
	rec, err := h.svc.Get(ctx, id)
	switch {
	case err == nil:
		return rec, nil, nil
	case errors.Is(err, store.ErrDeleted):
		return nil, rec, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, nil, nil
	}
	return nil, nil, err
}

func preconditionFailed(detail string) error {
	return newProblem(http.StatusPreconditionFailed, "precondition-failed", detail)
}

func (h *handler) putRecord(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionWrite, nil); err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	pc, err := parseIfMatch(r.Header)
	if err != nil {
		return err
	}
	if pc, err = parseIfNoneMatch(r.Header, pc); err != nil {
		return err
	}
	data, err := readBody(w, r, h.maxBody)
	if err != nil {
		return err
	}
	req, err := decodeRecord(data, id, h.centre)
	if err != nil {
		return err
	}
	status, out, err := h.put(r.Context(), p, id, pc, req)
	if err != nil {
		return err
	}
	h.written(w, p, status, out)
	return nil
}

// put creates or replaces record id with the submission req under the
// precondition pc, and says whether it created (201) or replaced (200) it.
// The caller has checked the write scope.
func (h *handler) put(ctx context.Context, p *auth.Principal, id string, pc precondition, req *recordRequest) (int, *schema.Record, error) {
	if pc.absent {
		return h.putIfAbsent(ctx, id, pc, req)
	}
	if req.version != 0 {
		switch {
		case !pc.present:
			pc = precondition{present: true, version: req.version}
		case pc.any || pc.never || pc.version != req.version:
			return 0, nil, badParam(pc.name, schema.RuleMismatch,
				fmt.Sprintf("%s contradicts the record's version %d; send one or make them agree", pc.name, req.version))
		}
	}
	synced := false
	for attempt := 1; ; attempt++ {
		live, tombstone, err := h.current(ctx, id)
		if err != nil {
			return 0, nil, err
		}
		keeps := !req.visibility || h.keepsUnread(p, id, req)
		if live == nil && !synced && keeps && h.stateDecides(id, pc) {
			// The write would take its visibility, or personal data the
			// caller could not read, from the record it replaces: the default
			// would publish a private record irreversibly, or erase its
			// contacts. It must not miss that record because this leader has
			// yet to apply a write it committed (just after an election).
			// Read again once it has.
			if err := h.barrier(ctx); err != nil {
				return 0, nil, err
			}
			synced = true
			if live, tombstone, err = h.current(ctx, id); err != nil {
				return 0, nil, err
			}
		}
		if live != nil {
			if _, err := h.authorize(p, auth.ActionWrite, live); err != nil {
				return 0, nil, err
			}
			if req.rec.Catalogue != live.Catalogue {
				return 0, nil, catalogueMove(id, live.Catalogue, req.rec.Catalogue)
			}
		}
		ifMatch, err := h.resolvePrecondition(p, pc, id, live)
		if err != nil && !synced && h.stateDecides(id, pc) {
			// A 412 is definitive: decide it on what this leader has
			// applied of everything committed, not on a state file that
			// may lack a write acknowledged under the previous leader.
			if err := h.barrier(ctx); err != nil {
				return 0, nil, err
			}
			synced = true
			continue
		}
		if err != nil {
			return 0, nil, err
		}
		if err := h.checkExpiry(req.rec, live); err != nil {
			return 0, nil, err
		}
		rec, kept := h.updateOf(p, req, live)
		if kept && ifMatch == 0 {
			// What was kept is live's: written over a newer version it could
			// undo that version's change (restore a contact it removed, widen
			// the visibility it narrowed).
			ifMatch = live.Version
		}
		var out *schema.Record
		if live == nil {
			// Nothing to keep was found, and no catalogue to keep to: create
			// only, and merge with (or be refused by the catalogue of) a
			// record another writer creates meanwhile. Written over it
			// unchecked, the default visibility (or erased contacts) would
			// publish it, and another catalogue would move it without the
			// tombstone its catalogue's mirrors need.
			out, err = h.svc.PutIfAbsent(ctx, id, rec)
			if errors.Is(err, store.ErrExists) && attempt < maxPutAttempts {
				continue
			}
			if errors.Is(err, node.ErrGroupLacksFeature) {
				// Over a tombstone, while a replica runs an older build:
				// written as before this check, unguarded.
				out, err = h.svc.Put(ctx, id, rec, 0)
			}
		} else {
			out, err = h.svc.Put(ctx, id, rec, ifMatch)
			if (kept && !pc.present || pc.any) && errors.Is(err, store.ErrVersionConflict) && attempt < maxPutAttempts {
				// No precondition, or If-Match: * (any current version):
				// merge with, or write over, the newer version.
				continue
			}
			if errors.Is(err, store.ErrCatalogueMove) && attempt < maxPutAttempts {
				// live was deleted and its id created again in another
				// catalogue before the write was applied (review 108):
				// decide again on what is there now, a catalogue move
				// refused as the read would have refused it.
				continue
			}
		}
		if err != nil {
			return 0, nil, h.hideVersion(err, p, id, pc, live)
		}
		status := http.StatusOK
		if live == nil && keeps || out.Version == 1 || tombstone != nil && out.Version == tombstone.Version+1 {
			status = http.StatusCreated // a create-only write that went through created it
		}
		return status, out, nil
	}
}

// putIfAbsent creates record id, or revives its tombstone, and refuses to
// replace a live one (412). The node checks that as it applies the write, so
// a record created by another writer after this request was read is not
// overwritten, as a read here and then a PUT would. There is no live record
// to keep a visibility or personal data from.
func (h *handler) putIfAbsent(ctx context.Context, id string, pc precondition, req *recordRequest) (int, *schema.Record, error) {
	if req.version != 0 {
		return 0, nil, badParam(pc.name, schema.RuleMismatch,
			fmt.Sprintf("%s contradicts the record's version %d: it creates the record; send one", pc.name, req.version))
	}
	if err := h.checkExpiry(req.rec, nil); err != nil {
		return 0, nil, err
	}
	out, err := h.svc.PutIfAbsent(ctx, id, req.rec)
	if errors.Is(err, store.ErrExists) {
		return 0, nil, preconditionFailed(fmt.Sprintf("%s given but record %s exists", pc.name, id))
	}
	if err != nil {
		return 0, nil, err
	}
	return http.StatusCreated, out, nil
}

// catalogueMove refuses a PUT that would move a live record to another
// catalogue: partners mirroring one catalogue's change feed would never learn
// that the record left it, and the catalogues' bodies differ anyway.
// Deleting the record first lets its id be written in the other catalogue,
// and the old catalogue's feed carries the tombstone.
func catalogueMove(id, from, to string) error {
	return &schema.ValidationError{Errors: []schema.FieldError{{Path: "catalogue", Rule: schema.RuleMismatch,
		Message: fmt.Sprintf("record %s is a %s record and a record keeps its catalogue: to make it a %s record, delete it first (partners mirroring %s then learn it is gone), then write it again", id, from, to, from)}}}
}

// keepsUnread reports whether a PUT by p would keep personal data of the
// record it replaces: p could not read that data (no pii scope), and so it is
// kept from the stored record rather than erased (updateOf).
func (h *handler) keepsUnread(p *auth.Principal, id string, req *recordRequest) bool {
	probe := &schema.Record{ID: id, Catalogue: req.rec.Catalogue, Origin: h.centre, Visibility: schema.VisibilityPrivate}
	d := h.authz.Authorize(p, auth.ActionRead, probe)
	return !d.Allow || d.Redact
}

// maxPutAttempts bounds the merges of a PUT without a precondition that
// concurrent writes keep overtaking.
const maxPutAttempts = 5

// updateOf is the record a PUT writes over live (nil when there is none), and
// whether it took anything from live. A PUT replaces the record, but for what
// the caller did not send and could not have sent back: an omitted visibility
// keeps live's (the default, federation, would publish a private record to
// every centre, irreversibly), and personal body members a caller without
// the pii scope got redacted are kept, so a GET → edit → PUT round trip does
// not erase them. Personal members sent, even null, are a deliberate change.
func (h *handler) updateOf(p *auth.Principal, req *recordRequest, live *schema.Record) (*schema.Record, bool) {
	rec := req.rec.Clone()
	if live == nil {
		return rec, false
	}
	kept := false
	if !req.visibility {
		rec.Visibility, kept = live.Visibility, true
	}
	if d := h.authz.Authorize(p, auth.ActionRead, live); !d.Allow || d.Redact {
		// A body that is not an object is left for validation to refuse.
		if body, err := schema.KeepPersonal(rec.Body, live.Body); err == nil && !bytes.Equal(body, rec.Body) {
			rec.Body, kept = body, true
		}
	}
	return rec, kept
}

// resolvePrecondition turns If-Match into the version the store checks (0: none).
// A caller who may not read live (a token with scope write but not read) is
// not told its current version: the 412 would be a read.
func (h *handler) resolvePrecondition(p *auth.Principal, pc precondition, id string, live *schema.Record) (uint64, error) {
	switch {
	case !pc.present:
		return 0, nil
	case pc.never:
		return 0, preconditionFailed("If-Match names no version of " + id)
	case live == nil:
		return 0, preconditionFailed(fmt.Sprintf("If-Match given but record %s does not exist", id))
	case pc.any:
		return live.Version, nil
	case pc.version != live.Version:
		if !h.mayRead(p, live) {
			return 0, staleUnread(id, pc.version)
		}
		return 0, preconditionFailed(fmt.Sprintf("record %s is at version %d, not %d", id, live.Version, pc.version))
	}
	return pc.version, nil
}

// mayRead reports whether p may read rec, and so learn its version.
func (h *handler) mayRead(p *auth.Principal, rec *schema.Record) bool {
	return h.authz.Authorize(p, auth.ActionRead, rec).Allow
}

// staleUnread is the 412 for a caller who may not read the record: that the
// version it named is not the current one, and nothing of which is.
func staleUnread(id string, named uint64) error {
	return preconditionFailed(fmt.Sprintf("record %s is not at version %d", id, named))
}

// hideVersion replaces the store's refusals that name the current version
// (a write overtaken between the checks here and its apply: a version
// conflict, or a record created meanwhile) for a caller who may not read
// rec: with staleUnread when the caller named a version, else without any
// (the version checked was read here, not sent).
func (h *handler) hideVersion(err error, p *auth.Principal, id string, pc precondition, rec *schema.Record) error {
	conflict, exists := errors.Is(err, store.ErrVersionConflict), errors.Is(err, store.ErrExists)
	if !conflict && !exists || h.mayRead(p, rec) {
		return err
	}
	switch {
	case exists:
		return newProblem(http.StatusConflict, "conflict", fmt.Sprintf("record %s was created by another write meanwhile; send this one again", id))
	case pc.present && !pc.any && !pc.never:
		return staleUnread(id, pc.version)
	}
	return preconditionFailed(fmt.Sprintf("record %s changed while this write was applied; send it again", id))
}

func (h *handler) deleteRecord(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionWrite, nil); err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	pc, err := parseIfMatch(r.Header)
	if err != nil {
		return err
	}
	if r.Header.Get("If-None-Match") != "" {
		// "Only if it does not exist" on a delete is a 404 or a 412, never a
		// deletion: refuse it rather than ignore it, as a batch item does.
		return badParam("If-None-Match", schema.RuleForbidden, ifNoneMatchOnDelete)
	}
	out, err := h.remove(r.Context(), p, id, pc)
	if err != nil {
		return err
	}
	h.written(w, p, http.StatusOK, out)
	return nil
}

// stateDecides reports whether a refusal of a write to id under pc may
// depend on what this leader has applied, and so is worth a barrier first:
// not for another centre's record, which no write here may change (403 or
// 404 whatever its state), nor for an If-Match that names no version (a weak
// tag: 412 whatever the state, for PUT and DELETE alike). Without the barrier, such refusals
// stay definitive while quorum is lost, and their answers tell nothing about
// the record's version to a caller without the right to write it.
func (h *handler) stateDecides(id string, pc precondition) bool {
	origin, _, _ := strings.Cut(id, ":")
	return !pc.never && origin == h.centre
}

// remove tombstones record id under the precondition pc. The caller has
// checked the write scope.
func (h *handler) remove(ctx context.Context, p *auth.Principal, id string, pc precondition) (*schema.Record, error) {
	return h.removeAttempt(ctx, p, id, pc, 1, false)
}

// removeAttempt is one try of remove; synced says a barrier ran before it.
func (h *handler) removeAttempt(ctx context.Context, p *auth.Principal, id string, pc precondition, attempt int, synced bool) (*schema.Record, error) {
	live, _, err := h.current(ctx, id)
	if err != nil {
		return nil, err
	}
	var ifMatch uint64
	// Whether the caller may write it, first: the barrier below may fail,
	// and a 503 for one version and a 403 for another would tell a caller
	// without the right which version is current. Another centre's record
	// is refused whether this node holds it or not (its id names its origin).
	target := live
	if target == nil {
		origin, _, _ := strings.Cut(id, ":")
		target = &schema.Record{ID: id, Origin: origin}
	}
	if _, err := h.authorize(p, auth.ActionWrite, target); err != nil {
		return nil, err
	}
	if live != nil || pc.never {
		// A tag that names no version is refused whatever the state (as PUT
		// refuses it): never a 404 decided without the barrier.
		ifMatch, err = h.resolvePrecondition(p, pc, id, live)
	}
	if (live == nil || err != nil) && !synced && h.stateDecides(id, pc) {
		// A 404 or a 412 is definitive: decide it on what this leader has
		// applied of everything committed, not on a state file that may
		// lack a write acknowledged under the previous leader (a leader
		// applies the previous term's entries only once its own first one
		// commits).
		if err := h.barrier(ctx); err != nil {
			return nil, err
		}
		return h.removeAttempt(ctx, p, id, pc, attempt, true)
	}
	if err != nil {
		return nil, err
	}
	if live == nil {
		return nil, notFound(id, p)
	}
	out, err := h.svc.Delete(ctx, id, ifMatch)
	if pc.any && errors.Is(err, store.ErrVersionConflict) && attempt < maxPutAttempts {
		// If-Match: * asks only that the record exist: a newer version does.
		return h.removeAttempt(ctx, p, id, pc, attempt+1, synced)
	}
	return out, h.hideVersion(err, p, id, pc, live)
}
