package search

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"liandong/schema"
)

// bruteHit is a hit of the brute-force scorer.
type bruteHit struct {
	id    string
	score float64
}

// bruteSearch answers q over the live records of src without an index:
// each record analysed anew, BM25F as documented, ties by id.
func bruteSearch(src *memSource, q Query) []bruteHit {
	src.mu.Lock()
	var recs []*schema.Record
	for _, r := range src.records {
		if !r.Deleted {
			recs = append(recs, r)
		}
	}
	src.mu.Unlock()
	docs := make([]*analyzed, len(recs))
	var st stats
	var sum [numFields]float64
	for i, r := range recs {
		docs[i] = analyzeRecord(r)
		for f := range numFields {
			sum[f] += float64(docs[i].doc.Len[f])
		}
	}
	st.n = float64(len(docs))
	for f := range numFields {
		st.avgLen[f] = 1
		if st.n > 0 && sum[f] > 0 {
			st.avgLen[f] = sum[f] / st.n
		}
	}
	words := parseQuery(q.Text)
	var terms []queryTerm
	index := map[queryTerm]int{}
	for _, w := range words {
		for _, t := range w.terms {
			if _, ok := index[t]; !ok {
				index[t] = len(terms)
				terms = append(terms, t)
			}
		}
	}
	// tf of each term in each doc.
	tfs := make([][][numFields]uint32, len(docs))
	df := make([]float64, len(terms))
	for i, a := range docs {
		tfs[i] = make([][numFields]uint32, len(terms))
		for ti, t := range terms {
			for term, tf := range a.terms {
				if term == t.text || t.prefix && strings.HasPrefix(term, t.text) {
					for f := range numFields {
						tfs[i][ti][f] += tf[f]
					}
				}
			}
			if tfs[i][ti] != [numFields]uint32{} {
				df[ti]++
			}
		}
	}
	var out []bruteHit
next:
	for i, a := range docs {
		for _, w := range words {
			have := 0
			for _, t := range w.terms {
				if tfs[i][index[t]] != [numFields]uint32{} {
					have++
				}
			}
			if have < w.need() {
				continue next
			}
		}
		d := &a.doc
		if q.Catalogue != "" && d.Catalogue != q.Catalogue || q.Origin != "" && d.Origin != q.Origin ||
			q.Industry != "" && !slices.Contains(d.Industries, q.Industry) || q.Allow != nil && !q.Allow(d) {
			continue
		}
		var score float64
		for ti := range terms {
			if tfs[i][ti] != [numFields]uint32{} {
				score += idf(st.n, df[ti]) * st.termWeight(d, &tfs[i][ti])
			}
		}
		out = append(out, bruteHit{d.ID, score})
	}
	slices.SortFunc(out, func(a, b bruteHit) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.id, b.id)
	})
	return out
}

// randomCorpus writes records of random text from a small vocabulary, so
// words are shared by many records, in Chinese and English.
type randomCorpus struct {
	rng   *rand.Rand
	chars []rune
	latin []string
}

func newRandomCorpus(seed uint64) *randomCorpus {
	return &randomCorpus{rng: rand.New(rand.NewPCG(seed, 7)), chars: []rune("电池储能风轴承寿命预测氢燃料钙钛矿材料高镍三元正极"),
		latin: []string{"battery", "wind", "bearing", "hydrogen", "pem", "solar", "cell", "grid"}}
}

func (c *randomCorpus) text(n int) string {
	var sb strings.Builder
	for range n {
		if c.rng.IntN(5) == 0 {
			sb.WriteString(" " + c.latin[c.rng.IntN(len(c.latin))] + " ")
			continue
		}
		sb.WriteRune(c.chars[c.rng.IntN(len(c.chars))])
		if c.rng.IntN(8) == 0 {
			sb.WriteString("，")
		}
	}
	return sb.String()
}

func (c *randomCorpus) record(id string) *schema.Record {
	cats := []string{schema.CatalogueSupply, schema.CatalogueNeed, schema.CatalogueExpert}
	inds := []string{"new-energy", "new-materials", "intelligent-tech"}
	body := map[string]any{"title": c.text(2 + c.rng.IntN(8)), "summary": c.text(c.rng.IntN(120)), "industry": inds[c.rng.IntN(len(inds))]}
	if c.rng.IntN(3) == 0 {
		body["keywords"] = []string{c.text(3), c.text(4)}
	}
	js, _ := json.Marshal(body)
	origin, _, _ := schema.SplitID(id)
	return &schema.Record{ID: id, Catalogue: cats[c.rng.IntN(len(cats))], Origin: origin, Visibility: "federation", Schema: 1, Body: js}
}

// churn makes n random writes to src among ids: a new version of a record,
// or, for a quarter of the live ones picked, its deletion.
func (c *randomCorpus) churn(src *memSource, ids []string, n int) {
	for range n {
		id := ids[c.rng.IntN(len(ids))]
		src.mu.Lock()
		old := src.records[id]
		src.mu.Unlock()
		if old != nil && !old.Deleted && c.rng.IntN(4) == 0 {
			src.delete(id)
		} else {
			src.put(c.record(id))
		}
	}
}

func (c *randomCorpus) query() string {
	var words []string
	for range 1 + c.rng.IntN(3) {
		switch c.rng.IntN(4) {
		case 0: // one character: a prefix term
			words = append(words, string(c.chars[c.rng.IntN(len(c.chars))]))
		case 1:
			words = append(words, c.latin[c.rng.IntN(len(c.latin))])
		default:
			words = append(words, strings.ReplaceAll(c.text(2+c.rng.IntN(6)), "，", ""))
		}
	}
	return strings.Join(words, " ")
}

