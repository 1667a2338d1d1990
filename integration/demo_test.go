package integration

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// freeBase finds a base port whose demo ports (base+1 … base+26, TCP and UDP) are free.
func freeBase(t *testing.T) int {
	t.Helper()
	for try := 0; try < 50; try++ {
		// Below the ephemeral range, for the reason freePort gives.
		base := portLow + rand.IntN(portHigh-portLow-30)
		ok := true
		for p := base + 1; p <= base+26 && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			l.Close()
			u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				ok = false
				break
			}
			u.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatal("no free port range for the demo")
	return 0
}

// TestDemo runs `liandong demo` as a user would: it prints the four URLs, the
// sample catalogues reach every centre, a record written at Tianjin is readable at
// Hebei, and Ctrl-C stops it cleanly.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the demo")
	}
	for _, replicas := range []int{1, 3} {
		t.Run(fmt.Sprintf("replicas=%d", replicas), func(t *testing.T) { testDemo(t, replicas) })
	}
}

func testDemo(t *testing.T, replicas int) {
	dir := t.TempDir()
	base := freeBase(t)
	p := startProc(t, "demo", "--dir", dir, "--base-port", fmt.Sprint(base), "--records", "4", "--replicas", fmt.Sprint(replicas))
	urls := make([]string, 4)
	for i := range urls {
		urls[i] = fmt.Sprintf("http://127.0.0.1:%d", base+1+i)
	}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.output.String(), "press Ctrl-C to stop") {
		if time.Now().After(deadline) {
			t.Fatalf("demo did not come up:\n%s", p.output)
		}
		select {
		case <-p.done:
			t.Fatalf("demo exited:\n%s", p.output)
		case <-time.After(100 * time.Millisecond):
		}
	}
	for _, u := range urls {
		if !strings.Contains(p.output.String(), u) {
			t.Fatalf("demo output lacks %s:\n%s", u, p.output)
		}
	}
	// Seeding waits for each centre to be ready rather than logging a
	// warning for every write a recovering centre answers 503.
	if out := p.output.String(); strings.Contains(out, "status=503") {
		t.Errorf("the demo's start logged 503 answers:\n%s", out)
	}
	tianjin, err := newClient(urls[1], filepath.Join(dir, "tianjin", "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	hebei, _ := newClient(urls[2], filepath.Join(dir, "hebei", "admin.token"))
	if replicas > 1 {
		// Write through Tianjin's last replica (a follower forwards to the leader),
		// and see all of Tianjin's replicas listed as voters.
		follower, err := newClient(fmt.Sprintf("http://127.0.0.1:%d", base+4+replicas-1), filepath.Join(dir, "tianjin", "admin.token"))
		if err != nil {
			t.Fatal(err)
		}
		tianjin = follower
		// Each one's record comes to list its build's features: the
		// leader asks every replica's /healthz and records the answer,
		// which create-only writes over deleted records wait for.
		waitFor(t, 20*time.Second, func() bool {
			var doc struct {
				Replicas []struct {
					Suffrage string `json:"suffrage"`
					Features string `json:"features"`
				} `json:"replicas"`
			}
			_, err := follower.do(context.Background(), http.MethodGet, "/v1/admin/replicas", nil, &doc)
			if err != nil || len(doc.Replicas) != replicas {
				return false
			}
			for _, r := range doc.Replicas {
				if !strings.Contains(r.Features, "if-absent") {
					return false
				}
			}
			return true
		})
	}
	var rec envelope
	if _, err := tianjin.do(context.Background(), http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("演示成果"),
	}, &rec); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, func() bool {
		code, _ := hebei.do(context.Background(), http.MethodGet, "/v1/records/"+rec.ID, nil, nil)
		return code == http.StatusOK
	})
	// Every centre's shared sample records reached every other centre.
	for _, origin := range []string{"hq", "tianjin", "hebei", "xiongan"} {
		waitFor(t, 20*time.Second, func() bool {
			var page struct {
				Items []envelope `json:"items"`
			}
			_, err := hebei.do(context.Background(), http.MethodGet, "/v1/records?origin="+origin+"&limit=5", nil, &page)
			return err == nil && len(page.Items) > 0
		})
	}
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGINT)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 || !strings.Contains(p.output.String(), "stopped") {
			t.Fatalf("demo exit %d:\n%s", code, p.output)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop within 30 s of Ctrl-C")
	}
}
