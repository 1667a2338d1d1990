package search

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"liandong/integration/bench"
	"liandong/schema"
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

// The large corpus: records of about 1 KB of varied Chinese text (about 300
// CJK bigrams each, drawn from a Zipf-distributed vocabulary, as real
// summaries are), with a title from the 24 topics of `liandong bench`
// (bench.Topics; a topic's words match about a twelfth of the records) and
// 成果转化 in every one.

// benchChars are common characters the vocabulary's words are made of.
const benchChars = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处府研须造化验试术测控制材料系统能源装备工艺检测平台数字智能网络安全环境保护医药生物健康农业交通城市信息软件芯片器件电池储能光伏氢风轴承机床汽车航空卫星"

type benchCorpus struct {
	src *memSource
	n   int
	// padded: records like those of `liandong bench` (integration/bench's
	// VariedRecordJSON): a topic's title and keywords, and a summary of
	// 成果转化 repeated to about 1 KB, so few distinct terms.
	padded bool
	// rng and words make more records, for the indexing benchmarks.
	rng   *rand.Rand
	zipf  *rand.Zipf
	words []string
}

func newBenchCorpus(n int, padded bool) *benchCorpus {
	rng := rand.New(rand.NewPCG(1, 2))
	chars := []rune(benchChars)
	words := make([]string, 8000)
	for i := range words {
		w := make([]rune, 2+rng.IntN(3))
		for j := range w {
			w[j] = chars[rng.IntN(len(chars))]
		}
		words[i] = string(w)
	}
	c := &benchCorpus{src: newMemSource(), padded: padded, rng: rng, zipf: rand.NewZipf(rng, 1.1, 2, uint64(len(words)-1)), words: words}
	for i := range n {
		c.src.put(c.record(i, 0))
	}
	c.n = n
	return c
}

// record returns record i of the corpus, in its version v.
func (c *benchCorpus) record(i, v int) *schema.Record {
	topic := bench.Topics[i%len(bench.Topics)]
	other := bench.Topics[(i/len(bench.Topics)+i)%len(bench.Topics)]
	var sb strings.Builder
	if c.padded {
		// Updates change the title's number.
		body, _ := json.Marshal(map[string]any{
			"title": fmt.Sprintf("%s %d", topic, i+v), "industry": "new-materials", "keywords": []string{topic, other},
			"trl": 1 + i%9, "owner_org": "天津大学", "summary": strings.Repeat("成果转化", 75), "transfer_modes": []string{"license"},
		})
		return &schema.Record{ID: fmt.Sprintf("tianjin:%07d", i), Catalogue: schema.CatalogueSupply, Origin: "tianjin",
			Visibility: schema.VisibilityFederation, Schema: schema.CurrentSchema, Body: body,
			UpdatedAt: time.Date(2025, 1, 1, 0, 0, i, v, time.UTC)}
	}
	for sb.Len() < 850 {
		sb.WriteString(c.words[c.zipf.Uint64()])
		if c.rng.IntN(6) == 0 {
			sb.WriteString("，")
		}
	}
	sb.WriteString("。成果转化")
	body, _ := json.Marshal(map[string]any{
		"title": fmt.Sprintf("%s %d", topic, i), "industry": "new-materials", "keywords": []string{topic, other},
		"trl": 1 + i%9, "owner_org": "天津大学", "summary": sb.String(), "transfer_modes": []string{"license"},
	})
	return &schema.Record{ID: fmt.Sprintf("tianjin:%07d", i), Catalogue: schema.CatalogueSupply, Origin: "tianjin",
		Visibility: schema.VisibilityFederation, Schema: schema.CurrentSchema, Body: body,
		UpdatedAt: time.Date(2025, 1, 1, 0, 0, i, v, time.UTC)}
}

// clone returns a corpus whose source can grow without changing c's.
func (c *benchCorpus) clone() *benchCorpus {
	d := *c
	d.src = newMemSource()
	c.src.mu.Lock()
	d.src.feed = slices.Clone(c.src.feed)
	for k, v := range c.src.records {
		d.src.records[k] = v
	}
	c.src.mu.Unlock()
	rng := rand.New(rand.NewPCG(3, 4))
	d.rng, d.zipf = rng, rand.NewZipf(rng, 1.1, 2, uint64(len(c.words)-1))
	return &d
}

// largeIndex is an index of a corpus, made once per process.
type largeIndex struct {
	once   sync.Once
	corpus *benchCorpus
	file   string // the index, closed, to copy
	took   time.Duration
	err    error
}

var large = map[bool]*largeIndex{false: {}, true: {}}

