package search

import (
	"encoding/binary"
	"errors"
	"slices"
)

// The doc table: every indexed record's Doc, by ordinal. A document gets the
// next ordinal when it is indexed (an update is indexed anew, so it gets a
// new one and its old ordinal dies); postings name documents by ordinal.
//
// In the file, bucket docs maps a record's id to its ordinal and Doc
// (encodeDoc), bucket terms maps an ordinal (4 bytes, big-endian) to the
// document's distinct terms, \x00-separated, which removing it needs, and
// meta holds the next ordinal.

// maxOrdinal is the largest ordinal; an index that would need more is
// rebuilt, which numbers the live documents from 0 again.
var maxOrdinal uint64 = 1<<32 - 1

// maxAttrs bounds the table of shared DocAttrs; past it a doc's attributes
// are its own (the attributes are enumerations, so it is not reached).
const maxAttrs = 1 << 16

var errDoc = errors.New("search index: malformed doc")

// encodeDoc appends the stored form of a doc: its ordinal (4 bytes), its
// attributes (strings as uvarint length and bytes, the industries after
// their count), then TRL, update time and expiry (varints) and the field
// lengths (uvarints). The id is the key. attrs is the attributes' part of out.
func encodeDoc(dst []byte, ord uint32, d *Doc) (out []byte, attrs []byte) {
	dst = binary.BigEndian.AppendUint32(dst, ord)
	start := len(dst)
	a := d.attrs()
	for _, s := range [...]string{a.Catalogue, a.Origin, a.Visibility, a.Status, a.Kind} {
		dst = appendString(dst, s)
	}
	dst = binary.AppendUvarint(dst, uint64(len(a.Industries)))
	for _, s := range a.Industries {
		dst = appendString(dst, s)
	}
	end := len(dst)
	dst = binary.AppendVarint(dst, int64(d.TRL))
	dst = binary.AppendVarint(dst, d.updated)
	dst = binary.AppendVarint(dst, d.expires)
	for _, n := range d.Len {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	return dst, dst[start:end]
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// docReader reads the parts of a stored doc, failing at the first malformed one.
type docReader struct {
	b   []byte
	err error
}

func (r *docReader) uvarint() uint64 {
	n, k := binary.Uvarint(r.b)
	if k <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[k:]
	return n
}

func (r *docReader) varint() int64 {
	n, k := binary.Varint(r.b)
	if k <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[k:]
	return n
}

func (r *docReader) bytes() []byte {
	n := r.uvarint()
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	s := r.b[:n]
	r.b = r.b[n:]
	return s
}

func (r *docReader) fail() {
	if r.err == nil {
		r.err = errDoc
	}
	r.b = nil
}

// decodeDoc reads a stored doc; intern returns the attributes of their
// stored form raw, decoding them only when it has no shared copy.
func decodeDoc(id string, v []byte, intern func(raw []byte) *DocAttrs) (uint32, *Doc, error) {
	if len(v) < ordBytes {
		return 0, nil, errDoc
	}
	ord := binary.BigEndian.Uint32(v)
	r := &docReader{b: v[ordBytes:]}
	start := r.b
	for range 5 {
		r.bytes()
	}
	nIn := r.uvarint()
	if nIn > uint64(len(r.b)) {
		r.fail()
	}
	for range nIn {
		r.bytes()
	}
	if r.err != nil {
		return 0, nil, r.err
	}
	raw := start[:len(start)-len(r.b)]
	d := &Doc{ID: id, DocAttrs: intern(raw)}
	d.TRL = int(r.varint())
	d.updated = r.varint()
	d.expires = r.varint()
	for f := range numFields {
		n := r.uvarint()
		if n > 1<<31 {
			r.fail()
		}
		d.Len[f] = uint32(n)
	}
	if r.err == nil && len(r.b) != 0 {
		r.err = errDoc
	}
	if r.err != nil {
		return 0, nil, r.err
	}
	return ord, d, nil
}

// decodeAttrs decodes the attributes' part of a stored doc, already checked.
func decodeAttrs(raw []byte) *DocAttrs {
	r := &docReader{b: raw}
	a := &DocAttrs{}
	for _, s := range [...]*string{&a.Catalogue, &a.Origin, &a.Visibility, &a.Status, &a.Kind} {
		*s = string(r.bytes())
	}
	if n := r.uvarint(); n > 0 {
		a.Industries = make([]string, n)
		for i := range a.Industries {
			a.Industries[i] = string(r.bytes())
		}
	}
	return a
}

// internAttrs returns the shared attributes whose stored form is raw. Only
// Open and apply call it (apply holds syncMu).
func (ix *Index) internAttrs(raw []byte) *DocAttrs {
	if a, ok := ix.attrs[string(raw)]; ok {
		return a
	}
	a := decodeAttrs(raw)
	if len(ix.attrs) < maxAttrs {
		ix.attrs[string(raw)] = a
	}
	return a
}

// clearDocs empties the doc table for ordinals below next. The caller holds
// ix.mu or is Open.
func (ix *Index) clearDocs(next uint64) {
	ix.docs = make([]*Doc, next, max(next, 1024))
	ix.ids = map[string]uint32{}
	ix.attrs = map[string]*DocAttrs{}
	ix.live = 0
	ix.next = next
	ix.sumLen = [numFields]uint64{}
}

// setDoc puts d in the table at ord. The caller holds ix.mu.
func (ix *Index) setDoc(ord uint32, d *Doc) {
	if n := len(ix.docs); int(ord) >= n {
		ix.docs = slices.Grow(ix.docs, int(ord)+1-n)[:int(ord)+1]
		clear(ix.docs[n:])
	}
	ix.docs[ord] = d
	ix.ids[d.ID] = ord
	ix.live++
	for f := range numFields {
		ix.sumLen[f] += uint64(d.Len[f])
	}
}

// dropDoc removes the doc of id from the table. The caller holds ix.mu.
func (ix *Index) dropDoc(id string) {
	ord, ok := ix.ids[id]
	if !ok {
		return
	}
	d := ix.docs[ord]
	ix.docs[ord] = nil
	delete(ix.ids, id)
	ix.live--
	for f := range numFields {
		ix.sumLen[f] -= uint64(d.Len[f])
	}
}

// docAt returns the live doc of ord; nil for a dead ordinal, or one whose
// document is not in the table yet (apply commits postings before it adds
// their documents). The caller holds ix.mu.
func (ix *Index) docAt(ord uint32) *Doc {
	if uint64(ord) < uint64(len(ix.docs)) {
		return ix.docs[ord]
	}
	return nil
}
