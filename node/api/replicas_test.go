package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
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

// laggingReplica is a replica whose state has not applied the last commit:
// its records are at version 1 until a Barrier applies version 2, as a
// state machine trails its log. It leads until led is cleared; then next
// is the leader's API.
type laggingReplica struct {
	handingOverLeader
	barriers   atomic.Int32
	barrierErr error
	applied    atomic.Bool
}

func (l *laggingReplica) Barrier(context.Context) error {
	l.barriers.Add(1)
	if l.barrierErr != nil {
		return l.barrierErr
	}
	l.applied.Store(true)
	return nil
}

func newLaggingReplica(barrierErr error) *laggingReplica {
	l := &laggingReplica{barrierErr: barrierErr}
	l.led.Store(true)
	record := func(id string) *schema.Record {
		v := uint64(1)
		if l.applied.Load() {
			v = 2
		}
		return &schema.Record{ID: id, Catalogue: "supply", Origin: "tianjin", Version: v, Visibility: "public", Body: json.RawMessage(`{"title":"高镍三元"}`)}
	}
	l.fakeService = &fakeService{
		get: func(_ context.Context, id string) (*schema.Record, error) { return record(id), nil },
		list: func(_ context.Context, q store.Query) ([]*schema.Record, string, error) {
			return []*schema.Record{record("tianjin:a")}, "", nil
		},
	}
	return l
}

// TestConsistentListReads: consistent=true makes a list, a search or an ids
// read wait for the leader's barrier, so it answers what was committed and
// not yet applied; without it the replica's own state answers. A barrier
// that fails answers its error, not stale records; consistent takes only
// true or false, and is the one parameter ids= takes beside it.
func TestConsistentListReads(t *testing.T) {
	for _, c := range []struct {
		query   string
		barrier bool
	}{
		{"ids=tianjin:a,tianjin:b", false},
		{"ids=tianjin:a,tianjin:b&consistent=false", false},
		{"ids=tianjin:a,tianjin:b&consistent=true", true},
		{"consistent=1&ids=tianjin:a", true},
		{"catalogue=supply&consistent=true", true},
		{"q=%E9%AB%98%E9%95%8D&consistent=true", true},
		{"catalogue=supply", false},
	} {
		l := newLaggingReplica(nil)
		e := newFakeEnv(t, l.fakeService, func(o *Options) { o.Service = l })
		r := e.do(t, req{method: "GET", path: "/v1/records?" + c.query})
		wantStatus(t, r, http.StatusOK)
		var page struct{ Items []*schema.Record }
		if err := json.Unmarshal(r.body, &page); err != nil || len(page.Items) == 0 {
			t.Fatalf("%s: answered %s (%v)", c.query, r.body, err)
		}
		want := uint64(1)
		if c.barrier {
			want = 2
		}
		for _, rec := range page.Items {
			if rec.Version != want {
				t.Errorf("%s: %s at version %d, want %d", c.query, rec.ID, rec.Version, want)
			}
		}
		if n := l.barriers.Load(); (n == 1) != c.barrier || n > 1 {
			t.Errorf("%s: %d barriers", c.query, n)
		}
	}

	l := newLaggingReplica(fmt.Errorf("barrier: %w", node.ErrNotLeader))
	e := newFakeEnv(t, l.fakeService, func(o *Options) { o.Service = l })
	r := e.do(t, req{method: "GET", path: "/v1/records?ids=tianjin:a&consistent=true"})
	if r.StatusCode != http.StatusServiceUnavailable || strings.Contains(string(r.body), "tianjin:a") {
		t.Errorf("a failed barrier answered %d %s", r.StatusCode, r.body)
	}

	for q, blamed := range map[string]string{
		"ids=tianjin:a&consistent=maybe":                "consistent",
		"catalogue=supply&consistent=yes":               "consistent",
		"ids=tianjin:a&consistent=true&limit=5":         "ids",
		"ids=tianjin:a&consistent=true&consistent=true": "consistent",
	} {
		r := e.do(t, req{method: "GET", path: "/v1/records?" + q})
		if r.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", q, r.StatusCode, r.body)
			continue
		}
		if p := r.problem(t); len(p.Errors) == 0 || p.Errors[0].Path != blamed {
			t.Errorf("%s: blamed %+v, want %s", q, p.Errors, blamed)
		}
	}
}

