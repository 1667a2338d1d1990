package search

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/bbolt"

	"liandong/node/store"
	"liandong/schema"
)

// apply indexes a batch of changes in one transaction. Only the last change of
// each record in the batch matters: a record written before is removed (its
// ordinal's postings and doc), then, unless deleted, indexed under the next
// ordinal. The postings of the batch are grouped by term, so each term's
// blocks are read and rewritten once, and written in key order.
func (ix *Index) apply(changes []store.Change) error {
	latest := make(map[string]*schema.Record, len(changes))
	order := make([]string, 0, len(changes))
	for _, c := range changes {
		if _, ok := latest[c.Record.ID]; !ok {
			order = append(order, c.Record.ID)
		}
		latest[c.Record.ID] = c.Record
	}
	lastChange := changes[len(changes)-1]
	// The file is written without ix.mu: the caller holds syncMu, which Close
	// needs too, so db stays open, and only apply changes the doc table, so
	// it reads the table without ix.mu. Searches meanwhile read the last
	// committed postings through their own read transactions. Holding ix.mu
	// here made every search wait for a whole batch to be analysed and
	// committed (tens to hundreds of milliseconds while a centre catches up).
	// A search that runs between the commit and the update of the doc table
	// below finds postings of ordinals the table does not hold yet, and skips
	// them; ordinals are never reused (but after a reset, under ix.mu), so an
	// ordinal never names another document than its own.
	ix.mu.RLock()
	db := ix.db
	ix.mu.RUnlock()
	if db == nil {
		return ErrClosed
	}
	next := ix.next
	if next+uint64(len(order)) > maxOrdinal+1 {
		ix.log.Info("search index: ordinals used up; rebuilding it", "next", next)
		ix.mu.Lock()
		defer ix.mu.Unlock()
		return ix.reset()
	}

	type added struct {
		ord uint32
		doc *Doc
	}
	var (
		removed []string // ids whose docs leave the table
		adds    []added
		w       = ix.takeWriter(len(order))
		a       arena
	)
	err := db.Update(func(tx *bbolt.Tx) error {
		post, terms, docs := tx.Bucket(bucketPost), tx.Bucket(bucketTerms), tx.Bucket(bucketDocs)
		type kv struct{ k, v []byte }
		var docPuts []kv
		var docDels, termDels [][]byte
		var termPuts []kv
		for _, id := range order {
			rec := latest[id]
			if old, ok := ix.ids[id]; ok {
				removed = append(removed, id)
				key := binary.BigEndian.AppendUint32(nil, old)
				for t := range bytes.SplitSeq(terms.Get(key), []byte{0}) {
					if len(t) > 0 {
						w.remove(t, old)
					}
				}
				termDels = append(termDels, key)
			}
			if rec.Deleted {
				docDels = append(docDels, []byte(id))
				continue
			}
			ord := uint32(next)
			next++
			d, names := w.addRecord(ord, rec)
			termPuts = append(termPuts, kv{binary.BigEndian.AppendUint32(nil, ord), names})
			v, attrs := encodeDoc(nil, ord, &d)
			d.DocAttrs = ix.internAttrs(attrs)
			docPuts = append(docPuts, kv{[]byte(id), v})
			adds = append(adds, added{ord, &d})
		}
		// bbolt inserts in key order several times faster than scattered.
		slices.SortFunc(docDels, bytes.Compare)
		for _, k := range docDels {
			if err := docs.Delete(k); err != nil {
				return err
			}
		}
		slices.SortFunc(docPuts, func(a, b kv) int { return bytes.Compare(a.k, b.k) })
		for _, p := range docPuts {
			if err := docs.Put(p.k, p.v); err != nil {
				return err
			}
		}
		slices.SortFunc(termDels, bytes.Compare)
		for _, k := range termDels {
			if err := terms.Delete(k); err != nil {
				return err
			}
		}
		for _, p := range termPuts { // new ordinals: in order
			if err := terms.Put(p.k, p.v); err != nil {
				return err
			}
		}
		if err := w.write(post, &a); err != nil {
			return err
		}
		meta := tx.Bucket(bucketMeta)
		if err := putU64(meta, keyNext, next); err != nil {
			return err
		}
		if err := putU64(meta, keyPosition, lastChange.Position); err != nil {
			return err
		}
		return meta.Put(keyFingerprint, fingerprint(lastChange.Record))
	})
	ix.keepWriter(w)
	if errors.Is(err, errBlock) {
		// The file is torn (the index does not fsync): start over.
		ix.log.Warn("search index: malformed postings; rebuilding it", "err", err)
		ix.mu.Lock()
		defer ix.mu.Unlock()
		return ix.reset()
	}
	if err != nil {
		return fmt.Errorf("search index: apply %d changes: %w", len(changes), err)
	}
	if ix.afterCommit != nil {
		ix.afterCommit()
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, id := range removed {
		ix.dropDoc(id)
	}
	for _, ad := range adds {
		ix.setDoc(ad.ord, ad.doc)
	}
	ix.next = next
	ix.pos.Store(lastChange.Position)
	return nil
}

// batchWriter gathers a batch's postings changes by term: a batch holds
// hundreds of thousands of postings over tens of thousands of terms, most
// with one, so they are listed as they come with their term's index, then
// laid out by term in one pass (a counting sort) when written.
type batchWriter struct {
	// short indexes the terms of up to 7 bytes (CJK bigrams are 6) by
	// shortKey, which hashes and compares faster; index the others.
	short   map[uint64]int32
	index   map[string]int32
	terms   []termChanges
	adds    []posting
	addTerm []int32
	rms     []uint32
	rmTerm  []int32
	// sorted holds adds laid out by term (write).
	sorted []posting

	// addRecord's per-term state, by term index: the record (counted from
	// 1) that last held the term and where in recAdds its posting is.
	lastRec, lastAt []int32
	records         int32
	// The record being added: its postings and their term indexes.
	recAdds []posting
	recTerm []int32
}

// termChanges counts the postings a batch adds to a term and removes.
type termChanges struct {
	term      string
	adds, rms int32
}

func newBatchWriter(records int) *batchWriter {
	return &batchWriter{short: make(map[uint64]int32, min(records*64, 1<<16)), index: map[string]int32{},
		adds: make([]posting, 0, records*128), addTerm: make([]int32, 0, records*128)}
}

// maxKeptPostings bounds the postings a batchWriter's tables may hold to be
// kept for the next batch (60 bytes each, adds and sorted with their term
// indexes: 23 MiB at most): a batch of the default 1,000 records of 1 KB of
// varied text (some 300 distinct terms each) fits; a larger one's tables are
// left to the collector. Run drops the kept tables once the index has been
// idle for spareIdle.
const maxKeptPostings = 384 << 10

// keptPostingsFloor is the postings capacity kept whatever the batch used
// (some 7 MiB): newBatchWriter's for 1,000 records. Larger tables are kept
// only while batches fill a quarter of them, so that steady writes after a
// catch-up of varied text do not hold its tables for as long as they last.
const keptPostingsFloor = 128 << 10

// takeWriter returns a writer for a batch of records: the one the previous
// batch kept (keepWriter) when there is one, emptied. A catch-up indexes
// batch after batch of 1,000 records, and making each one's tables anew
// (several MB, zeroed) was a quarter of what indexing allocated. The caller
// holds syncMu, as apply does.
func (ix *Index) takeWriter(records int) *batchWriter {
	w := ix.spare
	ix.spare = nil
	if w == nil {
		return newBatchWriter(records)
	}
	w.reset()
	return w
}

// keepWriter keeps w for the next batch unless its tables grew past
// maxKeptPostings, or past keptPostingsFloor with this batch using less than
// a quarter of them. Nothing outside w refers to its memory once apply's
// transaction has ended: the postings and term names are copied into the
// transaction's values and each doc's own slices.
func (ix *Index) keepWriter(w *batchWriter) {
	size := max(cap(w.adds), cap(w.sorted), cap(w.rms))
	used := max(len(w.adds), len(w.rms))
	if size <= maxKeptPostings && len(w.terms) <= maxKeptPostings/2 && (size <= keptPostingsFloor || 4*used >= size) {
		ix.spare = w
	}
}

// reset empties w for another batch, keeping its tables' memory.
func (w *batchWriter) reset() {
	clear(w.short)
	clear(w.index)
	clear(w.terms) // drop the term strings the last batch made
	w.terms = w.terms[:0]
	w.adds, w.addTerm = w.adds[:0], w.addTerm[:0]
	w.rms, w.rmTerm = w.rms[:0], w.rmTerm[:0]
	w.lastRec, w.lastAt = w.lastRec[:0], w.lastAt[:0]
	w.records = 0
	w.recAdds, w.recTerm = w.recAdds[:0], w.recTerm[:0]
}

// shortKey packs a term of up to 7 bytes and its length into a uint64.
func shortKey[S string | []byte](term S) (uint64, bool) {
	if len(term) > 7 {
		return 0, false
	}
	k := uint64(len(term)) << 56
	for i := 0; i < len(term); i++ {
		k |= uint64(term[i]) << (8 * i)
	}
	return k, true
}

// slotOf returns the index of term's changes, adding them with the string
// str returns.
func slotOf[S string | []byte](w *batchWriter, term S, str func() string) int32 {
	var i int32
	var ok bool
	k, short := shortKey(term)
	if short {
		i, ok = w.short[k]
	} else {
		i, ok = w.index[string(term)]
	}
	if !ok {
		i = int32(len(w.terms))
		if short {
			w.short[k] = i
		} else {
			w.index[string(term)] = i
		}
		w.terms = append(w.terms, termChanges{term: str()})
		w.lastRec = append(w.lastRec, 0)
		w.lastAt = append(w.lastAt, 0)
	}
	return i
}

// addRecord analyzes r into postings of ordinal ord, which must be above
// those of every record added before. It returns r's doc and its distinct
// terms, \x00-separated, for the terms bucket. The terms are counted in
// the batch's own table (slotOf) rather than in a map per record, which
// was a third of analysing one.
func (w *batchWriter) addRecord(ord uint32, r *schema.Record) (Doc, []byte) {
	var d Doc
	texts := recordDoc(r, &d)
	w.records++
	rec := w.records
	w.recAdds, w.recTerm = w.recAdds[:0], w.recTerm[:0]
	analyzeFields(&texts, &d, func(f int, t []byte) {
		i := slotOf(w, t, func() string { return string(t) })
		if w.lastRec[i] != rec {
			w.lastRec[i] = rec
			w.lastAt[i] = int32(len(w.recAdds))
			w.recAdds = append(w.recAdds, posting{ord: ord})
			w.recTerm = append(w.recTerm, i)
		}
		w.recAdds[w.lastAt[i]].tf[f]++
	})
	size := 0
	for _, i := range w.recTerm {
		size += len(w.terms[i].term) + 1
	}
	names := make([]byte, 0, size)
	for k, i := range w.recTerm {
		w.terms[i].adds++
		w.adds = append(w.adds, w.recAdds[k])
		w.addTerm = append(w.addTerm, i)
		if k > 0 {
			names = append(names, 0)
		}
		names = append(names, w.terms[i].term...)
	}
	return d, names
}

func (w *batchWriter) remove(term []byte, ord uint32) {
	i := slotOf(w, term, func() string { return string(term) })
	w.terms[i].rms++
	w.rms = append(w.rms, ord)
	w.rmTerm = append(w.rmTerm, i)
}

// byTerm lays out vs by term in the order of rank (the rank of each term's
// index), keeping their order within a term, in out's memory when it is
// large enough, and returns where each rank's run starts (one more than the
// terms, the last the end).
func byTerm[T any](out, vs []T, termOf []int32, rank []int32, count func(i int) int32, order []int32) ([]T, []int32) {
	start := make([]int32, len(order)+1)
	for k, i := range order {
		start[k+1] = start[k] + count(int(i))
	}
	out = slices.Grow(out[:0], len(vs))[:len(vs)]
	at := slices.Clone(start[:len(order)])
	for j, v := range vs {
		r := rank[termOf[j]]
		out[at[r]] = v
		at[r]++
	}
	return out, start
}

// write rewrites the blocks of every term the batch changes, in key order.
func (w *batchWriter) write(post *bbolt.Bucket, a *arena) error {
	order := make([]int32, len(w.terms))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(i, j int32) int { return strings.Compare(w.terms[i].term, w.terms[j].term) })
	rank := make([]int32, len(order))
	for k, i := range order {
		rank[i] = int32(k)
	}
	adds, addAt := byTerm(w.sorted, w.adds, w.addTerm, rank, func(i int) int32 { return w.terms[i].adds }, order)
	w.sorted = adds // kept with w for the next batch (keepWriter)
	rms, rmAt := byTerm(nil, w.rms, w.rmTerm, rank, func(i int) int32 { return w.terms[i].rms }, order)
	c := post.Cursor()
	for k, i := range order {
		term := w.terms[i].term
		if rm := rms[rmAt[k]:rmAt[k+1]]; len(rm) > 0 {
			slices.Sort(rm)
			if err := removePostings(post, c, term, rm, a); err != nil {
				return err
			}
		}
		if ps := adds[addAt[k]:addAt[k+1]]; len(ps) > 0 {
			if err := appendPostings(post, c, term, ps, a); err != nil {
				return err
			}
		}
	}
	return nil
}

