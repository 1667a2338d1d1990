// Package wire is the frame codec of the federation sync protocol /liandong/sync/3
// (and /liandong/sync/2, which it also speaks, to nodes not yet upgraded).
//
// A frame is a uvarint byte length followed by that many bytes of body; the reader
// refuses a length above its limit before reading the body, so an oversized frame
// costs the receiver a few bytes, never an allocation. A body is one message: a type
// byte, then the message's fields in a fixed order, in a compact binary form —
// uvarints for integers and lengths, length-prefixed strings, raw 32-byte hashes,
// and each log entry as its canonical payload bytes plus its 64-byte signature.
// Entries travel exactly as signed: the codec never re-encodes a payload.
//
// Decoding is strict: unknown types, truncated or trailing bytes, varints not in
// their shortest form, strings and counts beyond their limits, and entries that schema.DecodeEntryPayload refuses are all
// ErrMalformed. The codec knows nothing of trust; the exchange verifies chains and
// signatures after decoding.
package wire

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sync"

	"liandong/schema"
)

// ProtocolID is the libp2p stream protocol of the sync exchange.
//
// Version 2 added the heads digests (Heads.Digest, Heads.Known). A node of
// version 1 and one of version 2 do not agree on a protocol and so never
// exchange frames: neither takes the other's frames as malformed and punishes it.
//
// Version 3 added the requester's frame limits to RangeReq (MaxBatch,
// MaxFrameBytes), so that a node configured with smaller batches or frames
// than its peers is answered within them. Its frames are version 2's but for
// those two fields, which a RangeReq carries only on a version 3 stream (a
// version 2 node refuses them as trailing bytes): a node speaks both, asks
// for version 3 first and answers either.
const ProtocolID = "/liandong/sync/3"

// ProtocolV2 is the previous version of the protocol, spoken to nodes that
// do not speak ProtocolID yet.
const ProtocolV2 = "/liandong/sync/2"

// Type is a message type, the first byte of a frame body.
type Type byte

// Message types.
const (
	TypePing     Type = 1 // liveness probe; answered by TypePong
	TypePong     Type = 2
	TypeHeadsReq Type = 3 // the sender's heads; answered by TypeHeads
	TypeHeads    Type = 4
	TypeRangeReq Type = 5  // entries of one origin from a seq; answered by TypeBatch frames
	TypeBatch    Type = 6  // a run of entries of one origin; Done marks the last of an answer
	TypePush     Type = 7  // fresh entries sent unasked; no answer
	TypeError    Type = 8  // the request could not be served
	TypeTrustReq Type = 9  // asks for the receiver's signed trust bundle; answered by TypeTrust
	TypeTrust    Type = 10 // a signed trust bundle, as distributed
)

func (t Type) String() string {
	switch t {
	case TypePing:
		return "ping"
	case TypePong:
		return "pong"
	case TypeHeadsReq:
		return "heads-req"
	case TypeHeads:
		return "heads"
	case TypeRangeReq:
		return "range-req"
	case TypeBatch:
		return "batch"
	case TypePush:
		return "push"
	case TypeError:
		return "error"
	case TypeTrustReq:
		return "trust-req"
	case TypeTrust:
		return "trust"
	}
	return fmt.Sprintf("type-%d", byte(t))
}

// Limits inside a body, beyond the frame limit the reader is given.
const (
	MaxStringBytes = 256     // origin, epoch and federation ids
	MaxErrorBytes  = 1024    // error text
	MaxTrustBytes  = 1 << 20 // a signed trust bundle (auth.MaxBundleBytes)
	MaxHeads       = 4096    // heads in one message
	hashSize       = len(schema.Hash{})
	// minEntryBytes is the least an encoded entry can occupy (a length byte, a
	// payload byte, a signature); counts are checked against it before allocating.
	minEntryBytes = 2 + schema.SignatureSize
	minHeadBytes  = 3 + hashSize
)

// An entry's epoch travels in heads as a string: schema must not admit an
// epoch this codec refuses (this fails to compile if it did).
const _ = uint(MaxStringBytes - schema.MaxEpochBytes)

