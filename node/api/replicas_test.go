package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
)

// handingOverLeader leads until asked to remove itself, then hands leadership
// to the replica at next, as node.RemoveReplica does.
type handingOverLeader struct {
	*fakeService
	next    string
	led     atomic.Bool
	removed atomic.Int32
}

func (l *handingOverLeader) IsLeader() bool { return l.led.Load() }
func (l *handingOverLeader) LeaderHTTP() string {
	if l.led.Load() {
		return ""
	}
	return l.next
}
func (l *handingOverLeader) Barrier(context.Context) error                   { return nil }
func (l *handingOverLeader) Replicas() ([]node.ReplicaInfo, error)           { return nil, nil }
func (l *handingOverLeader) AddReplica(context.Context, store.Replica) error { return nil }
func (l *handingOverLeader) RemoveReplica(_ context.Context, id string) error {
	l.removed.Add(1)
	if id == "tianjin-1" && l.led.Load() {
		l.led.Store(false)
		return node.ErrLeadershipHandedOver
	}
	return nil
}

// TestRemovingTheLeaderGoesToTheNext: a leader asked to remove itself hands
// leadership over, and the request (even one a follower already forwarded)
// goes on to the new leader, whose answer the caller gets.
func TestRemovingTheLeaderGoesToTheNext(t *testing.T) {
	var got atomic.Value
	next := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Method + " " + r.URL.Path + " forwarded by " + r.Header.Get(ForwardedHeader))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"removed":"tianjin-1"}`))
	}))
	defer next.Close()
	l := &handingOverLeader{next: next.URL}
	l.led.Store(true)
	l.fakeService = &fakeService{}
	e := newFakeEnv(t, l.fakeService, func(o *Options) { o.Service = l })
	admin := e.token(t, "tianjin", auth.ScopeAdmin)

	r := e.do(t, req{method: "DELETE", path: "/v1/admin/replicas/tianjin-1", token: admin, header: map[string]string{ForwardedHeader: "tianjin"}})
	wantStatus(t, r, http.StatusOK)
	if string(r.body) != `{"removed":"tianjin-1"}` || got.Load() != "DELETE /v1/admin/replicas/tianjin-1 forwarded by tianjin" {
		t.Fatalf("answer %s; the next leader saw %v", r.body, got.Load())
	}
	if l.removed.Load() != 1 {
		t.Fatalf("%d removals asked of the old leader, want 1", l.removed.Load())
	}
}

// timingOutRemover is a leader whose removal timed out (it may yet commit) and
// which keeps an audit log.
type timingOutRemover struct {
	handingOverLeader
	err    error
	mu     sync.Mutex
	events []string
}

func (l *timingOutRemover) RemoveReplica(context.Context, string) error { return l.err }
func (l *timingOutRemover) SignedBundle() []byte                        { return nil }
func (l *timingOutRemover) InstallBundle(context.Context, []byte, string) (*auth.Bundle, error) {
	return nil, errors.New("not here")
}
func (l *timingOutRemover) Audit(_ context.Context, _, action, detail string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, action+" "+detail)
	return nil
}
func (l *timingOutRemover) AuditLog(context.Context, uint64, int) ([]store.AuditEvent, error) {
	return nil, nil
}
func (l *timingOutRemover) PurgeOrigin(context.Context, string, string) (int, error) { return 0, nil }

// TestRemovalTimingOutIsAudited: a removal whose outcome is unknown answers 503
// and is audited as such, since a retry after it commits finds nothing to
// remove; a leader that could not hand leadership over removed nothing, and
// answers 503 without an audit event.
func TestRemovalTimingOutIsAudited(t *testing.T) {
	l := &timingOutRemover{err: fmt.Errorf("remove server: %w: %w", node.ErrTimeout, context.DeadlineExceeded)}
	l.led.Store(true)
	l.fakeService = &fakeService{}
	e := newFakeEnv(t, l.fakeService, func(o *Options) { o.Service = l })
	admin := e.token(t, "tianjin", auth.ScopeAdmin)
	r := e.do(t, req{method: "DELETE", path: "/v1/admin/replicas/tianjin-2", token: admin})
	wantStatus(t, r, http.StatusServiceUnavailable)
	l.mu.Lock()
	if want := []string{"replica.remove tianjin-2 (outcome unknown: timed out)"}; !slices.Equal(l.events, want) {
		t.Fatalf("audited %q, want %q", l.events, want)
	}
	l.events = nil
	l.err = fmt.Errorf("%w: hand leadership over: %w: %w", node.ErrHandoverFailed, node.ErrTimeout, context.DeadlineExceeded)
	l.mu.Unlock()
	r = e.do(t, req{method: "DELETE", path: "/v1/admin/replicas/tianjin-1", token: admin})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if p := r.problem(t); !strings.Contains(p.Detail, "not removed") {
		t.Errorf("detail %q", p.Detail)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) != 0 {
		t.Fatalf("a failed handover audited %q", l.events)
	}
}
