package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"liandong/schema"
)

// browser is one headless Chromium driven through chromedp, with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context // the tab; no deadline (the browser's life is bound to it)
	// console collects the tab's console errors and exceptions.
	mu      sync.Mutex
	console []string
	// artefacts is where screenshots go.
	artefacts string
}

// chromiumPath finds Chromium: $LIANDONG_CHROMIUM, then the usual names. Without
// one the test is skipped on a developer machine and fails under CI=true.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("LIANDONG_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium on PATH (scripts/test.sh installs Debian's chromium when run as root); CI=true makes this a failure")
	}
	t.Skip("no chromium on PATH; install Debian's chromium (apt-get install chromium) to run the console tests")
	return ""
}

// startBrowser starts headless Chromium for the test; it is stopped at cleanup.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	profile := t.TempDir() // removed after the browser is stopped (cleanups run in reverse)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 1000),
		chromedp.Flag("lang", "zh-CN"),
		chromedp.Flag("no-proxy-server", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	tab, cancelTab := chromedp.NewContext(allocCtx)
	b := &browser{t: t, ctx: tab, artefacts: artefactDir(t)}
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // waits for the browser process to end
	})
	// Start the browser with a context without deadline, then bound it here.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(tab) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium %s: %v", path, err)
		}
	case <-time.After(90 * time.Second):
		t.Fatalf("chromium %s did not start within 90 s", path)
	}
	messages := chromedp.Console(tab)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// Failed loads (the 422 of a refused form) are the server's answers,
			// not page errors; script errors and CSP violations are.
			if (m.Type == chromedp.ConsoleError && m.Source != "network") || m.IsException() {
				b.mu.Lock()
				b.console = append(b.console, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m.Text))
				b.mu.Unlock()
			}
		}
	}()
	return b
}

// artefactDir is $LIANDONG_ARTEFACTS (created if needed) or a temporary directory.
func artefactDir(t *testing.T) string {
	if dir := os.Getenv("LIANDONG_ARTEFACTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	return t.TempDir()
}

// do runs steps within timeout, failing the test with what the page showed.
func (b *browser) do(what string, timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v\npage: %s", what, err, b.location())
	}
}

// text returns the text of the first element sel matches, waiting for it.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v\npage: %s", sel, err, b.location())
	}
	return s
}

// eval evaluates a JavaScript expression in the page.
func evalIn[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (b *browser) location() string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	return loc
}

// pollPage reloads url until cond (a JavaScript expression) is true in it.
func (b *browser) pollPage(what, url, cond string, within time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(within)
	for {
		b.do("open "+url, 60*time.Second, chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("footer")))
		if evalIn[bool](b, cond) {
			return
		}
		if time.Now().After(deadline) {
			b.screenshot("timeout-" + strings.ReplaceAll(what, " ", "-"))
			b.t.Fatalf("%s: not seen within %v at %s", what, within, url)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// screenshot saves a full-page PNG into the artefact directory and logs its path.
func (b *browser) screenshot(name string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(b.artefacts, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s: %s (%d bytes)", name, path, len(png))
	return path
}

// consoleErrors returns the errors the pages logged so far.
func (b *browser) consoleErrors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.console...)
}

// jsString quotes s for a JavaScript expression.
func jsString(s string) string {
	js, _ := json.Marshal(s)
	return string(js)
}

// seedSamples writes the sample records of centre i through its API and returns them.
func (f *federation) seedSamples(i int, records []*schema.Record) []envelope {
	f.t.Helper()
	var out []envelope
	for _, r := range records {
		var env envelope
		if _, err := f.clients[i].do(context.Background(), http.MethodPost, "/v1/records", map[string]any{
			"catalogue": r.Catalogue, "visibility": r.Visibility, "body": json.RawMessage(r.Body),
		}, &env); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, env)
	}
	return out
}
