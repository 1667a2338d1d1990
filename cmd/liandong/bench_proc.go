package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"liandong/integration/bench"
)

// federationProcs is the four demo centres run as child processes of this
// binary (`liandong serve --config`), as a deployment runs them: each with a
// heap, collector and scheduler of its own, where runFederation shares one
// among the four. The peers (etcd, NATS) are measured as separate processes.
type federationProcs struct {
	apis      []*bench.API
	gatherers []prometheus.Gatherer
	names     []string // centre ids
	cmds      []*exec.Cmd
	exited    []chan struct{}
	stopped   bool
	starter   *lockedStarter
}

// runFederationProcesses provisions the four centres under dir, starts each
// as a process (its output in dir/<centre>.log) and waits until every one
// takes writes.
func runFederationProcesses(ctx context.Context, dir, logStore string) (*federationProcs, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this binary to start the centres: %w", err)
	}
	ports, err := freeCentrePorts(len(demoCentres))
	if err != nil {
		return nil, err
	}
	cfgs, err := provisionFederation(dir, ports, 1, 0, logStore)
	if err != nil {
		return nil, err
	}
	f := &federationProcs{starter: newLockedStarter()}
	for _, cfg := range cfgs {
		data, err := yaml.Marshal(cfg)
		if err != nil {
			f.stop()
			return nil, fmt.Errorf("config of %s: %w", cfg.Centre, err)
		}
		path := filepath.Join(dir, cfg.Centre+".yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			f.stop()
			return nil, err
		}
		out, err := os.Create(filepath.Join(dir, cfg.Centre+".log"))
		if err != nil {
			f.stop()
			return nil, err
		}
		cmd := exec.Command(exe, "serve", "--config", path, "--log-level", "warn")
		cmd.Stdout, cmd.Stderr = out, out
		cmd.Env = childEnv()
		cmd.SysProcAttr = childProcAttr()
		if err := f.starter.Start(cmd); err != nil {
			out.Close()
			f.stop()
			return nil, fmt.Errorf("start %s: %w", cfg.Centre, err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); out.Close(); close(exited) }()
		f.cmds, f.exited, f.names = append(f.cmds, cmd), append(f.exited, exited), append(f.names, cfg.Centre)

		tok, err := os.ReadFile(cfg.Path("admin.token"))
		if err != nil {
			f.stop()
			return nil, err
		}
		base := "http://" + cfg.HTTP
		f.apis = append(f.apis, bench.NewAPI(base, strings.TrimSpace(string(tok)), 64))
		f.gatherers = append(f.gatherers, scrapeGatherer(base+"/metrics"))
	}
	for i, cfg := range cfgs {
		if err := waitReadyURL(ctx, "http://"+cfg.HTTP+"/readyz", f.exited[i], time.Minute); err != nil {
			f.stop()
			log := filepath.Join(dir, cfg.Centre+".log")
			return nil, fmt.Errorf("centre %s: %w; the end of its log (%s):\n%s", cfg.Centre, err, log, logTail(log, 20))
		}
	}
	return f, nil
}

// stop asks every centre to stop (SIGTERM), kills those still running 15 s
// later, and waits for all. It reports how many stopped and how many it killed.
func (f *federationProcs) stop() (stopped, killed int) {
	if f.stopped {
		return 0, 0
	}
	f.stopped = true
	defer f.starter.Release() // once every child has exited, below
	for _, cmd := range f.cmds {
		cmd.Process.Signal(syscall.SIGTERM)
	}
	deadline := time.NewTimer(15 * time.Second)
	defer deadline.Stop()
	for i, exited := range f.exited {
		select {
		case <-exited:
			stopped++
			continue
		case <-deadline.C:
		}
		// Past the deadline: kill this one and every other still running.
		for j := i; j < len(f.cmds); j++ {
			select {
			case <-f.exited[j]:
			default:
				f.cmds[j].Process.Kill()
				killed++
			}
		}
		for _, e := range f.exited[i:] {
			<-e
		}
		stopped += len(f.exited) - i - killed
		break
	}
	return stopped, killed
}

// exitedEarly names the centres whose process has already exited.
func (f *federationProcs) exitedEarly() []string {
	var out []string
	for i, e := range f.exited {
		select {
		case <-e:
			out = append(out, f.names[i])
		default:
		}
	}
	return out
}

// logTail returns the last lines of a centre's log, for an error message:
// without --dir the file goes with the bench's temporary directory.
func logTail(path string, lines int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	all := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// childEnv is this process's environment without LIANDONG_ variables, which
// liandong serve would apply over the configuration the bench wrote.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LIANDONG_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitReadyURL polls a /readyz URL until it answers 200, the process exits or
// within passes.
func waitReadyURL(ctx context.Context, url string, exited <-chan struct{}, within time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("exited before it was ready")
		case <-ctx.Done():
			return fmt.Errorf("not ready within %v (last: %v)", within, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// scrapeGatherer gathers the metrics a node serves at url.
func scrapeGatherer(url string) prometheus.Gatherer {
	return prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s: %s", url, resp.Status)
		}
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(resp.Body)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", url, err)
		}
		out := make([]*dto.MetricFamily, 0, len(fams))
		for _, mf := range fams {
			out = append(out, mf)
		}
		return out, nil
	})
}
