package store

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liandong/schema"
)

// BenchmarkApplyWrites measures the state machine's share of a local create,
// as `liandong bench write` makes them (a 1 KB supply record, its body
// canonical and marked so by the API, prepared and encoded as the node
// proposes it), applied in raft batches of 16 without fsync: decoding the
// command, the record, its indexes, the change feed, the signed entry (ed25519
// included) and the bbolt commit. Reported per write, with the state file's
// pages written (bbolt's own count) and bytes.
func BenchmarkApplyWrites(b *testing.B) {
	s, err := Open(filepath.Join(b.TempDir(), "state.db"), Options{Centre: "tianjin", Signer: keySigner{mustKey(b, "tianjin")}, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	const batch = 16
	body, _ := json.Marshal(map[string]any{
		"title": "高镍三元正极材料连续化制备技术 1", "industry": "new-materials",
		"keywords": []string{"正极材料", "锂电池"}, "trl": 6, "owner_org": "天津大学",
		"transfer_modes": []string{"license"}, "summary": strings.Repeat("成果转化", 70),
	})
	body, err = schema.AsCanonical(body)
	if err != nil {
		b.Fatal(err)
	}
	var index uint64
	seq := 0
	command := func() []byte {
		seq++
		rec := &schema.Record{Catalogue: schema.CatalogueSupply, Visibility: schema.VisibilityFederation, Version: 1, Origin: "tianjin", Body: body}
		rec.MarkBodyCanonical()
		w := &WriteCommand{Op: OpCreate, ID: fmt.Sprintf("tianjin:01K%023d", seq), Record: rec,
			At: t0.Add(time.Duration(seq) * time.Millisecond), Epoch: "E1"}
		if err := PrepareWrite(w); err != nil {
			b.Fatal(err)
		}
		data, err := EncodeCommand(&Command{Write: w})
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	next := func() []Log {
		logs := make([]Log, batch)
		for i := range logs {
			index++
			logs[i] = Log{Index: index, Term: 1, Data: command()}
		}
		return logs
	}
	apply := func(logs []Log) {
		res, err := s.Apply(logs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	for range 2000 / batch { // a state file past its first pages
		apply(next())
	}
	before, cpu0 := s.db.Stats().TxStats, processCPU()
	b.ReportAllocs()
	b.ResetTimer()
	// Commands are encoded ahead, 64 batches at a time, off the clock:
	// stopping the timer for each batch reads the memory statistics, a
	// stop of the world, each time.
	writes := 0
	for writes < b.N {
		b.StopTimer()
		ahead := make([][]Log, 64)
		for i := range ahead {
			ahead[i] = next()
		}
		b.StartTimer()
		for _, logs := range ahead {
			if writes >= b.N {
				break
			}
			apply(logs)
			writes += batch
		}
	}
	b.StopTimer()
	after, cpu := s.db.Stats().TxStats, processCPU()-cpu0
	// The process's CPU time (the collector's included, the encoding
	// ahead too: a few µs a write) moves less than ns/op with what else
	// runs on the machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(writes), "cpu-ns/write")
	pages := after.GetWrite() - before.GetWrite()
	b.ReportMetric(float64(pages)/float64(writes), "pages/write")
	b.ReportMetric(float64(pages*int64(s.db.Info().PageSize))/float64(writes), "bytes-written/write")
}
