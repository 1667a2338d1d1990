package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"liandong/auth"
	"liandong/node/store"
	"liandong/schema"
)

// TestFollowerSendsAnOriginItDoesNotKnowToTheLeader: a centre just added to
// the federation is known from the raft entry that installs the bundle
// listing it; a follower that has not applied that entry yet (or holds none
// of the centre's records yet) cannot tell it from a typo. It answered 400,
// which the Go client's feed follower takes as final, while the leader and
// every caught-up replica answered 200: a partner behind a load balancer
// had its mirror of the new centre stopped by replication lag. The follower
// now sends such a request to the leader, as it does a plain cursor past
// its head, and relays its answer; a request already forwarded is a 503
// (retry), never a 400 from a replica that cannot tell.
func TestFollowerSendsAnOriginItDoesNotKnowToTheLeader(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Path+"?"+r.URL.RawQuery+" forwarded:"+r.Header.Get(ForwardedHeader))
		mu.Unlock()
		if r.URL.Path == "/v1/changes/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK) // the leader knows xiongan; the stream ends with the test
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/changes" {
			json.NewEncoder(w).Encode(map[string]any{"changes": []any{}, "next_cursor": encodePosition(7, "")})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"items": []any{}})
	}))
	defer leader.Close()
	svc := &fakeService{feedHead: 7,
		list: func(context.Context, store.Query) ([]*schema.Record, string, error) { return nil, "", nil },
		changes: func(_ context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
			return nil, since, nil
		}}
	rep := &replicaAt{fakeService: svc, leader: leader.URL}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = rep })
	tok := e.token(t, "tianjin", auth.ScopeRead)

	paths := []string{"/v1/records?origin=xiongan", "/v1/records?origin=xiongan&q=%E9%92%99", "/v1/changes?origin=xiongan&since=0", "/v1/changes/stream?origin=xiongan"}
	for _, path := range paths {
		r := e.do(t, req{method: "GET", path: path, token: tok})
		wantStatus(t, r, http.StatusOK)
	}
	mu.Lock()
	if len(asked) != len(paths) {
		t.Fatalf("the leader was asked %q, want the %d requests naming xiongan", asked, len(paths))
	}
	for i, a := range asked {
		if want := paths[i] + " forwarded:tianjin"; a != want {
			t.Errorf("the leader was asked %q, want %q", a, want)
		}
	}
	mu.Unlock()

	// Known here: served here, the leader not asked.
	wantStatus(t, e.do(t, req{method: "GET", path: "/v1/records?origin=hebei", token: tok}), http.StatusOK)
	// Already forwarded (a stale leader hint): retry, not a verdict.
	f := e.do(t, req{method: "GET", path: "/v1/records?origin=xiongan", token: tok, header: map[string]string{ForwardedHeader: "tianjin"}})
	wantStatus(t, f, http.StatusServiceUnavailable)
	if f.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != len(paths) {
		t.Fatalf("the leader was asked again: %q", asked)
	}
}

// leaderBehindOnBundle is a leader that has not applied the committed entry
// installing the bundle that lists xiongan until a barrier makes it.
type leaderBehindOnBundle struct {
	*replicaAt
	next *auth.Bundle
}

func (l *leaderBehindOnBundle) Barrier(ctx context.Context) error {
	l.replicaAt.Barrier(ctx)
	if l.next != nil {
		l.fakeService.bundle = l.next
	}
	return nil
}

// TestLeaderAppliesWhatIsCommittedBeforeRefusingAnOrigin: a leader (one just
// elected, say) may not have applied every committed entry, the bundle that
// lists a new centre among them; it refuses an origin only once a barrier
// has it apply them, and a typo is still a 400 then.
func TestLeaderAppliesWhatIsCommittedBeforeRefusingAnOrigin(t *testing.T) {
	svc := &fakeService{list: func(context.Context, store.Query) ([]*schema.Record, string, error) { return nil, "", nil }}
	l := &leaderBehindOnBundle{replicaAt: &replicaAt{fakeService: svc, lead: true}}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = l })
	next := *svc.bundle
	next.Members = append(append([]auth.Member(nil), next.Members...), auth.Member{ID: "xiongan"})
	l.next = &next
	tok := e.token(t, "tianjin", auth.ScopeRead)

	wantStatus(t, e.do(t, req{method: "GET", path: "/v1/records?origin=hebei", token: tok}), http.StatusOK)
	if l.barriers != 0 {
		t.Fatalf("%d barriers for a centre the leader knows", l.barriers)
	}
	wantStatus(t, e.do(t, req{method: "GET", path: "/v1/records?origin=xiongan", token: tok}), http.StatusOK)
	if l.barriers != 1 {
		t.Fatalf("%d barriers, want 1", l.barriers)
	}
	r := e.do(t, req{method: "GET", path: "/v1/changes?origin=tianjn", token: tok})
	wantStatus(t, r, http.StatusBadRequest)
	if p := r.problem(t); len(p.Errors) != 1 || p.Errors[0].Path != "origin" {
		t.Fatalf("%s", r.body)
	}
}
