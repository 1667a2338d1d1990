// Command peerbench is the peer half of liandong's same-run benchmark (issue 11):
// load generators for etcd (1 KB puts), NATS JetStream (publish, A→B mirror
// latency, mirror catch-up) and raw hashicorp/raft + bbolt (1 KB applies, no
// liandong code), plus the report that sets liandong's figures beside theirs.
//
// It is a separate Go module so that the root module's build and CI never fetch
// etcd or NATS. run.sh in this directory installs the peer servers into a
// temporary GOBIN, starts them on loopback, runs `liandong bench` and this
// program, and stops everything it started by pid. Every load loop is bounded in
// time and count and talks only to 127.0.0.1.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "peerbench:", err)
		os.Exit(1)
	}
}

const usage = `usage: peerbench COMMAND [flags]

commands:
  ports N          print N loopback TCP ports that were free a moment ago
  etcd             1 KB puts against an etcd cluster (--endpoints)
  nats             JetStream publish, A→B mirror latency and mirror catch-up (--a, --b)
  raft             raw hashicorp/raft + raft-boltdb + a bbolt FSM, 1 KB applies, in process
  report           liandong/peer ratios from the JSON files of a run`

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "ports":
		if len(args) != 1 {
			return fmt.Errorf("ports: want a count")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > 64 {
			return fmt.Errorf("ports: %q is not a count (1-64)", args[0])
		}
		ports, err := freePorts(n)
		if err != nil {
			return err
		}
		for _, p := range ports {
			fmt.Fprintln(stdout, p)
		}
		return nil
	case "etcd":
		return cmdEtcd(ctx, args, stdout)
	case "nats":
		return cmdNATS(ctx, args, stdout)
	case "raft":
		return cmdRaft(ctx, args, stdout)
	case "report":
		return cmdReport(args, stdout)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

// Result is one scenario run; the JSON matches liandong's bench.Result so the
// report reads both alike.
type Result struct {
	System   string        `json:"system,omitempty"`
	Scenario string        `json:"scenario"`
	Clients  int           `json:"clients"`
	Ops      int           `json:"ops"`
	Errors   int           `json:"errors"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	PerSec   float64       `json:"per_sec"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
	Max      time.Duration `json:"max_ns"`
	Note     string        `json:"note,omitempty"`
	FirstErr string        `json:"first_error,omitempty"`
	// CPUPerOp is the CPU time of the load generator and of the servers
	// under test (--pids) over the run, divided by the operations: for
	// liandong's rows, its bench's one process; for etcd and NATS, the
	// load generator's process and the servers'.
	CPUPerOp time.Duration `json:"cpu_per_op_ns,omitempty"`
}

// Row formats r as a table row.
func (r Result) Row() string {
	note := r.Note
	if r.CPUPerOp > 0 {
		note = strings.TrimSuffix(round(r.CPUPerOp)+" CPU/op; "+note, "; ")
	}
	return fmt.Sprintf("%-8s %-22s %7d %9d %7d %11.0f %10s %10s %10s  %s", r.System, r.Scenario, r.Clients, r.Ops, r.Errors,
		r.PerSec, round(r.P50), round(r.P99), round(r.Max), note)
}

const header = "system   scenario               clients       ops  errors       ops/s        p50        p99        max"

func round(d time.Duration) string {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// load runs op from clients goroutines for d and at most maxOps operations in
// all, and summarises the latencies. As liandong's bench.Load, the deadline
// stops new operations and lets those under way finish, and counts them; 2 s
// past it they are cancelled, and those count neither as done nor as failed.
//
// meter's CPU time over the run, divided by the operations, is the row's CPU
// per operation: the load generator's and the listed servers'.
func load(ctx context.Context, meter cpuMeter, scenario string, clients int, d time.Duration, maxOps int64, op func(ctx context.Context, client, i int) error) Result {
	deadline := time.Now().Add(d)
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(2*time.Second))
	defer cancel()
	var (
		mu       sync.Mutex
		lat      []time.Duration
		errs     atomic.Int64
		issued   atomic.Int64
		firstErr atomic.Value
		wg       sync.WaitGroup
	)
	start := time.Now()
	cpu0, cpuOK := meter.total()
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1024)
			for i := 0; ctx.Err() == nil && time.Now().Before(deadline); i++ {
				if issued.Add(1) > maxOps {
					break
				}
				t0 := time.Now()
				err := op(ctx, c, i)
				if ctx.Err() != nil {
					break
				}
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := summarise(scenario, clients, lat, int(errs.Load()), time.Since(start))
	if cpu1, ok := meter.total(); ok && cpuOK && r.Ops > 0 {
		r.CPUPerOp = (cpu1 - cpu0) / time.Duration(r.Ops)
	}
	if e, ok := firstErr.Load().(string); ok {
		r.FirstErr = e
	}
	return r
}

// summarise builds a Result from latencies.
func summarise(scenario string, clients int, lat []time.Duration, errs int, elapsed time.Duration) Result {
	slices.Sort(lat)
	r := Result{Scenario: scenario, Clients: clients, Ops: len(lat), Errors: errs, Elapsed: elapsed}
	if elapsed > 0 {
		r.PerSec = float64(len(lat)) / elapsed.Seconds()
	}
	if len(lat) > 0 {
		r.P50 = lat[len(lat)*50/100]
		r.P99 = lat[min(len(lat)-1, len(lat)*99/100)]
		r.Max = lat[len(lat)-1]
	}
	return r
}

// parseClients reads a comma-separated list of client counts.
func parseClients(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 4096 {
			return nil, fmt.Errorf("--clients: %q is not a client count (1-4096)", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// emitter prints results as table rows (stderr) and collects them for the JSON
// written to --out (or stdout).
type emitter struct {
	system  string
	results []Result
	table   io.Writer
}

func (e *emitter) add(r Result) {
	r.System = e.system
	if len(e.results) == 0 {
		fmt.Fprintln(e.table, header)
	}
	e.results = append(e.results, r)
	fmt.Fprintln(e.table, r.Row())
	if r.FirstErr != "" {
		fmt.Fprintf(e.table, "         first error: %.300s\n", r.FirstErr)
	}
}

func (e *emitter) write(path string, stdout io.Writer) error {
	data, err := json.MarshalIndent(e.results, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	if path == "" || path == "-" {
		_, err = stdout.Write(data)
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// commonFlags are the flags every load command has.
type commonFlags struct {
	duration time.Duration
	clients  []int
	size     int
	out      string
	pids     string
	meter    cpuMeter
}

func newFlagSet(name string, c *commonFlags, clientsDefault string) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.DurationVar(&c.duration, "duration", 10*time.Second, "length of each measurement")
	cl := fs.String("clients", clientsDefault, "comma-separated client counts")
	fs.IntVar(&c.size, "size", 1024, "value size in bytes")
	fs.StringVar(&c.out, "out", "", "write the results as JSON to this file (default stdout)")
	fs.StringVar(&c.pids, "pids", "", "comma-separated pids of the servers under test, whose CPU time counts with this process's in each row's CPU per operation")
	return fs, cl
}

func (c *commonFlags) finish(cl string) error {
	var err error
	if c.clients, err = parseClients(cl); err != nil {
		return err
	}
	if c.duration <= 0 || c.duration > 10*time.Minute {
		return fmt.Errorf("--duration: want (0, 10m], got %v", c.duration)
	}
	if c.size < 1 || c.size > 1<<20 {
		return fmt.Errorf("--size: want 1 B-1 MiB, got %d", c.size)
	}
	c.meter, err = parsePids(c.pids)
	return err
}

// freePorts returns n distinct loopback TCP ports that were free a moment ago,
// from below the kernel's ephemeral range (32768 up on Linux): a port the
// kernel hands out for ":0" can be handed to another socket (an outgoing
// connection) before the etcd or NATS server this script starts binds it.
func freePorts(n int) ([]int, error) {
	const low, high = 20000, 32000
	given := map[int]bool{}
	var out []int
	for try := 0; len(out) < n; try++ {
		if try == 1000*n {
			return nil, fmt.Errorf("no %d free loopback ports in %d-%d", n, low, high)
		}
		port := low + rand.IntN(high-low)
		if given[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		given[port] = true
		out = append(out, port)
	}
	return out, nil
}

// payload returns size bytes of printable filler starting with tag.
func payload(tag string, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	copy(b, tag)
	return b
}