// TestMain removes the benchmarks' shared index files.
func TestMain(m *testing.M) {
	code := m.Run()
	for _, l := range large {
		if l.file != "" {
			os.RemoveAll(filepath.Dir(l.file))
		}
	}
	os.Exit(code)
}

// benchLarge returns an open index of 100,000 records (SEARCH_BENCH_RECORDS)
// of varied text (or padded, see benchCorpus) and its corpus, which the
// caller may grow. The corpus and its first index are made once per
// process; each call copies the index file.
func benchLarge(b *testing.B, padded bool) (*Index, *benchCorpus) {
	l := large[padded]
	l.once.Do(func() {
		n := 100_000
		if s := os.Getenv("SEARCH_BENCH_RECORDS"); s != "" {
			n, _ = strconv.Atoi(s)
		}
		l.corpus = newBenchCorpus(n, padded)
		dir, err := os.MkdirTemp("", "search-bench-")
		if err != nil {
			l.err = err
			return
		}
		l.file = filepath.Join(dir, "search.db")
		ix, err := Open(l.file, l.corpus.src, Options{})
		if err != nil {
			l.err = err
			return
		}
		start := time.Now()
		l.err = ix.Sync()
		l.took = time.Since(start)
		if err := ix.Close(); l.err == nil {
			l.err = err
		}
	})
	if l.err != nil {
		b.Fatal(l.err)
	}
	b.Logf("%d records indexed in %v (%.0f µs a record)", l.corpus.n, l.took.Round(time.Millisecond), float64(l.took.Microseconds())/float64(l.corpus.n))
	c := l.corpus.clone()
	path := filepath.Join(b.TempDir(), "search.db")
	if err := copyFile(path, l.file); err != nil {
		b.Fatal(err)
	}
	ix, err := Open(path, c.src, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ix.Close() })
	if err := ix.Sync(); err != nil {
		b.Fatal(err)
	}
	return ix, c
}

func copyFile(dst, src string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// BenchmarkSearchLarge measures queries over 100,000 records of about 1 KB:
// selective ones (a topic's words, about a twelfth of the records) and one
// whose word every record holds, with their latency percentiles; over
// records of varied text, and over padded ones like those of `liandong
// bench`.
//
//	go test ./node/search -run '^$' -bench SearchLarge -benchtime 200x
func BenchmarkSearchLarge(b *testing.B) {
	for _, padded := range []bool{false, true} {
		for _, q := range []struct{ name, text string }{
			{"selective", "轴承"}, {"selective-long", "氢燃料电池"}, {"selective-two", "数据库 迁移"}, {"every", "成果转化"},
		} {
			name := q.name
			if padded {
				name = "padded-" + name
			}
			b.Run(name, func(b *testing.B) {
				ix, _ := benchLarge(b, padded)
				var lat []time.Duration
				for b.Loop() {
					start := time.Now()
					if _, err := ix.Search(Query{Text: q.text, Limit: 20}); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
				}
				reportPercentiles(b, lat)
			})
		}
	}
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	if len(lat) == 0 {
		return
	}
	b.ReportMetric(float64(lat[len(lat)*50/100].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
}

// BenchmarkIndexBatch measures one index transaction of 500 records of about
// 1 KB into an index already holding 100,000: new records, and updates of
// records the index holds (their old postings are removed); of varied text,
// and padded.
//
//	go test ./node/search -run '^$' -bench IndexBatch -benchtime 20x
func BenchmarkIndexBatch(b *testing.B) {
	const batch = 500
	for _, mode := range []string{"new", "update", "padded-new", "padded-update"} {
		b.Run(mode, func(b *testing.B) {
			padded := strings.HasPrefix(mode, "padded-")
			update := strings.HasSuffix(mode, "update")
			ix, c := benchLarge(b, padded)
			next, v := c.n, 0
			for b.Loop() {
				b.StopTimer()
				for range batch {
					if update {
						v++
						c.src.put(c.record(c.rng.IntN(c.n), v))
					} else {
						c.src.put(c.record(next, 0))
						next++
					}
				}
				b.StartTimer()
				if err := ix.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*batch), "µs/record")
		})
	}
}

// BenchmarkOpenLarge measures opening an index of 100,000 records (reading
// its doc table) and the Go heap the open index holds, per record.
//
//	go test ./node/search -run '^$' -bench OpenLarge -benchtime 3x
func BenchmarkOpenLarge(b *testing.B) {
	ix, c := benchLarge(b, false)
	ix.Close()
	var heap uint64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		ix, err := Open(ix.path, c.src, Options{})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		if ix.Len() != c.n {
			b.Fatalf("%d docs", ix.Len())
		}
		ix.Close()
	}
	b.ReportMetric(float64(heap)/float64(c.n), "heap-B/record")
}
