package main

import (
	"crypto/sha256"
	"os"
	"strconv"
	"testing"
	"time"
)

func TestParseStatCPU(t *testing.T) {
	for _, c := range []struct {
		stat string
		want time.Duration
		ok   bool
	}{
		{"1234 (etcd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 100 1000 50", 325 * clockTick, true},
		{"7 (a b) c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 1 1", 7 * clockTick, true},
		{"7 (x) R 1 2", 0, false},
		{"no command", 0, false},
		{"7 (x) R 1 7 7 0 -1 0 0 0 0 0 -3 4 0 0", 0, false},
	} {
		got, err := parseStatCPU(c.stat)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("parseStatCPU(%q) = %v, %v; want %v, ok %v", c.stat, got, err, c.want, c.ok)
		}
	}
}

// TestCPUMeterCountsAServer: the meter counts a listed process's CPU, here
// this one's (so twice), and refuses a pid that does not exist.
func TestCPUMeterCountsAServer(t *testing.T) {
	self, err := parsePids(" ," + strconv.Itoa(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	alone := cpuMeter{}
	a0, ok1 := alone.total()
	s0, ok2 := self.total()
	// Hash until this process has used 300 ms of CPU, however busy the
	// machine (at most 20 s of it).
	block := make([]byte, 1<<20)
	var a1, s1 time.Duration
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); {
		sha256.Sum256(block)
		if a1, _ = alone.total(); a1-a0 >= 300*time.Millisecond {
			break
		}
	}
	s1, _ = self.total()
	if !ok1 || !ok2 || a1-a0 < 300*time.Millisecond {
		t.Fatalf("this process's CPU over 20 s of hashing: %v", a1-a0)
	}
	// /proc counts in 10 ms ticks.
	if d := (s1 - s0) - 2*(a1-a0); d < -30*time.Millisecond || d > 30*time.Millisecond {
		t.Errorf("with its own pid listed the meter counted %v, want twice %v", s1-s0, a1-a0)
	}
	if _, err := parsePids("999999999"); err == nil {
		t.Error("took a pid with no process")
	}
}
