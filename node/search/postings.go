package search

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// Postings are kept in blocks (bucket post): the postings of one term whose
// documents' ordinals lie in a range, keyed by the term, a zero byte and the
// range's first ordinal (4 bytes, big-endian), so a term's blocks follow each
// other in ordinal order and a document's posting is in the term's last
// block whose key is not above it. A block's key stays when its first
// posting is removed; blocks hold disjoint, increasing ranges.
//
// A block is a header, the number of its postings and the distance of its
// last ordinal from the key's (uvarints), which appending needs, then each
// posting: the distance of its ordinal from the previous one's, the first
// from the key's (uvarint); a byte whose low six bits tell the fields holding
// the term and whose bit 6 says the term occurs once in each; without that
// bit, the frequency in each of those fields (uvarints, in field order). Most
// postings are two or three bytes.

// Block limits: indexing starts a new block for a term past them.
var (
	blockPostings = 128
	blockBytes    = 2048
)

const (
	ordBytes = 4
	// maskOnes marks a posting whose term occurs once in each of its fields.
	maskOnes   = 1 << 6
	fieldsMask = 1<<numFields - 1
)

// posting is one document's frequencies of a term.
type posting struct {
	ord uint32
	tf  [numFields]uint32
}

var errBlock = errors.New("search index: malformed postings block")

// blockKey returns term \x00 first.
func blockKey(term string, first uint32) []byte {
	k := make([]byte, 0, len(term)+1+ordBytes)
	k = append(k, term...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, first)
}

// splitBlockKey returns the term and first ordinal of a block key.
func splitBlockKey(k []byte) (term []byte, first uint32, ok bool) {
	if len(k) < 1+ordBytes || k[len(k)-ordBytes-1] != 0 {
		return nil, 0, false
	}
	return k[:len(k)-ordBytes-1], binary.BigEndian.Uint32(k[len(k)-ordBytes:]), true
}

// appendPosting appends p to a block body whose last ordinal is prev.
func appendPosting(b []byte, prev uint32, p *posting) []byte {
	b = binary.AppendUvarint(b, uint64(p.ord-prev))
	var mask byte
	ones := true
	for f, n := range p.tf {
		if n > 0 {
			mask |= 1 << f
			ones = ones && n == 1
		}
	}
	if ones {
		return append(b, mask|maskOnes)
	}
	b = append(b, mask)
	for _, n := range p.tf {
		if n > 0 {
			b = binary.AppendUvarint(b, uint64(n))
		}
	}
	return b
}

// encodeBlock encodes postings in increasing ordinal order, none below first.
func encodeBlock(dst []byte, first uint32, ps []posting) []byte {
	last := first
	if len(ps) > 0 {
		last = ps[len(ps)-1].ord
	}
	dst = appendBlockHeader(dst, first, len(ps), last)
	prev := first
	for i := range ps {
		dst = appendPosting(dst, prev, &ps[i])
		prev = ps[i].ord
	}
	return dst
}

func appendBlockHeader(dst []byte, first uint32, n int, last uint32) []byte {
	dst = binary.AppendUvarint(dst, uint64(n))
	return binary.AppendUvarint(dst, uint64(last-first))
}

// blockHeader is a block's header: its number of postings, last ordinal and
// the postings' bytes.
type blockHeader struct {
	n    int
	last uint32
	body []byte
}

// readBlockHeader reads a block's header, checking what it can without
// reading the postings.
func readBlockHeader(first uint32, v []byte) (blockHeader, bool) {
	n, k := binary.Uvarint(v)
	if k <= 0 {
		return blockHeader{}, false
	}
	d, k2 := binary.Uvarint(v[k:])
	// Each posting takes two bytes at least.
	if k2 <= 0 || d > uint64(^uint32(0)-first) || n > uint64(len(v)-k-k2)/2 {
		return blockHeader{}, false
	}
	return blockHeader{n: int(n), last: first + uint32(d), body: v[k+k2:]}, true
}

// blockReader decodes a block's postings in order. It checks what it reads,
// as the file may be torn: a malformed block ends early with err set.
type blockReader struct {
	b    []byte
	left uint64 // postings still to read
	prev uint32
	last uint32 // as the header says
	any  bool   // a posting was read: the next must be above prev
	err  error
}

func newBlockReader(first uint32, v []byte) blockReader {
	h, ok := readBlockHeader(first, v)
	if !ok {
		return blockReader{err: errBlock}
	}
	return blockReader{b: h.body, left: uint64(h.n), prev: first, last: h.last}
}

// next reads the next posting into p (its frequencies when tf is set, else
// only its ordinal and mask), and reports whether there was one.
func (r *blockReader) next(p *posting, tf bool) (mask byte, ok bool) {
	if r.left == 0 {
		if r.err == nil && (len(r.b) != 0 || r.prev != r.last) {
			r.fail()
		}
		return 0, false
	}
	d, k := binary.Uvarint(r.b)
	if k <= 0 || d > uint64(^uint32(0)-r.prev) || r.any && d == 0 || k >= len(r.b) {
		return r.fail()
	}
	mask = r.b[k]
	r.b = r.b[k+1:]
	if mask&fieldsMask == 0 || mask&^(fieldsMask|maskOnes) != 0 {
		return r.fail()
	}
	ord := r.prev + uint32(d)
	if mask&maskOnes != 0 {
		if tf {
			for f := range numFields {
				p.tf[f] = uint32(mask >> f & 1)
			}
		}
	} else {
		if tf {
			p.tf = [numFields]uint32{}
		}
		for m := mask & fieldsMask; m != 0; m &= m - 1 {
			n, k := binary.Uvarint(r.b)
			if k <= 0 || n == 0 || n > 1<<31 {
				return r.fail()
			}
			r.b = r.b[k:]
			if tf {
				p.tf[bits.TrailingZeros8(m)] = uint32(n)
			}
		}
	}
	p.ord = ord
	r.prev, r.any = ord, true
	r.left--
	return mask & fieldsMask, true
}

func (r *blockReader) fail() (byte, bool) {
	r.err, r.left, r.b = errBlock, 0, nil
	return 0, false
}

// decodeBlock returns a block's postings, appended to dst.
func decodeBlock(dst []posting, first uint32, v []byte) ([]posting, error) {
	r := newBlockReader(first, v)
	var p posting
	for {
		if _, ok := r.next(&p, true); !ok {
			break
		}
		dst = append(dst, p)
	}
	return dst, r.err
}
