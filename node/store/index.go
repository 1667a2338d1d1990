package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"liandong/schema"
)

// Index fields.
const (
	FieldCatalogue = "catalogue"
	FieldOrigin    = "origin"
	FieldIndustry  = "industry"
	FieldStatus    = "status"
)

// indexedBody is the part of a body the indexes read.
type indexedBody struct {
	Industry string   `json:"industry"`
	Fields   []string `json:"fields"`
	Status   string   `json:"status"`
}

// maxIndexValue bounds the values the indexes and counts take. Local writes
// are validated (enums, short strings), but remote records are not: a signed
// entry of a newer build or a hostile member may carry an industry or a
// catalogue of any length, and a key over bbolt's MaxKeySize would fail the
// whole raft batch, on every replica, at every replay. Longer values are
// left out: no filter names them.
const maxIndexValue = 512

// indexTerms lists (field, value) pairs under which a live record is indexed.
// A value holding the key separator (\x00: another centre's records are not
// validated) is left out, as it would fall under a shorter value's prefix.
func indexTerms(r *schema.Record) [][2]string {
	terms := termsUpTo(r, maxIndexValue)
	return slices.DeleteFunc(terms, func(t [2]string) bool { return strings.IndexByte(t[1], 0) >= 0 })
}

// termsUpTo lists the (field, value) pairs of r with values of at most max
// bytes. Removal takes them all, because builds before maxIndexValue indexed
// longer values.
func termsUpTo(r *schema.Record, max int) [][2]string {
	var terms [][2]string
	add := func(field, value string) {
		if len(value) <= max {
			terms = append(terms, [2]string{field, value})
		}
	}
	add(FieldCatalogue, r.Catalogue)
	add(FieldOrigin, r.Origin)
	var b indexedBody
	// A body this build cannot read (newer schema) is still indexed by envelope.
	decodeIndexedBody(r.Body, &b)
	if b.Industry != "" {
		add(FieldIndustry, b.Industry)
	}
	for _, f := range b.Fields {
		if f != "" && f != b.Industry {
			add(FieldIndustry, f)
		}
	}
	if b.Status != "" {
		add(FieldStatus, b.Status)
	}
	return terms
}

// decodeIndexedBody is json.Unmarshal(body, b), errors ignored, reading only
// the three members it needs of a compact body (every body written or
// received since bodies are canonicalised), matched as encoding/json matches
// them: case-insensitively, the last one winning.
func decodeIndexedBody(body []byte, b *indexedBody) {
	err := schema.EachMember(body, func(name, value []byte) error {
		// A string without escapes (every industry and status code) is
		// read as it is; encoding/json reads it alike, by reflection.
		switch {
		case bytes.EqualFold(name, []byte("industry")):
			if !schema.MemberString(value, &b.Industry) {
				_ = json.Unmarshal(value, &b.Industry)
			}
		case bytes.EqualFold(name, []byte("fields")):
			_ = json.Unmarshal(value, &b.Fields)
		case bytes.EqualFold(name, []byte("status")):
			if !schema.MemberString(value, &b.Status) {
				_ = json.Unmarshal(value, &b.Status)
			}
		}
		return nil
	})
	if err != nil {
		*b = indexedBody{}
		_ = json.Unmarshal(body, b)
	}
}

func indexPrefix(field, value string) []byte { return appendIndexPrefix(nil, field, value, 0) }

// appendIndexPrefix appends field's and value's prefix to k, grown first by
// the prefix and more bytes (an id to follow: one allocation a key, where
// appending the id to indexPrefix's made two).
func appendIndexPrefix(k []byte, field, value string, more int) []byte {
	k = slices.Grow(k, len(field)+len(value)+2+more)
	k = append(k, field...)
	k = append(k, 0)
	k = append(k, value...)
	return append(k, 0)
}

func countKey(r *schema.Record) []byte {
	return []byte(r.Catalogue + "\x00" + r.Origin + "\x00" + r.Visibility)
}

