package main

import (
	"testing"
	"time"
)

// TestRatiosSetCPUAgainstCPU: at the target's client count, a write's CPU
// is set against a put's and the floor's, lower being better, and only
// where both sides measured it.
func TestRatiosSetCPUAgainstCPU(t *testing.T) {
	lian := []Result{
		{Scenario: "write", Clients: 64, PerSec: 4000, CPUPerOp: 300 * time.Microsecond},
		{Scenario: "write", Clients: 16, PerSec: 3000, CPUPerOp: 350 * time.Microsecond},
		{Scenario: "http-floor", Clients: 64, PerSec: 20000, CPUPerOp: 75 * time.Microsecond},
		{Scenario: "write-batch", Clients: 64, PerSec: 12000, CPUPerOp: 125 * time.Microsecond},
	}
	peers := map[string][]Result{
		"etcd-1": {{Clients: 64, PerSec: 8000, CPUPerOp: 250 * time.Microsecond}, {Clients: 16, PerSec: 5000, CPUPerOp: 400 * time.Microsecond}},
		"raft-1": {{Clients: 64, PerSec: 20000}}, // no CPU figure: no CPU row
	}
	all := ratios(lian, peers, "bolt")
	rows := map[string]Ratio{}
	for _, r := range all {
		if r.Comparison == "batch writes 1 replica (records/s) / etcd 1 member" && (r.Clients != 64 || r.Ratio != 1.5 || r.Target != "") {
			t.Errorf("batch row %+v, want 12000/8000 at 64 clients, no target", r)
		}
		if r.Unit != "µs" {
			continue
		}
		if r.Clients != 64 {
			t.Errorf("a CPU row at %d clients: %+v", r.Clients, r)
		}
		if _, dup := rows[r.Comparison]; dup {
			t.Errorf("two rows %q", r.Comparison)
		}
		rows[r.Comparison] = r
	}
	for name, want := range map[string]float64{
		"write 1 replica / etcd 1 member, CPU per op":            1.2,
		"write 1 replica / HTTP floor, CPU per op":               4,
		"batch writes 1 replica / etcd 1 member, CPU per record": 0.5,
	} {
		r, ok := rows[name]
		if !ok {
			t.Fatalf("no row %q in %v", name, rows)
		}
		if r.Better != "lower" || r.Unit != "µs" || r.Clients != 64 || r.Ratio < want-0.01 || r.Ratio > want+0.01 || r.Target != "" {
			t.Errorf("%s: %+v, want ratio %v, lower better, in µs, no target", name, r, want)
		}
	}
	if r, ok := rows["write 1 replica / raw raft+bbolt 1 voter, CPU per op"]; ok {
		t.Errorf("a CPU row without the peer's CPU: %+v", r)
	}
	if len(rows) != 3 {
		t.Errorf("%d CPU rows, want 3: %v", len(rows), rows)
	}
}