// seekBlock positions c on the block of term holding ordinal ord (the last
// whose key is not above term \x00 ord) and returns it, or nil.
func seekBlock(c *bbolt.Cursor, term string, ord uint32) (k, v []byte) {
	var kb [64 + 1 + ordBytes]byte
	key := append(append(append(kb[:0], term...), 0), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(key[len(key)-ordBytes:], ord)
	k, v = c.Seek(key)
	if k != nil && bytes.Equal(k, key) {
		return k, v
	}
	if k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if t, _, ok := splitBlockKey(k); !ok || string(t) != term {
		return nil, nil
	}
	return k, v
}

// removePostings rewrites the blocks of term holding the ordinals rm
// (increasing) without them, deleting the blocks it empties.
func removePostings(post *bbolt.Bucket, c *bbolt.Cursor, term string, rm []uint32, a *arena) error {
	for len(rm) > 0 {
		k, v := seekBlock(c, term, rm[0])
		if k == nil { // not indexed: nothing to remove
			rm = rm[1:]
			continue
		}
		_, first, _ := splitBlockKey(k)
		sp, err := spliceOut(a.tail[:0], first, v, rm)
		if err != nil {
			return fmt.Errorf("term %q block %d: %w", term, first, err)
		}
		a.tail = sp.body
		if len(sp.rest) == len(rm) {
			rm = rm[1:] // past the block's last posting: not indexed
			continue
		}
		rm = sp.rest
		switch {
		case sp.removed == 0:
		case sp.kept == 0:
			err = post.Delete(bytes.Clone(k))
		default:
			out := appendBlockHeader(a.scratch(), first, sp.kept, sp.last)
			err = post.Put(k, a.copy(append(out, sp.body...)))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// splice is a block with postings removed (spliceOut).
type splice struct {
	body          []byte // the postings kept
	kept, removed int
	last          uint32   // the last ordinal kept
	rest          []uint32 // the ordinals to remove past the block's last
}

// spliceOut appends to dst the postings of block v (keyed first) but those
// of the ordinals rm (increasing). The postings kept are copied as they are
// but for the distance of one following a removed one.
func spliceOut(dst []byte, first uint32, v []byte, rm []uint32) (splice, error) {
	h, ok := readBlockHeader(first, v)
	if !ok {
		return splice{body: dst}, errBlock
	}
	r := blockReader{b: h.body, left: uint64(h.n), prev: first, last: h.last}
	sp := splice{last: first, rest: rm}
	prevRead, read := first, 0
	var p posting
	for {
		off := len(h.body) - len(r.b)
		if (len(sp.rest) == 0 || sp.rest[0] > h.last) && sp.last == prevRead {
			// Nothing more to remove: the rest as it is.
			if n := h.n - read; n > 0 {
				dst = append(dst, h.body[off:]...)
				sp.kept += n
				sp.last = h.last
			}
			break
		}
		if _, ok := r.next(&p, false); !ok {
			break
		}
		read++
		end := len(h.body) - len(r.b)
		for len(sp.rest) > 0 && sp.rest[0] < p.ord {
			sp.rest = sp.rest[1:] // not indexed
		}
		if len(sp.rest) > 0 && sp.rest[0] == p.ord {
			sp.rest = sp.rest[1:]
			sp.removed++
			prevRead = p.ord
			continue
		}
		if sp.last == prevRead {
			dst = append(dst, h.body[off:end]...)
		} else {
			_, k := binary.Uvarint(h.body[off:])
			dst = binary.AppendUvarint(dst, uint64(p.ord-sp.last))
			dst = append(dst, h.body[off+k:end]...)
		}
		sp.last, prevRead = p.ord, p.ord
		sp.kept++
	}
	sp.body = dst
	if r.err != nil {
		return sp, r.err
	}
	for len(sp.rest) > 0 && sp.rest[0] <= h.last {
		sp.rest = sp.rest[1:]
	}
	return sp, nil
}

// appendPostings appends ps (increasing, above every ordinal of term) to the
// term's last block, and to new blocks past the block limits.
func appendPostings(post *bbolt.Bucket, c *bbolt.Cursor, term string, ps []posting, a *arena) error {
	if k, v := seekBlock(c, term, ^uint32(0)); k != nil {
		_, first, _ := splitBlockKey(k)
		h, ok := readBlockHeader(first, v)
		if !ok {
			return fmt.Errorf("term %q block %d: %w", term, first, errBlock)
		}
		if h.n < blockPostings && len(v) < blockBytes {
			// The new header, the old postings as they are, the new ones.
			tail := a.tail[:0]
			prev, m := h.last, 0
			for m < len(ps) && h.n+m < blockPostings && len(h.body)+len(tail) < blockBytes {
				tail = appendPosting(tail, prev, &ps[m])
				prev = ps[m].ord
				m++
			}
			a.tail = tail
			out := appendBlockHeader(a.scratch(), first, h.n+m, prev)
			out = append(append(out, h.body...), tail...)
			if err := post.Put(k, a.copy(out)); err != nil {
				return err
			}
			ps = ps[m:]
		}
	}
	for len(ps) > 0 {
		first := ps[0].ord
		body := a.tail[:0]
		prev, m := first, 0
		for m < len(ps) && m < blockPostings && len(body) < blockBytes {
			body = appendPosting(body, prev, &ps[m])
			prev = ps[m].ord
			m++
		}
		a.tail = body
		out := appendBlockHeader(a.scratch(), first, m, prev)
		out = append(out, body...)
		if err := post.Put(blockKey(term, first), a.copy(out)); err != nil {
			return err
		}
		ps = ps[m:]
	}
	return nil
}

// arena hands out the values of a write transaction: bbolt keeps a value
// given to Put, not a copy, until the transaction ends, so each needs its own
// memory; carving them from large chunks saves an allocation each.
type arena struct {
	chunk []byte
	buf   []byte
	tail  []byte // scratch for the postings of a block
}

// scratch returns an empty buffer for encoding a value, to be copied.
func (a *arena) scratch() []byte { return a.buf[:0] }

// copy returns a copy of b in the arena (and keeps b's memory as scratch).
func (a *arena) copy(b []byte) []byte {
	a.buf = b
	if len(b) > cap(a.chunk)-len(a.chunk) {
		a.chunk = make([]byte, 0, max(len(b), 256<<10))
	}
	n := len(a.chunk)
	a.chunk = append(a.chunk, b...)
	return a.chunk[n:len(a.chunk):len(a.chunk)]
}
