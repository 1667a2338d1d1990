package search

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"liandong/node/store"
	"liandong/schema"
)

// memSource is a Source over an in-memory feed.
type memSource struct {
	mu      sync.Mutex
	feed    []store.Change
	records map[string]*schema.Record
	changed chan struct{}
}

var _ Source = (*memSource)(nil)

func newMemSource() *memSource {
	return &memSource{records: map[string]*schema.Record{}, changed: make(chan struct{})}
}

func (m *memSource) put(r *schema.Record) *schema.Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	r = r.Clone()
	if old := m.records[r.ID]; old != nil {
		r.Version = old.Version + 1
	} else if r.Version == 0 {
		r.Version = 1
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = time.Date(2025, 1, 1, 0, 0, len(m.feed), 0, time.UTC)
	}
	m.records[r.ID] = r
	m.feed = append(m.feed, store.Change{Position: uint64(len(m.feed) + 1), Record: r})
	close(m.changed)
	m.changed = make(chan struct{})
	return r
}

func (m *memSource) delete(id string) {
	m.mu.Lock()
	old := m.records[id]
	m.mu.Unlock()
	tomb := old.Clone()
	tomb.Deleted, tomb.Body = true, json.RawMessage("{}")
	m.put(tomb)
}

func (m *memSource) Changes(since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []store.Change
	last := since
	for i := int(since); i < len(m.feed) && len(out) < limit; i++ {
		c := m.feed[i]
		last = c.Position
		if match == nil || match(&store.Change{Position: c.Position, Record: c.Record}) {
			out = append(out, store.Change{Position: c.Position, Record: c.Record.Clone()})
		}
	}
	return out, last, nil
}

func (m *memSource) LastPosition() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return uint64(len(m.feed)), nil
}

func (m *memSource) Get(id string) (*schema.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := m.records[id]
	if r == nil {
		return nil, store.ErrNotFound
	}
	if r.Deleted {
		return r.Clone(), store.ErrDeleted
	}
	return r.Clone(), nil
}

func (m *memSource) Changed() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.changed
}

// corpusItem is one line of testdata/*.jsonl: a record body with its key, and
// for needs the keys of the relevant supply items and experts.
type corpusItem struct {
	Key        string          `json:"key"`
	Origin     string          `json:"origin"`
	Visibility string          `json:"visibility"`
	Body       json.RawMessage `json:"body"`
	Relevant   []string        `json:"relevant"`
	Experts    []string        `json:"experts"`
}

// id is the record id of a corpus key: "<origin>:<key>".
func (c *corpusItem) id() string { return c.Origin + ":" + c.Key }

func (c *corpusItem) record(catalogue string) *schema.Record {
	return &schema.Record{ID: c.id(), Catalogue: catalogue, Origin: c.Origin, Visibility: c.Visibility,
		Version: 1, Schema: schema.CurrentSchema, Body: c.Body}
}

func loadCorpus(t testing.TB, name string) []corpusItem {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []corpusItem
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for line := 1; sc.Scan(); line++ {
		var it corpusItem
		if err := json.Unmarshal(sc.Bytes(), &it); err != nil {
			t.Fatalf("%s:%d: %v", name, line, err)
		}
		out = append(out, it)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// corpus is the labelled test corpus loaded into a source, with keys mapped to ids.
type corpus struct {
	src     *memSource
	supply  []corpusItem
	needs   []corpusItem
	experts []corpusItem
	ids     map[string]string // key → id
	keys    map[string]string // id → key
}

func loadAll(t testing.TB) *corpus {
	t.Helper()
	c := &corpus{src: newMemSource(), ids: map[string]string{}, keys: map[string]string{},
		supply: loadCorpus(t, "supply.jsonl"), needs: loadCorpus(t, "needs.jsonl"), experts: loadCorpus(t, "experts.jsonl")}
	for _, set := range []struct {
		catalogue string
		items     []corpusItem
	}{{schema.CatalogueSupply, c.supply}, {schema.CatalogueNeed, c.needs}, {schema.CatalogueExpert, c.experts}} {
		for _, it := range set.items {
			rec := it.record(set.catalogue)
			if err := schema.ValidateRecord(rec, schema.ValidateOptions{Strict: true}); err != nil {
				t.Fatalf("corpus record %s is invalid: %v", it.Key, err)
			}
			if _, dup := c.ids[it.Key]; dup {
				t.Fatalf("corpus key %s twice", it.Key)
			}
			c.ids[it.Key], c.keys[rec.ID] = rec.ID, it.Key
			c.src.put(rec)
		}
	}
	return c
}

func mustOpen(t testing.TB, path string, src Source) *Index {
	t.Helper()
	ix, err := Open(path, src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close() })
	return ix
}

func hitKeys(c *corpus, p *Page) []string {
	out := make([]string, len(p.Hits))
	for i, h := range p.Hits {
		out[i] = c.keys[h.Doc.ID]
		if out[i] == "" {
			out[i] = h.Doc.ID
		}
	}
	return out
}

func fmtHits(c *corpus, p *Page) string {
	s := ""
	for _, h := range p.Hits {
		s += fmt.Sprintf("%s(%.2f) ", c.keys[h.Doc.ID], h.Score)
	}
	return s
}

// racingSource is a memSource whose first Get runs a write first: a write
// landing after a query read the index and before it reads the hits' records.
type racingSource struct {
	*memSource
	once  sync.Once
	write func()
}

func (s *racingSource) Get(id string) (*schema.Record, error) {
	s.once.Do(s.write)
	return s.memSource.Get(id)
}
