package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"liandong/auth"
)

// blackhole listens on loopback and accepts connections it never answers
// nor closes, as a leader's API behind a one-way cut (or a wedged process whose
// kernel still accepts) does. It is closed, with every connection, at cleanup.
func blackhole(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		done  = make(chan struct{})
	)
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String()
}

// TestForwardToSilentLeaderEnds: a follower whose leader's API accepts the
// forwarded request and never answers gives up after ForwardTimeout and
// answers 503 "may have been applied" (the request may have reached the
// leader), instead of holding the caller, and a goroutine and a connection
// of its own, for as long as the caller waits: a caller without a timeout
// waited for ever.
func TestForwardToSilentLeaderEnds(t *testing.T) {
	f := newLaggingReplica(nil)
	f.led.Store(false)
	f.next = blackhole(t)
	e := newFakeEnv(t, f.fakeService, func(o *Options) {
		o.Service = f
		o.ForwardTimeout = 300 * time.Millisecond
	})
	// Far beyond ForwardTimeout: only a forward that never ends reaches it.
	cli := &http.Client{Timeout: 20 * time.Second}
	tok := e.token(t, "tianjin", auth.ScopeRead, auth.ScopeWrite)
	for _, rq := range []req{
		{method: "PUT", path: "/v1/records/tianjin:a", token: tok, body: envelope("supply", "federation", supplyBody("x"))},
		{method: "POST", path: "/v1/records", token: tok, body: envelope("supply", "federation", supplyBody("y"))},
		{method: "GET", path: "/v1/records/tianjin:a?consistent=true", token: tok},
	} {
		r, err := doHTTPErr(t, cli, e.srv.URL, rq)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("%s %s: the follower never answered (the client gave up after %v): %v", rq.method, rq.path, cli.Timeout, err)
			}
			t.Fatalf("%s %s: %v", rq.method, rq.path, err)
		}
		wantStatus(t, r, http.StatusServiceUnavailable)
		if !strings.Contains(string(r.body), "may have been applied") {
			t.Errorf("%s %s: %s, want a timeout whose outcome is unknown", rq.method, rq.path, r.body)
		}
	}
}

// doHTTPErr is doHTTP that returns the client's error instead of failing.
func doHTTPErr(t *testing.T, cli *http.Client, base string, rq req) (*resp, error) {
	t.Helper()
	js, err := json.Marshal(rq.body)
	if err != nil {
		t.Fatal(err)
	}
	var body io.Reader
	if rq.body != nil {
		body = bytes.NewReader(js)
	}
	hr, err := http.NewRequest(rq.method, base+rq.path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("Authorization", "Bearer "+rq.token)
	res, err := cli.Do(hr)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	return &resp{Response: res, body: data}, nil
}
