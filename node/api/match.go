package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"liandong/auth"
	"liandong/node/search"
	"liandong/node/store"
	"liandong/schema"
)

// Matcher is what a service with matchmaking adds: GET /v1/match/{id} ranks
// through it. *node.Node satisfies it.
type Matcher interface {
	Match(ctx context.Context, src *schema.Record, opts search.MatchOptions) (*search.MatchResult, error)
}

// Limits of GET /v1/match/{id}.
const (
	DefaultMatchLimit = 10
	MaxMatchLimit     = 50
)

// matchItem is one ranked candidate as answered.
type matchItem struct {
	ID      string          `json:"id"`
	Score   float64         `json:"score"`
	Reasons []search.Reason `json:"reasons"`
	Record  *schema.Record  `json:"record"`
}

type matchResponse struct {
	Source *schema.Record `json:"source"`
	// Matches holds a ranked list per catalogue, best first.
	Matches map[string][]matchItem `json:"matches"`
}

// matchTargets lists the catalogues a source is matched with.
func matchTargets(catalogue string) []string {
	switch catalogue {
	case schema.CatalogueNeed:
		return []string{schema.CatalogueSupply, schema.CatalogueExpert}
	case schema.CatalogueSupply:
		return []string{schema.CatalogueNeed, schema.CatalogueExpert}
	}
	return nil
}

// match serves GET /v1/match/{id}: for a need, the supply items (of every
// centre) and experts that could answer it; for a supply item, the open needs
// it could answer and the experts of its field; each with a score and reasons.
// Candidates the caller may not read are left out; personal data is redacted
// as in every answer.
func (h *handler) match(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionRead, nil); err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, err := parseQuery(r.URL.RawQuery, "catalogue", "limit")
	if err != nil {
		return err
	}
	limit, err := boundedLimit(q, DefaultMatchLimit, MaxMatchLimit)
	if err != nil {
		return err
	}
	target, err := catalogueParam(q)
	if err != nil {
		return err
	}
	m, ok := h.svc.(Matcher)
	if !ok {
		return newProblem(http.StatusNotFound, "not-found", "this node has no matchmaking index")
	}
	rec, err := h.svc.Get(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrDeleted):
		return notFound(id, p)
	case err != nil:
		return err
	}
	source, ok := h.view(p, rec)
	if !ok {
		return notFound(id, p)
	}
	targets := matchTargets(rec.Catalogue)
	if targets == nil {
		pr := newProblem(http.StatusUnprocessableEntity, "validation", fmt.Sprintf("record %s is a %s record; matchmaking starts from a need or a supply item", id, rec.Catalogue))
		pr.Errors = []FieldError{{Path: "id", Rule: "catalogue", Message: "want the id of a need or a supply item"}}
		return pr
	}
	if target != "" {
		found := false
		for _, t := range targets {
			found = found || t == target
		}
		if !found {
			return badParam("catalogue", schema.RuleEnum, fmt.Sprintf("a %s is matched with %s or %s", rec.Catalogue, targets[0], targets[1]))
		}
		targets = []string{target}
	}
	res, err := m.Match(r.Context(), rec, search.MatchOptions{
		Catalogues:  targets,
		Limit:       limit,
		Allow:       h.allowRead(p),
		AllowRecord: h.readable(p),
		Now:         h.now(),
	})
	if err != nil {
		return err
	}
	setIndexBehind(w, res.Behind)
	resp := matchResponse{Source: source, Matches: map[string][]matchItem{}}
	for _, t := range targets {
		list := make([]matchItem, 0, len(res.Lists[t]))
		for _, mt := range res.Lists[t] {
			// As in search: decided again on the record the store holds, so no
			// Matcher can hand out a candidate on a stale decision.
			v, ok := h.view(p, mt.Record)
			if !ok {
				continue
			}
			list = append(list, matchItem{ID: mt.Record.ID, Score: mt.Score, Reasons: mt.Reasons, Record: v})
		}
		resp.Matches[t] = list
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}