// TestSearchAgainstBruteForce indexes a few hundred random records with
// random updates and deletes, in batches, and compares the results of random
// queries with a brute-force scorer: the same ids in the same order, scores
// within 1e-9, and totals. Small blocks, so postings span many.
func TestSearchAgainstBruteForce(t *testing.T) {
	for _, limits := range [][2]int{{3, 24}, {128, 2048}} {
		t.Run(fmt.Sprintf("blocks of %d", limits[0]), func(t *testing.T) {
			setBlockLimits(t, limits[0], limits[1])
			c := newRandomCorpus(uint64(limits[0]))
			src := newMemSource()
			ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
			origins := []string{"tianjin", "hebei", "hq"}
			var ids []string
			for i := range 300 {
				ids = append(ids, fmt.Sprintf("%s:r%03d", origins[i%3], i))
			}
			for round := range 6 {
				c.churn(src, ids, 120)
				if round%2 == 1 {
					checkConsistent(t, ix) // before the queries catch up: the last batch's state
				}
				for qi := range 25 {
					q := Query{Text: c.query(), Limit: 1000}
					if qi%5 == 0 {
						// A long word, of more than 64 terms: a record's summary.
						src.mu.Lock()
						r := src.records[ids[c.rng.IntN(len(ids))]]
						src.mu.Unlock()
						var b struct{ Summary string }
						if r != nil {
							json.Unmarshal(r.Body, &b)
						}
						q.Text = strings.Map(func(r rune) rune {
							if r == '，' || r == ' ' {
								return -1
							}
							return r
						}, b.Summary)
						if q.Text == "" {
							continue
						}
					}
					switch c.rng.IntN(5) {
					case 0:
						q.Catalogue = schema.CatalogueNeed
					case 1:
						q.Origin = "hebei"
					case 2:
						q.Allow = func(d *Doc) bool { return !strings.HasSuffix(d.ID, "7") }
					}
					p := search(t, ix, q)
					want := bruteSearch(src, q)
					if p.Total != len(want) || len(p.Hits) != len(want) {
						t.Fatalf("round %d %q: %d hits (total %d), brute force %d", round, q.Text, len(p.Hits), p.Total, len(want))
					}
					for i, h := range p.Hits {
						if h.Doc.ID != want[i].id || math.Abs(h.Score-want[i].score) > 1e-9 {
							t.Fatalf("round %d %q: hit %d is %s (%v), brute force %s (%v)", round, q.Text, i, h.Doc.ID, h.Score, want[i].id, want[i].score)
						}
					}
				}
			}
			checkConsistent(t, ix)
		})
	}
}

// TestQueryDuringApply runs queries between an index transaction's commit
// and the update of the doc table: the postings of documents not in the
// table yet are skipped, and no ordinal names another document.
func TestQueryDuringApply(t *testing.T) {
	src := newMemSource()
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
	src.put(plainRecord("tianjin:a", "alpha common"))
	src.put(plainRecord("tianjin:b", "beta common"))
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	query := func(text string) []string {
		p, err := ix.search(Query{Text: text, Limit: 100}, parseQuery(text), 0)
		if err != nil {
			t.Fatal(err)
		}
		return ids(p)
	}
	ran := false
	ix.afterCommit = func() {
		ran = true
		// a was updated (new text gamma), c is new: neither is in the table.
		for text, want := range map[string][]string{
			"alpha": nil, "gamma": nil, "delta": nil, "beta": {"tianjin:b"}, "common": {"tianjin:b"},
		} {
			if got := query(text); !slices.Equal(got, want) {
				t.Errorf("during apply, %s: %v, want %v", text, got, want)
			}
		}
	}
	src.put(plainRecord("tianjin:a", "gamma common"))
	src.put(plainRecord("tianjin:c", "delta common"))
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	ix.afterCommit = nil
	if !ran {
		t.Fatal("the hook did not run")
	}
	if got := query("common"); len(got) != 3 {
		t.Fatalf("after apply: %v", got)
	}
}

// TestConcurrentSearchAndWrites searches while records are updated and
// indexed (run it with -race): every hit for a record's own word is that
// record.
func TestConcurrentSearchAndWrites(t *testing.T) {
	setBlockLimits(t, 4, 2048)
	src := newMemSource()
	ix, err := Open(filepath.Join(t.TempDir(), "search.db"), src, Options{Batch: 7, Coalesce: time.Millisecond, BusyCoalesce: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	const n = 40
	for i := range n {
		src.put(plainRecord(fmt.Sprintf("tianjin:r%02d", i), fmt.Sprintf("own%02d common v0", i)))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 2 {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rng.IntN(n)
				word := fmt.Sprintf("own%02d", i)
				p, err := ix.Search(Query{Text: word + " common", Limit: 10})
				if err != nil {
					t.Error(err)
					return
				}
				for _, h := range p.Hits {
					if h.Doc.ID != fmt.Sprintf("tianjin:r%02d", i) {
						t.Errorf("%s found %s", word, h.Doc.ID)
					}
				}
			}
		})
	}
	rng := rand.New(rand.NewPCG(9, 9))
	for v := range 400 {
		i := rng.IntN(n)
		src.put(plainRecord(fmt.Sprintf("tianjin:r%02d", i), fmt.Sprintf("own%02d common v%d", i, v)))
		if v%50 == 0 {
			if err := ix.Sync(); err != nil {
				t.Fatal(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if p := search(t, ix, Query{Text: "common", Limit: 100}); p.Total != n {
		t.Fatalf("%d hits", p.Total)
	}
	checkConsistent(t, ix)
}
