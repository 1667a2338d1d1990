package api

import (
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
	match := func(rec *schema.Record) bool {
		if cp.Catalogue != "" && rec.Catalogue != cp.Catalogue || cp.Origin != "" && rec.Origin != cp.Origin {
			return false
		}
		return h.authz.Authorize(p, auth.ActionRead, rec).Allow
	}
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
		resp.Changes = append(resp.Changes, changeItem{Position: encodePosition(c.Position), Record: h.view(p, c.Record)})
	}
	writeJSON(w, http.StatusOK, resp)
}
