package store

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"go.etcd.io/bbolt"

	"liandong/schema"
)

// BenchmarkUpdates applies local updates of records already held, each
// moving its record to another industry, one command a transaction (steady
// writes): the index bucket takes keys in the middle of each (field, value)
// range and the history bucket a version after each id's last, not at the
// ends the catch-up appends to. It reports the CPU per update, the state
// file's size and the index and history buckets' leaf pages (count and how
// full) after them.
func BenchmarkUpdates(b *testing.B) {
	const records = 20000
	industries := []string{"new-materials", "biomedicine", "new-energy", "electronics", "equipment", "agriculture", "aerospace", "environment"}
	body := func(title, industry string) []byte {
		return fmt.Appendf(nil, `{"industry":%q,"summary":"连续化制备工艺","title":%q,"trl":6}`, industry, title)
	}
	k := mustKey(b, "tianjin")
	s := mustOpen(b, "tianjin", k)
	a := &applier{t: b, s: s}
	rng := rand.New(rand.NewPCG(1, 2))
	id := func(i int) string { return fmt.Sprintf("tianjin:01J%023d", i) }
	for done := 0; done < records; {
		var cmds []*Command
		for ; done < records && len(cmds) < 500; done++ {
			rec := &schema.Record{Catalogue: schema.CatalogueSupply, Visibility: schema.VisibilityFederation, Schema: 1, Body: body(fmt.Sprint(done), industries[rng.IntN(len(industries))])}
			cmds = append(cmds, &Command{Write: &WriteCommand{Op: OpCreate, ID: id(done), Record: rec, At: t0, Epoch: "E1"}})
		}
		for _, r := range a.apply(cmds...) {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	}
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		n := rng.IntN(records)
		rec := &schema.Record{Catalogue: schema.CatalogueSupply, Visibility: schema.VisibilityFederation, Schema: 1, Body: body(fmt.Sprint(n), industries[rng.IntN(len(industries))])}
		if r := a.write(OpPut, id(n), rec, 0); r.Err != nil {
			b.Fatal(r.Err)
		}
	}
	b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
	b.StopTimer()
	err := s.db.View(func(tx *bbolt.Tx) error {
		for _, bk := range []struct{ name, unit string }{{"index", "index"}, {"history", "hist"}} {
			st := tx.Bucket([]byte(bk.name)).Stats()
			b.ReportMetric(float64(st.LeafPageN), bk.unit+"-leaves")
			b.ReportMetric(100*float64(st.LeafInuse)/float64(st.LeafAlloc), bk.unit+"-fill-%")
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	if fi, err := os.Stat(s.db.Path()); err == nil {
		b.ReportMetric(float64(fi.Size())/(1<<20), "file-MB")
	}
}