// unsafeIndex adds or removes r's index keys and count. Deleted records are not indexed.
func unsafeIndex(tx *bbolt.Tx, r *schema.Record, add bool) error {
	if r.Deleted {
		return nil
	}
	idx := tx.Bucket(bucketIndex)
	// Under each (field, value), keys grow with each origin's record ids, as
	// in the records bucket: pages split full (at the default half, a
	// catch-up left this bucket half empty and wrote twice its pages).
	idx.FillPercent = 1.0
	terms := indexTerms(r)
	if !add {
		// Every value: deleting a key that is not there (or could not be)
		// is a no-op.
		terms = termsUpTo(r, math.MaxInt)
	}
	for _, t := range terms {
		// A fresh key each: bbolt keeps a key given to Put until the commit.
		k := append(appendIndexPrefix(nil, t[0], t[1], len(r.ID)), r.ID...)
		var err error
		if add {
			err = idx.Put(k, nil)
		} else {
			err = idx.Delete(k)
		}
		if err != nil {
			return err
		}
	}
	if len(r.Catalogue) > maxIndexValue || len(r.Visibility) > maxIndexValue {
		// Not counted either (see maxIndexValue), on add and removal alike, so
		// that one record's removal never takes another's count. A count an
		// older build kept for such a value stays: a metric, not a filter.
		return nil
	}
	counts := tx.Bucket(bucketCounts)
	ck := countKey(r)
	n := int64(getU64(counts, ck))
	if add {
		n++
	} else {
		n--
	}
	if n <= 0 {
		return counts.Delete(ck)
	}
	return putU64(counts, ck, uint64(n))
}

// Query selects live records for a list page. Pages are ordered by id, which never
// changes for a record, so paging under concurrent writes neither skips nor repeats
// a record that exists throughout.
type Query struct {
	Catalogue, Origin, Industry, Status string
	UpdatedSince                        time.Time
	// Now is when the list is asked (time.Now() when zero): an open need
	// whose expiry is at or before it has Status closed.
	Now time.Time
	// After is the last id of the previous page ("" for the first).
	After string
	Limit int
	// Match is an extra filter (visibility for the caller, text search …).
	Match func(*schema.Record) bool
	// MaxScan bounds the keys one page may read; a page that hits it ends early
	// with a cursor, so a selective filter never turns into an unbounded scan.
	MaxScan int
	// MaxBytes bounds the stored bytes of the records one page holds
	// (DefaultPageBytes when 0): a page of large records ends early with a
	// cursor, so that a page of limit records of the largest size (500 of
	// 64 KiB: 32 MiB, and as much again encoded) is not held in memory at
	// once. A page holds at least one record.
	MaxBytes int
}

// DefaultPageBytes is Query.MaxBytes when unset: more than a page of records
// of ordinary size (500 of a few KB), 64 of the largest.
const DefaultPageBytes = 4 << 20

