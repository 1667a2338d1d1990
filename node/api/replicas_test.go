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
	mu     sync.Mutex
	events []string
}

func (l *timingOutRemover) RemoveReplica(context.Context, string) error {
	return fmt.Errorf("remove server: %w: %w", node.ErrTimeout, context.DeadlineExceeded)
}
func (l *timingOutRemover) SignedBundle() []byte { return nil }
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
// and is audited as such, since a retry after it commits finds nothing to remove.
func TestRemovalTimingOutIsAudited(t *testing.T) {
	l := &timingOutRemover{}
	l.led.Store(true)
	l.fakeService = &fakeService{}
	e := newFakeEnv(t, l.fakeService, func(o *Options) { o.Service = l })
	r := e.do(t, req{method: "DELETE", path: "/v1/admin/replicas/tianjin-2", token: e.token(t, "tianjin", auth.ScopeAdmin)})
	wantStatus(t, r, http.StatusServiceUnavailable)
	l.mu.Lock()
	defer l.mu.Unlock()
	if want := []string{"replica.remove tianjin-2 (outcome unknown: timed out)"}; !slices.Equal(l.events, want) {
		t.Fatalf("audited %q, want %q", l.events, want)
	}
}

// TestJoinRefusesOlderBuilds: once the feed is named, a replica whose /healthz
// does not list the feature (an older build) or does not answer is refused
// with 422 and not added; a current one is added. Before the naming, nothing
// is asked.
func TestJoinRefusesOlderBuilds(t *testing.T) {
	health := func(body string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	current := health(`{"status":"ok","features":["feed-epoch"]}`)
	older := health(`{"status":"ok"}`)
	gone := health(`{}`)
	gone.Close()
	l := &joiningLeader{}
	l.led.Store(true)
	l.fakeService = &fakeService{feedEpoch: "e1"}
	e := newFakeEnv(t, l.fakeService, func(o *Options) { o.Service = l })
	admin := e.token(t, "tianjin", auth.ScopeAdmin)
	join := func(url string) *resp {
		return e.do(t, req{method: "POST", path: "/v1/admin/replicas", token: admin,
			body: map[string]any{"id": "tianjin-9", "raft_addr": "127.0.0.1:1", "http": url, "peer_id": "p"}})
	}
	for _, c := range []struct {
		name, url, detail string
	}{
		{"an older build", older.URL, "older build"},
		{"one that does not answer", gone.URL, "does not answer"},
	} {
		r := join(c.url)
		wantStatus(t, r, http.StatusUnprocessableEntity)
		if p := r.problem(t); !strings.Contains(p.Detail, c.detail) {
			t.Errorf("%s: %q", c.name, p.Detail)
		}
	}
	if n := l.added.Load(); n != 0 {
		t.Fatalf("%d replicas added", n)
	}
	wantStatus(t, join(current.URL), http.StatusOK)
	l.fakeService.feedEpoch = ""
	wantStatus(t, join(older.URL), http.StatusOK)
	if n := l.added.Load(); n != 2 {
		t.Fatalf("%d replicas added, want the current one and, before the naming, the older", n)
	}
}

// joiningLeader is a leader that counts the replicas it adds.
type joiningLeader struct {
	handingOverLeader
	added atomic.Int32
}

func (l *joiningLeader) AddReplica(context.Context, store.Replica) error {
	l.added.Add(1)
	return nil
}
