package search

import (
	"bytes"
	"cmp"
	"math"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"liandong/schema"
)

// Order is the order of search results.
type Order int

// Orders.
const (
	// ByRelevance ranks by BM25F score, best first; ties by id.
	ByRelevance Order = iota
	// ByID lists the matches in id order, like the unfiltered list.
	ByID
)

// Cursor is the position after the last hit of a page: its score and id (the
// score is unused in id order).
type Cursor struct {
	Score float64
	ID    string
}

// Query is a full-text query with filters.
type Query struct {
	// Text is the query: words separated by spaces; see the package
	// documentation for how each must match.
	Text                                string
	Catalogue, Origin, Industry, Status string
	UpdatedSince                        time.Time
	// Allow, when set, decides whether the caller may see a hit; hits it
	// refuses are not counted either.
	Allow func(*Doc) bool
	Order Order
	// After is the cursor of the previous page, nil for the first.
	After *Cursor
	Limit int
}

// Hit is one result.
type Hit struct {
	Doc    *Doc
	Record *schema.Record
	Score  float64
	// Matched lists the query words the record matches.
	Matched []string
}

// Page is one page of results.
type Page struct {
	Hits []Hit
	// Total counts every match the caller may see, on all pages.
	Total int
	// Next is the cursor of the next page, nil on the last.
	Next *Cursor
	// Behind counts the changes of the state file the index had not taken in
	// when the query ran (0 but while a large backlog is indexed; see
	// QueryCatchUp).
	Behind uint64
}

// candidate accumulates the term frequencies of one document.
type candidate struct {
	doc *Doc
	tf  [][numFields]uint32 // per query term
}

// stats are the corpus figures BM25 needs.
type stats struct {
	n      float64
	avgLen [numFields]float64
}

func (ix *Index) unsafeStats() stats {
	s := stats{n: float64(len(ix.docs))}
	for f := range numFields {
		s.avgLen[f] = 1
		if s.n > 0 && ix.sumLen[f] > 0 {
			s.avgLen[f] = float64(ix.sumLen[f]) / s.n
		}
	}
	return s
}

func idf(n, df float64) float64 {
	return math.Log(1 + (n-df+0.5)/(df+0.5))
}

// termWeight is BM25F's saturated, length-normalised frequency of one term in
// one document, before idf.
func (s *stats) termWeight(d *Doc, tf *[numFields]uint32) float64 {
	var w float64
	for f := range numFields {
		if tf[f] == 0 {
			continue
		}
		norm := 1 - fieldB[f] + fieldB[f]*float64(d.Len[f])/s.avgLen[f]
		w += fieldWeight[f] * float64(tf[f]) / norm
	}
	return w * (k1 + 1) / (k1 + w)
}

// unsafeCollect scans the postings of terms, filling candidates and document
// frequencies. Document frequencies count every indexed record, so scores do
// not depend on filters or on what the caller may see; keep selects the
// candidates.
func (ix *Index) unsafeCollect(tx *bbolt.Tx, terms []queryTerm, keep func(*Doc) bool) (map[string]*candidate, []float64) {
	cands := map[string]*candidate{}
	skipped := map[string]bool{}
	df := make([]float64, len(terms))
	c := tx.Bucket(bucketPost).Cursor()
	for ti, t := range terms {
		prefix := []byte(t.text)
		if !t.prefix {
			prefix = append(prefix, 0)
		}
		var seen map[string]bool // a prefix term spans several terms of one doc
		if t.prefix {
			seen = map[string]bool{}
		}
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			sep := bytes.IndexByte(k[len(t.text):], 0)
			if sep < 0 {
				continue
			}
			id := string(k[len(t.text)+sep+1:])
			if seen == nil || !seen[id] {
				df[ti]++
				if seen != nil {
					seen[id] = true
				}
			}
			if skipped[id] {
				continue
			}
			cd := cands[id]
			if cd == nil {
				d := ix.docs[id]
				if d == nil || !keep(d) {
					skipped[id] = true
					continue
				}
				cd = &candidate{doc: d, tf: make([][numFields]uint32, len(terms))}
				cands[id] = cd
			}
			decodeTF(v, &cd.tf[ti])
		}
	}
	return cands, df
}

