package search

import (
	"bytes"
	"math/bits"
	"slices"
	"sync"

	"go.etcd.io/bbolt"
)

// cand is a document some query term's postings name: its score so far (the
// weighted BM25F of its terms, added in term order) and the fields holding
// them. Which terms it holds is in collected.bits.
type cand struct {
	doc    *Doc
	score  float64
	ord    uint32
	fields uint8
	// lens is the doc's Len: scoring reads it for every posting, and the
	// candidates lie together, the docs all over the heap.
	lens [numFields]uint32
}

// blockRef is one postings block of a query term, read in the transaction.
type blockRef struct {
	first uint32
	val   []byte
}

// Slot values of collected.slot besides 1 + a candidate's index.
const (
	slotNone     = 0
	slotRejected = ^uint32(0)     // not a candidate: dead, not yet in the table, or not admitted
	slotDrawn    = ^uint32(0) - 1 // drawn, to become a candidate
)

// collected is a query's scratch and its result: the candidates, the terms
// each holds and the terms' document frequencies. Its memory is reused by
// later queries (collectedPool); release returns it.
type collected struct {
	// slot is, by ordinal, slotNone or the ordinal's state; used lists the
	// ordinals whose slot is set, to clear them.
	slot []uint32
	used []uint32
	// cands are the candidates; bits holds, words uint64 a candidate, the
	// terms each holds.
	cands []cand
	bits  []uint64
	words int
	df    []float64

	blocks []blockRef
	spans  [][2]int // by term, its blocks in blocks
	// seen marks the ordinals a prefix term's postings name (to count each
	// document once); seenFar those past seen's end.
	seen    []uint64
	seenFar map[uint32]bool
	// acc sums, by candidate, a prefix term's frequencies over the terms it
	// stands for.
	acc   [][numFields]uint32
	accAt []int32
	drawn []uint32
	// ranked is the memory of a search's hits, kept for the next.
	ranked []ranked
	// torn says a postings block did not decode (it was skipped).
	torn bool
}

var collectedPool = sync.Pool{New: func() any { return new(collected) }}

func getCollected(ords, terms int) *collected {
	s := collectedPool.Get().(*collected)
	if len(s.slot) < ords {
		s.slot = make([]uint32, ords+ords/8)
	}
	s.words = (terms + 63) / 64
	s.df = slices.Grow(s.df[:0], terms)[:terms]
	clear(s.df)
	s.spans = slices.Grow(s.spans[:0], terms)[:terms]
	s.torn = false
	return s
}

// release clears s and returns it to the pool.
func (s *collected) release() {
	for _, o := range s.used {
		s.slot[o] = slotNone
	}
	clear(s.blocks) // they point into the closed transaction's memory
	s.used, s.cands, s.bits, s.blocks, s.acc, s.accAt, s.drawn = s.used[:0], s.cands[:0], s.bits[:0], s.blocks[:0], s.acc[:0], s.accAt[:0], s.drawn[:0]
	clear(s.seenFar)
	collectedPool.Put(s)
}

// termMasks returns the bit set of each list of terms (by index), when the
// terms fit in one word of bits; else nil.
func termMasks(lists [][]int, terms int) []uint64 {
	if terms > 64 {
		return nil
	}
	masks := make([]uint64, len(lists))
	for i, ts := range lists {
		for _, ti := range ts {
			masks[i] |= 1 << ti
		}
	}
	return masks
}

// count returns how many of the terms candidate i holds; masks is
// termMasks's answer, of which the terms are list l.
func (s *collected) count(i int, terms []int, masks []uint64, l int) int {
	if masks != nil { // one word of bits a candidate
		return bits.OnesCount64(s.bits[i] & masks[l])
	}
	n := 0
	for _, ti := range terms {
		if s.has(i, ti) {
			n++
		}
	}
	return n
}

