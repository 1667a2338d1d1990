//go:build failpoints

package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node/api"
)

// TestFaultsFileClockOffset runs a real one-centre server with a faults file and
// changes the clock offset while it runs: a token issued now is accepted within
// the verifier's leeway, refused 401 as not yet valid when the clock is set back
// beyond it and as expired when set ahead past its exp, each with a message
// naming the node's clock; records written meanwhile carry the offset clock.
func TestFaultsFileClockOffset(t *testing.T) {
	cfg := Default()
	cfg.Centre = "tianjin"
	cfg.DataDir = t.TempDir()
	cfg.HTTP = "127.0.0.1:0"
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	cfg.FaultsFile = filepath.Join(t.TempDir(), "faults.json") // absent: no fault
	now := time.Now()
	if _, err := DevSetup(&cfg, now); err != nil {
		t.Fatal(err)
	}
	keys, err := EnsureKeys(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := LoadBundle(cfg.Path(cfg.Bundle), nil, now)
	if err != nil {
		t.Fatal(err)
	}
	iss := auth.TokenIssuer{Centre: "tianjin", Federation: bundle.Federation, Key: keys.Token}
	// A partner's long-held token (issued half an hour ago), and one issued now
	// for a minute.
	held, err := iss.Issue("partner", auth.AllScopes, 2*time.Hour, now.Add(-30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := iss.Issue("probe", []auth.Scope{auth.ScopeRead}, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}

	s := runTestServer(t, cfg)

	cli := &http.Client{Timeout: 10 * time.Second}
	call := func(method, path, token string, body any) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, s.URL+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := cli.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// setFaults replaces the file as the harness does, then waits until the
	// fresh token gets want (the poller has picked the file up).
	setFaults := func(spec string, want int) string {
		t.Helper()
		tmp := cfg.FaultsFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(spec), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfg.FaultsFile); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			code, body := call("GET", "/v1/records?limit=1", fresh, nil)
			if code == want {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("faults %s: GET with a fresh token answers %d %s, want %d", spec, code, body, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	setFaults(`{}`, http.StatusOK)
	body := setFaults(`{"clock_offset": "-10m"}`, http.StatusUnauthorized)
	if !strings.Contains(body, "not valid yet") || !strings.Contains(body, "this node's clock reads") {
		t.Errorf("clock 10 min behind: %s", body)
	}
	// The held token still works, and a write is stamped with the node's clock.
	code, rb := call("POST", "/v1/records", held, map[string]any{
		"catalogue": "supply", "visibility": "federation",
		"body": map[string]any{"title": "skewed", "summary": "s", "industry": "new-energy", "trl": 5},
	})
	if code != http.StatusCreated {
		t.Fatalf("write with a held token at a clock 10 min behind: %d %s", code, rb)
	}
	var rec struct {
		UpdatedAt time.Time `json:"updated_at"`
	}
	json.Unmarshal([]byte(rb), &rec)
	if lag := time.Since(rec.UpdatedAt); lag < 9*time.Minute || lag > 11*time.Minute {
		t.Errorf("updated_at %v is %v behind, want about 10 min", rec.UpdatedAt, lag)
	}

	setFaults(`{"clock_offset": "20s"}`, http.StatusOK) // within the 30 s leeway
	setFaults(`{"clock_offset": "-20s"}`, http.StatusOK)
	body = setFaults(`{"clock_offset": "2m"}`, http.StatusUnauthorized)
	if !strings.Contains(body, "expired") || !strings.Contains(body, "this node's clock reads") {
		t.Errorf("clock 2 min ahead: %s", body)
	}
	// A file that does not parse is ignored: the faults in force stay.
	setFaults(`{"clock_offset": "soon"}`, http.StatusUnauthorized)
	time.Sleep(3 * faultsPoll)
	if code, _ := call("GET", "/v1/records?limit=1", fresh, nil); code != http.StatusUnauthorized {
		t.Errorf("a bad faults file lifted the faults: %d", code)
	}
	os.Remove(cfg.FaultsFile) // no file: no faults
	setFaults(`{}`, http.StatusOK)
}

// TestFaultsFileRefusedAtStart: a faults file that does not parse stops the
// start with its name, rather than running without the faults asked for.
func TestFaultsFileRefusedAtStart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faults.json")
	for _, spec := range []string{`{"clock_offset": "soon"}`, `{"drop_in": "hebei"}`, `{"raft_isolated": true}`} {
		os.WriteFile(path, []byte(spec), 0o600)
		cfg := Default()
		cfg.FaultsFile = path
		cfg.Validate()
		if _, err := openFaults(cfg); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: %v", spec, err)
		}
	}
}

// TestFaultsFileOneWayRaft: raft_drop_in and raft_drop_out each cut their
// own direction of raft (node.RaftOneWay), and neither isolates the replica.
func TestFaultsFileOneWayRaft(t *testing.T) {
	path := filepath.Join(t.TempDir(), "faults.json")
	for _, c := range []struct {
		spec    string
		in, out bool
	}{
		{`{"raft_drop_in": true}`, true, false},
		{`{"raft_drop_out": true}`, false, true},
		{`{"raft_drop_in": true, "raft_drop_out": true}`, true, true},
		{`{}`, false, false},
	} {
		os.WriteFile(path, []byte(c.spec), 0o600)
		cfg := Default()
		cfg.FaultsFile = path
		cfg.Validate()
		f, err := openFaults(cfg)
		if err != nil {
			t.Fatalf("%s: %v", c.spec, err)
		}
		if f.RaftDropIn() != c.in || f.RaftDropOut() != c.out || f.RaftIsolated() {
			t.Errorf("%s: drop in %v, out %v, isolated %v", c.spec, f.RaftDropIn(), f.RaftDropOut(), f.RaftIsolated())
		}
	}
}

// TestIsolationCutsForwarding: while raft_isolate is in force, a request this
// replica would forward to its leader fails without reaching it, and one
// another replica forwards here has its connection dropped unanswered, as
// across a real partition; other requests, and all once the fault is lifted,
// go through.
func TestIsolationCutsForwarding(t *testing.T) {
	f := &faults{}
	f.drops.Store(&faultDrops{})
	var reached atomic.Int32
	leader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached.Add(1) }))
	defer leader.Close()
	forward := func() error {
		req, _ := http.NewRequest("POST", leader.URL+"/v1/records", nil)
		resp, err := f.forwardTransport(nil).RoundTrip(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	here := httptest.NewServer(f.wrapHTTP(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	defer here.Close()
	arrive := func(forwarded bool) error {
		req, _ := http.NewRequest("POST", here.URL+"/v1/records", nil)
		if forwarded {
			req.Header.Set(api.ForwardedHeader, "tianjin")
		}
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}

	if err := forward(); err != nil || reached.Load() != 1 {
		t.Fatalf("not isolated: forward %v, leader reached %d times", err, reached.Load())
	}
	if err := arrive(true); err != nil {
		t.Fatalf("not isolated: a forwarded request failed: %v", err)
	}
	f.raft.Store(true)
	if err := forward(); !errors.Is(err, errForwardIsolated) || reached.Load() != 1 {
		t.Fatalf("isolated: forward %v, leader reached %d times", err, reached.Load())
	}
	if err := arrive(true); err == nil {
		t.Fatal("isolated: a request forwarded here was answered")
	}
	if err := arrive(false); err != nil {
		t.Fatalf("isolated: a client's own request failed: %v", err)
	}
	f.raft.Store(false)
	if err := forward(); err != nil || reached.Load() != 2 {
		t.Fatalf("lifted: forward %v, leader reached %d times", err, reached.Load())
	}
	if err := arrive(true); err != nil {
		t.Fatalf("lifted: a forwarded request failed: %v", err)
	}
}