// List returns one page of records matching q and the cursor for the next page
// ("" when there is none).
func (s *Store) List(q Query) (items []*schema.Record, next string, err error) {
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.MaxScan <= 0 {
		q.MaxScan = 20000
	}
	if q.MaxBytes <= 0 {
		q.MaxBytes = DefaultPageBytes
	}
	if q.Now.IsZero() {
		q.Now = time.Now()
	}
	size := 0
	err = s.view(func(tx *bbolt.Tx) error {
		var prefix []byte
		switch {
		case q.Industry != "":
			prefix = indexPrefix(FieldIndustry, q.Industry)
		case q.Status != "" && q.Status != schema.NeedOpen && q.Status != schema.NeedClosed:
			// A need without a status is open (schema), and an open need
			// past its expiry is closed: the status index, which holds only
			// given statuses, would miss those.
			prefix = indexPrefix(FieldStatus, q.Status)
		case q.Status == schema.NeedClosed && q.Origin == "":
			prefix = indexPrefix(FieldCatalogue, schema.CatalogueNeed)
		case q.Origin != "":
			prefix = indexPrefix(FieldOrigin, q.Origin)
		case q.Catalogue != "":
			prefix = indexPrefix(FieldCatalogue, q.Catalogue)
		}
		records := tx.Bucket(bucketRecords)
		var c *bbolt.Cursor
		if prefix != nil {
			c = tx.Bucket(bucketIndex).Cursor()
		} else {
			c = records.Cursor()
		}
		start := append(append([]byte(nil), prefix...), q.After...)
		k, v := c.Seek(start)
		if q.After != "" && bytes.Equal(k, start) {
			k, v = c.Next()
		}
		lastID := ""
		purged := map[string]bool{}
		for scanned := 0; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if scanned >= q.MaxScan {
				next = lastID
				return nil
			}
			scanned++
			id := string(k[len(prefix):])
			if prefix != nil && strings.IndexByte(id, 0) >= 0 {
				// A longer value's key (field \x00 value \x00 more \x00 id),
				// which builds before indexTerms left such values out wrote:
				// not of this value, and not an id (ids hold no \x00).
				continue
			}
			lastID = id
			if prefix != nil {
				v = records.Get([]byte(id))
				if v == nil {
					return fmt.Errorf("%w: index names missing record %s", ErrCorrupt, id)
				}
			}
			var r schema.Record
			if err := schema.UnmarshalRecord(v, &r); err != nil {
				return fmt.Errorf("%w: record %s: %v", ErrCorrupt, id, err)
			}
			if !q.matches(&r) {
				continue
			}
			if r.Origin != s.opts.Centre && s.purgedOrigin(tx, purged, r.Origin) {
				continue // purged, its chunk still to come: see Get
			}
			if len(items) == q.Limit || size >= q.MaxBytes {
				next = items[len(items)-1].ID
				return nil
			}
			items = append(items, &r)
			size += len(v)
		}
		return nil
	})
	return items, next, err
}

func (q *Query) matches(r *schema.Record) bool {
	if r.Deleted {
		return false
	}
	if q.Catalogue != "" && r.Catalogue != q.Catalogue || q.Origin != "" && r.Origin != q.Origin {
		return false
	}
	if q.Industry != "" || q.Status != "" {
		found := map[[2]string]bool{}
		status := ""
		for _, t := range indexTerms(r) {
			found[t] = true
			if t[0] == FieldStatus {
				status = t[1]
			}
		}
		if status == "" && r.Catalogue == schema.CatalogueNeed {
			status = schema.NeedOpen // absent: open (schema)
		}
		if status == schema.NeedOpen && r.Catalogue == schema.CatalogueNeed && r.Expired(q.Now) {
			status = schema.NeedClosed // needs close at their expiry (DESIGN)
		}
		if q.Industry != "" && !found[[2]string{FieldIndustry, q.Industry}] || q.Status != "" && status != q.Status {
			return false
		}
	}
	if !q.UpdatedSince.IsZero() && r.UpdatedAt.Before(q.UpdatedSince) {
		return false
	}
	return q.Match == nil || q.Match(r)
}

// Digest returns a hash of the replicated state: every bucket except the raft
// bookkeeping (applied index and term), which differs between replicas that hold
// the same data. Two replicas with equal digests hold equal state.
func (s *Store) Digest() (schema.Hash, error) {
	h := sha256.New()
	err := s.view(func(tx *bbolt.Tx) error {
		var walk func(b *bbolt.Bucket, isMeta bool) error
		walk = func(b *bbolt.Bucket, isMeta bool) error {
			return b.ForEach(func(k, v []byte) error {
				if isMeta && (bytes.Equal(k, keyAppliedIndex) || bytes.Equal(k, keyAppliedTerm)) {
					return nil
				}
				var n [8]byte
				binary.BigEndian.PutUint64(n[:], uint64(len(k)))
				h.Write(n[:])
				h.Write(k)
				if v == nil {
					h.Write([]byte{'B'})
					return walk(b.Bucket(k), false)
				}
				binary.BigEndian.PutUint64(n[:], uint64(len(v)))
				h.Write(n[:])
				h.Write(v)
				return nil
			})
		}
		for _, name := range allBuckets {
			h.Write(name)
			if err := walk(tx.Bucket(name), bytes.Equal(name, bucketMeta)); err != nil {
				return err
			}
		}
		return nil
	})
	var out schema.Hash
	h.Sum(out[:0])
	return out, err
}
