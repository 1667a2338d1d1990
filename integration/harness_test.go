// Package integration runs real liandong processes on loopback and checks what a
// user would: acknowledged writes survive crashes, centres converge, faults heal.
package integration

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the liandong executable built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	if os.Getenv(orphanHelperEnv) != "" {
		os.Exit(orphanHelper())
	}
	dir, err := os.MkdirTemp("", "liandong-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "liandong")
	build := exec.Command("go", "build", "-o", binary, "../cmd/liandong")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build liandong:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	failpointsOnce sync.Once
	failpointsBin  string
	failpointsErr  error
)

// failpointsBinary returns liandong built with `-tags failpoints` (crash points,
// and the faults file of node/server/faults_on.go), built on first use only:
// most tests run the default build, which contains none of it.
func failpointsBinary(t testing.TB) string {
	t.Helper()
	failpointsOnce.Do(func() {
		path := binary + "-failpoints"
		build := exec.Command("go", "build", "-tags", "failpoints", "-o", path, "../cmd/liandong")
		if out, err := build.CombinedOutput(); err != nil {
			failpointsErr = fmt.Errorf("go build -tags failpoints: %w\n%s", err, out)
			return
		}
		failpointsBin = path
	})
	if failpointsErr != nil {
		t.Fatal(failpointsErr)
	}
	return failpointsBin
}

// freePort returns a loopback TCP port that was free a moment ago.
//
// Ports come from below the kernel's ephemeral range (32768 up on Linux), never
// from it: a port the kernel handed out for ":0" and this test then released can
// be handed to another process (a libp2p dial, another package's test) before the
// liandong process under test binds it. Ports given out here are not given twice.
func freePort(t testing.TB) int {
	t.Helper()
	portsMu.Lock()
	defer portsMu.Unlock()
	for try := 0; try < 1000; try++ {
		port := portLow + rand.IntN(portHigh-portLow)
		if portsGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[port] = true
		return port
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return 0
}

const portLow, portHigh = 10000, 32000

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// proc is a liandong process started by a test; it is stopped by pid at cleanup.
type proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	output *lockedBuffer
	done   chan struct{}
}

// lockedBuffer collects a process's output; tests may read it while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startProc(t testing.TB, args ...string) *proc {
	t.Helper()
	return startProcWith(t, binary, nil, args...)
}

// startProcWith starts bin (binary, or failpointsBinary's) with args and env
// added to this process's environment.
func startProcWith(t testing.TB, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, output: &lockedBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	if len(env) > 0 {
		p.cmd.Env = append(os.Environ(), env...)
	}
	p.cmd.Stdout = p.output
	p.cmd.Stderr = p.output
	p.cmd.SysProcAttr = childAttr()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of %s %s (pid %d), last lines:\n%s", filepath.Base(bin), strings.Join(args, " "), p.cmd.Process.Pid, lastLines(p.output.String(), 40))
		}
	})
	return p
}

// childAttr is how tests start processes: in a process group of their own
// (so a timeout can kill a tool's whole group), and killed by the kernel if
// the test binary dies before its cleanups stop them (killed, or a panic on
// -timeout), rather than left running. Pdeathsig follows the thread that
// started the child, and the Go runtime keeps its threads unless a goroutine
// locked to one exits; no test locks one.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// kill sends SIGKILL to the process and waits for it to go.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits up to 30 s for a clean exit.
func (p *proc) stop() error {
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("exit code %d; output:\n%s", code, p.output)
		}
		return nil
	case <-time.After(30 * time.Second):
		p.kill()
		return fmt.Errorf("did not stop within 30 s after SIGTERM")
	}
}

// readyClient polls readiness, trusting any certificate.
var readyClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// waitReady polls url/readyz until 200 or the deadline.
func waitReady(t testing.TB, p *proc, url string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("process exited before ready:\n%s", p.output)
		default:
		}
		// Readiness only: an https node's certificate is the test's own CA's.
		resp, err := readyClient.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready within %v; output:\n%s", url, within, p.output)
}

// client talks to one node's API with a token.
type client struct {
	base, token string
	http        *http.Client
}

func newClient(base, tokenFile string) (*client, error) {
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		return nil, err
	}
	return &client{base: base, token: strings.TrimSpace(string(tok)), http: &http.Client{Timeout: 15 * time.Second}}, nil
}

func (c *client) do(ctx context.Context, method, path string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(data, out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode %s %s: %w: %s", method, path, err, data)
		}
	}
	if resp.StatusCode >= 300 {
		return resp.StatusCode, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	return resp.StatusCode, nil
}

// envelope is the record envelope as the API returns it.
type envelope struct {
	ID         string          `json:"id"`
	Catalogue  string          `json:"catalogue"`
	Origin     string          `json:"origin"`
	Version    uint64          `json:"version"`
	Visibility string          `json:"visibility"`
	Deleted    bool            `json:"deleted"`
	Broker     string          `json:"broker"`
	Body       json.RawMessage `json:"body"`
}

func supplyBody(title string) map[string]any {
	return map[string]any{
		"title": title, "summary": "面向京津冀企业转化的科技成果", "industry": "new-materials",
		"keywords": []string{"正极材料"}, "trl": 6, "owner_org": "天津大学",
		"contact": map[string]string{"person": "王老师", "phone": "022-23456789"},
	}
}
