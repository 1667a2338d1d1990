package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
)

// TestFollowerSendsATokenOfAnIssuerItDoesNotKnowToTheLeader (review 150):
// the bundle that lists a centre just added, or a key just added, reaches a
// follower through raft, as the origin= check's bundle does
// (TestFollowerSendsAnOriginItDoesNotKnowToTheLeader). A follower that had
// not applied it yet answered the new centre's partners 401 on every read
// (the feed, its stream, lists), which the Go client's feed follower takes as
// final, while the leader and caught-up replicas answered 200: the origin
// fix never ran, the token being checked first. The follower now sends a
// read whose token names an issuer or key it does not know to the leader,
// with the token and query as they came, and relays its answer; a request
// already forwarded is a 503 (retry); a token it can judge (a bad
// signature) is still its own 401.
func TestFollowerSendsATokenOfAnIssuerItDoesNotKnowToTheLeader(t *testing.T) {
	var mu sync.Mutex
	var asked []string
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked = append(asked, r.URL.Path+"?"+r.URL.RawQuery+" "+r.Header.Get("Authorization")+" forwarded:"+r.Header.Get(ForwardedHeader))
		mu.Unlock()
		if r.URL.Path == "/v1/changes/stream" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(http.StatusOK) // the stream ends with the handler
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"items": []any{}, "changes": []any{}, "next_cursor": encodePosition(7, "")})
	}))
	defer leader.Close()
	svc := &fakeService{feedHead: 7}
	rep := &replicaAt{fakeService: svc, leader: leader.URL}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = rep })
	hebei := e.token(t, "hebei", auth.ScopeRead)
	// This follower has yet to apply the bundle that lists hebei.
	behind := *svc.bundle
	behind.Members = behind.Members[:1]
	if behind.Members[0].ID != "tianjin" {
		t.Fatalf("premise: fixture's first member %q", behind.Members[0].ID)
	}
	svc.bundle = &behind

	paths := []string{"/v1/records?origin=hebei&limit=3", "/v1/changes?origin=hebei&since=0", "/v1/changes/stream?origin=hebei"}
	for _, path := range paths {
		r := e.do(t, req{method: "GET", path: path, token: hebei})
		wantStatus(t, r, http.StatusOK)
	}
	mu.Lock()
	if len(asked) != len(paths) {
		t.Fatalf("the leader was asked %q, want the %d requests", asked, len(paths))
	}
	for i, a := range asked {
		if want := paths[i] + " Bearer " + hebei + " forwarded:tianjin"; a != want {
			t.Errorf("the leader was asked %q, want %q", a, want)
		}
	}
	mu.Unlock()

	// Already forwarded (a stale leader hint): retry, not a verdict.
	f := e.do(t, req{method: "GET", path: paths[0], token: hebei, header: map[string]string{ForwardedHeader: "tianjin"}})
	wantStatus(t, f, http.StatusServiceUnavailable)
	if f.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	// A token this follower can judge is judged here: a known issuer's
	// token with a broken signature.
	tj := e.token(t, "tianjin", auth.ScopeRead)
	bad := tj[:len(tj)-4] + "AAAA"
	if bad == tj {
		bad = tj[:len(tj)-4] + "BBBB"
	}
	wantStatus(t, e.do(t, req{method: "GET", path: paths[0], token: bad}), http.StatusUnauthorized)
	mu.Lock()
	defer mu.Unlock()
	if len(asked) != len(paths) {
		t.Fatalf("the leader was asked again: %q", asked)
	}
}

// leaderBehindOnTerm is a leader just elected that has not applied its
// predecessors' log, the entry installing the bundle that lists hebei among
// it, until it awaits its term's log (node.Node.AwaitTermApplied).
type leaderBehindOnTerm struct {
	*replicaAt
	next  *auth.Bundle
	waits int
	err   error // the wait's, when not nil: nothing applied
}

func (l *leaderBehindOnTerm) AwaitTermApplied(context.Context) error {
	l.waits++
	if l.err != nil {
		return l.err
	}
	if l.next != nil {
		l.fakeService.bundle = l.next
	}
	return nil
}

