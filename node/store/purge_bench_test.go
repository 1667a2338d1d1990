package store

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"liandong/auth"
	"liandong/schema"
)

// purgeFixture is a state file of tianjin holding n records of hebei (1 KB
// bodies, as catch-up brings them) and a few of its own, filled once per size
// and copied for each purge, which consumes it.
type purgeFixture struct {
	path  string
	index uint64 // the raft index the fill reached
	ownID string
	key   *auth.KeyPair
}

var (
	purgeFixturesMu sync.Mutex
	purgeFixtures   = map[int]*purgeFixture{}
)

func purgeFixtureOf(b *testing.B, root string, n int) *purgeFixture {
	b.Helper()
	purgeFixturesMu.Lock()
	defer purgeFixturesMu.Unlock()
	if f, ok := purgeFixtures[n]; ok {
		return f
	}
	tk := mustKey(b, "tianjin")
	path := filepath.Join(root, fmt.Sprintf("fill-%d.db", n))
	s, err := Open(path, Options{Centre: "tianjin", Signer: keySigner{tk}, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	a := &applier{t: b, s: s}
	a.write(OpPut, "tianjin:own1", supply("本中心记录", schema.VisibilityFederation), 0)
	fillRemote(b, a, "hebei", mustKey(b, "hebei"), n)
	if err := s.Close(); err != nil {
		b.Fatal(err)
	}
	f := &purgeFixture{path: path, index: a.index, ownID: "tianjin:own1", key: tk}
	purgeFixtures[n] = f
	return f
}

// fillRemote applies n entries of origin, signed with k, each a new 1 KB shared
// record, in batches of 1,000 as catch-up does.
func fillRemote(tb testing.TB, a *applier, origin string, k *auth.KeyPair, n int) {
	tb.Helper()
	var head schema.Head
	const batch = 1000
	for done := 0; done < n; {
		es := make([]*schema.Entry, 0, batch)
		for ; done < n && len(es) < batch; done++ {
			rec := supply(fmt.Sprintf("成果%d", done), schema.VisibilityFederation)
			rec.Body = []byte(fmt.Sprintf(`{"industry":"new-materials","summary":"%0900d","title":"成果%d","trl":6}`, done, done))
			rec.ID = fmt.Sprintf("%s:%012d", origin, done)
			rec.Origin, rec.Broker, rec.Version = origin, origin, 1
			rec.CreatedAt, rec.UpdatedAt = t0, t0
			e, err := schema.NewEntry(schema.EntryPayload{Origin: origin, Epoch: "E1", Seq: head.Seq + 1, PrevHash: head.Hash, KeyID: k.ID, SignedAt: t0, Record: rec})
			if err != nil {
				tb.Fatal(err)
			}
			if err := auth.SignEntry(k, e); err != nil {
				tb.Fatal(err)
			}
			head = schema.Head{Origin: origin, Epoch: "E1", Seq: e.Seq, Hash: e.Hash()}
			es = append(es, e)
		}
		if r := a.apply(&Command{Remote: &RemoteCommand{Origin: origin, Entries: es}})[0]; r.Err != nil || r.Applied != len(es) {
			tb.Fatalf("fill: %+v", r)
		}
	}
}

func copyFile(tb testing.TB, from, to string) {
	tb.Helper()
	in, err := os.Open(from)
	if err != nil {
		tb.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		tb.Fatal(err)
	}
	if err := out.Close(); err != nil {
		tb.Fatal(err)
	}
}

// BenchmarkPurge measures applying one origin's purge at a replica, as raft
// hands it the committed command(s): whole (one command, chunk=0) or in
// chunks of 1,000 records (PurgeCommand.Limit), proposed one after another.
// It reports wall and CPU time, the longest apply of one command, the peak Go
// heap while it runs (sampled every 2 ms, above the heap before it), and how
// long a write and the reads of the centre's own record issued meanwhile
// waited (max-write-ms: the state machine applies one command after another,
// so a write waits for the command being applied). PURGE_RECORDS replaces
// the sizes (e.g. 1000000).
func BenchmarkPurge(b *testing.B) {
	root := b.TempDir()
	sizes := []int{10_000, 100_000}
	if v, err := strconv.Atoi(os.Getenv("PURGE_RECORDS")); err == nil && v > 0 {
		sizes = []int{v}
	}
	for _, n := range sizes {
		for _, chunk := range []int{0, 1000} {
			b.Run(fmt.Sprintf("records=%d/chunk=%d", n, chunk), func(b *testing.B) {
				b.StopTimer()
				benchPurge(b, purgeFixtureOf(b, root, n), n, chunk)
			})
		}
	}
}

func benchPurge(b *testing.B, f *purgeFixture, n, chunk int) {
	var wall, cpu time.Duration
	var peak uint64
	var maxWrite, maxRead, maxCommand time.Duration
	for i := 0; i < b.N; i++ {
		path := filepath.Join(b.TempDir(), "state.db")
		copyFile(b, f.path, path)
		s, err := Open(path, Options{Centre: "tianjin", Signer: keySigner{f.key}, NoSync: true})
		if err != nil {
			b.Fatal(err)
		}
		// fsm is the state machine's one goroutine: raft indexes are taken
		// and applied in one order.
		var fsm sync.Mutex
		a := &applier{t: b, s: s, index: f.index}
		runtime.GC()
		base := heapBytes()
		stop := make(chan struct{})
		started := make(chan struct{})
		var top atomic.Uint64
		var writeWait, readWait time.Duration
		var wg sync.WaitGroup
		wg.Add(3)
		go func() { // the heap sampler
			defer wg.Done()
			t := time.NewTicker(2 * time.Millisecond)
			defer t.Stop()
			for {
				if h := heapBytes(); h > top.Load() {
					top.Store(h)
				}
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
		go func() { // a write of the own record, during the purge
			defer wg.Done()
			<-started
			time.Sleep(5 * time.Millisecond)
			t := time.Now()
			fsm.Lock()
			defer fsm.Unlock()
			a.write(OpPut, "tianjin:own2", supply("期间", schema.VisibilityFederation), 0)
			writeWait = time.Since(t)
		}()
		go func() { // reads of the own record, every millisecond
			defer wg.Done()
			<-started
			for j := 0; j < 1_000_000; j++ {
				select {
				case <-stop:
					return
				default:
				}
				t := time.Now()
				if _, err := s.Get(f.ownID); err != nil {
					b.Error(err)
					return
				}
				readWait = max(readWait, time.Since(t))
				time.Sleep(time.Millisecond)
			}
		}()
		cpu0 := processCPU()
		b.StartTimer()
		t := time.Now()
		close(started)
		purged := 0
		for more := true; more; {
			fsm.Lock()
			t := time.Now()
			r := a.apply(&Command{Purge: &PurgeCommand{Origin: "hebei", Limit: chunk}})[0]
			maxCommand = max(maxCommand, time.Since(t))
			fsm.Unlock()
			if r.Err != nil {
				b.Fatal(r.Err)
			}
			purged += r.Applied
			more = r.More
		}
		took := time.Since(t)
		b.StopTimer()
		cpu += processCPU() - cpu0
		wall += took
		close(stop)
		wg.Wait()
		if purged != n {
			b.Fatalf("purged %d of %d", purged, n)
		}
		if h := top.Load(); h > base && h-base > peak {
			peak = h - base
		}
		maxWrite, maxRead = max(maxWrite, writeWait), max(maxRead, readWait)
		if err := s.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(wall.Milliseconds())/float64(b.N), "wall-ms/op")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/op")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(maxCommand.Microseconds())/1000, "max-command-ms")
	b.ReportMetric(float64(maxWrite.Microseconds())/1000, "max-write-ms")
	b.ReportMetric(float64(maxRead.Microseconds())/1000, "max-read-ms")
	b.ReportMetric(float64(maxRSS())/(1<<20), "maxrss-MiB")
}

// purgeAll applies an unbounded purge of origin and returns the records it
// made tombstones.
func (a *applier) purgeAll(origin string) int {
	a.t.Helper()
	r := a.apply(&Command{Purge: &PurgeCommand{Origin: origin}})[0]
	if r.Err != nil {
		a.t.Fatal(r.Err)
	}
	return r.Applied
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func maxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss << 10 // KiB on Linux
}
