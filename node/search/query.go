package search

import (
	"cmp"
	"math"
	"slices"
	"time"

	"go.etcd.io/bbolt"

	"liandong/node/store"
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
	// Now is when the query is asked (time.Now() when zero): an open need
	// whose expiry is at or before it has Status closed.
	Now time.Time
	// Allow, when set, decides whether the caller may see a hit; hits it
	// refuses are not counted either.
	Allow func(*Doc) bool
	// AllowRecord, when set, decides again on each hit of the page, on the
	// record as read from the store. Allow saw the index's copy of the
	// record's attributes, which a write landing between the index read and
	// the store read (a record turned private) has made stale; a hit it
	// refuses is left out like a deleted one (and Total counts it no more;
	// see Page.Total).
	AllowRecord func(*schema.Record) bool
	Order       Order
	// After is the cursor of the previous page, nil for the first.
	After *Cursor
	Limit int
	// MaxBytes bounds the record bytes (bodies) of one page
	// (store.DefaultPageBytes when 0): a page of large records ends early
	// with a cursor. A page holds at least one hit.
	MaxBytes int
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
	// Total counts every match the caller may see, on all pages: the index's
	// matches when the query ran (brought up to the state file first, but
	// for Behind changes), less those of this page that the store then held
	// deleted or no longer the caller's to see. A record deleted or withdrawn
	// between the index's read and the page's, ranked beyond this page, is
	// still counted: a walk through the pages finds fewer records than this
	// total by the deletions that landed meanwhile (as it finds records
	// written meanwhile that no earlier total counted).
	Total int
	// Next is the cursor of the next page, nil on the last.
	Next *Cursor
	// Behind counts the changes of the state file the index had not taken in
	// when the query ran (0 but while a large backlog is indexed, see
	// QueryCatchUp, or while Run rebuilds an index it had to empty).
	Behind uint64
}

// stats are the corpus figures BM25 needs.
type stats struct {
	n      float64
	avgLen [numFields]float64
}

func (ix *Index) unsafeStats() stats {
	s := stats{n: float64(ix.live)}
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
	return s.termWeightLen(&d.Len, tf)
}

// termWeightLen is termWeight of a document of the field lengths lens.
func (s *stats) termWeightLen(lens, tf *[numFields]uint32) float64 {
	var w float64
	for f := range numFields {
		if tf[f] == 0 {
			continue
		}
		norm := 1 - fieldB[f] + fieldB[f]*float64(lens[f])/s.avgLen[f]
		w += fieldWeight[f] * float64(tf[f]) / norm
	}
	return w * (k1 + 1) / (k1 + w)
}

