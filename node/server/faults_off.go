//go:build !failpoints

package server

import (
	"context"
	"errors"
	"net/http"
	"time"

	"liandong/node"
	"liandong/sync/exchange"
)

// faults is empty outside a build with `-tags failpoints`: no fault can be
// injected, and every method is the identity (see faults_on.go for the real one).
type faults struct{}

func openFaults(cfg Config) (*faults, error) {
	if cfg.FaultsFile != "" {
		return nil, errors.New("faults file: fault injection needs a build with -tags failpoints")
	}
	return nil, nil
}

func (*faults) clock() func() time.Time                                   { return time.Now }
func (*faults) exchangeFaults() exchange.Faults                           { return nil }
func (*faults) raftFaults() node.RaftFaults                               { return nil }
func (*faults) run(context.Context)                                       {}
func (*faults) forwardTransport(base http.RoundTripper) http.RoundTripper { return base }
func (*faults) wrapHTTP(h http.Handler) http.Handler                      { return h }
