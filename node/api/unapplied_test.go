package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

// unappliedLeader is a leader whose state file still lacks record hide,
// written and acknowledged under the previous leader, until a barrier: the
// state of a replica just handed leadership (node: TestNewLeaderServesBeforeApplying
// shows it in 19 transfers of 20), which applies the previous term's entries
// only once its own first entry commits.
type unappliedLeader struct {
	*node.Node
	hide   string
	synced atomic.Bool
}

func (u *unappliedLeader) Get(ctx context.Context, id string) (*schema.Record, error) {
	if id == u.hide && !u.synced.Load() {
		return nil, store.ErrNotFound
	}
	return u.Node.Get(ctx, id)
}

func (u *unappliedLeader) Barrier(ctx context.Context) error {
	u.synced.Store(true)
	return u.Node.Barrier(ctx)
}

// TestRefusalsWaitForTheLeadersLog: a DELETE, or a PUT or DELETE with an
// If-Match naming the current version, of a record acknowledged before the
// request was sent is not refused (404, 412) because the leader has yet to
// apply it: a 404 or 412 is a definitive answer, and a client believes it.
func TestRefusalsWaitForTheLeadersLog(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	for _, tc := range []struct {
		name   string
		method string
		header map[string]string
		want   int
	}{
		{"DELETE", "DELETE", nil, http.StatusOK},
		{"DELETE If-Match", "DELETE", map[string]string{"If-Match": `"1"`}, http.StatusOK},
		{"PUT If-Match", "PUT", map[string]string{"If-Match": `"1"`}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := e.create(t, "supply", "federation", supplyBody("已确认的写入"))
			svc := &unappliedLeader{Node: e.node, hide: rec.ID}
			h, err := New(Options{Service: svc, Verifier: e.h.(*handler).verifier, Authorizer: e.h.(*handler).authz, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(h)
			defer srv.Close()
			rq := req{method: tc.method, path: "/v1/records/" + rec.ID, token: w, header: tc.header}
			if tc.method == "PUT" {
				rq.body = envelope("supply", "federation", supplyBody("改写"))
			}
			r := doHTTP(t, srv.Client(), srv.URL, rq)
			wantStatus(t, r, tc.want)
		})
	}
}
