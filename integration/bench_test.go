package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestBenchConvergeProcesses runs `liandong bench converge --processes`: the
// four centres as processes of their own. Every write arrives at the three
// other centres, the receivers' histograms are read from their /metrics, and
// when the bench ends no centre is left running.
func TestBenchConvergeProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "bench", "converge", "--processes", "--duration", "2s", "--rate", "40", "--dir", dir, "--json")
	cmd.SysProcAttr = childAttr()
	// The bench's own LIANDONG_ variables must not reach the centres, which
	// would take them over the configuration the bench wrote.
	cmd.Env = append(os.Environ(), "LIANDONG_ROOT_KEYS=root-deadbeef")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("bench converge --processes: %v\n%s", err, lastLines(stderr.String(), 40))
	}
	var results []struct {
		Scenario string `json:"scenario"`
		Ops      int    `json:"ops"`
		Errors   int    `json:"errors"`
		Note     string `json:"note"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &results); err != nil {
		t.Fatalf("bench output: %v\n%s", err, stdout.String())
	}
	got := map[string]int{}
	for _, r := range results {
		got[r.Scenario] = r.Ops
		if r.Scenario != "converge" {
			continue
		}
		if r.Errors != 0 {
			t.Errorf("converge: %d writes failed or never arrived (%s)", r.Errors, r.Note)
		}
		// Stopped by the bench, not by the kernel when it exits (Pdeathsig).
		if !strings.Contains(r.Note, "4 stopped when asked and 0 killed") {
			t.Errorf("converge: the centres were not all stopped when asked: %s", r.Note)
		}
	}
	// 2 s at 40/s; each write is applied at three receivers.
	if got["converge"] < 40 || got["converge-applied"] < 3*got["converge"] {
		t.Fatalf("results %+v: want every write measured, and applied at three receivers each", results)
	}
	// The centres are gone: their HTTP addresses no longer answer.
	cfgs, _ := filepath.Glob(filepath.Join(dir, "converge", "*.yaml"))
	if len(cfgs) != 4 {
		t.Fatalf("want the four centres' configs in %s, have %v", dir, cfgs)
	}
	for _, path := range cfgs {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			HTTP string `yaml:"http"`
		}
		if err := yaml.Unmarshal(data, &cfg); err != nil || cfg.HTTP == "" {
			t.Fatalf("%s: %v", path, err)
		}
		if c, err := net.DialTimeout("tcp", cfg.HTTP, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still answers after the bench ended", cfg.HTTP)
		}
	}
}
