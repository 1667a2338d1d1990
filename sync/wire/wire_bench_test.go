package wire_test

import (
	"testing"

	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// BenchmarkDecodeBatch decodes a frame of 1000 entries of about 1 KB.
func BenchmarkDecodeBatch(b *testing.B) {
	fed, err := exchangetest.NewFederation("hq")
	if err != nil {
		b.Fatal(err)
	}
	a := fed.Author("hq")
	a.BodyBytes = 800
	es, err := a.NextN(1000)
	if err != nil {
		b.Fatal(err)
	}
	body := wire.Encode(&wire.Batch{Origin: "hq", Entries: es})
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := wire.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(es)*b.N)/b.Elapsed().Seconds(), "entries/s")
}