// ValidHead reports whether a Heads message may carry h: Decode refuses one
// whose origin is not a centre id or whose epoch is longer than
// MaxStringBytes. Encoding does not check (it cannot fail), so senders leave
// out the heads ValidHead refuses: one such head would make their every Heads
// message malformed to peers.
func ValidHead(h schema.Head) bool {
	return schema.ValidCentreID(h.Origin) && len(h.Epoch) <= MaxStringBytes
}

// Errors. ErrFrameTooLarge and ErrMalformed mean the peer broke the protocol.
var (
	ErrFrameTooLarge = errors.New("frame too large")
	ErrMalformed     = errors.New("malformed frame")
)

// Message is one decoded frame body.
type Message interface {
	Type() Type
	appendTo(b []byte) []byte
}

// Ping asks for a Pong with the same nonce.
type Ping struct{ Nonce uint64 }

// Pong answers a Ping.
type Pong struct{ Nonce uint64 }

// Heads carries the sender's log heads. As TypeHeadsReq it asks the receiver for its
// own; as TypeHeads it is that answer. Every head must pass ValidHead.
//
// Digest is HeadsDigest of the sender's heads, always set. Heads may be left out
// (empty) while Digest is not zero: the sender believes the receiver already
// holds the heads of that digest. In a request, Known is the digest of the
// receiver's heads the sender holds (zero: none), and the receiver answers
// without heads when its digest is still that one. So a steady-state exchange
// costs a constant number of bytes whatever the number of origins, and a round
// with every peer costs a node bytes linear in the number of peers.
type Heads struct {
	Request       bool
	Federation    string
	BundleVersion uint64
	Digest        schema.Hash
	Known         schema.Hash
	Heads         []schema.Head
}

// Omitted reports whether the sender left its heads out as already known.
func (h *Heads) Omitted() bool { return len(h.Heads) == 0 && !h.Digest.IsZero() }

// HeadsDigest is the SHA-256 of heads as encoded in a Heads message, in the
// order given; zero for no heads. Senders list heads sorted by origin so the
// digest of a state does not depend on map order.
func HeadsDigest(heads []schema.Head) schema.Hash {
	if len(heads) == 0 {
		return schema.Hash{}
	}
	return schema.Hash(sha256.Sum256(appendHeads(nil, heads)))
}

// RangeReq asks for up to Limit entries of Origin from FromSeq on, in log order.
// Epoch, when set, is the epoch the requester holds: a server whose log of Origin
// is another epoch answers with an Error instead of entries.
//
// MaxBatch and MaxFrameBytes (version 3) are the most entries and bytes the
// requester takes in one frame of the answer, 0 when not said (version 2):
// the server frames its answer within them as well as its own. They travel
// only when one is set, so a RangeReq without them encodes as version 2's.
type RangeReq struct {
	Origin  string
	Epoch   string
	FromSeq uint64
	Limit   uint64

	MaxBatch      uint64
	MaxFrameBytes uint64
}

// Batch is a run of consecutive entries of Origin, part of the answer to a
// RangeReq. Done marks the last frame of the answer; it may carry no entries,
// and it is the only one that may (receivers treat an empty frame before it as
// a breach of the protocol).
type Batch struct {
	Origin  string
	Done    bool
	Entries []*schema.Entry
}

// Push offers fresh entries of Origin unasked. The receiver applies what continues
// its log and pulls the rest.
type Push struct {
	Origin  string
	Entries []*schema.Entry
}

// TrustReq asks for the receiver's current signed trust bundle. Version is the
// version the sender holds, so a server can answer cheaply when it has nothing
// newer (it still answers with its bundle; the sender decides).
type TrustReq struct{ Version uint64 }

// Trust carries a signed trust bundle exactly as distributed (JSON of
// auth.SignedBundle). The codec does not parse it; the receiver verifies it.
type Trust struct{ Bundle []byte }