// TestLeaderAppliesItsTermsLogBeforeRefusingAnUnknownIssuer (review 152 of
// 5ee3ce0): a follower that does not know a token's issuer or key sends the
// request to the leader, which alone can tell; but a leader just elected
// applies its predecessors' entries, the bundle listing a centre just added
// among them, only once its own first entry commits (or a slow disk lets
// it). It refused the new centre's token 401 from the bundle it held, the
// final answer the forwarding was to spare the Go client's feed follower.
// It now refuses such a token only once it has applied its term's log (one
// wait a term, not a barrier per request: a token of no member costs a
// leader no raft round); a token it can judge costs no wait.
func TestLeaderAppliesItsTermsLogBeforeRefusingAnUnknownIssuer(t *testing.T) {
	svc := &fakeService{feedHead: 7,
		changes: func(_ context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
			return nil, since, nil
		}}
	l := &leaderBehindOnTerm{replicaAt: &replicaAt{fakeService: svc, lead: true}}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = l })
	hebei := e.token(t, "hebei", auth.ScopeRead)
	next := *svc.bundle
	behind := *svc.bundle
	behind.Members = behind.Members[:1]
	if behind.Members[0].ID != "tianjin" {
		t.Fatalf("premise: fixture's first member %q", behind.Members[0].ID)
	}
	svc.bundle = &behind

	tj := e.token(t, "tianjin", auth.ScopeRead)
	bad := tj[:len(tj)-4] + "AAAA"
	if bad == tj {
		bad = tj[:len(tj)-4] + "BBBB"
	}
	wantStatus(t, e.do(t, req{method: "GET", path: "/v1/changes?since=0", token: bad}), http.StatusUnauthorized)
	if l.waits != 0 {
		t.Fatalf("%d waits for a token the leader can judge", l.waits)
	}
	l.next = &next
	// The wait ended (the apply timeout) before the log was applied: retry,
	// not a verdict.
	l.err = node.ErrTimeout
	r := e.do(t, req{method: "GET", path: "/v1/changes?since=0", token: hebei, header: map[string]string{ForwardedHeader: "tianjin"}})
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.Header.Get("Retry-After") == "" {
		t.Fatal("503 without Retry-After")
	}
	l.err = nil
	r = e.do(t, req{method: "GET", path: "/v1/changes?since=0", token: hebei, header: map[string]string{ForwardedHeader: "tianjin"}})
	wantStatus(t, r, http.StatusOK)
	if l.waits != 2 {
		t.Fatalf("%d waits, want 2", l.waits)
	}
	// A centre no bundle lists: still 401, with its challenge, once applied.
	l.next = nil
	xiongan, err := (&auth.TokenIssuer{Centre: "xiongan", Federation: testFederation, Key: mustKey(t, "xiongan-tok")}).Issue("partner-xiongan", []auth.Scope{auth.ScopeRead}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r = e.do(t, req{method: "GET", path: "/v1/changes?since=0", token: xiongan})
	wantStatus(t, r, http.StatusUnauthorized)
	if got := r.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate %q", got)
	}
	if l.waits != 3 {
		t.Fatalf("%d waits, want 3", l.waits)
	}
}

// The node is what the API asks to await its term's log.
var _ termApplier = (*node.Node)(nil)

