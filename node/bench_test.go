package node

import (
	"context"
	"fmt"
	"os"
	"testing"

	"liandong/auth"

	dto "github.com/prometheus/client_model/go"
)

// BenchmarkCreate measures the write path below HTTP: validation, raft commit
// (fsync of raft's log), the FSM transaction (fsync of the state file), entry
// canonicalisation and signing. Run with -cpu to vary concurrency.
func BenchmarkCreate(b *testing.B) {
	key, _ := auth.GenerateKey("tianjin-rec")
	cfg := DefaultConfig("tianjin", b.TempDir())
	cfg.RecordKey = key
	cfg.StateSync = os.Getenv("STATESYNC") != ""
	n, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	if err := n.WaitLeader(context.Background()); err != nil {
		b.Fatal(err)
	}
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
	key, _ := auth.GenerateKey("tianjin-rec")
	cfg := DefaultConfig("tianjin", b.TempDir())
	cfg.RecordKey = key
	n, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	if err := n.WaitLeader(context.Background()); err != nil {
		b.Fatal(err)
	}
	rec := supplyRecord("高镍三元正极材料连续化制备技术")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := n.Create(context.Background(), rec); err != nil {
			b.Fatal(err)
		}
	}
}
