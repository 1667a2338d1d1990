package search

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"liandong/schema/sample"
)

// benchIndex indexes the sample records of the four centres, n of each
// catalogue per centre (12n records in all).
func benchIndex(b *testing.B, n int) (*Index, time.Duration) {
	src := newMemSource()
	for _, centre := range []string{"hq", "tianjin", "hebei", "xiongan"} {
		for i, r := range sample.Records(centre, n, 7) {
			r.ID = fmt.Sprintf("%s:%s-%06d", centre, r.Catalogue, i)
			r.Origin = centre
			src.put(r)
		}
	}
	ix, err := Open(filepath.Join(b.TempDir(), "search.db"), src, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ix.Close() })
	start := time.Now()
	if err := ix.Sync(); err != nil {
		b.Fatal(err)
	}
	return ix, time.Since(start)
}

// BenchmarkSearch measures one query over 12,000 sample records.
//
//	go test ./node/search -run '^$' -bench Search -benchtime 200x
func BenchmarkSearch(b *testing.B) {
	n := 1000
	if s := os.Getenv("SEARCH_BENCH_PER_CATALOGUE"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	ix, took := benchIndex(b, n)
	b.Logf("indexed %d records in %v (%.0f records/s)", ix.Len(), took.Round(time.Millisecond), float64(ix.Len())/took.Seconds())
	for _, q := range []string{"锂电池", "高镍三元正极材料", "风电 轴承 寿命预测", "技术", "氢"} {
		b.Run(q, func(b *testing.B) {
			for b.Loop() {
				if _, err := ix.Search(Query{Text: q, Limit: 20}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
