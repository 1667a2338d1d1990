package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Ratio is one liandong/peer comparison. Higher is better for throughput, lower
// for latency (Better says which).
type Ratio struct {
	Comparison string  `json:"comparison"`
	Clients    int     `json:"clients,omitempty"`
	Liandong   float64 `json:"liandong"`
	Peer       float64 `json:"peer"`
	Unit       string  `json:"unit"`
	Ratio      float64 `json:"ratio"`
	Better     string  `json:"better"` // "higher" or "lower"
	Target     string  `json:"target,omitempty"`
	Met        *bool   `json:"met,omitempty"`
}

// Report is the JSON result file of one run.
type Report struct {
	Date     time.Time         `json:"date"`
	Machine  map[string]string `json:"machine"`
	Command  string            `json:"command,omitempty"`
	Liandong []Result          `json:"liandong"`
	// LiandongWAL are liandong's scenarios again with --log-store wal.
	LiandongWAL []Result            `json:"liandong_wal,omitempty"`
	Peers       map[string][]Result `json:"peers"`
	Ratios      []Ratio             `json:"ratios"`
}

func cmdReport(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("report", flag.ContinueOnError)
	lian := fs.String("liandong", "", "JSON of `liandong bench ... --json`; comma-separated files are read in turn")
	lianWAL := fs.String("liandong-wal", "", "JSON of `liandong bench ... --log-store wal --json`, set beside the targets without one")
	peerFiles := map[string]*string{}
	for _, name := range []string{"raft-1", "raft-3", "raft-1-wal", "raft-3-wal", "etcd-1", "etcd-3", "nats", "nats-sync"} {
		peerFiles[name] = fs.String(name, "", "JSON of peerbench for "+name)
	}
	out := fs.String("out", "", "write the report JSON here")
	command := fs.String("command", "", "the command that produced the run, recorded in the JSON")
	machine := fs.String("machine", "", "key=value;… describing the machine, recorded in the JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	rep := Report{Date: time.Now().UTC(), Command: *command, Peers: map[string][]Result{},
		Machine: map[string]string{"goos": runtime.GOOS, "goarch": runtime.GOARCH, "cpus": fmt.Sprint(runtime.NumCPU())}}
	for _, kv := range strings.Split(*machine, ";") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			rep.Machine[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if *lian == "" {
		return fmt.Errorf("report: --liandong is required")
	}
	for _, f := range strings.Split(*lian, ",") {
		var rs []Result
		if err := readJSON(f, &rs); err != nil {
			return err
		}
		rep.Liandong = append(rep.Liandong, rs...)
	}
	for name, p := range peerFiles {
		if *p == "" {
			continue
		}
		var rs []Result
		if err := readJSON(*p, &rs); err != nil {
			return err
		}
		rep.Peers[name] = rs
	}
	// Each HTTP path is set against raw raft on the same kind of log.
	rep.Ratios = ratios(rep.Liandong, rep.Peers, "bolt")
	if *lianWAL != "" {
		if err := readJSON(*lianWAL, &rep.LiandongWAL); err != nil {
			return err
		}
		// raft-wal is opt-in: its ratios say what an operator choosing it
		// gets, and carry no target.
		for _, r := range ratios(rep.LiandongWAL, rep.Peers, "wal") {
			r.Comparison += " (raft-wal log)"
			r.Target, r.Met = "", nil
			rep.Ratios = append(rep.Ratios, r)
		}
	}
	printRatios(stdout, rep.Ratios)
	if *out != "" {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nresults written to %s\n", *out)
	}
	return nil
}

func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func find(rs []Result, scenario string, clients int) (Result, bool) {
	for _, r := range rs {
		if (scenario == "" || r.Scenario == scenario) && (clients == 0 || r.Clients == clients) {
			return r, true
		}
	}
	return Result{}, false
}

const targetClients = 64

// ratios sets liandong's results against the peers'; logStore ("wal" or
// "bolt") picks the raw raft runs on the same kind of log as liandong's.
func ratios(lian []Result, peers map[string][]Result, logStore string) []Ratio {
	var out []Ratio
	add := func(r Ratio, target float64) {
		if r.Peer <= 0 {
			return
		}
		r.Ratio = r.Liandong / r.Peer
		if target > 0 {
			met := r.Ratio >= target
			if r.Better == "lower" {
				met = r.Ratio <= target
				r.Target = fmt.Sprintf("≤ %.1f", target)
			} else {
				r.Target = fmt.Sprintf("≥ %.1f", target)
			}
			r.Met = &met
		}
		out = append(out, r)
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	writes := []struct {
		scenario, peer, label string
		target                float64
		p99                   bool
	}{
		{"write", "etcd-1", "write 1 replica / etcd 1 member", 1.5, false},
		{"write-3-replicas", "etcd-3", "write 3 replicas / etcd 3 members", 1.0, true},
		{"write", "raft-1", "write 1 replica / raw raft+bbolt 1 voter", 0.5, false},
		{"write-3-replicas", "raft-3", "write 3 replicas / raw raft+bbolt 3 voters", 0.5, false},
	}
	if logStore == "wal" {
		// A raw raft run on raft-wal, when the run has one (the caller marks
		// the pass's labels).
		for i, w := range writes[2:] {
			if _, ok := peers[w.peer+"-wal"]; ok {
				writes[2+i].peer += "-wal"
			}
		}
	}
	for _, w := range writes {
		for _, l := range lian {
			if l.Scenario != w.scenario {
				continue
			}
			p, ok := find(peers[w.peer], "", l.Clients)
			if !ok {
				continue
			}
			target := 0.0
			if l.Clients == targetClients {
				target = w.target
			}
			add(Ratio{Comparison: w.label, Clients: l.Clients, Liandong: l.PerSec, Peer: p.PerSec, Unit: "ops/s", Better: "higher"}, target)
			if l.CPUPerOp > 0 && p.CPUPerOp > 0 && l.Clients == targetClients {
				// What a write costs each, servers and load generators
				// counted alike: the bound the throughput targets meet
				// once the cores are busy.
				add(Ratio{Comparison: w.label + ", CPU per op", Clients: l.Clients, Liandong: us(l.CPUPerOp), Peer: us(p.CPUPerOp), Unit: "µs", Better: "lower"}, 0)
			}
			if w.p99 && strings.HasPrefix(w.peer, "etcd") {
				t := 0.0
				if l.Clients == targetClients {
					t = 1.0
				}
				add(Ratio{Comparison: w.label + ", p99", Clients: l.Clients, Liandong: ms(l.P99), Peer: ms(p.P99), Unit: "ms", Better: "lower"}, t)
			}
		}
	}
	// Batches (bench batch: POST /v1/batch, many records a request) against
	// etcd's one key a put. Not the measure, which is a request a
	// record, so no target: what a partner system loading a catalogue gets.
	for _, b := range lian {
		if b.Scenario != "write-batch" {
			continue
		}
		if p, ok := find(peers["etcd-1"], "", b.Clients); ok {
			add(Ratio{Comparison: "batch writes 1 replica (records/s) / etcd 1 member", Clients: b.Clients, Liandong: b.PerSec, Peer: p.PerSec, Unit: "ops/s", Better: "higher"}, 0)
			if b.CPUPerOp > 0 && p.CPUPerOp > 0 && b.Clients == targetClients {
				add(Ratio{Comparison: "batch writes 1 replica / etcd 1 member, CPU per record", Clients: b.Clients, Liandong: us(b.CPUPerOp), Peer: us(p.CPUPerOp), Unit: "µs", Better: "lower"}, 0)
			}
		}
	}
	// The HTTP floor (bench floor: the same load against a server that only
	// answers) bounds what any HTTP API reaches on these cores: against it
	// the node's share of a write's cost, and whether 1.5× etcd is in reach.
	for _, f := range lian {
		if f.Scenario != "http-floor" {
			continue
		}
		if l, ok := find(lian, "write", f.Clients); ok {
			add(Ratio{Comparison: "write 1 replica / HTTP floor (no node)", Clients: f.Clients, Liandong: l.PerSec, Peer: f.PerSec, Unit: "ops/s", Better: "higher"}, 0)
			if l.CPUPerOp > 0 && f.CPUPerOp > 0 && f.Clients == targetClients {
				add(Ratio{Comparison: "write 1 replica / HTTP floor, CPU per op", Clients: f.Clients, Liandong: us(l.CPUPerOp), Peer: us(f.CPUPerOp), Unit: "µs", Better: "lower"}, 0)
			}
		}
		if p, ok := find(peers["etcd-1"], "", f.Clients); ok {
			add(Ratio{Comparison: "HTTP floor (no node) / etcd 1 member", Clients: f.Clients, Liandong: f.PerSec, Peer: p.PerSec, Unit: "ops/s", Better: "higher"}, 0)
		}
	}
	// The targets are against JetStream's defaults; the same pair with
	// sync_interval: always (nats-sync), which fsyncs before it acknowledges
	// as liandong does, is set beside them without a target.
	natsRuns := []struct {
		peer, label string
		targets     bool
	}{{"nats", "NATS mirror", true}, {"nats-sync", "NATS mirror, fsync always", false}}
	for _, n := range natsRuns {
		target := func(t float64) float64 {
			if n.targets {
				return t
			}
			return 0
		}
		if l, ok := find(lian, "converge", 0); ok {
			if p, ok := find(peers[n.peer], "mirror-latency", 0); ok {
				add(Ratio{Comparison: "converge p50 / " + n.label + " A→B p50", Liandong: ms(l.P50), Peer: ms(p.P50), Unit: "ms", Better: "lower"}, 0)
				add(Ratio{Comparison: "converge p99 / " + n.label + " A→B p99", Liandong: ms(l.P99), Peer: ms(p.P99), Unit: "ms", Better: "lower"}, target(2.0))
			}
		}
		if l, ok := find(lian, "catchup", 0); ok {
			if p, ok := find(peers[n.peer], "mirror-catchup", 0); ok {
				add(Ratio{Comparison: "catchup / " + n.label + " catch-up", Liandong: l.PerSec, Peer: p.PerSec, Unit: "entries/s", Better: "higher"}, target(1.0))
			}
		}
	}
	return out
}

func printRatios(w io.Writer, rs []Ratio) {
	fmt.Fprintf(w, "%-52s %7s %12s %12s %-9s %7s %7s %s\n", "liandong / peer", "clients", "liandong", "peer", "unit", "ratio", "target", "met")
	for _, r := range rs {
		cl := ""
		if r.Clients > 0 {
			cl = fmt.Sprint(r.Clients)
		}
		met := ""
		if r.Met != nil {
			met = map[bool]string{true: "yes", false: "NO"}[*r.Met]
		}
		fmt.Fprintf(w, "%-52s %7s %12.1f %12.1f %-9s %7.2f %7s %s\n", r.Comparison, cl, r.Liandong, r.Peer, r.Unit, r.Ratio, r.Target, met)
	}
}
