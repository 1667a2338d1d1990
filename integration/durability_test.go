package integration

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestAcknowledgedWritesSurviveSIGKILL starts the real binary, acknowledges writes
// from concurrent clients, kills the process with SIGKILL mid-load, restarts it and
// requires every acknowledged write to be there with at least the acknowledged
// version. Several cycles on the same data directory.
func TestAcknowledgedWritesSurviveSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	data := t.TempDir()
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	args := []string{"serve", "--dev", "--data", data, "--http", fmt.Sprintf("127.0.0.1:%d", port), "--centre", "tianjin", "--log-level", "warn"}

	acked := map[string]uint64{} // id → acknowledged version
	var mu sync.Mutex
	const cycles = 3
	for cycle := 0; cycle < cycles; cycle++ {
		p := startProc(t, args...)
		waitReady(t, p, url, 20*time.Second)
		c, err := newClient(url, filepath.Join(data, "admin.token"))
		if err != nil {
			t.Fatal(err)
		}

		// Everything acknowledged so far is present.
		mu.Lock()
		for id, v := range acked {
			var got envelope
			if _, err := c.do(context.Background(), http.MethodGet, "/v1/records/"+id, nil, &got); err != nil {
				t.Fatalf("cycle %d: acknowledged %s (v%d) lost: %v", cycle, id, v, err)
			}
			if got.Version < v {
				t.Fatalf("cycle %d: %s at v%d, acknowledged v%d", cycle, id, got.Version, v)
			}
		}
		mu.Unlock()

		// Load from 8 writers; kill while they write.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil && i < 10000; i++ {
					id := fmt.Sprintf("tianjin:c%d-w%d-%d", cycle, w, i%50)
					var got envelope
					if _, err := c.do(ctx, http.MethodPut, "/v1/records/"+id, map[string]any{
						"catalogue": "supply", "visibility": "federation", "body": supplyBody(id),
					}, &got); err != nil {
						return // the process is gone
					}
					mu.Lock()
					if got.Version > acked[id] {
						acked[id] = got.Version
					}
					mu.Unlock()
				}
			}()
		}
		time.Sleep(time.Duration(700+300*cycle) * time.Millisecond)
		p.kill()
		cancel()
		wg.Wait()
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n == 0 {
			t.Fatalf("cycle %d: no write acknowledged; output:\n%s", cycle, p.output)
		}
		t.Logf("cycle %d: %d records acknowledged so far", cycle, n)
	}

	// Final check after a clean restart, and a clean SIGTERM shutdown.
	p := startProc(t, args...)
	waitReady(t, p, url, 20*time.Second)
	c, _ := newClient(url, filepath.Join(data, "admin.token"))
	for id, v := range acked {
		var got envelope
		if _, err := c.do(context.Background(), http.MethodGet, "/v1/records/"+id, nil, &got); err != nil || got.Version < v {
			t.Fatalf("final: %s acknowledged v%d, got v%d (%v)", id, v, got.Version, err)
		}
	}
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
}