// Search answers a query. It brings the index up to date first, so a record
// written before the call is found.
func (ix *Index) Search(q Query) (*Page, error) {
	words := parseQuery(q.Text)
	if len(words) == 0 {
		return nil, ErrEmptyQuery
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	behind, err := ix.syncForQuery()
	if err != nil {
		return nil, err
	}
	// Distinct terms, and for each word the indexes of its terms.
	var terms []queryTerm
	index := map[queryTerm]int{}
	wordTerms := make([][]int, len(words))
	for wi, w := range words {
		for _, t := range w.terms {
			ti, ok := index[t]
			if !ok {
				ti = len(terms)
				index[t] = ti
				terms = append(terms, t)
			}
			wordTerms[wi] = append(wordTerms[wi], ti)
		}
	}
	keep := func(d *Doc) bool {
		if q.Catalogue != "" && d.Catalogue != q.Catalogue || q.Origin != "" && d.Origin != q.Origin {
			return false
		}
		if q.Industry != "" && !slices.Contains(d.Industries, q.Industry) || q.Status != "" && d.Status != q.Status {
			return false
		}
		if !q.UpdatedSince.IsZero() && d.UpdatedAt.Before(q.UpdatedSince) {
			return false
		}
		return q.Allow == nil || q.Allow(d)
	}

	var hits []Hit
	ix.mu.RLock()
	if ix.db == nil {
		ix.mu.RUnlock()
		return nil, ErrClosed
	}
	err = ix.db.View(func(tx *bbolt.Tx) error {
		cands, df := ix.unsafeCollect(tx, terms, keep)
		st := ix.unsafeStats()
		idfs := make([]float64, len(terms))
		for ti := range terms {
			idfs[ti] = idf(st.n, df[ti])
		}
	next:
		for _, cd := range cands {
			var matched []string
			for wi, w := range words {
				have := 0
				for _, ti := range wordTerms[wi] {
					if cd.tf[ti] != [numFields]uint32{} {
						have++
					}
				}
				if have < w.need() {
					continue next
				}
				matched = append(matched, w.text)
			}
			var score float64
			for ti := range terms {
				if cd.tf[ti] != [numFields]uint32{} {
					score += idfs[ti] * st.termWeight(cd.doc, &cd.tf[ti])
				}
			}
			hits = append(hits, Hit{Doc: cd.doc, Score: score, Matched: matched})
		}
		return nil
	})
	ix.mu.RUnlock()
	if err != nil {
		return nil, err
	}

	page := &Page{Total: len(hits), Behind: behind}
	order := func(a, b Hit) int {
		if q.Order != ByID {
			if c := cmp.Compare(b.Score, a.Score); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.Doc.ID, b.Doc.ID)
	}
	if q.After != nil {
		after := Hit{Doc: &Doc{ID: q.After.ID}, Score: q.After.Score}
		hits = slices.DeleteFunc(hits, func(h Hit) bool { return order(h, after) <= 0 })
	}
	// Only the page is wanted, usually of a few thousand hits or more: select
	// the first hits rather than sorting them all (sorting was a third of a
	// broad query's time). Room is left for hits deleted since the index was
	// read; should they use it up, the rest is sorted after all.
	sorted := topHits(hits, q.Limit+q.Limit/2+8, order)
	for i := 0; i < len(hits) && len(page.Hits) < q.Limit; i++ {
		if i == len(sorted) {
			slices.SortFunc(hits, order)
			sorted = hits
		}
		h := sorted[i]
		rec, err := ix.src.Get(h.Doc.ID)
		if err != nil || rec.Deleted {
			continue // deleted since the index was read
		}
		h.Record = rec
		page.Hits = append(page.Hits, h)
		if len(page.Hits) == q.Limit && i+1 < len(hits) {
			page.Next = &Cursor{Score: h.Score, ID: h.Doc.ID}
		}
	}
	return page, nil
}

// topHits returns the first k of hits in order, sorted, without sorting the
// rest: a bounded max-heap holding the best k seen so far.
func topHits(hits []Hit, k int, order func(a, b Hit) int) []Hit {
	if len(hits) <= k {
		out := slices.Clone(hits)
		slices.SortFunc(out, order)
		return out
	}
	h := make([]Hit, 0, k)
	// h[0] is the worst of the best k; a child is never worse than its parent.
	down := func(i int) {
		for {
			w, l, r := i, 2*i+1, 2*i+2
			if l < len(h) && order(h[l], h[w]) > 0 {
				w = l
			}
			if r < len(h) && order(h[r], h[w]) > 0 {
				w = r
			}
			if w == i {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for _, x := range hits {
		if len(h) < k {
			h = append(h, x)
			for i := len(h) - 1; i > 0 && order(h[i], h[(i-1)/2]) > 0; i = (i - 1) / 2 {
				h[i], h[(i-1)/2] = h[(i-1)/2], h[i]
			}
			continue
		}
		if order(x, h[0]) < 0 {
			h[0] = x
			down(0)
		}
	}
	slices.SortFunc(h, order)
	return h
}
