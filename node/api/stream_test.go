package api

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
	"liandong/client"
	"liandong/node"
	"liandong/schema"
)

// sseReader reads raw server-sent events from a response, for tests that look
// at the wire rather than through the client package.
type sseReader struct {
	resp *http.Response
	r    *bufio.Reader
}

type rawEvent struct {
	id, name, data string
	hasID          bool
	comments       []string
}

func openStream(t *testing.T, base, path, token string, header map[string]string) *sseReader {
	t.Helper()
	req, err := http.NewRequest("GET", base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", path, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream; charset=utf-8" {
		t.Fatalf("Content-Type %q", ct)
	}
	return &sseReader{resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event (or comment block) within d.
func (s *sseReader) next(t *testing.T, d time.Duration) (rawEvent, error) {
	t.Helper()
	type result struct {
		ev  rawEvent
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var ev rawEvent
		for {
			line, err := s.r.ReadString('\n')
			if err != nil {
				ch <- result{ev, err}
				return
			}
			line = strings.TrimRight(line, "\n")
			if line == "" {
				ch <- result{ev, nil}
				return
			}
			if c, ok := strings.CutPrefix(line, ":"); ok {
				ev.comments = append(ev.comments, strings.TrimSpace(c))
				continue
			}
			k, v, _ := strings.Cut(line, ": ")
			switch k {
			case "id":
				ev.id, ev.hasID = v, true
			case "event":
				ev.name = v
			case "data":
				ev.data += v
			}
		}
	}()
	select {
	case r := <-ch:
		return r.ev, r.err
	case <-time.After(d):
		t.Fatalf("no event within %v", d)
	}
	return rawEvent{}, nil
}

// nextChange skips comments and id-only events up to the next change.
func (s *sseReader) nextChange(t *testing.T, d time.Duration) rawEvent {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ev, err := s.next(t, time.Until(deadline))
		if err != nil {
			t.Fatalf("stream ended: %v", err)
		}
		if ev.name == "change" {
			return ev
		}
	}
}

func TestChangeStream(t *testing.T) {
	e := newEnv(t, false, func(_ *node.Config, o *Options) { o.Heartbeat = 150 * time.Millisecond })
	tok := e.token(t, "tianjin", auth.ScopeRead)
	first := e.create(t, "supply", "federation", supplyBody("成果一"))

	s := openStream(t, e.srv.URL, "/v1/changes/stream", tok, nil)
	hello, err := s.next(t, 5*time.Second)
	if err != nil || len(hello.comments) == 0 {
		t.Fatalf("opening block %+v, %v", hello, err)
	}
	ev := s.nextChange(t, 5*time.Second)
	if !strings.Contains(ev.data, first.ID) || !ev.hasID || ev.id == "" {
		t.Fatalf("first event %+v", ev)
	}
	if _, _, err := decodePosition(ev.id); err != nil {
		t.Fatalf("event id %q is not a position cursor: %v", ev.id, err)
	}
	if !strings.Contains(ev.data, `"position":"`+ev.id+`"`) {
		t.Fatalf("data does not carry the position: %s", ev.data)
	}

	// Live changes arrive; an idle stream sends heartbeats.
	second := e.create(t, "need", "federation", needBody("需求一"))
	ev = s.nextChange(t, 5*time.Second)
	if !strings.Contains(ev.data, second.ID) {
		t.Fatalf("live event %+v", ev)
	}
	sawHeartbeat := false
	for i := 0; i < 5 && !sawHeartbeat; i++ {
		hb, err := s.next(t, 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		sawHeartbeat = len(hb.comments) > 0 && hb.comments[0] == "heartbeat"
	}
	if !sawHeartbeat {
		t.Fatal("no heartbeat on an idle stream")
	}

	t.Run("Last-Event-ID resumes after the event", func(t *testing.T) {
		s := openStream(t, e.srv.URL, "/v1/changes/stream", tok, map[string]string{"Last-Event-ID": ev.id})
		third := e.create(t, "supply", "federation", supplyBody("成果三"))
		got := s.nextChange(t, 5*time.Second)
		if !strings.Contains(got.data, third.ID) {
			t.Fatalf("resumed stream starts with %+v, want %s", got, third.ID)
		}
	})

	t.Run("filters and visibility", func(t *testing.T) {
		head, _ := e.feed(t, tok, "")
		// Anonymous, needs only: a federation need and a public supply item are
		// skipped, with an id-only event moving the cursor past them.
		s := openStream(t, e.srv.URL, "/v1/changes/stream?catalogue=need&since="+head.NextCursor, "", nil)
		e.create(t, "need", "federation", needBody("非公开需求"))
		e.create(t, "supply", "public", supplyBody("公开成果"))
		pub := e.create(t, "need", "public", needBody("公开需求"))
		var moved bool
		for {
			got, err := s.next(t, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got.name == "change" {
				if !strings.Contains(got.data, pub.ID) {
					t.Fatalf("anonymous need stream got %s", got.data)
				}
				if strings.Contains(got.data, "contact") {
					t.Fatalf("contact not redacted: %s", got.data)
				}
				break
			}
			moved = moved || got.hasID && got.data == ""
		}
		_ = moved // the skipped records may share a scan with the public one

		s = openStream(t, e.srv.URL, "/v1/changes/stream?origin=hebei&since="+head.NextCursor, tok, nil)
		e.create(t, "need", "federation", needBody("本地需求"))
		for {
			got, err := s.next(t, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if got.name == "change" {
				t.Fatalf("origin=hebei got a tianjin change: %s", got.data)
			}
			if got.hasID && got.data == "" {
				break // the cursor moved past the tianjin records
			}
		}
	})

	t.Run("bad input is a problem naming the parameter", func(t *testing.T) {
		for _, c := range []struct {
			path, header, param string
		}{
			{"/v1/changes/stream?since=nonsense", "", "since"},
			{"/v1/changes/stream?catalogue=patents", "", "catalogue"},
			{"/v1/changes/stream?origin=Hebei!", "", "origin"},
			{"/v1/changes/stream?wait=3", "", "wait"},
			{"/v1/changes/stream", "cjE", "Last-Event-ID"}, // a list cursor, not a position
		} {
			r := e.do(t, req{method: "GET", path: c.path, token: tok, header: map[string]string{"Last-Event-ID": c.header}})
			wantStatus(t, r, http.StatusBadRequest)
			if p := r.problem(t); len(p.Errors) != 1 || p.Errors[0].Path != c.param {
				t.Errorf("%s: %+v, want the error on %s", c.path, p, c.param)
			}
		}
		r := e.do(t, req{method: "GET", path: "/v1/changes/stream", token: "not-a-token"})
		wantStatus(t, r, http.StatusUnauthorized)
		r.problem(t)
	})
}

// TestStreamEndsOnShutdown checks that NewServer's Shutdown ends open streams at
// once instead of waiting for them.
func TestStreamEndsOnShutdown(t *testing.T) {
	e := newEnv(t, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), e.h)
	go srv.Serve(ln)
	s := openStream(t, "http://"+ln.Addr().String(), "/v1/changes/stream", e.token(t, "tianjin", auth.ScopeRead), nil)
	if _, err := s.next(t, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := s.next(t, 5*time.Second)
		if err != nil {
			break // the stream ended
		}
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
}

// restartable is a tianjin node and its API on a fixed data directory and
// address, which can be stopped and started again.
type restartable struct {
	t    *testing.T
	f    *fixture
	dir  string
	addr string
	node *node.Node
	srv  *http.Server
	done chan struct{}
}

func (rn *restartable) start() {
	t := rn.t
	t.Helper()
	cfg := node.DefaultConfig("tianjin", rn.dir)
	cfg.RecordKey = rn.f.recordKey
	cfg.Bundle = rn.f.bundle
	cfg.Registerer = prometheus.NewRegistry()
	n, err := node.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Service: n, Verifier: &auth.TokenVerifier{Federation: testFederation, Bundle: n.Bundle},
		Logger: testLogger(t), Heartbeat: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	addr := rn.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	for i := 0; ; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil || i == 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	rn.addr = ln.Addr().String()
	rn.node, rn.srv, rn.done = n, NewServer(rn.addr, h), make(chan struct{})
	go func() { defer close(rn.done); rn.srv.Serve(ln) }()
}

func (rn *restartable) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rn.srv.Shutdown(ctx); err != nil {
		rn.t.Errorf("shutdown: %v", err)
	}
	<-rn.done
	if err := rn.node.Close(); err != nil {
		rn.t.Errorf("close node: %v", err)
	}
}

// TestStreamExactlyOnceAcrossRestart follows the stream with the client package
// while records are written, closes the node and opens it again on the same data
// directory mid-stream, writes more, and checks that the partner saw every change
// it may read exactly once, in feed order.
func TestStreamExactlyOnceAcrossRestart(t *testing.T) {
	rn := &restartable{t: t, f: newFixture(t), dir: t.TempDir()}
	rn.start()
	defer func() {
		if rn.node != nil {
			rn.stop()
		}
	}()
	tok := rn.f.token(t, "tianjin", auth.ScopeRead)
	ctx := context.Background()

	var mu sync.Mutex
	var seen []client.Change
	progress := make(chan struct{}, 1)
	cctx, stopClient := context.WithCancel(ctx)
	clientDone := make(chan error, 1)
	c := client.New("http://"+rn.addr, tok)
	go func() {
		_, err := c.Stream(cctx, "", client.StreamOptions{MinRetry: 20 * time.Millisecond, MaxRetry: 200 * time.Millisecond},
			func(ch client.Change) error {
				mu.Lock()
				seen = append(seen, ch)
				mu.Unlock()
				select {
				case progress <- struct{}{}:
				default:
				}
				time.Sleep(2 * time.Millisecond) // a partner slower than the writer
				return nil
			})
		clientDone <- err
	}()

	write := func(n *node.Node, i int, ids []string) ([]string, error) {
		vis := []string{"federation", "public", "private"}[i%3]
		switch {
		case i%7 == 3 && len(ids) > 0:
			_, err := n.Put(ctx, ids[i%len(ids)], &schema.Record{Catalogue: "supply", Visibility: "federation", Body: mustJSON(supplyBody(fmt.Sprintf("更新 %d", i)))}, 0)
			return ids, err
		case i%11 == 5 && len(ids) > 1:
			_, err := n.Delete(ctx, ids[0], 0)
			return ids[1:], err
		}
		rec, err := n.Create(ctx, &schema.Record{Catalogue: "supply", Visibility: vis, Body: mustJSON(supplyBody(fmt.Sprintf("成果 %d", i)))})
		if err != nil {
			return ids, err
		}
		return append(ids, rec.ID), nil
	}
	// The writer runs on while the HTTP server shuts down, so changes committed
	// after the stream ended reach the partner only after the restart.
	var ids []string
	stopWriter := make(chan struct{})
	writerDone := make(chan int)
	go func() {
		i := 0
		defer func() { writerDone <- i }()
		for ; ; i++ {
			select {
			case <-stopWriter:
				return
			default:
			}
			var err error
			if ids, err = write(rn.node, i, ids); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for {
		<-progress
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 10 {
			break
		}
	}
	ctx10, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rn.srv.Shutdown(ctx10); err != nil {
		t.Fatal(err)
	}
	<-rn.done
	before, _ := rn.node.Store().LastPosition()
	for p := before; p < before+20; p, _ = rn.node.Store().LastPosition() {
		time.Sleep(5 * time.Millisecond)
	}
	close(stopWriter)
	written := <-writerDone
	if err := rn.node.Close(); err != nil {
		t.Fatal(err)
	}
	rn.node = nil
	mu.Lock()
	atStop := len(seen)
	mu.Unlock()
	rn.start()
	var err error
	for i := written; i < written+40; i++ {
		if ids, err = write(rn.node, i, ids); err != nil {
			t.Fatal(err)
		}
	}

	// What the partner should see: the whole feed, in order.
	want, _, err := rn.node.Changes(ctx, 0, 10000, nil)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.After(15 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= len(want) {
			break
		}
		select {
		case <-progress:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			t.Fatalf("partner saw %d of %d changes", n, len(want))
		}
	}
	time.Sleep(100 * time.Millisecond) // anything extra would arrive now
	stopClient()
	if err := <-clientDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("stream ended with %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(want) {
		t.Fatalf("partner saw %d changes, the feed has %d", len(seen), len(want))
	}
	for i, w := range want {
		got := seen[i]
		if got.Position != encodePosition(w.Position, "") || got.Record.ID != w.Record.ID || got.Record.Version != w.Record.Version {
			t.Fatalf("change %d: got %s %s v%d, want %s %s v%d", i, got.Position, got.Record.ID, got.Record.Version,
				encodePosition(w.Position, ""), w.Record.ID, w.Record.Version)
		}
	}
	if atStop >= len(want)-40 {
		t.Fatalf("the partner had seen %d of %d changes when the node stopped: the restart was not mid-stream", atStop, len(want))
	}
	t.Logf("partner saw %d changes exactly once; %d before the restart", len(seen), atStop)
}

// TestStreamOutlivesServerTimeouts checks that a stream is not cut by the
// server's write and read timeouts, which are meant for ordinary requests.
func TestStreamOutlivesServerTimeouts(t *testing.T) {
	e := newEnv(t, false, func(_ *node.Config, o *Options) { o.Heartbeat = 100 * time.Millisecond })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), e.h)
	srv.WriteTimeout, srv.ReadTimeout = 300*time.Millisecond, 300*time.Millisecond
	go srv.Serve(ln)
	defer srv.Close()
	s := openStream(t, "http://"+ln.Addr().String(), "/v1/changes/stream", e.token(t, "tianjin", auth.ScopeRead), nil)
	start := time.Now()
	for time.Since(start) < time.Second {
		if _, err := s.next(t, 2*time.Second); err != nil {
			t.Fatalf("stream ended after %v: %v", time.Since(start), err)
		}
	}
	rec := e.create(t, "supply", "federation", supplyBody("晚到的成果"))
	if ev := s.nextChange(t, 2*time.Second); !strings.Contains(ev.data, rec.ID) {
		t.Fatalf("late change %+v", ev)
	}
}

// endOfStream reads events until the stream ends, within d, and returns the
// data of the change events it carried and the problem of its error event
// (zero if none).
func (s *sseReader) endOfStream(t *testing.T, d time.Duration) (changes []string, p Problem) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		ev, err := s.next(t, time.Until(deadline))
		if err != nil {
			return changes, p
		}
		switch ev.name {
		case "change":
			changes = append(changes, ev.data)
		case "error":
			if err := json.Unmarshal([]byte(ev.data), &p); err != nil {
				t.Fatalf("error event %q: %v", ev.data, err)
			}
		}
	}
}

func wantStreamUnauthorized(t *testing.T, p Problem, detail string) {
	t.Helper()
	if p.Status != http.StatusUnauthorized || p.Type != ProblemTypePrefix+"unauthorized" || !strings.Contains(p.Detail, detail) {
		t.Fatalf("the stream ended with %+v, want a 401 problem saying %q", p, detail)
	}
}

// TestStreamEndsWhenTokenExpires: a stream opened with a token ends, with a
// 401 error event, when the token expires, idle or not.
func TestStreamEndsWhenTokenExpires(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		e := newEnv(t, false, func(_ *node.Config, o *Options) { o.Verifier.Leeway = -1 })
		// Two seconds: exp is kept in whole seconds, so at least one is left.
		tok, err := e.issuers["hebei"].Issue("partner-hebei", []auth.Scope{auth.ScopeRead}, 2*time.Second, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s := openStream(t, e.srv.URL, "/v1/changes/stream", tok, nil)
		changes, p := s.endOfStream(t, 10*time.Second)
		wantStreamUnauthorized(t, p, "expired")
		if len(changes) != 0 {
			t.Fatalf("changes on an empty feed: %v", changes)
		}
	})
	t.Run("changes read after expiry are not sent", func(t *testing.T) {
		// The verifier's clock jumps past the token's expiry; the timer, in
		// real time, has not fired, so the change wakes the stream first.
		var skew atomic.Int64
		e := newEnv(t, false, func(_ *node.Config, o *Options) {
			o.Verifier.Leeway = -1
			o.Verifier.Now = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		})
		tok := e.token(t, "hebei", auth.ScopeRead) // an hour
		s := openStream(t, e.srv.URL, "/v1/changes/stream", tok, nil)
		if _, err := s.next(t, 5*time.Second); err != nil { // the opening block
			t.Fatal(err)
		}
		skew.Store(int64(2 * time.Hour))
		rec, err := e.node.Create(context.Background(), &schema.Record{Catalogue: "supply", Visibility: "federation", Body: mustJSON(supplyBody("令牌过期后写入"))})
		if err != nil {
			t.Fatal(err)
		}
		changes, p := s.endOfStream(t, 10*time.Second)
		wantStreamUnauthorized(t, p, "expired")
		for _, c := range changes {
			if strings.Contains(c, rec.ID) {
				t.Fatalf("the stream delivered %s after its token expired", rec.ID)
			}
		}
	})
}

// TestStreamEndsWhenTokenRevoked: a newer trust bundle revoking a stream's
// token ends the stream, idle as it is (at its next heartbeat); a stream whose
// token the bundle leaves alone goes on.
func TestStreamEndsWhenTokenRevoked(t *testing.T) {
	e := newEnv(t, false, func(_ *node.Config, o *Options) { o.Heartbeat = 100 * time.Millisecond })
	revoked := openStream(t, e.srv.URL, "/v1/changes/stream", e.token(t, "hebei", auth.ScopeRead), nil)
	kept := openStream(t, e.srv.URL, "/v1/changes/stream", e.token(t, "tianjin", auth.ScopeRead), nil)
	before := e.create(t, "supply", "federation", supplyBody("吊销前写入"))
	for _, s := range []*sseReader{revoked, kept} {
		if ev := s.nextChange(t, 5*time.Second); !strings.Contains(ev.data, before.ID) {
			t.Fatalf("change %s, want %s", ev.data, before.ID)
		}
	}

	next := *e.bundle
	next.Version = 2
	next.Revocations = []auth.Revocation{{Subject: auth.RevokeSubject + "hebei/partner-hebei", Before: time.Now().UTC(), Reason: "test"}}
	sb, err := auth.SignBundle(&next, e.root)
	if err != nil {
		t.Fatal(err)
	}
	js, err := sb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.node.InstallBundle(context.Background(), js, "test"); err != nil {
		t.Fatal(err)
	}
	changes, p := revoked.endOfStream(t, 5*time.Second)
	wantStreamUnauthorized(t, p, "revoked")
	if len(changes) != 0 {
		t.Fatalf("changes after the revocation: %v", changes)
	}

	after := e.create(t, "supply", "federation", supplyBody("吊销后写入"))
	if ev := kept.nextChange(t, 5*time.Second); !strings.Contains(ev.data, after.ID) {
		t.Fatalf("the stream of a token not revoked got %s, want %s", ev.data, after.ID)
	}
}