// Search answers a query. It brings the index up to date first, so a record
// written before the call is found (within QueryCatchUp; see syncForQuery).
func (ix *Index) Search(q Query) (*Page, error) {
	words := parseQuery(q.Text)
	if len(words) == 0 {
		return nil, ErrEmptyQuery
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	last, err := ix.syncForQuery()
	if err != nil {
		return nil, err
	}
	return ix.search(q, words, last)
}

// search answers a query from what is indexed.
func (ix *Index) search(q Query, words []queryWord, last uint64) (*Page, error) {
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
	wordMasks := termMasks(wordTerms, len(terms))
	// The filters decide which documents are candidates; Allow, likely the
	// dearest, is asked only of those matching every word.
	now := nowNanos(q.Now)
	purged := ix.purgedOrigins()
	admit := func(d *Doc) bool {
		a := d.attrs()
		if q.Catalogue != "" && a.Catalogue != q.Catalogue || q.Origin != "" && a.Origin != q.Origin {
			return false
		}
		if purged(a.Origin) {
			return false
		}
		if q.Industry != "" && !slices.Contains(a.Industries, q.Industry) || q.Status != "" && d.statusAt(now) != q.Status {
			return false
		}
		return q.UpdatedSince.IsZero() || !d.UpdatedAt().Before(q.UpdatedSince)
	}
	// Candidates are drawn from the word whose rarest terms are the
	// cheapest to read, when that is much cheaper than reading all.
	draw := func(df []float64) []int {
		var best []int
		bestCost, all := math.Inf(1), 0.0
		for _, d := range df {
			all += d
		}
		for wi, w := range words {
			if ts, cost := rarest(wordTerms[wi], w.need(), df); cost < bestCost {
				best, bestCost = ts, cost
			}
		}
		if len(best) == len(terms) || 2*bestCost >= all {
			return nil
		}
		return best
	}

	var hits []ranked
	var s *collected
	ix.mu.RLock()
	if ix.db == nil {
		ix.mu.RUnlock()
		return nil, ErrClosed
	}
	behind := ix.unsafeBehind(last)
	err := ix.db.View(func(tx *bbolt.Tx) error {
		s = ix.unsafeCollect(tx, terms, collectOptions{admit: admit, draw: draw})
		hits = s.ranked[:0]
	next:
		for i := range s.cands {
			for wi, w := range words {
				if s.count(i, wordTerms[wi], wordMasks, wi) < w.need() {
					continue next
				}
			}
			cd := &s.cands[i]
			if q.Allow != nil && !q.Allow(cd.doc) {
				continue
			}
			hits = append(hits, ranked{doc: cd.doc, score: cd.score})
		}
		return nil
	})
	ix.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	defer func() {
		s.ranked = hits[:0]
		s.release()
	}()

	page := &Page{Total: len(hits), Behind: behind}
	order := func(a, b ranked) int {
		if q.Order != ByID {
			if c := cmp.Compare(b.score, a.score); c != 0 {
				return c
			}
		}
		return cmp.Compare(a.doc.ID, b.doc.ID)
	}
	if q.After != nil {
		after := ranked{doc: &Doc{ID: q.After.ID}, score: q.After.Score}
		hits = slices.DeleteFunc(hits, func(h ranked) bool { return order(h, after) <= 0 })
	}
	matched := make([]string, len(words))
	for wi, w := range words {
		matched[wi] = w.text
	}
	// Only the page is wanted, usually of a few thousand hits or more: select
	// the first hits rather than sorting them all (sorting was a third of a
	// broad query's time). Room is left for hits deleted since the index was
	// read; should they use it up, the rest is sorted after all.
	sorted := topHits(hits, q.Limit+q.Limit/2+8, order)
	maxBytes, size := q.MaxBytes, 0
	if maxBytes <= 0 {
		maxBytes = store.DefaultPageBytes
	}
	for i := 0; i < len(hits) && len(page.Hits) < q.Limit && size < maxBytes; i++ {
		if i == len(sorted) {
			slices.SortFunc(hits, order)
			sorted = hits
		}
		h := sorted[i]
		rec, err := ix.src.Get(h.doc.ID)
		if err != nil || rec.Deleted {
			page.Total-- // deleted since the index was read
			continue
		}
		if q.AllowRecord != nil && !q.AllowRecord(rec) {
			page.Total-- // changed since the index was read: no longer the caller's to see
			continue
		}
		// A hit matches every word.
		page.Hits = append(page.Hits, Hit{Doc: h.doc, Record: rec, Score: h.score, Matched: slices.Clone(matched)})
		size += len(rec.Body)
		if (len(page.Hits) == q.Limit || size >= maxBytes) && i+1 < len(hits) {
			page.Next = &Cursor{Score: h.score, ID: h.doc.ID}
		}
	}
	return page, nil
}

// PurgedSource is a Source that tells whether an origin's purge has begun
// (store.Store.Purged). From its first chunk on the store serves all of the
// origin's records as tombstones, while the index holds those whose chunk is
// still to come until the feed brings their deletion: a query leaves them out,
// so that Total counts none of them (a page would show none).
type PurgedSource interface {
	Purged(origin string) (bool, error)
}

// purgedOrigins returns a test of whether an origin's purge has begun, which
// asks the Source once per origin per query; origins of a Source that cannot
// tell are never purged.
func (ix *Index) purgedOrigins() func(origin string) bool {
	ps, ok := ix.src.(PurgedSource)
	if !ok {
		return func(string) bool { return false }
	}
	seen := map[string]bool{}
	return func(origin string) bool {
		p, ok := seen[origin]
		if !ok {
			// An error reads as not purged: the page, read from the
			// store, still leaves such records out.
			p, _ = ps.Purged(origin)
			seen[origin] = p
		}
		return p
	}
}

// ranked is a document matching a query, with its score.
type ranked struct {
	doc   *Doc
	score float64
}

// topHits returns the first k of hits in order, sorted, without sorting the
// rest: a bounded max-heap holding the best k seen so far.
func topHits[H any](hits []H, k int, order func(a, b H) int) []H {
	if len(hits) <= k {
		out := slices.Clone(hits)
		slices.SortFunc(out, order)
		return out
	}
	h := make([]H, 0, k)
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