// Error codes.
const (
	CodeInternal      = 1 // the server failed; try elsewhere
	CodeBadRequest    = 2
	CodeEpochMismatch = 3 // the server holds another epoch of the origin
	CodeUnavailable   = 4 // e.g. shutting down
)

// Error is a server's refusal to answer a request.
type Error struct {
	Code    uint64
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("peer error %d: %s", e.Code, e.Message) }

func (*Ping) Type() Type     { return TypePing }
func (*Pong) Type() Type     { return TypePong }
func (*Batch) Type() Type    { return TypeBatch }
func (*Push) Type() Type     { return TypePush }
func (*Error) Type() Type    { return TypeError }
func (*RangeReq) Type() Type { return TypeRangeReq }
func (*TrustReq) Type() Type { return TypeTrustReq }
func (*Trust) Type() Type    { return TypeTrust }

// Type is TypeHeadsReq or TypeHeads, after Request.
func (h *Heads) Type() Type {
	if h.Request {
		return TypeHeadsReq
	}
	return TypeHeads
}

// Append appends the body of m (type byte and fields, no length prefix) to b.
func Append(b []byte, m Message) []byte {
	return m.appendTo(append(b, byte(m.Type())))
}

// Encode returns the body of m.
func Encode(m Message) []byte { return Append(nil, m) }

func (m *Ping) appendTo(b []byte) []byte { return binary.AppendUvarint(b, m.Nonce) }
func (m *Pong) appendTo(b []byte) []byte { return binary.AppendUvarint(b, m.Nonce) }

func (m *Heads) appendTo(b []byte) []byte {
	b = appendString(b, m.Federation)
	b = binary.AppendUvarint(b, m.BundleVersion)
	b = append(b, m.Digest[:]...)
	b = append(b, m.Known[:]...)
	return appendHeads(b, m.Heads)
}

func appendHeads(b []byte, heads []schema.Head) []byte {
	b = binary.AppendUvarint(b, uint64(len(heads)))
	for _, h := range heads {
		b = appendString(b, h.Origin)
		b = appendString(b, h.Epoch)
		b = binary.AppendUvarint(b, h.Seq)
		b = append(b, h.Hash[:]...)
	}
	return b
}

func (m *RangeReq) appendTo(b []byte) []byte {
	b = appendString(b, m.Origin)
	b = appendString(b, m.Epoch)
	b = binary.AppendUvarint(b, m.FromSeq)
	b = binary.AppendUvarint(b, m.Limit)
	if m.MaxBatch == 0 && m.MaxFrameBytes == 0 {
		return b
	}
	b = binary.AppendUvarint(b, m.MaxBatch)
	return binary.AppendUvarint(b, m.MaxFrameBytes)
}

func (m *Batch) appendTo(b []byte) []byte {
	b = appendString(b, m.Origin)
	if m.Done {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return appendEntries(b, m.Entries)
}

func (m *Push) appendTo(b []byte) []byte {
	b = appendString(b, m.Origin)
	return appendEntries(b, m.Entries)
}

func (m *Error) appendTo(b []byte) []byte {
	b = binary.AppendUvarint(b, m.Code)
	return appendString(b, m.Message)
}

func (m *TrustReq) appendTo(b []byte) []byte { return binary.AppendUvarint(b, m.Version) }

func (m *Trust) appendTo(b []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(m.Bundle)))
	return append(b, m.Bundle...)
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendEntries(b []byte, es []*schema.Entry) []byte {
	// Grown once: a range answer is up to MaxFrameBytes of entries, and
	// append's doubling copied it over and over (5 % of a catch-up's CPU).
	n := binary.MaxVarintLen64
	for _, e := range es {
		n += EntrySize(e)
	}
	b = slices.Grow(b, n)
	b = binary.AppendUvarint(b, uint64(len(es)))
	for _, e := range es {
		b = binary.AppendUvarint(b, uint64(len(e.Raw)))
		b = append(b, e.Raw...)
		var sig [schema.SignatureSize]byte
		copy(sig[:], e.Sig)
		b = append(b, sig[:]...)
	}
	return b
}

