package integration

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"liandong/auth"
	"liandong/node/server"
)

// dockerBackend runs each replica of the chaos federation in a container of the
// FROM-scratch image (deploy/docker/build.sh), with real networks between them:
//
//   - every pair of centres shares a network of its own, and a replica's libp2p
//     host listens (and is listed in the bundle) only on its addresses there, so
//     `docker network disconnect` of one pair network cuts exactly that link,
//     packets dropped rather than connections refused;
//   - hq's three replicas share a raft network (raft traffic and followers
//     forwarding writes to the leader): disconnecting one replica from it cuts it
//     off its group while clients still reach its API;
//   - an API network, never cut, publishes each API on a loopback port of the
//     host for the harness's clients.
//
// Docker keeps bridges apart (FORWARD policy DROP, DOCKER-ISOLATION), so an
// address on a network two containers do not share is unreachable. Kill is
// `docker kill` (SIGKILL), pause `docker pause` (the cgroup freezer), terminate
// `docker stop`. One-way cuts are not possible this way (a network is attached or
// not), and all containers share the host's clock: clock skew and one-way cuts
// are the loopback mode's (fault hooks of the failpoints build).
type dockerBackend struct {
	t      *testing.T
	docker string
	prefix string
	nets   map[string]string // logical network (api, raft, hq-tianjin …) → docker name
	nodes  []*chaosNode

	mu     sync.Mutex
	cutoff map[string]map[string]bool // container → logical networks it is disconnected from
	paused map[string]bool
}

// chaosImage is the image TestChaos built for -chaos.docker.
var chaosImage string

// buildChaosImage builds the image once for the whole test; it is removed at t's end.
func buildChaosImage(t *testing.T) {
	docker := requireTool(t, "docker", "install Docker")
	if out, err := runTool(t, 30*time.Second, "", nil, docker, "info", "--format", "{{.ServerVersion}}"); err != nil {
		t.Fatalf("-chaos.docker: the docker daemon is not usable: %v\n%s", err, out)
	}
	if os.Geteuid() != 0 {
		t.Fatal("-chaos.docker gives the data directories to the image's user (uid 10001): run as root")
	}
	chaosImage = fmt.Sprintf("liandong:chaos-%d", os.Getpid())
	t.Cleanup(func() { runTool(t, time.Minute, "", nil, docker, "rmi", "-f", chaosImage) })
	if out, err := runTool(t, 20*time.Minute, repoPath(t, "."), nil, "bash", "deploy/docker/build.sh", chaosImage); err != nil {
		t.Fatalf("deploy/docker/build.sh: %v\n%s", err, out)
	}
}

// dockerReplica is what provisioning needs to know of one replica.
type dockerReplica struct {
	name, centre string
	host         int // last octet of its addresses
	cfg          server.Config
	ips          map[string]string
	port         int
	dir          string
}

const (
	dockerHTTP = 8700
	dockerRaft = 7000
	dockerP2P  = 4001
)

