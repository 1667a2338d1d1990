package integration

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"liandong/integration/chaos"
)

// loopbackBackend runs the chaos federation as processes on loopback, started
// and stopped by pid. Faults are signals and restarts. A partition restarts a
// centre with p2p.block listing the centres it must refuse: its connection gater
// then refuses their peers in both directions, a real cut of those links, though
// one that starts and ends with a restart of the centre. A replica cannot be cut
// off its raft group here (no hook in the raft transport).
type loopbackBackend struct {
	t *testing.T
	f *multiFederation
	// blockConfigs maps centre → refusal list → config file of a partitioned start.
	blockConfigs map[string]map[string]string
	mu           sync.Mutex // guards the process handles in the groups
}

func newLoopbackChaos(t *testing.T, faults []chaos.Fault) *chaosCluster {
	t.Helper()
	f := newMultiFederation(t,
		groupSpec{3, groupOptions{centre: "hq"}},
		groupSpec{1, groupOptions{centre: "tianjin", standalone: true}},
		groupSpec{1, groupOptions{centre: "hebei", standalone: true}},
		groupSpec{1, groupOptions{centre: "xiongan", standalone: true}},
	)
	b := &loopbackBackend{t: t, f: f, blockConfigs: map[string]map[string]string{}}
	cl := &chaosCluster{t: t, backend: b}
	for _, r := range f.all() {
		cl.add(&chaosNode{name: r.g.ids[r.i], centre: r.g.centre, g: r.g, i: r.i, client: r.client()})
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
	p := startProc(b.t, "serve", "--config", config, "--log-level", n.g.opts.logLevel)
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

// cut restarts the centre's replica refusing others; mend restarts it as it was.
func (b *loopbackBackend) cut(centre string, others []string) error {
	config := b.blockConfigs[centre][strings.Join(others, ",")]
	if config == "" || len(b.f.groups[centre].cfgs) != 1 {
		return fmt.Errorf("no partition config of %s refusing %v", centre, others)
	}
	return b.restartWith(centre, config)
}

func (b *loopbackBackend) mend(centre string, _ []string) error { return b.restartWith(centre, "") }

func (b *loopbackBackend) restartWith(centre, config string) error {
	g := b.f.groups[centre]
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

func (b *loopbackBackend) isolate(*chaosNode) error {
	return errors.New("loopback processes cannot be cut off their raft group")
}
func (b *loopbackBackend) rejoin(*chaosNode) error { return nil }
func (b *loopbackBackend) healAll() error          { return nil }
