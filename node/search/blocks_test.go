package search

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.etcd.io/bbolt"

	"liandong/schema"
)

// setBlockLimits lowers the block limits for a test.
func setBlockLimits(t *testing.T, postings, bytes int) {
	t.Helper()
	p, b := blockPostings, blockBytes
	blockPostings, blockBytes = postings, bytes
	t.Cleanup(func() { blockPostings, blockBytes = p, b })
}

// termBlocks returns the blocks of term in the index file: each block's key
// ordinal followed by its postings' ordinals.
func termBlocks(t *testing.T, ix *Index, term string) [][]uint32 {
	t.Helper()
	var out [][]uint32
	err := ix.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketPost).Cursor()
		prefix := append([]byte(term), 0)
		for k, v := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, v = c.Next() {
			_, first, ok := splitBlockKey(k)
			if !ok {
				return fmt.Errorf("key %q", k)
			}
			ps, err := decodeBlock(nil, first, v)
			if err != nil {
				return err
			}
			if len(ps) == 0 {
				return fmt.Errorf("empty block %d", first)
			}
			b := []uint32{first}
			for _, p := range ps {
				b = append(b, p.ord)
			}
			out = append(out, b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ordOf returns the ordinal the index gave id.
func ordOf(t *testing.T, ix *Index, id string) uint32 {
	t.Helper()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	o, ok := ix.ids[id]
	if !ok {
		t.Fatalf("%s not indexed", id)
	}
	return o
}

func plainRecord(id, text string) *schema.Record {
	body, _ := json.Marshal(map[string]any{"title": text})
	origin, _, _ := schema.SplitID(id)
	return &schema.Record{ID: id, Catalogue: "supply", Origin: origin, Visibility: "federation", Schema: 1, Body: body}
}

// TestBlocks indexes batches of records holding the term "alpha" (the
// ordinals follow the order records are first written in a batch) with
// blocks of at most four postings, and checks the term's blocks after each.
func TestBlocks(t *testing.T) {
	type op struct {
		id     string
		delete bool
	}
	put := func(ids ...int) []op {
		var out []op
		for _, i := range ids {
			out = append(out, op{id: fmt.Sprintf("tianjin:r%02d", i)})
		}
		return out
	}
	del := func(ids ...int) []op {
		var out []op
		for _, i := range ids {
			out = append(out, op{id: fmt.Sprintf("tianjin:r%02d", i), delete: true})
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		batches [][]op
		want    [][]uint32 // key, then ordinals
	}{
		{"one block", [][]op{put(0, 1, 2)}, [][]uint32{{0, 0, 1, 2}}},
		{"more postings than a block", [][]op{put(0, 1, 2, 3, 4, 5, 6, 7, 8, 9)},
			[][]uint32{{0, 0, 1, 2, 3}, {4, 4, 5, 6, 7}, {8, 8, 9}}},
		{"appends across batches fill the last block", [][]op{put(0, 1, 2), put(3, 4, 5), put(6)},
			[][]uint32{{0, 0, 1, 2, 3}, {4, 4, 5, 6}}},
		{"remove the first of a block (the key stays)", [][]op{put(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), del(4)},
			[][]uint32{{0, 0, 1, 2, 3}, {4, 5, 6, 7}, {8, 8, 9}}},
		{"remove the last of a block", [][]op{put(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), del(3)},
			[][]uint32{{0, 0, 1, 2}, {4, 4, 5, 6, 7}, {8, 8, 9}}},
		{"remove the last of the last block", [][]op{put(0, 1, 2, 3, 4, 5), del(5)},
			[][]uint32{{0, 0, 1, 2, 3}, {4, 4}}},
		{"remove the only posting of a block", [][]op{put(0, 1, 2, 3, 4, 5, 6, 7, 8), del(8)},
			[][]uint32{{0, 0, 1, 2, 3}, {4, 4, 5, 6, 7}}},
		{"removals emptying a block", [][]op{put(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), del(5, 7, 4, 6)},
			[][]uint32{{0, 0, 1, 2, 3}, {8, 8, 9}}},
		{"removals across blocks in one batch", [][]op{put(0, 1, 2, 3, 4, 5, 6, 7, 8, 9), del(0, 3, 4, 9)},
			[][]uint32{{0, 1, 2}, {4, 5, 6, 7}, {8, 8}}},
		{"everything removed", [][]op{put(0, 1, 2, 3, 4), del(0, 1, 2, 3, 4)}, nil},
		{"a removal and appends in one batch", [][]op{put(0, 1, 2, 3, 4, 5), append(del(5), put(10, 11, 12)...)},
			[][]uint32{{0, 0, 1, 2, 3}, {4, 4, 6, 7, 8}}},
		{"updates: new ordinals at the end", [][]op{put(0, 1, 2, 3, 4), put(1, 3)},
			[][]uint32{{0, 0, 2}, {4, 4, 5, 6}}},
		{"written twice in one batch: one ordinal", [][]op{append(put(0, 1), put(0)...)},
			[][]uint32{{0, 0, 1}}},
		{"deleted then written again", [][]op{put(0, 1), del(0), put(0)},
			[][]uint32{{0, 1, 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			setBlockLimits(t, 4, 2048)
			src := newMemSource()
			ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
			live := map[string]bool{}
			for bi, batch := range tc.batches {
				for _, o := range batch {
					if o.delete {
						src.delete(o.id)
						delete(live, o.id)
					} else {
						src.put(plainRecord(o.id, fmt.Sprintf("alpha only%s b%d", strings.TrimPrefix(o.id, "tianjin:"), bi)))
						live[o.id] = true
					}
				}
				if err := ix.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			if got := termBlocks(t, ix, "alpha"); !slices.EqualFunc(got, tc.want, slices.Equal) {
				t.Fatalf("blocks %v, want %v", got, tc.want)
			}
			p := search(t, ix, Query{Text: "alpha", Limit: 100})
			if p.Total != len(live) {
				t.Fatalf("%d hits, %d records", p.Total, len(live))
			}
			for _, h := range p.Hits {
				if !live[h.Doc.ID] {
					t.Fatalf("hit %s is deleted", h.Doc.ID)
				}
				// Each record's own word finds it alone, with its doc.
				own := "only" + strings.TrimPrefix(h.Doc.ID, "tianjin:")
				if ids := ids(search(t, ix, Query{Text: own})); !slices.Equal(ids, []string{h.Doc.ID}) {
					t.Fatalf("%s: %v", own, ids)
				}
			}
			checkConsistent(t, ix)
		})
	}
}

// checkConsistent checks the index file against the doc table: every live
// doc's stored terms have its posting, no posting names another ordinal,
// and the table is what the file holds.
func checkConsistent(t *testing.T, ix *Index) {
	t.Helper()
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	err := ix.db.View(func(tx *bbolt.Tx) error {
		postings := map[string]map[uint32]bool{}
		c := tx.Bucket(bucketPost).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			term, first, ok := splitBlockKey(k)
			if !ok {
				return fmt.Errorf("key %q", k)
			}
			ps, err := decodeBlock(nil, first, v)
			if err != nil || len(ps) == 0 {
				return fmt.Errorf("block %q: %d postings, %v", k, len(ps), err)
			}
			m := postings[string(term)]
			if m == nil {
				m = map[uint32]bool{}
				postings[string(term)] = m
			}
			for _, p := range ps {
				if m[p.ord] {
					return fmt.Errorf("term %s: ordinal %d twice", term, p.ord)
				}
				m[p.ord] = true
				if ix.docAt(p.ord) == nil {
					return fmt.Errorf("term %s: posting of dead ordinal %d", term, p.ord)
				}
			}
		}
		n := 0
		err := tx.Bucket(bucketTerms).ForEach(func(k, v []byte) error {
			ord := binary.BigEndian.Uint32(k)
			if ix.docAt(ord) == nil {
				return fmt.Errorf("terms of dead ordinal %d", ord)
			}
			for _, term := range strings.Split(string(v), "\x00") {
				if !postings[term][ord] {
					return fmt.Errorf("ordinal %d: no posting for %q", ord, term)
				}
				delete(postings[term], ord)
			}
			n++
			return nil
		})
		if err != nil {
			return err
		}
		for term, m := range postings {
			if len(m) > 0 {
				return fmt.Errorf("term %s: postings %v of no doc's terms", term, m)
			}
		}
		if n != ix.live || len(ix.ids) != ix.live {
			return fmt.Errorf("%d docs' terms, %d ids, %d live", n, len(ix.ids), ix.live)
		}
		return tx.Bucket(bucketDocs).ForEach(func(k, v []byte) error {
			ord, d, err := decodeDoc(string(k), v, decodeAttrs)
			if err != nil {
				return err
			}
			if ix.ids[string(k)] != ord || ix.docAt(ord) == nil || ix.docAt(ord).ID != d.ID || ix.docAt(ord).Len != d.Len {
				return fmt.Errorf("doc %s: ordinal %d, table says %d", k, ord, ix.ids[string(k)])
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestUpdateGetsNewOrdinal: an updated record is indexed under a new
// ordinal, and its old ordinal is gone from every term, the terms and the
// doc table.
func TestUpdateGetsNewOrdinal(t *testing.T) {
	src := newMemSource()
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
	src.put(supplyRecord("tianjin:a", "钙钛矿叠层电池", "中试线", "光伏"))
	src.put(supplyRecord("tianjin:b", "液流电池储能", "长时储能"))
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	old := ordOf(t, ix, "tianjin:a")
	var oldTerms []string
	ix.db.View(func(tx *bbolt.Tx) error {
		oldTerms = strings.Split(string(tx.Bucket(bucketTerms).Get(binary.BigEndian.AppendUint32(nil, old))), "\x00")
		return nil
	})
	if len(oldTerms) < 5 {
		t.Fatalf("terms %v", oldTerms)
	}
	src.put(supplyRecord("tianjin:a", "氢燃料电池", "电堆"))
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	if now := ordOf(t, ix, "tianjin:a"); now <= old || now <= ordOf(t, ix, "tianjin:b") {
		t.Fatalf("ordinal %d after %d", now, old)
	}
	for _, term := range oldTerms {
		for _, b := range termBlocks(t, ix, term) {
			if slices.Contains(b[1:], old) {
				t.Errorf("term %s still holds ordinal %d: %v", term, old, b)
			}
		}
	}
	if ix.docAt(old) != nil {
		t.Errorf("ordinal %d still in the table", old)
	}
	checkConsistent(t, ix)
	if got := ids(search(t, ix, Query{Text: "电池"})); len(got) != 2 {
		t.Fatalf("电池: %v", got)
	}
	if got := ids(search(t, ix, Query{Text: "钙钛矿"})); len(got) != 0 {
		t.Fatalf("钙钛矿: %v", got)
	}
}

// TestReopenKeepsOrdinals closes and reopens an index: the same ordinals,
// next ordinal and results, and it goes on from there.
func TestReopenKeepsOrdinals(t *testing.T) {
	setBlockLimits(t, 8, 2048)
	c := loadAll(t)
	path := filepath.Join(t.TempDir(), "search.db")
	ix := mustOpen(t, path, c.src)
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	// Updates and a delete, so there are dead ordinals.
	for _, it := range c.supply[:10] {
		r := it.record(schema.CatalogueSupply)
		r.Body = json.RawMessage(strings.Replace(string(r.Body), `"title":"`, `"title":"改进 `, 1))
		c.src.put(r)
	}
	c.src.delete(c.supply[11].id())
	queries := []string{"电池", "风电 轴承", "氢", "改进", "高镍三元正极材料"}
	before := map[string]*Page{}
	for _, q := range queries {
		before[q] = search(t, ix, Query{Text: q, Limit: 1000})
	}
	ix.mu.RLock()
	idMap, next, live := maps(ix.ids), ix.next, ix.live
	ix.mu.RUnlock()
	if err := ix.Close(); err != nil {
		t.Fatal(err)
	}

	ix = mustOpen(t, path, c.src)
	ix.mu.RLock()
	if !equalMaps(idMap, ix.ids) || ix.next != next || ix.live != live {
		t.Errorf("reopened: next %d, %d live, want %d, %d; ids equal %v", ix.next, ix.live, next, live, equalMaps(idMap, ix.ids))
	}
	ix.mu.RUnlock()
	for _, q := range queries {
		p := search(t, ix, Query{Text: q, Limit: 1000})
		if !samePage(p, before[q]) {
			t.Errorf("%s: after reopening %v, before %v", q, ids2(p), ids2(before[q]))
		}
	}
	checkConsistent(t, ix)
	c.src.put(supplyRecord("tianjin:new", "钙钛矿叠层电池", "中试线"))
	if got := search(t, ix, Query{Text: "钙钛矿叠层"}); len(got.Hits) == 0 || ordOf(t, ix, "tianjin:new") != uint32(next) {
		t.Fatalf("a record after reopening: %v, ordinal %d, want %d", ids(got), ordOf(t, ix, "tianjin:new"), next)
	}
}

func maps(m map[string]uint32) map[string]uint32 {
	out := make(map[string]uint32, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func equalMaps(a, b map[string]uint32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func samePage(a, b *Page) bool {
	if a.Total != b.Total || len(a.Hits) != len(b.Hits) {
		return false
	}
	for i := range a.Hits {
		if a.Hits[i].Doc.ID != b.Hits[i].Doc.ID || a.Hits[i].Score != b.Hits[i].Score {
			return false
		}
	}
	return true
}

func ids2(p *Page) string {
	var sb strings.Builder
	for _, h := range p.Hits {
		fmt.Fprintf(&sb, "%s(%g) ", h.Doc.ID, h.Score)
	}
	return sb.String()
}

// TestLayout1IsRebuilt opens a file of layout 1 (a key per posting): it is
// emptied and rebuilt from the feed, and ends up as a fresh index would.
func TestLayout1IsRebuilt(t *testing.T) {
	src := newMemSource()
	src.put(supplyRecord("tianjin:a", "钙钛矿叠层电池", "中试线"))
	last := src.put(supplyRecord("hebei:b", "液流电池储能", "长时储能"))
	path := filepath.Join(t.TempDir(), "search.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta, _ := tx.CreateBucket(bucketMeta)
		docs, _ := tx.CreateBucket(bucketDocs)
		terms, _ := tx.CreateBucket(bucketTerms)
		post, _ := tx.CreateBucket(bucketPost)
		putU64(meta, keyLayout, 1)
		putU64(meta, keyPosition, 2)
		meta.Put(keyFingerprint, fingerprint(last))
		docs.Put([]byte("tianjin:a"), []byte(`{"id":"tianjin:a","c":"supply","o":"tianjin","v":"federation","u":"2025-01-01T00:00:00Z","l":[3,0,0,0,0,0]}`))
		terms.Put([]byte("tianjin:a"), []byte("钙钛\x00钛矿\x00矿叠"))
		post.Put([]byte("钙钛\x00tianjin:a"), []byte{1})
		post.Put([]byte("电池\x00tianjin:a"), []byte{1})
		post.Put([]byte("电池\x00hebei:b"), []byte{1})
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	ix := mustOpen(t, path, src)
	if ix.Position() != 0 || ix.Len() != 0 {
		t.Fatalf("layout 1 kept: position %d, %d docs", ix.Position(), ix.Len())
	}
	if got := ids(search(t, ix, Query{Text: "电池"})); len(got) != 2 {
		t.Fatalf("电池: %v", got)
	}
	ix.db.View(func(tx *bbolt.Tx) error {
		if l := getU64(tx.Bucket(bucketMeta), keyLayout); l != layoutVersion {
			t.Errorf("layout %d", l)
		}
		return nil
	})
	checkConsistent(t, ix)

	fresh := mustOpen(t, filepath.Join(t.TempDir(), "fresh.db"), src)
	for _, q := range []string{"电池", "钙钛矿", "储能"} {
		if a, b := search(t, ix, Query{Text: q}), search(t, fresh, Query{Text: q}); !samePage(a, b) {
			t.Errorf("%s: rebuilt %s, fresh %s", q, ids2(a), ids2(b))
		}
	}
}

// TestOrdinalsUsedUpRebuilds: an index that would need an ordinal past
// maxOrdinal starts over, numbering the live records from 0.
func TestOrdinalsUsedUpRebuilds(t *testing.T) {
	defer func(m uint64) { maxOrdinal = m }(maxOrdinal)
	maxOrdinal = 9
	src := newMemSource()
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
	for i := range 6 {
		src.put(plainRecord(fmt.Sprintf("tianjin:r%d", i), fmt.Sprintf("alpha w%d", i)))
	}
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		src.put(plainRecord(fmt.Sprintf("tianjin:r%d", i), fmt.Sprintf("alpha v%d", i)))
	}
	// The query's catch-up runs out of ordinals and empties the index; the
	// rebuild is Run's (here, Sync's), not the query's.
	last, _ := src.LastPosition()
	if p := search(t, ix, Query{Text: "alpha", Limit: 100}); p.Behind != last {
		t.Fatalf("query after the reset: %d hits, Behind %d, want Behind %d", p.Total, p.Behind, last)
	}
	if err := ix.Sync(); err != nil {
		t.Fatal(err)
	}
	p := search(t, ix, Query{Text: "alpha", Limit: 100})
	if p.Total != 6 {
		t.Fatalf("%d hits", p.Total)
	}
	ix.mu.RLock()
	next := ix.next
	ix.mu.RUnlock()
	if next != 6 {
		t.Fatalf("next ordinal %d after the rebuild, want 6", next)
	}
	if got := ids(search(t, ix, Query{Text: "v3"})); !slices.Equal(got, []string{"tianjin:r3"}) {
		t.Fatalf("v3: %v", got)
	}
	checkConsistent(t, ix)
}