// EntrySize is the number of body bytes e occupies in a Batch or Push.
func EntrySize(e *schema.Entry) int {
	return uvarintLen(uint64(len(e.Raw))) + len(e.Raw) + schema.SignatureSize
}

// Overhead bounds the body bytes of a Batch or Push apart from its entries.
const Overhead = 1 + binary.MaxVarintLen64 + MaxStringBytes + 1 + binary.MaxVarintLen64

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// Decode parses one frame body. Every error wraps ErrMalformed.
func Decode(body []byte) (Message, error) {
	d := decoder{b: body}
	t := Type(d.byte())
	var m Message
	switch t {
	case TypePing:
		m = &Ping{Nonce: d.uvarint()}
	case TypePong:
		m = &Pong{Nonce: d.uvarint()}
	case TypeHeadsReq, TypeHeads:
		h := &Heads{Request: t == TypeHeadsReq}
		h.Federation = d.string(MaxStringBytes)
		h.BundleVersion = d.uvarint()
		copy(h.Digest[:], d.bytes(hashSize))
		copy(h.Known[:], d.bytes(hashSize))
		n := d.count(MaxHeads, minHeadBytes)
		if n > 0 {
			h.Heads = make([]schema.Head, 0, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			var hd schema.Head
			hd.Origin = d.string(MaxStringBytes)
			hd.Epoch = d.string(MaxStringBytes)
			hd.Seq = d.uvarint()
			copy(hd.Hash[:], d.bytes(hashSize))
			if d.err == nil && !schema.ValidCentreID(hd.Origin) {
				d.fail(fmt.Sprintf("head %d: origin %q is not a centre id", i, hd.Origin))
			}
			h.Heads = append(h.Heads, hd)
		}
		m = h
	case TypeRangeReq:
		r := &RangeReq{Origin: d.string(MaxStringBytes), Epoch: d.string(MaxStringBytes), FromSeq: d.uvarint(), Limit: d.uvarint()}
		if d.err == nil && len(d.b) > 0 {
			r.MaxBatch, r.MaxFrameBytes = d.uvarint(), d.uvarint()
			if d.err == nil && r.MaxBatch == 0 && r.MaxFrameBytes == 0 {
				d.fail("range limits of zero sent") // one encoding per message
			}
		}
		m = r
	case TypeBatch:
		b := &Batch{Origin: d.string(MaxStringBytes)}
		switch d.byte() {
		case 0:
		case 1:
			b.Done = true
		default:
			d.fail("bad done flag")
		}
		b.Entries = d.entries(b.Origin)
		m = b
	case TypePush:
		p := &Push{Origin: d.string(MaxStringBytes)}
		p.Entries = d.entries(p.Origin)
		m = p
	case TypeError:
		m = &Error{Code: d.uvarint(), Message: d.string(MaxErrorBytes)}
	case TypeTrustReq:
		m = &TrustReq{Version: d.uvarint()}
	case TypeTrust:
		t := &Trust{Bundle: []byte(d.string(MaxTrustBytes))}
		if d.err == nil && len(t.Bundle) == 0 {
			d.fail("empty trust bundle")
		}
		m = t
	default:
		if d.err == nil {
			d.fail(fmt.Sprintf("unknown message type %d", byte(t)))
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.fail(fmt.Sprintf("%d bytes after the %s message", len(d.b), t))
	}
	if d.err != nil {
		return nil, d.err
	}
	return m, nil
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrMalformed, msg)
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		// binary.Uvarint takes trailing zero groups (0x85 0x00 for 5); the
		// encoder never writes them, and one encoding per message keeps the
		// digests and lengths peers compare unambiguous.
		d.fail("non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || len(d.b) < n {
		d.fail("truncated")
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) string(max int) string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(max) {
		d.fail(fmt.Sprintf("string of %d bytes exceeds %d", n, max))
		return ""
	}
	return string(d.bytes(int(n)))
}

// count reads a count of items and checks it against max and against the bytes
// left, so a forged count cannot make the decoder allocate more than the frame.
func (d *decoder) count(max, minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(max) || n > uint64(len(d.b)/minSize) {
		d.fail(fmt.Sprintf("count %d exceeds what the frame can hold", n))
		return 0
	}
	return int(n)
}

func (d *decoder) entries(origin string) []*schema.Entry {
	n := d.count(len(d.b), minEntryBytes)
	if d.err != nil || n == 0 {
		return nil
	}
	type rawEntry struct{ raw, sig []byte }
	raws := make([]rawEntry, 0, n)
	for i := 0; i < n; i++ {
		size := d.uvarint()
		if d.err != nil {
			return nil
		}
		if size > uint64(schema.MaxEntryBytes) {
			d.fail(fmt.Sprintf("entry %d: %d bytes exceeds %d", i, size, schema.MaxEntryBytes))
			return nil
		}
		raw := d.bytes(int(size))
		sig := d.bytes(schema.SignatureSize)
		if d.err != nil {
			return nil
		}
		raws = append(raws, rawEntry{raw, sig})
	}
	// Parsing payloads (a canonical-form check and a JSON decode each) is most of
	// a receiver's work on catch-up: spread a large batch over the CPUs.
	out := make([]*schema.Entry, n)
	errs := make([]error, n)
	decodeOne := func(i int) {
		e, err := schema.DecodeEntryPayload(raws[i].raw)
		if err != nil {
			errs[i] = fmt.Errorf("entry %d: %v", i, err)
			return
		}
		if e.Origin != origin {
			errs[i] = fmt.Errorf("entry %d: origin %q in a message of origin %q", i, e.Origin, origin)
			return
		}
		e.Sig = append([]byte(nil), raws[i].sig...)
		out[i] = e
	}
	workers := min(runtime.GOMAXPROCS(0), maxDecodeWorkers, n/minPerWorker)
	if workers <= 1 {
		for i := range n {
			decodeOne(i)
		}
	} else {
		var wg sync.WaitGroup
		chunk := (n + workers - 1) / workers
		for lo := 0; lo < n; lo += chunk {
			hi := min(lo+chunk, n)
			wg.Go(func() {
				for i := lo; i < hi; i++ {
					decodeOne(i)
				}
			})
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			d.fail(err.Error())
			return nil
		}
	}
	return out
}

// Parallel decoding of entries: at most maxDecodeWorkers goroutines, each with at
// least minPerWorker entries. They end before Decode returns.
const (
	maxDecodeWorkers = 8
	minPerWorker     = 32
)

// WriteFrame writes body as one frame: its uvarint length, then the bytes.
func WriteFrame(w io.Writer, body []byte) error {
	var hdr [binary.MaxVarintLen64]byte
	n := binary.PutUvarint(hdr[:], uint64(len(body)))
	if _, err := w.Write(hdr[:n]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// AppendFrame appends m as a complete frame (length prefix and body) to b.
func AppendFrame(b []byte, m Message) []byte {
	body := Encode(m)
	b = binary.AppendUvarint(b, uint64(len(body)))
	return append(b, body...)
}

// ReadFrame reads one frame body of at most max bytes. It returns io.EOF only when
// the stream ends cleanly before a frame; a frame cut short is io.ErrUnexpectedEOF.
// The returned slice is freshly allocated.
func ReadFrame(r *bufio.Reader, max int) ([]byte, error) {
	n, err := readUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return body, nil
}

// readUvarint reads a frame length. Unlike binary.ReadUvarint it tells an
// overlong or non-minimal varint (ErrMalformed: the peer is not speaking the
// protocol) from a failing stream (the stream's error, io.EOF before the first
// byte).
func readUvarint(r io.ByteReader) (uint64, error) {
	var v uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		c, err := r.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return 0, err
		}
		if i == binary.MaxVarintLen64-1 && c > 1 {
			break
		}
		if i > 0 && c == 0 {
			// A trailing zero group: a length WriteFrame never writes.
			return 0, fmt.Errorf("%w: non-minimal frame length", ErrMalformed)
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%w: frame length overflows 64 bits", ErrMalformed)
}
