//go:build failpoints

package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"liandong/node"
	"liandong/node/api"
	"liandong/sync/exchange"
)

// Injected faults, compiled only into a build with `-tags failpoints`: the chaos
// harness (integration/chaos_*_test.go) runs such a binary with
// LIANDONG_FAULTS_FILE naming a JSON file (cmd/liandong sets Config.FaultsFile
// from it), and changes the faults while the process runs by replacing the file
// (write a temporary file, then rename it over, so it is never read half
// written):
//
//		{"clock_offset": "-90s", "drop_in": ["hebei"], "drop_out": ["tianjin"], "raft_isolate": true}
//		{"raft_drop_in": true}
//
//	  - clock_offset (a Go duration) is added to the clock of the node (signed_at,
//	    record times, key choice, bundle checks), the token verifier, the sync
//	    exchange and the console; raft's own timers are not affected;
//	  - drop_in lists members whose sync streams to this replica are reset as they
//	    arrive, drop_out members this replica refuses to open sync streams to; the
//	    connections stay up (exchange.Faults);
//	  - raft_isolate drops every raft connection of this replica, in and out
//	    (node.RaftFaults), and the HTTP requests replicas forward to their
//	    leader, in and out: a request this replica would forward fails as a
//	    dial to an unreachable leader does, and one forwarded to it has its
//	    connection dropped unanswered, as across a real partition;
//	  - raft_drop_in and raft_drop_out cut one direction of this replica's raft
//	    traffic only, as TCP behaves across such a cut (node.RaftOneWay):
//	    nothing is refused or closed, what the cut direction carries is held
//	    until it heals, and the other side learns of it by its timeouts
//	    (raft_drop_in: the replica sends and receives nothing; raft_drop_out:
//	    it receives and its answers go nowhere). Its API and forwarded
//	    requests are left alone.
//
// A missing or empty file means no fault. The file is read at start (a replica
// restarted during a fault comes up with it) and every faultsPoll after; a file
// that does not parse is refused at start and, later, logged and ignored (the
// faults in force stay).
const faultsPoll = 100 * time.Millisecond

// faultSpec is the file's content.
type faultSpec struct {
	ClockOffset string   `json:"clock_offset,omitempty"`
	DropIn      []string `json:"drop_in,omitempty"`
	DropOut     []string `json:"drop_out,omitempty"`
	RaftIsolate bool     `json:"raft_isolate,omitempty"`
	RaftDropIn  bool     `json:"raft_drop_in,omitempty"`
	RaftDropOut bool     `json:"raft_drop_out,omitempty"`
}

// faultDrops are the members whose sync streams are dropped, per direction.
type faultDrops struct{ in, out []string }

// faults holds the faults in force; the node, the exchange and the verifier
// read them through the methods below, the poller (run) replaces them.
type faults struct {
	path   string
	log    *slog.Logger
	offset atomic.Int64 // time.Duration
	raft   atomic.Bool
	// raftIn, raftOut: one direction of raft cut (node.RaftOneWay).
	raftIn, raftOut atomic.Bool
	drops           atomic.Pointer[faultDrops]
	last            []byte // the file as last read; only run touches it after openFaults
}

var (
	_ exchange.Faults = (*faults)(nil)
	_ node.RaftFaults = (*faults)(nil)
	_ node.RaftOneWay = (*faults)(nil)
)

// openFaults reads cfg.FaultsFile once; nil when none is named.
func openFaults(cfg Config) (*faults, error) {
	if cfg.FaultsFile == "" {
		return nil, nil
	}
	f := &faults{path: cfg.FaultsFile, log: cfg.Logger.With("component", "faults")}
	f.drops.Store(&faultDrops{})
	data, err := f.read()
	if err != nil {
		return nil, err
	}
	if data == nil {
		return f, nil // no file yet: no fault, nothing to log
	}
	if err := f.apply(data); err != nil {
		return nil, err
	}
	return f, nil
}

// read returns the file's content; nothing when it does not exist.
func (f *faults) read() ([]byte, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read faults file: %w", err)
	}
	return data, nil
}

