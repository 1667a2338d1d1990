package api

import (
	"encoding/json"
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
	resp := changesResponse{Changes: make([]changeItem, 0, len(found)), NextCursor: encodePosition(pos)}
	for _, c := range found {
		resp.Changes = append(resp.Changes, changeItem{Position: encodePosition(c.Position), Record: h.feedView(p, c)})
	}
	writeJSON(w, http.StatusOK, resp)
}

// feedMatch selects the changes a caller's feed carries: the records it may read,
// and tombstones of the ones it may not (feedView). A partner mirroring the feed
// must learn that a record it holds was deleted or withdrawn (turned private):
// absence never means deletion. A tombstone tells only id, catalogue, origin and
// version, and that the record is gone.
func (h *handler) feedMatch(p *auth.Principal, catalogue, origin string) store.ChangeFilter {
	return func(rec *schema.Record, withdrawn bool) bool {
		if catalogue != "" && rec.Catalogue != catalogue || origin != "" && rec.Origin != origin {
			return false
		}
		return rec.Deleted || withdrawn || h.authz.Authorize(p, auth.ActionRead, rec).Allow
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
