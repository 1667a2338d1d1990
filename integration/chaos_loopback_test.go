package integration

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"liandong/auth"
	"liandong/integration/chaos"
	"liandong/node/server"
)

// loopbackBackend runs the chaos federation as processes on loopback, started
// and stopped by pid, from the failpoints build (-tags failpoints), whose fault
// hooks each replica follows through its own faults file
// (node/server/faults_on.go):
//
//   - a partition (isolation, bridge) is made without a restart: the centre's
//     sync exchange drops the streams of the centres cut off, both ways, while
//     the connections stay up; a one-way cut drops one direction only;
//   - a gater cut restarts the centre with p2p.block listing the centres it must
//     refuse: its connection gater then refuses their peers in both directions,
//     and the cut ends with another restart;
//   - a replica is cut off its raft group by dropping every raft connection of
//     it, in and out, while clients still reach its API;
//   - a clock skew offsets the clock of the replica's node, token verifier and
//     exchange.
type loopbackBackend struct {
	t *testing.T
	f *multiFederation
	// blockConfigs maps centre → refusal list → config file of a gater cut.
	blockConfigs map[string]map[string]string
	mu           sync.Mutex        // guards the process handles in the groups, and written
	written      map[string][]byte // replica → its faults file as last written
}

func newLoopbackChaos(t *testing.T, faults []chaos.Fault) *chaosCluster {
	t.Helper()
	opts := func(centre string, standalone bool) groupOptions {
		return groupOptions{centre: centre, standalone: standalone, faults: true}
	}
	f := newMultiFederation(t,
		groupSpec{3, opts("hq", false)},
		groupSpec{1, opts("tianjin", true)},
		groupSpec{1, opts("hebei", true)},
		groupSpec{1, opts("xiongan", true)},
	)
	b := &loopbackBackend{t: t, f: f, blockConfigs: map[string]map[string]string{}, written: map[string][]byte{}}
	cl := &chaosCluster{t: t, backend: b, issuers: map[string]*auth.TokenIssuer{}, streamCuts: true}
	for _, r := range f.all() {
		cl.add(&chaosNode{name: r.g.ids[r.i], centre: r.g.centre, g: r.g, i: r.i, client: r.client()})
	}
	for _, centre := range f.centres {
		g := f.groups[centre]
		keys, err := server.EnsureKeys(&g.cfgs[0])
		if err != nil {
			t.Fatal(err)
		}
		bundle, err := server.LoadBundle(g.cfgs[0].Path(g.cfgs[0].Bundle), nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		cl.issuers[centre] = &auth.TokenIssuer{Centre: centre, Federation: bundle.Federation, Key: keys.Token}
	}
	for centre, lists := range chaos.Blocks(faults) {
		g := f.groups[centre]
		b.blockConfigs[centre] = map[string]string{}
		for _, list := range lists {
			cfg := g.cfgs[0]
			cfg.P2P.Block = list
			path := filepath.Join(g.dir, fmt.Sprintf("%s-refusing-%s.yaml", centre, strings.Join(list, "-")))
			writeConfig(t, path, cfg, true)
			b.blockConfigs[centre][strings.Join(list, ",")] = path
		}
	}
	return cl
}

func (b *loopbackBackend) proc(n *chaosNode) *proc {
	b.mu.Lock()
	defer b.mu.Unlock()
	return n.g.procs[n.i]
}

func (b *loopbackBackend) signal(n *chaosNode, sig syscall.Signal) {
	p := b.proc(n)
	select {
	case <-p.done:
	default:
		syscall.Kill(p.cmd.Process.Pid, sig)
	}
}

func (b *loopbackBackend) kill(n *chaosNode)   { b.proc(n).kill() }
func (b *loopbackBackend) pause(n *chaosNode)  { b.signal(n, syscall.SIGSTOP) }
func (b *loopbackBackend) resume(n *chaosNode) { b.signal(n, syscall.SIGCONT) }

func (b *loopbackBackend) down(n *chaosNode) bool {
	select {
	case <-b.proc(n).done:
		return true
	default:
		return false
	}
}

func (b *loopbackBackend) terminate(n *chaosNode) error {
	if err := b.proc(n).stop(); err != nil {
		return errors.New(lastLines(err.Error(), 15))
	}
	return nil
}

func (b *loopbackBackend) start(n *chaosNode) error { return b.launch(n, "") }

// launch starts n with config (empty: its own) and waits until it is ready.
func (b *loopbackBackend) launch(n *chaosNode, config string) error {
	if config == "" {
		config = n.g.configs[n.i]
	}
	p := n.g.launch(n.i, config)
	b.mu.Lock()
	n.g.procs[n.i] = p
	b.mu.Unlock()
	err := waitReadyURL(n.client.base, 60*time.Second, func() error {
		select {
		case <-p.done:
			return errors.New("exited")
		default:
			return nil
		}
	})
	if err != nil {
		return fmt.Errorf("%w; output:\n%s", err, lastLines(p.output.String(), 15))
	}
	return nil
}

// faultsApplied is what a replica logs (at warn) each time it puts the faults
// of its file in force.
const faultsApplied = "injected faults in force"

// inject replaces n's faults file (written to a temporary file and renamed
// over it, so the replica never reads half of it) and, when n runs, waits until
// n has logged that it put them in force: it polls the file every 100 ms.
func (b *loopbackBackend) inject(n *chaosNode, lf liveFaults) error {
	data := lf.json()
	b.mu.Lock()
	prev, ok := b.written[n.name]
	// Nothing to do when the file says so already, or when there is none and
	// no fault is asked for.
	same := ok && string(prev) == string(data) || !ok && lf.zero()
	b.written[n.name] = data
	p := n.g.procs[n.i]
	b.mu.Unlock()
	if same {
		return nil
	}
	before := strings.Count(p.output.String(), faultsApplied)
	path := n.g.faultsFile(n.i)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write faults of %s: %w", n.name, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write faults of %s: %w", n.name, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(p.output.String(), faultsApplied) == before {
		select {
		case <-p.done:
			return nil // down: it reads the file when it starts again
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not put %s in force within 5 s", n.name, data)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// restartRefusing restarts the centre's replica with its gater refusing
// others; with none, as it was configured.
func (b *loopbackBackend) restartRefusing(centre string, others []string) error {
	g := b.f.groups[centre]
	config := ""
	if len(others) > 0 {
		config = b.blockConfigs[centre][strings.Join(others, ",")]
		if config == "" || len(g.cfgs) != 1 {
			return fmt.Errorf("no config of %s refusing %v", centre, others)
		}
	}
	n := &chaosNode{name: g.ids[0], centre: centre, g: g, i: 0, client: g.clients[0]}
	var errs []error
	if err := b.terminate(n); err != nil {
		errs = append(errs, fmt.Errorf("SIGTERM: %w", err))
	}
	if err := b.launch(n, config); err != nil {
		errs = append(errs, fmt.Errorf("start: %w", err))
	}
	return errors.Join(errs...)
}

// cut drops, at the centre's replica, the sync streams of others both ways;
// mend lifts it. No restart: the connections stay up.
func (b *loopbackBackend) cut(centre string, others []string) error {
	return b.inject(b.single(centre), liveFaults{DropIn: others, DropOut: others})
}

func (b *loopbackBackend) mend(centre string, _ []string) error {
	return b.inject(b.single(centre), liveFaults{})
}

func (b *loopbackBackend) single(centre string) *chaosNode {
	g := b.f.groups[centre]
	return &chaosNode{name: g.ids[0], centre: centre, g: g, i: 0, client: g.clients[0]}
}

func (b *loopbackBackend) isolate(n *chaosNode) error {
	return b.inject(n, liveFaults{RaftIsolate: true})
}
func (b *loopbackBackend) rejoin(n *chaosNode) error { return b.inject(n, liveFaults{}) }

// healAll lifts every injected fault.
func (b *loopbackBackend) healAll() error {
	var errs []error
	for _, r := range b.f.all() {
		n := &chaosNode{name: r.g.ids[r.i], centre: r.g.centre, g: r.g, i: r.i, client: r.client()}
		if err := b.inject(n, liveFaults{}); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// liveFaults are the faults of one replica's faults file.
type liveFaults struct {
	ClockOffset     time.Duration
	DropIn, DropOut []string
	RaftIsolate     bool
}

func (lf liveFaults) zero() bool {
	return lf.ClockOffset == 0 && len(lf.DropIn) == 0 && len(lf.DropOut) == 0 && !lf.RaftIsolate
}

func (lf liveFaults) json() []byte {
	spec := struct {
		ClockOffset string   `json:"clock_offset,omitempty"`
		DropIn      []string `json:"drop_in,omitempty"`
		DropOut     []string `json:"drop_out,omitempty"`
		RaftIsolate bool     `json:"raft_isolate,omitempty"`
	}{DropIn: lf.DropIn, DropOut: lf.DropOut, RaftIsolate: lf.RaftIsolate}
	if lf.ClockOffset != 0 {
		spec.ClockOffset = lf.ClockOffset.String()
	}
	data, _ := json.Marshal(spec) // cannot fail: strings and a bool
	return data
}
