package api

import (
	"testing"

	"liandong/integration/bench"
)

// BenchmarkDecodeRecord is the API's reading of a create request as `liandong
// bench write` sends it (canonical, 1 KB): checkJSON and the envelope.
func BenchmarkDecodeRecord(b *testing.B) {
	data := bench.NewCreateRequests(1024).JSON(12345)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRecord(data, "", "tianjin"); err != nil {
			b.Fatal(err)
		}
	}
}