// TestLeaderRefusesAnUnknownIssuerOnceApplied: at a real node that leads,
// a token of no member is still refused 401 with its challenge, for reads
// and writes, once its term's log is applied.
func TestLeaderRefusesAnUnknownIssuerOnceApplied(t *testing.T) {
	e := newEnv(t, false)
	xiongan, err := (&auth.TokenIssuer{Centre: "xiongan", Federation: testFederation, Key: mustKey(t, "xiongan-tok")}).Issue("partner-xiongan", []auth.Scope{auth.ScopeRead, auth.ScopeWrite}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, rq := range []req{{method: "GET", path: "/v1/records", token: xiongan}, {method: "DELETE", path: "/v1/records/x", token: xiongan}} {
		r := e.do(t, rq)
		wantStatus(t, r, http.StatusUnauthorized)
		if got := r.Header.Get("WWW-Authenticate"); !strings.Contains(got, `error="invalid_token"`) {
			t.Fatalf("%s %s: WWW-Authenticate %q", rq.method, rq.path, got)
		}
	}
}

// TestFollowerRelaysTheLeadersVerdictOnAnUnknownIssuer (review 152): a
// follower and a leader, each a real API: the follower, behind on the
// bundle, sends hebei's token to the leader, which takes it; a token of no
// member is the leader's 401, relayed with its Bearer challenge; a token the
// follower can judge (hebei's key, but a claim changed under its signature)
// never reaches the leader.
func TestFollowerRelaysTheLeadersVerdictOnAnUnknownIssuer(t *testing.T) {
	changes := func(_ context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
		return nil, since, nil
	}
	var leaderAsked atomic.Int32
	lsvc := &fakeService{feedHead: 7, changes: changes}
	lrep := &replicaAt{fakeService: lsvc, lead: true}
	le := newFakeEnv(t, lsvc, func(o *Options) { o.Service = lrep })
	counted := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaderAsked.Add(1)
		le.h.ServeHTTP(w, r)
	}))
	defer counted.Close()

	fsvc := &fakeService{feedHead: 7, changes: changes}
	frep := &replicaAt{fakeService: fsvc, leader: counted.URL}
	fe := newFakeEnv(t, fsvc, func(o *Options) { o.Service = frep })
	behind := *lsvc.bundle
	behind.Members = behind.Members[:1]
	fsvc.bundle = &behind

	hebei := le.token(t, "hebei", auth.ScopeRead)
	wantStatus(t, fe.do(t, req{method: "GET", path: "/v1/changes?since=0", token: hebei}), http.StatusOK)
	if got := leaderAsked.Load(); got != 1 {
		t.Fatalf("leader asked %d times, want 1", got)
	}
	xiongan, err := (&auth.TokenIssuer{Centre: "xiongan", Federation: testFederation, Key: mustKey(t, "xiongan-tok")}).Issue("partner-xiongan", []auth.Scope{auth.ScopeRead}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	r := fe.do(t, req{method: "GET", path: "/v1/changes?since=0", token: xiongan})
	wantStatus(t, r, http.StatusUnauthorized)
	if got := r.Header.Values("WWW-Authenticate"); len(got) != 1 || !strings.Contains(got[0], `error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate %q, want the leader's one invalid_token challenge", got)
	}
	if got := leaderAsked.Load(); got != 2 {
		t.Fatalf("leader asked %d times, want 2", got)
	}
	// The follower knows tianjin's key: a bad signature is its own 401.
	tj := le.token(t, "tianjin", auth.ScopeRead)
	bad := tj[:len(tj)-4] + "AAAA"
	if bad == tj {
		bad = tj[:len(tj)-4] + "BBBB"
	}
	wantStatus(t, fe.do(t, req{method: "GET", path: "/v1/changes?since=0", token: bad}), http.StatusUnauthorized)
	if got := leaderAsked.Load(); got != 2 {
		t.Fatalf("leader asked %d times, want 2", got)
	}
}

// TestFollowerRedirectsABackupOfAKeyItDoesNotKnow (review 152 of 5ee3ce0):
// a backup asked of a follower goes to the leader by a 307, never proxied (a
// large copy would be cut at the forward bound and the follower's
// WriteTimeout, 75 s by default). A token of the centre's key just added,
// which the follower's bundle lacks, was proxied to the leader instead; it
// is redirected as any other backup asked of a follower is.
func TestFollowerRedirectsABackupOfAKeyItDoesNotKnow(t *testing.T) {
	var leaderAsked atomic.Int32
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaderAsked.Add(1)
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte("a copy"))
	}))
	defer leader.Close()
	svc := &fakeService{}
	rep := &replicaAt{fakeService: svc, leader: leader.URL}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = rep })
	admin := e.token(t, "tianjin", auth.ScopeAdmin)
	// This follower has yet to apply the bundle that lists tianjin's
	// current token key: it holds only the retired one.
	behind := *svc.bundle
	behind.Members = append([]auth.Member(nil), behind.Members...)
	behind.Members[0].TokenKeys = behind.Members[0].TokenKeys[:1]
	svc.bundle = &behind

	cli := &http.Client{Timeout: 20 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r := doHTTP(t, cli, e.srv.URL, req{method: "GET", path: "/v1/admin/backup", token: admin})
	wantStatus(t, r, http.StatusTemporaryRedirect)
	if got, want := r.Header.Get("Location"), leader.URL+"/v1/admin/backup"; got != want {
		t.Fatalf("Location %q, want %q", got, want)
	}
	if n := leaderAsked.Load(); n != 0 {
		t.Fatalf("the follower proxied the backup to the leader (%d requests)", n)
	}
}