// has reports whether candidate i holds term ti.
func (s *collected) has(i, ti int) bool {
	return s.bits[i*s.words+ti/64]&(1<<(ti%64)) != 0
}

// collectOptions say how unsafeCollect draws and scores candidates.
type collectOptions struct {
	// admit decides whether a document may be a candidate; it is called
	// once per document.
	admit func(*Doc) bool
	// weights multiply each term's idf (nil: 1).
	weights []float64
	// draw, when set, returns the terms whose postings may add candidates
	// given the terms' document frequencies; a document only in other terms'
	// postings is no candidate. nil (or a nil answer): every term's.
	draw func(df []float64) []int
}

// unsafeCollect reads the postings of terms, returning the candidates with
// their scores, the terms they hold and the terms' document frequencies.
// Document frequencies count every indexed record (every posting), so
// scores do not depend on filters or on what the caller may see; admit
// selects the candidates. A posting whose ordinal is dead or not in the doc
// table yet is skipped; so is a block that does not decode, noted for a
// rebuild (noteTorn; under ix.mu, so no rebuild comes between the read and
// the note). The caller holds ix.mu shared and releases the result.
func (ix *Index) unsafeCollect(tx *bbolt.Tx, terms []queryTerm, o collectOptions) *collected {
	s := getCollected(len(ix.docs), len(terms))
	st := ix.unsafeStats()
	c := tx.Bucket(bucketPost).Cursor()
	// The blocks of each term, and its document frequency.
	for ti, t := range terms {
		start := len(s.blocks)
		prefix := []byte(t.text)
		if !t.prefix {
			prefix = append(prefix, 0)
		}
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			term, first, ok := splitBlockKey(k)
			if !ok || !t.prefix && len(term) != len(t.text) {
				continue
			}
			s.blocks = append(s.blocks, blockRef{first: first, val: v})
			if !t.prefix {
				h, ok := readBlockHeader(first, v)
				s.torn = s.torn || !ok
				s.df[ti] += float64(h.n)
			}
		}
		s.spans[ti] = [2]int{start, len(s.blocks)}
		if t.prefix {
			s.df[ti] = float64(s.countDistinct(s.blocks[start:]))
		}
	}

	var drawing []int
	if o.draw != nil {
		drawing = o.draw(s.df)
	}
	creating := len(drawing) == 0
	if !creating {
		// Draw the candidates from the drawing terms, then score them over
		// every term in term order (so scores add up as in one pass).
		for _, ti := range drawing {
			for _, b := range s.blocks[s.spans[ti][0]:s.spans[ti][1]] {
				r := newBlockReader(b.first, b.val)
				var p posting
				for {
					if _, ok := r.next(&p, false); !ok {
						break
					}
					if int(p.ord) >= len(s.slot) || s.slot[p.ord] != slotNone {
						continue
					}
					s.used = append(s.used, p.ord)
					if d := ix.docAt(p.ord); d == nil || !o.admit(d) {
						s.slot[p.ord] = slotRejected
						continue
					}
					s.slot[p.ord] = slotDrawn
					s.drawn = append(s.drawn, p.ord)
				}
				s.torn = s.torn || r.err != nil
			}
		}
		slices.Sort(s.drawn)
		for _, ord := range s.drawn {
			s.addCand(ord, ix.docs[ord])
		}
	}

	for ti, t := range terms {
		weight := idf(st.n, s.df[ti])
		if o.weights != nil {
			weight = o.weights[ti] * weight
		}
		blocks := s.blocks[s.spans[ti][0]:s.spans[ti][1]]
		word, bit := ti/64, uint64(1)<<(ti%64)
		if t.prefix {
			s.accAt = s.accAt[:0]
		}
		next := 0 // with drawn candidates: the first not below the block
		for bi, b := range blocks {
			if !creating && !t.prefix {
				// Skip a block without candidates.
				for next < len(s.cands) && s.cands[next].ord < b.first {
					next++
				}
				if next == len(s.cands) {
					break
				}
				if bi+1 < len(blocks) && s.cands[next].ord >= blocks[bi+1].first {
					continue
				}
			}
			r := newBlockReader(b.first, b.val)
			var p posting
			for {
				mask, ok := r.next(&p, true)
				if !ok {
					break
				}
				if int(p.ord) >= len(s.slot) {
					continue // not in the table yet
				}
				sv := s.slot[p.ord]
				switch {
				case sv == slotRejected:
					continue
				case sv == slotNone:
					if !creating {
						continue
					}
					s.used = append(s.used, p.ord)
					d := ix.docAt(p.ord)
					if d == nil || !o.admit(d) {
						s.slot[p.ord] = slotRejected
						continue
					}
					sv = s.addCand(p.ord, d)
				}
				i := int(sv - 1)
				cd := &s.cands[i]
				if t.prefix {
					if i >= len(s.acc) {
						s.acc = append(s.acc, make([][numFields]uint32, len(s.cands)-len(s.acc))...)
					}
					a := &s.acc[i]
					if *a == [numFields]uint32{} {
						s.accAt = append(s.accAt, int32(i))
					}
					for f := range numFields {
						a[f] += p.tf[f]
					}
					continue
				}
				cd.score += weight * st.termWeightLen(&cd.lens, &p.tf)
				cd.fields |= mask
				s.bits[i*s.words+word] |= bit
			}
			s.torn = s.torn || r.err != nil
		}
		if t.prefix {
			for _, i := range s.accAt {
				cd, a := &s.cands[i], &s.acc[i]
				cd.score += weight * st.termWeightLen(&cd.lens, a)
				for f := range numFields {
					if a[f] > 0 {
						cd.fields |= 1 << f
					}
				}
				s.bits[int(i)*s.words+word] |= bit
				*a = [numFields]uint32{}
			}
		}
	}
	if s.torn {
		ix.noteTorn()
	}
	return s
}

