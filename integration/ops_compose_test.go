package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOpsCompose builds the FROM-scratch image with deploy/docker/build.sh,
// provisions the four centres with deploy/compose/provision, brings
// deploy/compose/docker-compose.yml up under a project of its own, writes a
// record at Tianjin and reads it at Hebei (the containers find each other by
// service name, /dns4 multiaddrs), scrapes one node, asks `liandong status`, and
// tears everything down: containers, network and image.
func TestOpsCompose(t *testing.T) {
	if testing.Short() {
		t.Skip("builds an image and runs containers")
	}
	docker := requireTool(t, "docker", "install Docker")
	compose := requireTool(t, "docker-compose", "apt-get install docker-compose")
	if out, err := runTool(t, 30*time.Second, "", nil, docker, "info", "--format", "{{.ServerVersion}}"); err != nil {
		if underCI() {
			t.Fatalf("docker daemon not usable: %v\n%s", err, out)
		}
		t.Skipf("docker daemon not usable: %v", err)
	}
	if os.Geteuid() != 0 {
		if underCI() {
			t.Fatal("the compose test gives the data directories to the image's user (uid 10001): run it as root")
		}
		t.Skip("not root: cannot give the data directories to uid 10001")
	}
	start := time.Now()
	lap := func() time.Duration {
		d := time.Since(start)
		start = time.Now()
		return d.Round(100 * time.Millisecond)
	}
	tag := fmt.Sprintf("ops-test-%d", os.Getpid())
	image := "liandong:" + tag
	project := "liandongops" + fmt.Sprint(os.Getpid())

	// The image, from the static binary alone.
	t.Cleanup(func() { runTool(t, time.Minute, "", nil, docker, "rmi", "-f", image) })
	if out, err := runTool(t, 20*time.Minute, repoPath(t, "."), nil, "bash", "deploy/docker/build.sh", image); err != nil {
		t.Fatalf("deploy/docker/build.sh: %v\n%s", err, out)
	}
	buildTime := lap()
	out, err := runTool(t, time.Minute, "", nil, docker, "image", "inspect", "--format", "{{.Config.User}} {{json .Config.Entrypoint}} {{len .RootFS.Layers}}", image)
	if err != nil {
		t.Fatalf("inspect %s: %v\n%s", image, err, out)
	}
	if f := strings.Fields(out); len(f) != 3 || f[0] != "10001:10001" || f[1] != `["/usr/local/bin/liandong"]` || f[2] != "4" {
		t.Errorf("image %s: user, entrypoint, layers = %q; want a non-root user and only the four COPY layers on scratch", image, out)
	}

	// Keys, bundle and tokens for the four centres, owned by the image's user.
	data := filepath.Join(t.TempDir(), "data")
	if out, err := runTool(t, 5*time.Minute, repoPath(t, "."), nil, "go", "run", "./deploy/compose/provision", "-data", data); err != nil {
		t.Fatalf("provision: %v\n%s", err, out)
	}
	envFile, err := os.ReadFile(filepath.Join(data, "compose.env"))
	if err != nil {
		t.Fatal(err)
	}
	rootKeys, ok := strings.CutPrefix(strings.TrimSpace(string(envFile)), "LIANDONG_ROOT_KEYS=")
	if !ok {
		t.Fatalf("compose.env: %q", envFile)
	}
	provisionTime := lap()

	ports := make([]int, len(centreIDs))
	env := []string{"LIANDONG_IMAGE=" + image, "LIANDONG_DATA=" + data, "LIANDONG_ROOT_KEYS=" + rootKeys, "LIANDONG_BIND=127.0.0.1"}
	urls := make([]string, len(centreIDs))
	for i, c := range centreIDs {
		ports[i] = freePort(t)
		env = append(env, fmt.Sprintf("LIANDONG_%s_PORT=%d", strings.ToUpper(c), ports[i]))
		urls[i] = fmt.Sprintf("http://127.0.0.1:%d", ports[i])
	}
	composeDir := repoPath(t, "deploy/compose")
	dc := func(timeout time.Duration, args ...string) (string, error) {
		return runTool(t, timeout, composeDir, env, compose, append([]string{"-p", project, "-f", "docker-compose.yml"}, args...)...)
	}

	// The monitoring overlay is valid with the base file (its images are not pulled here).
	if out, err := runTool(t, time.Minute, composeDir, env, compose, "-p", project, "-f", "docker-compose.yml", "-f", "docker-compose.monitoring.yml", "config", "-q"); err != nil {
		t.Errorf("docker-compose config with the monitoring overlay: %v\n%s", err, out)
	}

	downDone := false
	down := func() {
		if out, err := dc(2*time.Minute, "down", "-v", "--remove-orphans", "--timeout", "10"); err != nil {
			t.Errorf("docker-compose down: %v\n%s", err, out)
		}
		downDone = true
	}
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := dc(time.Minute, "logs", "--no-color", "--tail", "80")
			t.Logf("docker-compose logs:\n%s", out)
		}
		if !downDone {
			down()
		}
	})
	if out, err := dc(3*time.Minute, "up", "-d", "--no-build"); err != nil {
		t.Fatalf("docker-compose up: %v\n%s", err, out)
	}
	ready := func(u string) bool {
		resp, err := http.Get(u + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	for _, u := range urls {
		waitFor(t, 60*time.Second, func() bool { return ready(u) })
	}
	upTime := lap()

	// A record written at Tianjin is read at Hebei.
	tianjin, err := newClient(urls[1], filepath.Join(data, "tianjin", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	hebei, err := newClient(urls[2], filepath.Join(data, "hebei", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	var rec envelope
	if _, err := tianjin.do(context.Background(), http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("容器中的成果"),
	}, &rec); err != nil {
		t.Fatal(err)
	}
	var got envelope
	waitFor(t, 30*time.Second, func() bool {
		code, _ := hebei.do(context.Background(), http.MethodGet, "/v1/records/"+rec.ID, nil, &got)
		return code == http.StatusOK
	})
	if got.Origin != "tianjin" || got.Version != rec.Version {
		t.Errorf("hebei has %+v, tianjin wrote %+v", got, rec)
	}
	replicateTime := lap()

	// One node's metrics: connected to the three others, lint-clean.
	text := scrape(t, urls[0])
	for _, m := range []string{"hebei", "tianjin", "xiongan"} {
		if !strings.Contains(text, `liandong_sync_member_connected_peers{member="`+m+`"} 1`) {
			t.Errorf("hq's metrics do not show a connection to %s", m)
		}
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
	// `liandong status` from the host sees the federation whole.
	var statusOut string
	waitFor(t, 20*time.Second, func() bool {
		out, err := runTool(t, 30*time.Second, "", nil, binary, "status", "--node", urls[0], "--token", filepath.Join(data, "hq", "admin.token"))
		statusOut = out
		return err == nil
	})
	if !strings.Contains(statusOut, "federation jjj-compose") || !strings.Contains(statusOut, "OK: nothing needs attention") {
		t.Errorf("liandong status:\n%s", statusOut)
	}

	down()
	out, err = runTool(t, time.Minute, "", nil, docker, "ps", "-a", "-q", "--filter", "label=com.docker.compose.project="+project)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("containers left after down: %v %q", err, out)
	}
	t.Logf("image build %v, provision %v, up and ready %v, write→read across containers %v, checks and down %v",
		buildTime, provisionTime, upTime, replicateTime, lap())
}