func newDockerChaos(t *testing.T) *chaosCluster {
	t.Helper()
	docker := requireTool(t, "docker", "install Docker")
	b := &dockerBackend{t: t, docker: docker, nets: map[string]string{}, cutoff: map[string]map[string]bool{}, paused: map[string]bool{}}
	b.prefix = fmt.Sprintf("lchaos%d-%d", os.Getpid(), rand.IntN(1_000_000))
	cl := &chaosCluster{t: t, backend: b}
	t.Cleanup(func() { b.cleanup(t.Failed()) })

	centres := []string{"hq", "tianjin", "hebei", "xiongan"}
	logical := []string{"api", "raft"}
	for i, a := range centres {
		for _, c := range centres[i+1:] {
			logical = append(logical, a+"-"+c)
		}
	}
	// Networks on 10.X.k.0/24, X picked at random; another X when taken.
	subnets := map[string]string{}
	var created error
	for try := 0; try < 8; try++ {
		x := 200 + rand.IntN(50)
		created = nil
		for k, l := range logical {
			name := b.prefix + "-" + l
			subnet := fmt.Sprintf("10.%d.%d.0/24", x, k+1)
			if out, err := b.run("network", "create", "--driver", "bridge", "--subnet", subnet, "--label", "liandong-chaos="+b.prefix, name); err != nil {
				created = fmt.Errorf("docker network create %s: %v: %s", subnet, err, out)
				break
			}
			b.nets[l] = name
			subnets[l] = fmt.Sprintf("10.%d.%d", x, k+1)
		}
		if created == nil {
			break
		}
		b.removeNetworks()
	}
	if created != nil {
		t.Fatal(created)
	}

	root, err := auth.GenerateKey("root")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	dir := t.TempDir()
	var reps []*dockerReplica
	for _, r := range []struct {
		name, centre string
		host         int
	}{{"hq-1", "hq", 11}, {"hq-2", "hq", 12}, {"hq-3", "hq", 13}, {"tianjin-1", "tianjin", 21}, {"hebei-1", "hebei", 31}, {"xiongan-1", "xiongan", 41}} {
		rep := &dockerReplica{name: r.name, centre: r.centre, host: r.host, ips: map[string]string{}, port: freePort(t), dir: filepath.Join(dir, r.name)}
		for _, l := range logical {
			if l == "api" || l == "raft" && r.centre == "hq" || strings.Contains("-"+l+"-", "-"+r.centre+"-") {
				rep.ips[l] = fmt.Sprintf("%s.%d", subnets[l], r.host)
			}
		}
		reps = append(reps, rep)
	}
	var members []auth.Member
	memberOf := map[string]int{}
	for _, rep := range reps {
		cfg := server.Default()
		cfg.Centre = rep.centre
		cfg.DataDir = rep.dir
		cfg.HTTP = fmt.Sprintf("0.0.0.0:%d", dockerHTTP)
		cfg.Raft.ReplicaID = rep.name
		cfg.P2P.Listen = nil
		for _, l := range sortedKeys(rep.ips) {
			if l != "api" && l != "raft" {
				cfg.P2P.Listen = append(cfg.P2P.Listen, fmt.Sprintf("/ip4/%s/tcp/%d", rep.ips[l], dockerP2P))
			}
		}
		cfg.P2P.AntiEntropyInterval = time.Second
		cfg.RootKeys = []string{root.ID}
		if rep.centre == "hq" {
			cfg.Raft.Addr = fmt.Sprintf("%s:%d", rep.ips["raft"], dockerRaft)
			cfg.AdvertiseHTTP = fmt.Sprintf("http://%s:%d", rep.ips["raft"], dockerHTTP)
			if rep.name != "hq-1" {
				cfg.Raft.Join = fmt.Sprintf("http://%s:%d", reps[0].ips["raft"], dockerHTTP)
				cfg.Raft.JoinToken = "admin.token"
				copyKeys(t, reps[0].dir, rep.dir)
			}
		}
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		keys, err := server.EnsureKeys(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		names := centreNames[rep.centre]
		m := server.MemberFor(rep.centre, names[0], names[1], keys, cfg.P2P.Listen, nil, now.Add(-time.Hour))
		if k, ok := memberOf[rep.centre]; ok {
			members[k].Peers = append(members[k].Peers, m.Peers...)
		} else {
			memberOf[rep.centre] = len(members)
			members = append(members, m)
		}
		rep.cfg = cfg
	}
	bundle := newTestBundle(root, now, members...)
	for _, rep := range reps {
		cfg := rep.cfg
		if _, err := server.SignNewBundle(cfg.Path(cfg.Bundle), bundle, root); err != nil {
			t.Fatal(err)
		}
		keys, err := server.EnsureKeys(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		iss := auth.TokenIssuer{Centre: rep.centre, Federation: bundle.Federation, Key: keys.Token}
		tok, err := iss.Issue("it-admin", auth.AllScopes, 2*time.Hour, now)
		if err != nil {
			t.Fatal(err)
		}
		if err := server.WriteToken(cfg.Path("admin.token"), tok); err != nil {
			t.Fatal(err)
		}
		inside := cfg
		inside.DataDir = "/var/lib/liandong"
		file := configFile(inside)
		if cfg.AdvertiseHTTP != "" {
			file["advertise_http"] = cfg.AdvertiseHTTP
		}
		raft := map[string]any{"replica_id": cfg.Raft.ReplicaID, "bootstrap": rep.name == "hq-1" || rep.centre != "hq"}
		if cfg.Raft.Addr != "" {
			raft["addr"] = cfg.Raft.Addr
		}
		if cfg.Raft.Join != "" {
			raft["join"], raft["join_token"] = cfg.Raft.Join, cfg.Raft.JoinToken
		}
		file["raft"] = raft
		out, err := yaml.Marshal(file)
		if err != nil {
			t.Fatal(err)
		}
		cfgPath := filepath.Join(dir, rep.name+".yaml")
		if err := os.WriteFile(cfgPath, out, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := runTool(t, time.Minute, "", nil, "chown", "-R", "10001:10001", rep.dir); err != nil {
			t.Fatalf("chown: %v %s", err, out)
		}
		c, err := newClient(fmt.Sprintf("http://127.0.0.1:%d", rep.port), cfg.Path("admin.token"))
		if err != nil {
			t.Fatal(err)
		}
		n := &chaosNode{name: rep.name, centre: rep.centre, client: c, container: b.prefix + "-" + rep.name, ips: rep.ips}
		args := []string{"create", "--name", n.container, "--hostname", rep.name, "--label", "liandong-chaos=" + b.prefix,
			"--network", b.nets["api"], "--ip", rep.ips["api"],
			"-p", fmt.Sprintf("127.0.0.1:%d:%d", rep.port, dockerHTTP),
			"-v", rep.dir + ":/var/lib/liandong", "-v", cfgPath + ":/etc/liandong/liandong.yaml:ro",
			chaosImage, "serve", "--config", "/etc/liandong/liandong.yaml", "--log-level", "warn"}
		if out, err := b.run(args...); err != nil {
			t.Fatalf("docker create %s: %v\n%s", n.container, err, out)
		}
		for _, l := range sortedKeys(rep.ips) {
			if l == "api" {
				continue
			}
			if out, err := b.run("network", "connect", "--ip", rep.ips[l], b.nets[l], n.container); err != nil {
				t.Fatalf("docker network connect %s %s: %v\n%s", l, n.container, err, out)
			}
		}
		cl.add(n)
		b.nodes = append(b.nodes, n)
	}
	// hq-1 and the single centres first, then the replicas that join hq-1.
	for _, phase := range [][]string{{"hq-1", "tianjin-1", "hebei-1", "xiongan-1"}, {"hq-2", "hq-3"}} {
		var wg sync.WaitGroup
		errs := make([]error, len(phase))
		for k, name := range phase {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for _, n := range cl.nodes {
					if n.name == name {
						errs[k] = b.start(n)
					}
				}
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 60*time.Second, func() bool {
		for _, n := range cl.raft {
			st, _, err := fedStatus(t.Context(), n.client)
			if err != nil || len(st.Voters) != 3 {
				return false
			}
		}
		return true
	})
	return cl
}

func (b *dockerBackend) run(args ...string) (string, error) {
	return runTool(b.t, 2*time.Minute, "", nil, b.docker, args...)
}

func (b *dockerBackend) removeNetworks() {
	for l, name := range b.nets {
		b.run("network", "rm", name)
		delete(b.nets, l)
	}
}

// cleanup removes the schedule's containers and networks; their logs go to the
// test log when it failed.
func (b *dockerBackend) cleanup(failed bool) {
	for _, n := range b.nodes {
		if failed {
			out, _ := b.run("logs", "--tail", "40", n.container)
			b.t.Logf("docker logs %s:\n%s", n.container, out)
		}
		b.run("rm", "-f", "-v", n.container)
	}
	b.removeNetworks()
}

func (b *dockerBackend) kill(n *chaosNode) {
	if out, err := b.run("kill", n.container); err != nil && !strings.Contains(out, "is not running") {
		b.t.Logf("docker kill %s: %v %s", n.container, err, out)
	}
	b.mu.Lock()
	delete(b.paused, n.container)
	b.mu.Unlock()
}

func (b *dockerBackend) pause(n *chaosNode) {
	if out, err := b.run("pause", n.container); err != nil {
		b.t.Logf("docker pause %s: %v %s", n.container, err, out)
		return
	}
	b.mu.Lock()
	b.paused[n.container] = true
	b.mu.Unlock()
}

func (b *dockerBackend) resume(n *chaosNode) {
	b.mu.Lock()
	paused := b.paused[n.container]
	delete(b.paused, n.container)
	b.mu.Unlock()
	if paused {
		if out, err := b.run("unpause", n.container); err != nil {
			b.t.Logf("docker unpause %s: %v %s", n.container, err, out)
		}
	}
}

func (b *dockerBackend) state(n *chaosNode) (running bool, exitCode string) {
	out, err := b.run("inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", n.container)
	f := strings.Fields(out)
	if err != nil || len(f) != 2 {
		return false, "?"
	}
	return f[0] == "true", f[1]
}

func (b *dockerBackend) down(n *chaosNode) bool {
	running, _ := b.state(n)
	return !running
}

func (b *dockerBackend) terminate(n *chaosNode) error {
	if out, err := b.run("stop", "--time", "30", n.container); err != nil {
		return fmt.Errorf("docker stop: %v %s", err, out)
	}
	if _, code := b.state(n); code != "0" {
		out, _ := b.run("logs", "--tail", "15", n.container)
		return fmt.Errorf("exit code %s after docker stop; logs:\n%s", code, out)
	}
	return nil
}

func (b *dockerBackend) start(n *chaosNode) error {
	if out, err := b.run("start", n.container); err != nil {
		return fmt.Errorf("docker start: %v %s", err, out)
	}
	err := waitReadyURL(n.client.base, 90*time.Second, func() error { return nil })
	if err != nil {
		out, _ := b.run("logs", "--tail", "15", n.container)
		return fmt.Errorf("%w; logs:\n%s", err, out)
	}
	return nil
}

func pairNet(a, c string) string {
	order := []string{"hq", "tianjin", "hebei", "xiongan"}
	if slices.Index(order, a) > slices.Index(order, c) {
		a, c = c, a
	}
	return a + "-" + c
}

func (b *dockerBackend) disconnect(n *chaosNode, l string) error {
	if out, err := b.run("network", "disconnect", b.nets[l], n.container); err != nil {
		return fmt.Errorf("docker network disconnect %s %s: %v %s", l, n.container, err, out)
	}
	b.mu.Lock()
	if b.cutoff[n.container] == nil {
		b.cutoff[n.container] = map[string]bool{}
	}
	b.cutoff[n.container][l] = true
	b.mu.Unlock()
	return nil
}

func (b *dockerBackend) connect(n *chaosNode, l string) error {
	if out, err := b.run("network", "connect", "--ip", n.ips[l], b.nets[l], n.container); err != nil {
		return fmt.Errorf("docker network connect %s %s: %v %s", l, n.container, err, out)
	}
	b.mu.Lock()
	delete(b.cutoff[n.container], l)
	b.mu.Unlock()
	return nil
}

func (b *dockerBackend) centreNodes(centre string) []*chaosNode {
	var out []*chaosNode
	for _, n := range b.nodes {
		if n.centre == centre {
			out = append(out, n)
		}
	}
	return out
}

func (b *dockerBackend) cut(centre string, others []string) error {
	var errs []error
	for _, n := range b.centreNodes(centre) {
		for _, o := range others {
			errs = append(errs, b.disconnect(n, pairNet(centre, o)))
		}
	}
	return errors.Join(errs...)
}

func (b *dockerBackend) mend(centre string, others []string) error {
	var errs []error
	for _, n := range b.centreNodes(centre) {
		for _, o := range others {
			errs = append(errs, b.connect(n, pairNet(centre, o)))
		}
	}
	return errors.Join(errs...)
}

func (b *dockerBackend) isolate(n *chaosNode) error { return b.disconnect(n, "raft") }
func (b *dockerBackend) rejoin(n *chaosNode) error  { return b.connect(n, "raft") }

// inject and restartRefusing need the fault hooks of the failpoints build,
// which the image does not carry; the schedule never asks for them in Docker
// (Topology.LiveFaults and GaterCuts are off).
func (b *dockerBackend) inject(*chaosNode, liveFaults) error {
	return errors.New("docker mode has no live fault hooks (clock skew, one-way cuts)")
}

func (b *dockerBackend) restartRefusing(string, []string) error {
	return errors.New("docker mode cuts links with networks, not the gater")
}

func (b *dockerBackend) healAll() error {
	var errs []error
	for _, n := range b.nodes {
		b.mu.Lock()
		cut := sortedKeys(b.cutoff[n.container])
		b.mu.Unlock()
		for _, l := range cut {
			errs = append(errs, b.connect(n, l))
		}
	}
	return errors.Join(errs...)
}
