package server

import (
	"context"
	"testing"
	"time"
)

// runTestServer starts a server from cfg, runs it until the test ends, and
// returns it once its node leads.
func runTestServer(t *testing.T, cfg Config) *Server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := s.Node.WaitLeader(wctx); err != nil {
		t.Fatal(err)
	}
	return s
}