// apply parses data and puts its faults in force.
func (f *faults) apply(data []byte) error {
	var spec faultSpec
	if len(bytes.TrimSpace(data)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&spec); err != nil {
			return fmt.Errorf("faults file %s: %w", f.path, err)
		}
	}
	var offset time.Duration
	if spec.ClockOffset != "" {
		var err error
		if offset, err = time.ParseDuration(spec.ClockOffset); err != nil {
			return fmt.Errorf("faults file %s: clock_offset: %w", f.path, err)
		}
	}
	f.last = data
	f.offset.Store(int64(offset))
	f.drops.Store(&faultDrops{in: spec.DropIn, out: spec.DropOut})
	f.raft.Store(spec.RaftIsolate)
	f.raftIn.Store(spec.RaftDropIn)
	f.raftOut.Store(spec.RaftDropOut)
	// Warn, so that a harness running replicas at log level warn sees in their
	// output when each fault began and ended.
	f.log.Warn("injected faults in force", "clock_offset", offset.String(), "drop_in", spec.DropIn,
		"drop_out", spec.DropOut, "raft_isolate", spec.RaftIsolate, "raft_drop_in", spec.RaftDropIn, "raft_drop_out", spec.RaftDropOut)
	return nil
}

// run polls the file until ctx ends.
func (f *faults) run(ctx context.Context) {
	if f == nil {
		return
	}
	t := time.NewTicker(faultsPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := f.read()
		if err != nil {
			f.log.Error("injected faults: cannot read the file; the faults in force stay", "err", err)
			continue
		}
		if bytes.Equal(data, f.last) {
			continue
		}
		if err := f.apply(data); err != nil {
			f.last = data // log a bad file once, not at every poll
			f.log.Error("injected faults: ignoring the file; the faults in force stay", "err", err)
		}
	}
}

// clock returns the clock the replica runs on: time.Now plus the offset in force.
func (f *faults) clock() func() time.Time {
	if f == nil {
		return time.Now
	}
	return func() time.Time { return time.Now().Add(time.Duration(f.offset.Load())) }
}

func (f *faults) exchangeFaults() exchange.Faults {
	if f == nil {
		return nil // an untyped nil: the exchange then checks nothing
	}
	return f
}

func (f *faults) raftFaults() node.RaftFaults {
	if f == nil {
		return nil
	}
	return f
}

// DropInbound implements exchange.Faults.
func (f *faults) DropInbound(member string) bool { return slices.Contains(f.drops.Load().in, member) }

// DropOutbound implements exchange.Faults.
func (f *faults) DropOutbound(member string) bool {
	return slices.Contains(f.drops.Load().out, member)
}

// RaftIsolated implements node.RaftFaults.
func (f *faults) RaftIsolated() bool { return f.raft.Load() }

// RaftDropIn implements node.RaftOneWay.
func (f *faults) RaftDropIn() bool { return f.raftIn.Load() }

// RaftDropOut implements node.RaftOneWay.
func (f *faults) RaftDropOut() bool { return f.raftOut.Load() }

// errForwardIsolated is what forwarding a request to the leader returns while
// the replica is isolated.
var errForwardIsolated = errors.New("forward to leader dropped: this replica is isolated by an injected fault")

// forwardTransport is api.Options.Forward: base (nil: http.DefaultTransport),
// cut while the replica is isolated.
func (f *faults) forwardTransport(base http.RoundTripper) http.RoundTripper {
	if f == nil {
		return base
	}
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if f.RaftIsolated() {
			return nil, errForwardIsolated
		}
		return base.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (rt roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return rt(r) }

// wrapHTTP drops, unanswered, the requests other replicas forward to this one
// while it is isolated: the forwarding replica sees its connection fail.
func (f *faults) wrapHTTP(h http.Handler) http.Handler {
	if f == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f.RaftIsolated() && r.Header.Get(api.ForwardedHeader) != "" {
			panic(http.ErrAbortHandler) // net/http closes the connection without a response
		}
		h.ServeHTTP(w, r)
	})
}
