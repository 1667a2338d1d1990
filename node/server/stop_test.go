package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"liandong/node"
)

// TestStopEndsRequestsThatDoNotFinish: a request that waits on something
// that does not answer (here a handler that waits for its context, as a
// write forwarded to a paused leader waits for its answer) holds a graceful
// stop only for half of ShutdownTimeout: then its context ends, it answers,
// and the stop goes on. It held the stop for the whole ShutdownTimeout (20 s
// by default), unanswered, and raft's stop came after that.
func TestStopEndsRequestsThatDoNotFinish(t *testing.T) {
	cfg := Default()
	cfg.Centre = "tianjin"
	cfg.DataDir = t.TempDir()
	cfg.HTTP = "127.0.0.1:0"
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.ShutdownTimeout = 4 * time.Second
	if _, err := DevSetup(&cfg, time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	s, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	arrived := make(chan struct{})
	api := s.http.Handler
	s.http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/hang" {
			api.ServeHTTP(w, r)
			return
		}
		close(arrived)
		<-r.Context().Done()
		// The API answers what ended a request by its cause: the stop's
		// must say the node stops (503), not that the client went (499).
		if cause := context.Cause(r.Context()); !errors.Is(cause, node.ErrShutdown) {
			http.Error(w, fmt.Sprintf("ended, cause %v", cause), http.StatusServiceUnavailable)
			return
		}
		http.Error(w, "ended by the stop", http.StatusServiceUnavailable)
	})
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := s.Node.WaitLeader(wctx); err != nil {
		t.Fatal(err)
	}

	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{Timeout: 3 * cfg.ShutdownTimeout}).Get(s.URL + "/hang")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		answered <- answer{status: resp.StatusCode, body: string(b)}
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the request never reached the handler")
	}
	began := time.Now()
	stop()
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(3 * cfg.ShutdownTimeout):
		t.Fatalf("Run did not return within %v of the stop", 3*cfg.ShutdownTimeout)
	}
	took := time.Since(began)
	t.Logf("stopped in %v with a request that does not finish under way (shutdown timeout %v)", took, cfg.ShutdownTimeout)
	if runErr != nil {
		t.Errorf("run: %v", runErr)
	}
	if took >= cfg.ShutdownTimeout {
		t.Fatalf("the stop took %v: it waited out the whole shutdown timeout (%v) for a request that does not finish", took, cfg.ShutdownTimeout)
	}
	select {
	case a := <-answered:
		if a.err != nil || a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "ended by the stop") {
			t.Fatalf("the request under way got %d %q (%v), want the 503 its handler gives once its context ends", a.status, a.body, a.err)
		}
	case <-time.After(cfg.ShutdownTimeout):
		t.Fatal("the request under way was never answered")
	}
}
