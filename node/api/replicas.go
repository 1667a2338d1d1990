package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

// Replicated is what a service running in a raft group of several replicas adds:
// the API forwards writes from followers to the leader, serves consistent reads
// through the leader, and manages the group's membership. A Service without it
// is a single replica.
type Replicated interface {
	IsLeader() bool
	LeaderHTTP() string
	Barrier(ctx context.Context) error
	Replicas() ([]node.ReplicaInfo, error)
	AddReplica(ctx context.Context, r store.Replica) error
	RemoveReplica(ctx context.Context, id string) error
}

// ForwardedHeader marks a request one replica forwarded to another, so a request
// is forwarded at most once (a stale leader hint never loops).
const ForwardedHeader = "X-Liandong-Forwarded"

// toLeader wraps a route that must run at the leader: at a follower the request
// goes, as it came, to the leader's API, and the caller gets the leader's answer.
func (h *handler) toLeader(next http.HandlerFunc) http.HandlerFunc { return h.atLeader(next, true) }

// atLeader runs next at the leader, forwarding from a follower; writes says
// next writes (refusedAtFollower).
func (h *handler) atLeader(next http.HandlerFunc, writes bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rep, ok := h.svc.(Replicated)
		if !ok || rep.IsLeader() {
			next(w, r)
			return
		}
		info(r).matched = true
		if r.Header.Get(ForwardedHeader) != "" {
			h.fail(w, r, fmt.Errorf("forwarded request reached a follower: %w", node.ErrNotLeader))
			return
		}
		if err := h.refusedAtFollower(r, writes); err != nil {
			h.fail(w, r, err)
			return
		}
		h.forwardToLeader(w, r, rep, next)
	}
}

// refusedAtFollower is the answer a follower gives a request itself rather
// than forward it: one whose token the leader would refuse too, whatever
// trust bundle or clock it has (malformed, a bad signature, claims that can
// never hold, revoked), and, on a route that writes (every one of them needs
// a writer or an administrator), one with no token at all. Otherwise such a
// request took a hop to the leader, and during an election waited up to 3 s
// for one, to be answered 503 instead of 401. A token that names a key or
// issuer this replica's bundle does not hold yet, or is outside its validity
// by this replica's clock, goes on: the leader may hold a newer bundle, and
// decides.
func (h *handler) refusedAtFollower(r *http.Request, writes bool) error {
	p, err := h.authenticate(r)
	switch {
	case err == nil && writes && p.Anonymous:
		_, err = h.authorize(p, auth.ActionWrite, nil)
		return err
	case err == nil, errors.Is(err, auth.ErrTokenUnknownKey), errors.Is(err, auth.ErrTokenIssuer),
		errors.Is(err, auth.ErrTokenExpired), errors.Is(err, auth.ErrTokenNotYetValid), errors.Is(err, auth.ErrTokenScope):
		return nil
	}
	return err
}

// forwardToLeader sends r, as it came, to the leader's API and relays the
// answer. During an election there is briefly no leader: it holds the request
// for a moment rather than fail it, since the caller would only retry; should
// this replica win, it runs local (when not nil) itself.
func (h *handler) forwardToLeader(w http.ResponseWriter, r *http.Request, rep Replicated, local http.HandlerFunc) {
	if rm, ok := rep.(interface{ Removed() bool }); ok && rep.LeaderHTTP() == "" && rm.Removed() {
		// No election will give it a leader: saying "retry" would be wrong.
		h.fail(w, r, node.ErrRemoved)
		return
	}
	target := rep.LeaderHTTP()
	for wait := 0; target == "" && wait < 60 && r.Context().Err() == nil; wait++ {
		if rep.IsLeader() {
			if local != nil {
				local(w, r)
			} else {
				h.fail(w, r, fmt.Errorf("leadership came back to this replica: %w", node.ErrNotLeader))
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
		target = rep.LeaderHTTP()
	}
	u, err := url.Parse(target)
	if target == "" || err != nil || u.Host == "" {
		h.fail(w, r, fmt.Errorf("leader unknown: %w", node.ErrNotLeader))
		return
	}
	proxy := &httputil.ReverseProxy{
		Transport: h.forward,
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Header.Set(ForwardedHeader, h.centre)
			pr.SetXForwarded()
		},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if cause := context.Cause(r.Context()); errors.Is(cause, context.DeadlineExceeded) {
				err = cause // the bound below, not the caller, ended it
			}
			// Once the request may have reached the leader, its outcome is
			// unknown: say so (a timeout) rather than "not the leader", which
			// invites a blind retry and a second write.
			h.fail(w, r, fmt.Errorf("forward to leader %s: %w: %w", target, node.ErrTimeout, err))
		},
	}
	// Bounded: a leader whose API accepts the connection and never answers
	// (a one-way cut, a wedged process) would otherwise hold the request for
	// as long as the caller waits; the bound ends in the ErrorHandler above.
	ctx, cancel := context.WithCancelCause(r.Context())
	defer cancel(nil)
	bound := time.AfterFunc(h.forwardFor, func() {
		cancel(fmt.Errorf("no answer within %v: %w", h.forwardFor, context.DeadlineExceeded))
	})
	defer bound.Stop()
	if rs, stream := w.(*relayedStream); stream {
		// A change stream relayed from the leader (cursorAtLeader) lives as
		// long as its partner reads it, as a local one does (review 112):
		// the bound is on the leader's silence, which its heartbeats break,
		// not on the whole stream, which it cut at ForwardTimeout (75 s by
		// default; review 120).
		rs.relayed = func() { bound.Reset(h.forwardFor) }
	}
	proxy.ServeHTTP(w, r.WithContext(ctx))
}