// TestConsistentListReadsGoToTheLeader: at a follower, a list or ids read
// with consistent=true goes, as it came, to the leader; without it the
// follower answers from its own state.
func TestConsistentListReadsGoToTheLeader(t *testing.T) {
	var got atomic.Value
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.URL.RequestURI() + " forwarded by " + r.Header.Get(ForwardedHeader))
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"items":[]}`))
	}))
	defer leader.Close()
	f := newLaggingReplica(nil)
	f.led.Store(false)
	f.next = leader.URL
	e := newFakeEnv(t, f.fakeService, func(o *Options) { o.Service = f })

	for _, q := range []string{"ids=tianjin:a&consistent=true", "catalogue=supply&consistent=1"} {
		got.Store("")
		r := e.do(t, req{method: "GET", path: "/v1/records?" + q})
		wantStatus(t, r, http.StatusOK)
		if want := "/v1/records?" + q + " forwarded by tianjin"; got.Load() != want {
			t.Errorf("the leader saw %q, want %q", got.Load(), want)
		}
	}
	got.Store("")
	r := e.do(t, req{method: "GET", path: "/v1/records?ids=tianjin:a"})
	wantStatus(t, r, http.StatusOK)
	if got.Load() != "" || !strings.Contains(string(r.body), `"version":1`) || f.barriers.Load() != 0 {
		t.Errorf("a plain ids read at a follower: the leader saw %q; answered %s; %d barriers", got.Load(), r.body, f.barriers.Load())
	}
}

// TestFollowerRefusesWhatNoLeaderWouldTake: a follower answers 401 itself to
// a request whose token no bundle or clock of the leader's could accept, and
// to a write without a token, at once, even during an election; it forwards
// what only the leader can judge (a key or issuer its bundle may hold, a
// validity its clock decides) and anonymous consistent reads.
func TestFollowerRefusesWhatNoLeaderWouldTake(t *testing.T) {
	var forwarded atomic.Int32
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		forwarded.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"items":[]}`))
	}))
	defer leader.Close()
	f := newLaggingReplica(nil)
	f.led.Store(false)
	e := newFakeEnv(t, f.fakeService, func(o *Options) { o.Service = f })
	valid := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	tampered := valid[:len(valid)-4] + "AAAA"
	if tampered == valid {
		tampered = valid[:len(valid)-4] + "BBBB"
	}
	newKey := &auth.TokenIssuer{Centre: "tianjin", Federation: testFederation, Key: mustKey(t, "tianjin-tok-next")}
	unknownKey, err := newKey.Issue("partner", []auth.Scope{auth.ScopeWrite}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	expired, err := e.issuers["tianjin"].Issue("partner", []auth.Scope{auth.ScopeWrite}, time.Hour, time.Now().Add(-3*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	put := func(token string) req {
		return req{method: "PUT", path: "/v1/records/tianjin:a", token: token, body: envelope("supply", "federation", supplyBody("x"))}
	}
	read := func(token string) req {
		return req{method: "GET", path: "/v1/records?ids=tianjin:a&consistent=true", token: token}
	}
	for _, c := range []struct {
		name    string
		rq      req
		forward bool
	}{
		{"write with a valid token", put(valid), true},
		{"write with a key the follower's bundle lacks", put(unknownKey), true},
		{"write with a token expired by the follower's clock", put(expired), true},
		{"write without a token", put(""), false},
		{"write with a malformed token", put("not.a.token"), false},
		{"write with a bad signature", put(tampered), false},
		{"consistent read without a token", read(""), true},
		{"consistent read with a malformed token", read("x"), false},
		{"consistent read with a bad signature", read(tampered), false},
	} {
		for _, electing := range []bool{false, true} {
			f.next = leader.URL
			if electing {
				if c.forward {
					continue // it waits for a leader, as before
				}
				f.next = ""
			}
			forwarded.Store(0)
			start := time.Now()
			r := e.do(t, c.rq)
			switch {
			case c.forward && (forwarded.Load() != 1 || r.StatusCode != http.StatusOK):
				t.Errorf("%s: %d, forwarded %d times; want it forwarded", c.name, r.StatusCode, forwarded.Load())
			case !c.forward && (forwarded.Load() != 0 || r.StatusCode != http.StatusUnauthorized || r.problem(t).Type != ProblemTypePrefix+"unauthorized"):
				t.Errorf("%s (election %v): %d, forwarded %d times; want 401 from the follower", c.name, electing, r.StatusCode, forwarded.Load())
			case !c.forward && time.Since(start) > time.Second:
				t.Errorf("%s (election %v): answered after %v", c.name, electing, time.Since(start))
			}
		}
	}
}
