package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

// Governed is what a service that takes trust bundles and keeps an audit log
// adds. *node.Node satisfies it.
type Governed interface {
	SignedBundle() []byte
	InstallBundle(ctx context.Context, signed []byte, actor string) (*auth.Bundle, error)
	Audit(ctx context.Context, actor, action, detail string) error
	AuditLog(ctx context.Context, from uint64, limit int) ([]store.AuditEvent, error)
	PurgeOrigin(ctx context.Context, origin, actor string) (int, error)
}

// actor names the caller in the audit log: issuing centre and subject.
func actor(p *auth.Principal) string {
	if p == nil || p.Anonymous {
		return "anonymous"
	}
	return p.Centre + "/" + p.Subject
}

// auditTimeout bounds recording an audit event after an action.
const auditTimeout = 3 * time.Second

// audit records an admin action that succeeded. Its own failure is logged: the
// action happened and the caller must hear so.
func (h *handler) audit(r *http.Request, p *auth.Principal, action, detail string) {
	g, ok := h.svc.(Governed)
	if !ok {
		return
	}
	// Bounded: after an action that moved leadership the proposal can only
	// fail, and the caller must not wait for it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), auditTimeout)
	defer cancel()
	if err := g.Audit(ctx, actor(p), action, detail); err != nil {
		h.log.Warn("audit event not recorded", "action", action, "err", err)
	}
}

// getBundle serves the signed trust bundle this node runs on. It holds public
// keys and addresses only, so anyone may read it: partners check tokens with it.
func (h *handler) getBundle(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	g, ok := h.svc.(Governed)
	var signed []byte
	if ok {
		signed = g.SignedBundle()
	}
	if len(signed) == 0 {
		return newProblem(http.StatusNotFound, "not-found", "this node holds no signed trust bundle")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(signed)
	return err
}

// publishBundle installs a newer signed trust bundle at this centre; sync then
// spreads it to the others.
func (h *handler) publishBundle(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionAdmin, nil); err != nil {
		return err
	}
	g, ok := h.svc.(Governed)
	if !ok {
		return newProblem(http.StatusNotFound, "not-found", "this node does not take trust bundles")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, auth.MaxBundleBytes+1))
	if err != nil {
		return newProblem(http.StatusBadRequest, "bad-request", "read body: "+err.Error())
	}
	if len(body) > auth.MaxBundleBytes {
		return newProblem(http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("a trust bundle is at most %d bytes", auth.MaxBundleBytes))
	}
	before := h.svc.Bundle()
	b, err := g.InstallBundle(r.Context(), body, actor(p))
	if err != nil {
		return bundleProblem(err)
	}
	installed := before == nil || b.Version > before.Version
	writeJSON(w, http.StatusOK, map[string]any{"federation": b.Federation, "version": b.Version,
		"installed": installed, "expires_at": b.ExpiresAt})
	return nil
}

// bundleProblem says why a bundle was refused, with the status a client can act on.
func bundleProblem(err error) error {
	if !errors.Is(err, node.ErrBundleRefused) {
		return err
	}
	p := newProblem(http.StatusUnprocessableEntity, "bundle-refused", err.Error())
	switch {
	case errors.Is(err, auth.ErrRollback), errors.Is(err, auth.ErrSameVersionDifferent):
		p = newProblem(http.StatusConflict, "bundle-refused", err.Error())
	case errors.Is(err, auth.ErrBundleInvalid):
		p = newProblem(http.StatusBadRequest, "bad-request", err.Error())
	}
	p.cause = err
	return p
}

// auditLog serves the centre's audit log from ?from= (a seq) on.
func (h *handler) auditLog(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionAdmin, nil); err != nil {
		return err
	}
	g, ok := h.svc.(Governed)
	if !ok {
		return newProblem(http.StatusNotFound, "not-found", "this node keeps no audit log")
	}
	q, err := parseQuery(r.URL.RawQuery, "from", "limit")
	if err != nil {
		return err
	}
	from := uint64(1)
	if s, ok := q["from"]; ok {
		if from, err = strconv.ParseUint(s, 10, 64); err != nil || from == 0 {
			return badParam("from", schema.RuleRange, "want the seq of an audit event, 1 or more")
		}
	}
	limit, err := limitParam(q)
	if err != nil {
		return err
	}
	events, err := g.AuditLog(r.Context(), from, limit)
	if err != nil {
		return err
	}
	if events == nil {
		events = []store.AuditEvent{}
	}
	out := map[string]any{"events": events}
	if len(events) == limit {
		out["next"] = events[len(events)-1].Seq + 1
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// purgeOrigin stops serving the records of a centre that left the federation.
func (h *handler) purgeOrigin(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionAdmin, nil); err != nil {
		return err
	}
	g, ok := h.svc.(Governed)
	if !ok {
		return newProblem(http.StatusNotFound, "not-found", "this node cannot purge")
	}
	origin := r.PathValue("origin")
	if !schema.ValidCentreID(origin) {
		return badParam("origin", schema.RuleFormat, "want a centre id")
	}
	n, err := g.PurgeOrigin(r.Context(), origin, actor(p))
	if errors.Is(err, node.ErrNotRemoved) {
		// Not "conflict" (its title says a record exists): the centre
		// is still a member of the federation.
		return newProblem(http.StatusConflict, "not-removed", err.Error())
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"origin": origin, "purged": n})
	return nil
}
