package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

// quorumlessLeader leads but cannot run a barrier (its voters are away).
type quorumlessLeader struct {
	replicaAt
}

func (q *quorumlessLeader) Barrier(context.Context) error {
	q.barriers++
	return fmt.Errorf("barrier: %w", node.ErrTimeout)
}

// TestRefusalsNotDecidedOnStateSkipTheBarrier (review 112): 0a3a0eb ran a barrier
// before every 412 and 404 "decided on local state". Two refusals are not:
// a DELETE of another centre's record by a writer of this centre is a 403
// whatever the version, and an If-Match that names no version (a weak tag)
// is a 412 whatever the state. While a barrier cannot run (quorum lost),
// they must stay 403 and 412, as they were, and as the same DELETE with the
// current version still is (403): otherwise the answer (403 or 503) tells a
// caller without the right to delete the record whether it guessed the
// record's version.
func TestRefusalsNotDecidedOnStateSkipTheBarrier(t *testing.T) {
	rec := &schema.Record{ID: "hebei:r1", Origin: "hebei", Catalogue: "supply", Visibility: schema.VisibilityFederation, Version: 3,
		Body: json.RawMessage(`{"title":"钙钛矿","summary":"中试","industry":"new-energy"}`)}
	svc := &fakeService{get: func(_ context.Context, id string) (*schema.Record, error) {
		if id == rec.ID {
			return rec.Clone(), nil
		}
		return nil, store.ErrNotFound
	}}
	rep := &quorumlessLeader{replicaAt{fakeService: svc, lead: true}}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = rep })
	w := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)

	right := e.do(t, req{method: "DELETE", path: "/v1/records/" + rec.ID, token: w, header: map[string]string{"If-Match": `"3"`}})
	wantStatus(t, right, http.StatusForbidden)
	wrong := e.do(t, req{method: "DELETE", path: "/v1/records/" + rec.ID, token: w, header: map[string]string{"If-Match": `"2"`}})
	if wrong.StatusCode != http.StatusForbidden {
		t.Errorf("DELETE of another centre's record, If-Match of another version: %d %s (barriers run: %d), want 403 as with the current version", wrong.StatusCode, wrong.body, rep.barriers)
	}
	// With the pii scope and a visibility sent, nothing is kept from a
	// record replaced: put's earlier barrier (keepsUnread) does not run.
	wp := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	weak := e.do(t, req{method: "PUT", path: "/v1/records/tianjin:r2", token: wp, header: map[string]string{"If-Match": `W/"3"`},
		body: map[string]any{"catalogue": "supply", "visibility": "federation", "body": map[string]any{"title": "t", "summary": "s", "industry": "new-energy"}}})
	if weak.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("PUT with an If-Match that can match no version: %d %s, want 412", weak.StatusCode, weak.body)
	}
}
