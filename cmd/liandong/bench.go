package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"liandong/client"
	"liandong/integration/bench"
	"liandong/node/server"
)

func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var stops []func()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	duration := fs.Duration("duration", 5*time.Second, "length of each measurement")
	clientsFlag := fs.String("clients", "1,16,64", "comma-separated client counts for the write and floor scenarios")
	size := fs.Int("size", 1024, "request size of created records in bytes")
	batch := fs.Int("batch", 100, "batch: records created per POST /v1/batch request (1-500)")
	records := fs.Int("records", 100000, "records preloaded for the read scenario")
	asJSON := fs.Bool("json", false, "print results as JSON")
	rate := fs.Int("rate", 200, "converge: writes per second spread over the four centres")
	processes := fs.Bool("processes", false, "converge: run the four centres as processes of their own (liandong serve), as a deployment does, rather than in this one")
	entries := fs.Int("entries", 100000, "catchup: entries the other centres hold when the empty one joins")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (catchup: of the catch-up alone, and run on its own; fanout: of the whole run)")
	memProfile := fs.String("memprofile", "", "read: write a heap profile to this file once the records are loaded; write, batch: after the run (its alloc_space and alloc_objects samples are what the run allocated, node and load generator, with the node's start)")
	replicas := fs.Int("replicas", 1, "write: also measure a centre on this many replicas (e.g. 3), in the same run")
	logStore := fs.String("log-store", "", "write, converge, catchup: raft log store of the nodes, bolt or wal (unset: bolt, as for any new data directory)")
	dir := fs.String("dir", "", "data directory for the node under test (default: a temporary one, removed after)")
	centresFlag := fs.String("centres", "20,50,100", "fanout: comma-separated numbers of simulated centres")
	fanoutRecords := fs.String("fanout-records", "100,10000", "fanout: comma-separated entries per origin log")
	rounds := fs.Int("rounds", 3, "fanout: anti-entropy rounds measured per configuration")
	aeInterval := fs.Duration("interval", 0, "fanout, libp2p transport: anti-entropy interval (default 40ms per centre, at least 1s)")
	transport := fs.String("transport", "codec", "fanout: codec (count the round's frames with sync/wire, no network) or libp2p (real exchanges on loopback; heavy past ~20 centres)")
	// Scenario names and flags may come in any order.
	var scenarios []string
	for {
		if err := fs.Parse(args); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			break
		}
		scenarios = append(scenarios, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(scenarios) == 0 {
		scenarios = []string{"write", "read"}
	}
	var clients []int
	for _, s := range strings.Split(*clientsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 4096 {
			return usagef("--clients: %q is not a client count (1-4096)", s)
		}
		clients = append(clients, n)
	}
	if *batch < 1 || *batch > client.MaxBatch {
		return usagef("--batch %d: want 1-%d records a request", *batch, client.MaxBatch)
	}
	if *cpuProfile != "" && slices.Contains(scenarios, "catchup") && len(scenarios) > 1 {
		return usagef("--cpuprofile profiles a catch-up alone: run catchup on its own (`liandong bench catchup --cpuprofile F`)")
	}
	for _, s := range scenarios {
		switch s {
		case "write", "batch", "floor", "read", "converge", "catchup":
		case "fanout":
			if len(scenarios) > 1 {
				return usagef("fanout runs on its own: `liandong bench fanout` (it starts no node)")
			}
		default:
			return usagef("unknown scenario %q (have: write, batch, floor, read, converge, catchup, fanout)", s)
		}
	}
	// profile starts the CPU profile --cpuprofile asks for, creating its
	// file only then (a run refused before it starts leaves none), and
	// returns what stops it; a profile that cannot start fails the run.
	profile := func() (stop func(), err error) { return func() {}, nil }
	if *cpuProfile != "" {
		profile = func() (func(), error) {
			f, err := os.Create(*cpuProfile)
			if err != nil {
				return nil, fmt.Errorf("--cpuprofile: %w", err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return nil, fmt.Errorf("--cpuprofile %s: %w", *cpuProfile, err)
			}
			return func() {
				pprof.StopCPUProfile()
				if err := f.Close(); err != nil {
					fmt.Fprintf(stderr, "--cpuprofile %s: %v\n", *cpuProfile, err)
				}
			}, nil
		}
	}
	if scenarios[0] == "fanout" {
		centres, err := parseInts("centres", *centresFlag, 2, 1000)
		if err != nil {
			return err
		}
		recs, err := parseInts("fanout-records", *fanoutRecords, 1, 1<<40)
		if err != nil {
			return err
		}
		if *rounds < 1 || *rounds > 100 {
			return usagef("--rounds: want 1-100, got %d", *rounds)
		}
		if *transport != "codec" && *transport != "libp2p" {
			return usagef("--transport: %q is not codec or libp2p", *transport)
		}
		stop, err := profile()
		if err != nil {
			return err
		}
		defer stop()
		return cmdBenchFanout(ctx, fanoutOptions{Transport: *transport, Centres: centres, Records: recs, Rounds: *rounds, Interval: *aeInterval,
			Logger: newLogger(stderr, "error")}, *asJSON, stdout, stderr)
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "liandong-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	} else if err := os.MkdirAll(*dir, 0o700); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}

	// The write scenario's node starts only when asked for, so the read
	// scenario's memory figures hold one node.
	var writeAPI *bench.API
	writeNode := func() (*bench.API, error) {
		if writeAPI != nil {
			return writeAPI, nil
		}
		cfg := server.Default()
		cfg.Centre, cfg.DataDir, cfg.HTTP = "tianjin", *dir+"/node", "127.0.0.1:0"
		cfg.Raft.LogStore = *logStore
		cfg.Logger = newLogger(stderr, "warn")
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		tokenPath, err := server.DevSetup(&cfg, time.Now())
		if err != nil {
			return nil, err
		}
		s, stop, err := startServer(ctx, cfg)
		if err != nil {
			return nil, err
		}
		stops = append(stops, stop)
		tok, err := os.ReadFile(tokenPath)
		if err != nil {
			return nil, err
		}
		writeAPI = bench.NewAPI(s.URL, strings.TrimSpace(string(tok)), 256)
		return writeAPI, nil
	}
	defer func() {
		for _, stop := range stops {
			stop()
		}
	}()

	var results []bench.Result
	emit := func(r bench.Result) {
		results = append(results, r)
		if !*asJSON {
			fmt.Fprintln(stdout, r.Row())
		}
	}
	if !*asJSON {
		fmt.Fprintln(stdout, bench.Header)
	}
	base, err := bench.FsyncBaseline(ctx, *dir, *duration)
	if err != nil {
		return err
	}
	emit(base)
	// The profile covers the whole run, or a catch-up alone from when the
	// joiner starts to when it has caught up: its preload would otherwise be
	// most of the samples.
	if !slices.Contains(scenarios, "catchup") {
		stop, err := profile()
		if err != nil {
			return err
		}
		defer stop()
	}
	logger := newLogger(stderr, "error")
	for _, sc := range scenarios {
		switch sc {
		case "converge":
			rs, err := benchConverge(ctx, filepath.Join(*dir, "converge"), *rate, *duration, *logStore, *processes, logger)
			if err != nil {
				return err
			}
			for _, r := range rs {
				emit(r)
			}
		case "catchup":
			r, err := benchCatchup(ctx, filepath.Join(*dir, "catchup"), *entries, *logStore, profile, logger)
			if err != nil {
				return err
			}
			emit(r)
		case "write":
			api, err := writeNode()
			if err != nil {
				return err
			}
			for _, r := range bench.Write(ctx, api, clients, *duration, *size) {
				emit(r)
			}
			if *memProfile != "" {
				if err := writeHeapProfile(*memProfile); err != nil {
					return err
				}
			}
			if *replicas > 1 {
				apis, stopGroup, err := startCentre(ctx, filepath.Join(*dir, "group"), *replicas, *logStore, logger)
				if err != nil {
					return err
				}
				// Writes go to the first replica, the one that bootstrapped and leads.
				for _, r := range bench.Write(ctx, apis[0], clients, *duration, *size) {
					r.Scenario = fmt.Sprintf("write-%d-replicas", *replicas)
					emit(r)
				}
				stopGroup()
			}
		case "batch":
			api, err := writeNode()
			if err != nil {
				return err
			}
			for _, r := range bench.WriteBatch(ctx, api, clients, *duration, *size, *batch) {
				emit(r)
			}
			if *memProfile != "" {
				if err := writeHeapProfile(*memProfile); err != nil {
					return err
				}
			}
		case "floor":
			rs, err := bench.HTTPFloor(ctx, clients, *duration, *size)
			if err != nil {
				return err
			}
			for _, r := range rs {
				emit(r)
			}
		case "read":
			if err := benchRead(ctx, filepath.Join(*dir, "read"), *records, *size, *duration, *memProfile, emit, logger); err != nil {
				return err
			}
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	return nil
}
