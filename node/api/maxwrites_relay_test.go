package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
	"liandong/schema"
)

// TestFollowerRelayingA429ShedsNothing: writes at a follower go to the raft
// leader, and the leader's 429 comes back through the follower, whose
// liandong_http_requests_total counts it as its own answer. An alert on that
// counter fired at every follower, each showing its write slots unused, as
// the replica refusing writes. liandong_http_writes_shed_total counts the
// refusals a node decides itself: the leader's, not the relays.
func TestFollowerRelayingA429ShedsNothing(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	lsvc := &fakeService{create: func(ctx context.Context, rec *schema.Record) (*schema.Record, error) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		out := rec.Clone()
		out.ID, out.Version = "tianjin:01FAKE", 1
		return out, nil
	}}
	lreg := prometheus.NewRegistry()
	leader := newFakeEnv(t, lsvc, func(o *Options) {
		o.MaxWrites, o.Registerer = 1, lreg
		o.Service = &replicaAt{fakeService: lsvc, lead: true}
	})
	fsvc := &fakeService{}
	freg := prometheus.NewRegistry()
	follower := newFakeEnv(t, fsvc, func(o *Options) {
		o.MaxWrites, o.Registerer = 1, freg
		o.Service = &replicaAt{fakeService: fsvc, leader: leader.srv.URL}
	})
	fsvc.bundle = lsvc.bundle // one centre: one bundle
	writer := leader.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	body := envelope("supply", "federation", supplyBody("连续纤维增强热塑性复合材料"))

	held := make(chan int, 1)
	go func() {
		held <- leader.do(t, req{method: "POST", path: "/v1/records", token: writer, body: body}).StatusCode
	}()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the write holding the leader's slot did not reach it in 10 s")
	}
	r := follower.do(t, req{method: "POST", path: "/v1/records", token: writer, body: body})
	wantStatus(t, r, http.StatusTooManyRequests)
	if got := r.Header.Get("Retry-After"); got != "1" {
		t.Errorf("relayed 429: Retry-After %q, want 1", got)
	}
	close(release)
	if code := <-held; code != http.StatusCreated {
		t.Fatalf("held write answered %d", code)
	}

	fm, lm := series(t, freg), series(t, lreg)
	if got := fm["liandong_http_requests_total"]["/v1/records POST 429"]; got != 1 {
		t.Errorf("follower's requests_total{code=429} %v, want 1 (its relay)", got)
	}
	if got := fm["liandong_http_writes_shed_total"][""]; got != 0 {
		t.Errorf("follower's writes_shed_total %v, want 0: it refused nothing itself", got)
	}
	if got := lm["liandong_http_writes_shed_total"][""]; got != 1 {
		t.Errorf("leader's writes_shed_total %v, want 1", got)
	}
}