// consistentRead reports whether the request asks for a read through the leader.
func consistentRead(r *http.Request) bool {
	v := r.URL.Query().Get("consistent")
	return v == "true" || v == "1"
}

// barrier makes a read linearizable: the leader confirms it still leads and has
// applied everything committed.
func (h *handler) barrier(ctx context.Context) error {
	if rep, ok := h.svc.(Replicated); ok {
		return rep.Barrier(ctx)
	}
	return nil
}

// readMaybeConsistent forwards ?consistent=true reads at a follower to the leader.
func (h *handler) readMaybeConsistent(next http.HandlerFunc) http.HandlerFunc {
	fwd := h.atLeader(next, false)
	return func(w http.ResponseWriter, r *http.Request) {
		if consistentRead(r) {
			fwd(w, r)
			return
		}
		next(w, r)
	}
}

func (h *handler) listReplicas(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionAdmin, nil); err != nil {
		return err
	}
	rep, ok := h.svc.(Replicated)
	if !ok {
		return newProblem(http.StatusNotFound, "not-found", "this node runs no raft group")
	}
	list, err := rep.Replicas()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"replicas": list})
	return nil
}

func (h *handler) addReplica(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionAdmin, nil); err != nil {
		return err
	}
	rep, ok := h.svc.(Replicated)
	if !ok {
		return newProblem(http.StatusNotFound, "not-found", "this node runs no raft group")
	}
	var req store.Replica
	if err := decodeReplica(r.Body, &req); err != nil {
		return err
	}
	if err := rep.AddReplica(r.Context(), req); err != nil {
		if errors.Is(err, node.ErrBadReplica) {
			return replicaRefused(err)
		}
		return err
	}
	h.audit(r, p, "replica.add", fmt.Sprintf("%s raft %s http %s peer %s", req.ID, req.RaftAddr, req.HTTP, req.PeerID))
	writeJSON(w, http.StatusOK, map[string]any{"added": req.ID})
	return nil
}

func (h *handler) removeReplica(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionAdmin, nil); err != nil {
		return err
	}
	rep, ok := h.svc.(Replicated)
	if !ok {
		return newProblem(http.StatusNotFound, "not-found", "this node runs no raft group")
	}
	id := r.PathValue("id")
	err := rep.RemoveReplica(r.Context(), id)
	if errors.Is(err, node.ErrLeadershipHandedOver) {
		// This replica led and was asked to remove itself: it handed
		// leadership over, and the new leader removes it (and audits that).
		// A second hop is safe here: the new leader does not hand over again.
		h.forwardToLeader(w, r, rep, nil)
		return nil
	}
	if errors.Is(err, node.ErrBadReplica) {
		return replicaRefused(err)
	}
	if errors.Is(err, node.ErrTimeout) && !errors.Is(err, node.ErrHandoverFailed) {
		// The removal (raft's configuration change, or forgetting the
		// addresses) may still commit, and a retry would then find nothing
		// to remove: record the attempt now.
		h.audit(r, p, "replica.remove", id+" (outcome unknown: timed out)")
	}
	if err != nil {
		return err
	}
	h.audit(r, p, "replica.remove", id)
	writeJSON(w, http.StatusOK, map[string]any{"removed": id})
	return nil
}

// maxReplicaBody bounds the body of a replica to add.
const maxReplicaBody = 64 << 10

// decodeReplica reads a replica to add: one JSON object of store.Replica's
// members and nothing after it; a 400 names the member at fault.
func decodeReplica(body io.Reader, req *store.Replica) error {
	// One byte past the bound tells a body cut at it from one that ends
	// there: what lay past it would otherwise go unread, and unrefused.
	lr := &io.LimitedReader{R: body, N: maxReplicaBody + 1}
	dec := json.NewDecoder(lr)
	dec.DisallowUnknownFields()
	err := dec.Decode(req)
	if err == nil && dec.More() {
		err = errors.New("data after the replica's JSON object")
	} else if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the replica's JSON object")
		}
	}
	if lr.N == 0 {
		err = fmt.Errorf("body longer than %d bytes", maxReplicaBody)
	}
	if err == nil {
		return nil
	}
	path, rule := "", schema.RuleSyntax
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &te):
		path, rule = te.Field, schema.RuleType
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json quotes the name with %q: unquoted, a name holding
		// a quote or a backslash is named as sent, not escaped.
		quoted := strings.TrimPrefix(err.Error(), "json: unknown field ")
		name, uerr := strconv.Unquote(quoted)
		if uerr != nil {
			name = strings.Trim(quoted, `"`)
		}
		path, rule = name, schema.RuleForbidden
	}
	p := newProblem(http.StatusBadRequest, "bad-request", "replica: "+err.Error())
	p.Errors = []FieldError{{Path: path, Rule: rule, Message: err.Error()}}
	return p
}

// replicaRefused is the 422 for a replica that may not join (or leave), naming
// the member at fault where the node says which.
func replicaRefused(err error) error {
	p := newProblem(http.StatusUnprocessableEntity, "validation", err.Error())
	field := ""
	var be *node.BadReplicaError
	if errors.As(err, &be) {
		field = be.Field
	}
	p.Errors = []FieldError{{Path: field, Rule: "refused", Message: err.Error()}}
	return p
}
