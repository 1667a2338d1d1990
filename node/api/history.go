package api

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"liandong/auth"
	"liandong/node/store"
	"liandong/schema"
)

// Historian is what a service with a state file adds: GET /v1/records/{id}/history
// reads the signed log through it. *node.Node satisfies it.
type Historian interface {
	Store() *store.Store
}

// Limits of GET /v1/records/{id}/history.
const (
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 500
)

// Operations a history entry records.
const (
	historyCreate   = "create"
	historyUpdate   = "update"
	historyDelete   = "delete"
	historyWithdraw = "withdraw" // turned private at the origin: a deletion to everyone else
)

// How an entry's signature was verified.
const (
	verifiedSignedHere = "signed-here"         // this centre's own log: signed by this node
	verifiedAtReceipt  = "verified-at-receipt" // another origin's: verified against the trust bundle when received
)

// historyItem is one version of a record as its origin's signed log carries it.
type historyItem struct {
	Seq        uint64    `json:"seq"`
	Version    uint64    `json:"version"`
	Time       time.Time `json:"time"`
	Op         string    `json:"op"`
	Visibility string    `json:"visibility"`
	KeyID      string    `json:"kid"`
	Epoch      string    `json:"epoch"`
	Hash       string    `json:"hash"`
	PrevHash   string    `json:"prev_hash"`
	// Verified says how the signature was checked before the entry was stored.
	Verified string `json:"verified"`
	// SignatureCheck is the result of checking the signature again now, against
	// the current trust bundle: "valid", or the reason it fails (a revoked key…).
	SignatureCheck string `json:"signature_check"`
}

type historyResponse struct {
	ID         string        `json:"id"`
	Origin     string        `json:"origin"`
	Items      []historyItem `json:"items"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// History cursors: the kind byte and the version to continue below.
const cursorHistory = 'h'

func historyOp(rec *schema.Record) string {
	switch {
	case rec.Deleted && !rec.Shared():
		return historyWithdraw
	case rec.Deleted:
		return historyDelete
	case rec.Version == 1:
		return historyCreate
	}
	return historyUpdate
}

// history serves GET /v1/records/{id}/history: the versions of a record its
// origin's signed log carries, newest first, with seq, time, signing key, entry
// hash and how the signature was verified. Versions written while the record was
// private never entered the log and are not listed. The caller must be allowed to
// read the record as it stands (a tombstone of a shared record is readable, so
// the history of a deleted record stays visible; a withdrawn one is not).
func (h *handler) history(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionRead, nil); err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, err := parseQuery(r.URL.RawQuery, "cursor", "limit")
	if err != nil {
		return err
	}
	limit, err := boundedLimit(q, DefaultHistoryLimit, MaxHistoryLimit)
	if err != nil {
		return err
	}
	var before uint64
	if s, ok := q["cursor"]; ok {
		b, err := decodeCursor(s, cursorHistory)
		if err == nil {
			before, err = strconv.ParseUint(string(b), 10, 64)
		}
		if err != nil || before == 0 {
			return badParam("cursor", schema.RuleFormat, "malformed cursor; pass next_cursor from the previous page unchanged")
		}
	}
	hs, ok := h.svc.(Historian)
	if !ok {
		return newProblem(http.StatusNotFound, "not-found", "this node keeps no record history")
	}
	rec, err := h.svc.Get(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrDeleted) && rec != nil:
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrDeleted):
		return notFound(id, p)
	case err != nil:
		return err
	}
	if !h.authz.Authorize(p, auth.ActionRead, rec).Allow {
		return notFound(id, p)
	}
	entries, more, err := hs.Store().History(id, before, limit)
	if err != nil {
		return err
	}
	bundle := h.svc.Bundle()
	resp := historyResponse{ID: id, Origin: rec.Origin, Items: make([]historyItem, 0, len(entries))}
	for _, e := range entries {
		it := historyItem{
			Seq: e.Seq, Version: e.Record.Version, Time: e.SignedAt, Op: historyOp(e.Record),
			Visibility: e.Record.Visibility, KeyID: e.KeyID, Epoch: e.Epoch,
			Hash: e.Hash().String(), PrevHash: e.PrevHash.String(),
			Verified: verifiedAtReceipt, SignatureCheck: "valid",
		}
		if e.Origin == h.centre {
			it.Verified = verifiedSignedHere
		}
		if bundle == nil {
			it.SignatureCheck = "no-trust-bundle"
		} else if err := auth.VerifyEntry(bundle, e); err != nil {
			it.SignatureCheck = "invalid"
			var ce *auth.ChainError
			if errors.As(err, &ce) {
				it.SignatureCheck = string(ce.Reason)
			}
		}
		resp.Items = append(resp.Items, it)
	}
	for i := 0; i+1 < len(resp.Items); i++ {
		// Newest first: a version after a deletion or withdrawal made the
		// record anew, as the PUT that wrote it answered (201).
		if older := resp.Items[i+1].Op; resp.Items[i].Op == historyUpdate && (older == historyDelete || older == historyWithdraw) {
			resp.Items[i].Op = historyCreate
		}
	}
	if more && len(entries) > 0 {
		last := entries[len(entries)-1].Record.Version
		resp.NextCursor = cursorEncoding.EncodeToString(strconv.AppendUint([]byte{cursorHistory}, last, 10))
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