// addCand adds a candidate and returns its slot value.
func (s *collected) addCand(ord uint32, d *Doc) uint32 {
	s.cands = append(s.cands, cand{doc: d, ord: ord, lens: d.Len})
	s.bits = append(s.bits, make([]uint64, s.words)...)
	sv := uint32(len(s.cands))
	s.slot[ord] = sv
	return sv
}

// countDistinct returns the number of distinct ordinals in blocks.
func (s *collected) countDistinct(blocks []blockRef) int {
	if need := (len(s.slot) + 63) / 64; len(s.seen) < need {
		s.seen = make([]uint64, need+need/8)
	}
	n := 0
	for _, b := range blocks {
		r := newBlockReader(b.first, b.val)
		var p posting
		for {
			if _, ok := r.next(&p, false); !ok {
				break
			}
			w, bit := int(p.ord/64), uint64(1)<<(p.ord%64)
			if w >= len(s.seen) {
				if s.seenFar == nil {
					s.seenFar = map[uint32]bool{}
				}
				if !s.seenFar[p.ord] {
					s.seenFar[p.ord] = true
					n++
				}
				continue
			}
			if s.seen[w]&bit == 0 {
				s.seen[w] |= bit
				n++
			}
		}
		s.torn = s.torn || r.err != nil
	}
	clear(s.seen)
	clear(s.seenFar)
	return n
}

// rarest returns the terms of a word of n terms (by index, among the
// terms of a query) a document needing k of them must hold one of: the n-k+1
// rarest, and what reading them costs (their postings).
func rarest(word []int, k int, df []float64) ([]int, float64) {
	ts := slices.Clone(word)
	slices.SortStableFunc(ts, func(a, b int) int {
		switch {
		case df[a] < df[b]:
			return -1
		case df[a] > df[b]:
			return 1
		}
		return 0
	})
	ts = ts[:len(ts)-k+1]
	var cost float64
	for _, ti := range ts {
		cost += df[ti]
	}
	return ts, cost
}
