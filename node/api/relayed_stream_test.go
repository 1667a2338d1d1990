package api

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"liandong/auth"
	"liandong/node/store"
)

// TestRelayedStreamClosedByItsClientIsNoServerFailure (review 112): a partner that
// closes its change stream is the normal end of a stream: a stream the
// follower serves itself counts a 200. One it relays from the leader
// (cursorAtLeader) ends in ReverseProxy's panic(http.ErrAbortHandler), which
// ServeHTTP counts as a 500 and logs at error level ("http request failed",
// cut_short): every partner disconnecting counts toward LiandongHTTPErrors.
func TestRelayedStreamClosedByItsClientIsNoServerFailure(t *testing.T) {
	f := newFixture(t)
	leader, quiet := quietLeader(t, f, 200*time.Millisecond)
	reg := prometheus.NewRegistry()
	fsvc := &fakeService{centre: "tianjin", bundle: f.bundle, feedHead: 40, changes: quiet}
	fh, err := New(Options{Service: &replicaAt{fakeService: fsvc, leader: leader.URL}, Logger: testLogger(t), Heartbeat: 200 * time.Millisecond, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	follower := httptest.NewServer(fh)
	defer follower.Close()
	tok := f.token(t, "tianjin", auth.ScopeRead)
	count := func(code string) float64 {
		return testutil.ToFloat64(fh.(*handler).metrics.requests.WithLabelValues("/v1/changes/stream", "GET", code))
	}
	for _, c := range []struct {
		name   string
		cursor uint64
	}{{"served by the follower", 40}, {"relayed from the leader", 1000}} {
		before200, before500 := count("200"), count("500")
		s := openStream(t, follower.URL, "/v1/changes/stream", tok, map[string]string{"Last-Event-ID": encodePosition(c.cursor, "")})
		for range 2 {
			if _, err := s.next(t, 5*time.Second); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		s.resp.Body.Close() // the partner leaves
		deadline := time.Now().Add(5 * time.Second)
		for count("200") == before200 && count("500") == before500 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if count("200") == before200 && count("500") == before500 {
			t.Fatalf("%s: the stream was not counted within 5 s of its client leaving", c.name)
		}
		if n := count("500") - before500; n != 0 {
			t.Errorf("%s: a stream its client closed counted as %v server failure(s) (500)", c.name, n)
		}
	}
}

// TestRelayedStreamOutlivesWriteTimeout (review 112): a stream a follower
// relays from the leader (cursorAtLeader) lives as a local stream does. The
// local handler moves its write deadline before each write (flushStream),
// since api.NewServer's WriteTimeout (75 s; 3 s here) is for ordinary
// answers; relayed without that, the stream was cut once WriteTimeout had
// passed, heartbeats flowing all along.
func TestRelayedStreamOutlivesWriteTimeout(t *testing.T) {
	f := newFixture(t)
	// The leader: its feed holds positions up to 2000, so cursor 1000 is good.
	leader, quiet := quietLeader(t, f, time.Second)
	// The follower: behind (head 40), served by the server production uses.
	fsvc := &fakeService{centre: "tianjin", bundle: f.bundle, feedHead: 40, changes: quiet}
	fh, err := New(Options{Service: &replicaAt{fakeService: fsvc, leader: leader.URL}, Logger: testLogger(t), Heartbeat: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer("", fh)
	srv.WriteTimeout = 3 * time.Second
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()

	tok := f.token(t, "tianjin", auth.ScopeRead)
	// Control: a stream the follower serves itself (cursor within its head).
	local := openStream(t, base, "/v1/changes/stream", tok, map[string]string{"Last-Event-ID": encodePosition(40, "")})
	// The stream the follower relays from the leader (cursor past its head).
	relayed := openStream(t, base, "/v1/changes/stream", tok, map[string]string{"Last-Event-ID": encodePosition(1000, "")})
	start := time.Now()
	var localErr, relayedErr error
	var relayedAt time.Duration
	for time.Since(start) < srv.WriteTimeout+5*time.Second && localErr == nil {
		if _, localErr = local.next(t, 5*time.Second); localErr != nil {
			break
		}
		if relayedErr == nil {
			if _, relayedErr = relayed.next(t, 5*time.Second); relayedErr != nil {
				relayedAt = time.Since(start).Round(time.Second)
			}
		}
	}
	if localErr != nil {
		t.Fatalf("control: the local stream ended after %v: %v", time.Since(start).Round(time.Second), localErr)
	}
	if relayedErr != nil {
		t.Fatalf("the stream relayed from the leader ended after %v (server WriteTimeout %v), the local one lives on: %v", relayedAt, srv.WriteTimeout, relayedErr)
	}
}

// TestRelayedStreamOutlivesForwardTimeout (review 120): ForwardTimeout must
// not cut a change stream the follower relays (cursorAtLeader) while the
// leader's heartbeats flow: by default it is the server's WriteTimeout (75 s),
// so every relayed stream was cut after 75 s again, as review 112 had fixed.
func TestRelayedStreamOutlivesForwardTimeout(t *testing.T) {
	f := newFixture(t)
	leader, quiet := quietLeader(t, f, 100*time.Millisecond)
	// The leader's heartbeats (100 ms) keep the stream well inside the bound.
	const forwardFor = 2 * time.Second
	fsvc := &fakeService{centre: "tianjin", bundle: f.bundle, feedHead: 40, changes: quiet}
	fh, err := New(Options{Service: &replicaAt{fakeService: fsvc, leader: leader.URL}, Logger: testLogger(t),
		Heartbeat: 100 * time.Millisecond, ForwardTimeout: forwardFor})
	if err != nil {
		t.Fatal(err)
	}
	follower := httptest.NewServer(fh)
	defer follower.Close()

	tok := f.token(t, "tianjin", auth.ScopeRead)
	relayed := openStream(t, follower.URL, "/v1/changes/stream", tok, map[string]string{"Last-Event-ID": encodePosition(1000, "")})
	defer relayed.resp.Body.Close() // before follower.Close, which waits for the stream
	start := time.Now()
	// Events (heartbeats) are read until well past ForwardTimeout; each
	// read may take up to 5 s, so a loaded machine only makes it longer.
	for n := 0; n < 1000 && time.Since(start) < 5*forwardFor/2; n++ {
		if _, err := relayed.next(t, 5*time.Second); err != nil {
			t.Fatalf("the stream relayed from the leader ended after %v (ForwardTimeout %v): %v", time.Since(start).Round(100*time.Millisecond), forwardFor, err)
		}
	}
}

// TestRelayedStreamFromWedgedLeaderEnds (review 120): a relayed change stream
// whose leader answered and then fell silent (a wedged process, a one-way cut
// after the headers) ends once ForwardTimeout passes without a byte from the
// leader, whose heartbeats otherwise keep it alive: relayed without a bound,
// it held the partner, a goroutine and a connection of the follower for as
// long as the partner waited (client.Stream waits for ever).
func TestRelayedStreamFromWedgedLeaderEnds(t *testing.T) {
	f := newFixture(t)
	release := make(chan struct{})
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, ": heartbeat\n\n")
		w.(http.Flusher).Flush()
		select { // wedged: nothing more until the test ends
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer leader.Close()
	defer close(release) // before leader.Close, which waits for the handler
	const forwardFor = 500 * time.Millisecond
	fsvc := &fakeService{centre: "tianjin", bundle: f.bundle, feedHead: 40}
	fh, err := New(Options{Service: &replicaAt{fakeService: fsvc, leader: leader.URL}, Logger: testLogger(t),
		Heartbeat: time.Hour, ForwardTimeout: forwardFor})
	if err != nil {
		t.Fatal(err)
	}
	follower := httptest.NewServer(fh)
	defer follower.Close()

	tok := f.token(t, "tianjin", auth.ScopeRead)
	relayed := openStream(t, follower.URL, "/v1/changes/stream", tok, map[string]string{"Last-Event-ID": encodePosition(1000, "")})
	defer relayed.resp.Body.Close()
	if _, err := relayed.next(t, 10*time.Second); err != nil {
		t.Fatalf("the leader's heartbeat was not relayed: %v", err)
	}
	// Far beyond ForwardTimeout: only a relay that never ends reaches it.
	const patience = 30 * time.Second
	start := time.Now()
	ev, err := relayed.next(t, patience)
	if err == nil {
		t.Fatalf("an event from a wedged leader: %+v", ev)
	}
	if time.Since(start) >= patience {
		t.Fatalf("the stream relayed from a leader silent after its headers was still open after %v (ForwardTimeout %v): %v", patience, forwardFor, err)
	}
}

// quietLeader serves a leader of tianjin whose feed has nothing new (head
// 2000, past any follower's) and whose change streams send only heartbeats,
// every heartbeat; quiet is its changes function, for a follower's feed.
func quietLeader(t *testing.T, f *fixture, heartbeat time.Duration) (leader *httptest.Server, quiet func(context.Context, uint64, int, store.ChangeFilter) ([]store.Change, uint64, error)) {
	t.Helper()
	quiet = func(_ context.Context, since uint64, _ int, _ store.ChangeFilter) ([]store.Change, uint64, error) {
		return nil, since, nil
	}
	lsvc := &fakeService{centre: "tianjin", bundle: f.bundle, feedHead: 2000, changes: quiet}
	lh, err := New(Options{Service: &replicaAt{fakeService: lsvc, lead: true}, Logger: testLogger(t), Heartbeat: heartbeat})
	if err != nil {
		t.Fatal(err)
	}
	leader = httptest.NewServer(lh)
	t.Cleanup(leader.Close)
	return leader, quiet
}

// TestRelayedStreamOfAnUnknownIssuerOutlivesForwardTimeout (review 152 of
// 5ee3ce0): a change stream a follower relays because its bundle lacks the
// token's issuer (tokenForLeader) is relayed as a stream, as cursorAtLeader's
// is: ForwardTimeout bounds the leader's silence, not the stream.
func TestRelayedStreamOfAnUnknownIssuerOutlivesForwardTimeout(t *testing.T) {
	f := newFixture(t)
	leader, quiet := quietLeader(t, f, 100*time.Millisecond)
	const forwardFor = 2 * time.Second
	behind := *f.bundle
	behind.Members = behind.Members[:1]
	if behind.Members[0].ID != "tianjin" {
		t.Fatalf("premise: fixture's first member %q", behind.Members[0].ID)
	}
	fsvc := &fakeService{centre: "tianjin", bundle: &behind, feedHead: 2000, changes: quiet}
	fh, err := New(Options{Service: &replicaAt{fakeService: fsvc, leader: leader.URL}, Logger: testLogger(t),
		Heartbeat: 100 * time.Millisecond, ForwardTimeout: forwardFor})
	if err != nil {
		t.Fatal(err)
	}
	follower := httptest.NewServer(fh)
	defer follower.Close()

	tok := f.token(t, "hebei", auth.ScopeRead)
	relayed := openStream(t, follower.URL, "/v1/changes/stream", tok, nil)
	defer relayed.resp.Body.Close()
	start := time.Now()
	for n := 0; n < 1000 && time.Since(start) < 5*forwardFor/2; n++ {
		if _, err := relayed.next(t, 5*time.Second); err != nil {
			t.Fatalf("the stream relayed from the leader ended after %v (ForwardTimeout %v): %v", time.Since(start).Round(100*time.Millisecond), forwardFor, err)
		}
	}
}
