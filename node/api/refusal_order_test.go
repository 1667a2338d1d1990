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

// quorumlessEnv serves tianjin through a leader that has lost its quorum (no
// barrier completes) and holds one record, hebei's.
func quorumlessEnv(t *testing.T) (*fakeEnv, *quorumlessLeader, *schema.Record) {
	t.Helper()
	rec := &schema.Record{ID: "hebei:r1", Origin: "hebei", Catalogue: "supply", Visibility: schema.VisibilityFederation, Version: 3,
		Body: json.RawMessage(`{"title":"钙钛矿","summary":"中试","industry":"new-energy"}`)}
	svc := &fakeService{get: func(_ context.Context, id string) (*schema.Record, error) {
		if id == rec.ID {
			return rec.Clone(), nil
		}
		return nil, store.ErrNotFound
	}}
	rep := &quorumlessLeader{replicaAt{fakeService: svc, lead: true}}
	return newFakeEnv(t, svc, func(o *Options) { o.Service = rep }), rep, rec
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
	e, rep, rec := quorumlessEnv(t)
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

// TestStateIndependentRefusalsSkipTheBarrier (review 113): refusals that do not
// depend on what the leader has applied (another centre's record, an If-Match
// naming no version) run no barrier, so they stay definitive while quorum is
// lost; a DELETE of another centre's id is 403 whether this node holds it or
// not, alone or as a batch item.
func TestStateIndependentRefusalsSkipTheBarrier(t *testing.T) {
	e, rep, _ := quorumlessEnv(t)
	w := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)

	// (a) Another centre's id: 403 whatever the state (the id names its
	// origin). Present: 403. Absent here: 503 (404 before 0a3a0eb).
	present := e.do(t, req{method: "DELETE", path: "/v1/records/hebei:r1", token: w})
	wantStatus(t, present, http.StatusForbidden)
	absent := e.do(t, req{method: "DELETE", path: "/v1/records/hebei:r9", token: w})
	if absent.StatusCode != present.StatusCode {
		t.Errorf("(a) DELETE of another centre's id this node lacks: %d %s, want %d as for one it holds", absent.StatusCode, absent.body, present.StatusCode)
	}
	// The same as a batch item.
	b := e.do(t, req{method: "POST", path: "/v1/batch", token: w, body: map[string]any{"items": []map[string]any{
		{"method": "DELETE", "id": "hebei:r1"}, {"method": "DELETE", "id": "hebei:r9"}}}})
	wantStatus(t, b, http.StatusOK)
	var doc struct{ Items []struct{ Status int } }
	if err := json.Unmarshal(b.body, &doc); err != nil || len(doc.Items) != 2 {
		t.Fatalf("batch answer %s: %v", b.body, err)
	}
	if doc.Items[0].Status != doc.Items[1].Status {
		t.Errorf("(a) batch DELETE items: held %d, not held %d, want the same", doc.Items[0].Status, doc.Items[1].Status)
	}

	// (b) A weak If-Match on a DELETE of a record this node lacks: the
	// weak tag can match nothing whatever the state, yet the barrier runs.
	weakDel := e.do(t, req{method: "DELETE", path: "/v1/records/tianjin:r2", token: w, header: map[string]string{"If-Match": `W/"3"`}})
	if weakDel.StatusCode == http.StatusServiceUnavailable {
		t.Errorf("(b) DELETE with a weak If-Match: %d %s, want a definitive 412 (PUT's answer) or 404", weakDel.StatusCode, weakDel.body)
	}

	// (c) A weak If-Match on a PUT that sends no visibility (the usual PUT):
	// put's keepsUnread barrier runs before the weak tag is looked at.
	weakPut := e.do(t, req{method: "PUT", path: "/v1/records/tianjin:r2", token: w, header: map[string]string{"If-Match": `W/"3"`},
		body: map[string]any{"catalogue": "supply", "body": map[string]any{"title": "t", "summary": "s", "industry": "new-energy"}}})
	if weakPut.StatusCode != http.StatusPreconditionFailed {
		t.Errorf("(c) PUT without visibility, weak If-Match: %d %s, want 412", weakPut.StatusCode, weakPut.body)
	}
	t.Logf("barriers run: %d", rep.barriers)
}
