package node

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"liandong/auth"
	"liandong/schema"
	"liandong/sync/exchange/exchangetest"

	dto "github.com/prometheus/client_model/go"
)

// BenchmarkCreate measures the write path below HTTP: validation, raft commit
// (fsync of raft's log), the FSM transaction (fsync of the state file), entry
// canonicalisation and signing. Run with -cpu to vary concurrency.
func BenchmarkCreate(b *testing.B) {
	n := benchNode(b, os.Getenv("STATESYNC") != "")
	rec := supplyRecord("高镍三元正极材料连续化制备技术")
	rec.Body = []byte(fmt.Sprintf(`{"title":"高镍三元正极材料连续化制备技术","summary":"%0900d","industry":"new-materials","trl":6}`, 0))
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := n.Create(context.Background(), rec); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	var m dto.Metric
	n.metrics.applyBatch.Write(&m)
	if h := m.GetHistogram(); h.GetSampleCount() > 0 {
		b.ReportMetric(float64(h.GetSampleSum())/float64(h.GetSampleCount()), "cmds/batch")
	}
}

// BenchmarkCreateSerial is one caller at a time: the commit latency of one write.
func BenchmarkCreateSerial(b *testing.B) {
	n := benchNode(b, false)
	rec := supplyRecord("高镍三元正极材料连续化制备技术")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := n.Create(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkApplyEntries measures the receiving side of catch-up below the
// exchange: another centre's signed entries (1 KB records), 1,000 per call as
// the exchange hands over one batch, through raft into the state file and
// the change feed, and the CPU until the search index has taken them in.
// Reported per entry.
func BenchmarkApplyEntries(b *testing.B) {
	fed, err := exchangetest.NewFederation("tianjin", "hebei")
	if err != nil {
		b.Fatal(err)
	}
	n := benchNode(b, false)
	const batch = 1000
	author := fed.Author("hebei")
	logs := make([][]*schema.Entry, 0, b.N/batch+1)
	for done := 0; done < b.N; done += batch {
		es, err := author.NextN(min(batch, b.N-done))
		if err != nil {
			b.Fatal(err)
		}
		logs = append(logs, es)
	}
	// CPU time as well as wall time: on a shared machine the wall time says
	// more about the neighbours than about the node.
	cpu0 := processCPU()
	b.ResetTimer()
	for _, es := range logs {
		if err := n.ApplyEntries(context.Background(), "hebei", es); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
	// The search index follows the feed on its own goroutine: the CPU until
	// it is current too is what a catch-up costs the node in all.
	last, err := n.st.LastPosition()
	if err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); n.SearchPosition() < last; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("search index at %d of %d after a minute", n.SearchPosition(), last)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Nanoseconds())/float64(b.N), "indexed-cpu-ns/op")
}

// processCPU is the user and system CPU time the process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchNode opens a single-replica node of tianjin that leads, closed with b.
func benchNode(b *testing.B, stateSync bool) *Node {
	key, _ := auth.GenerateKey("tianjin-rec")
	cfg := DefaultConfig("tianjin", b.TempDir())
	cfg.RecordKey = key
	cfg.StateSync = stateSync
	n, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { n.Close() })
	if err := n.WaitLeader(context.Background()); err != nil {
		b.Fatal(err)
	}
	return n
}
