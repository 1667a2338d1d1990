package schema

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Hash is the SHA-256 of an entry: of its canonical payload bytes followed by its
// signature, so the chain of prev_hash links commits to every signature as well as
// every payload. That is what lets a receiver check one signature per contiguous
// batch: the last entry's signature covers its prev_hash, which covers the entry
// before it, signature included, and so on back to a head the receiver trusts.
type Hash [32]byte

// ZeroHash is the prev_hash of the first entry of an origin's log.
var ZeroHash Hash

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is the zero hash.
func (h Hash) IsZero() bool { return h == ZeroHash }

// MarshalText encodes h as lowercase hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("hash: want 64 hex digits, got %d characters", len(b))
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return fmt.Errorf("hash: %w", err)
	}
	return nil
}

// ParseHash decodes a hex hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	err := h.UnmarshalText([]byte(s))
	return h, err
}

// EntryPayload is what an origin signs: one change to one record, in its place in
// the origin's log.
type EntryPayload struct {
	Origin string `json:"origin"`
	// Epoch identifies one life of the origin's log. A centre that lost its disk and
	// could not recover its log starts a new epoch rather than forking the old one.
	Epoch    string    `json:"epoch"`
	Seq      uint64    `json:"seq"`
	PrevHash Hash      `json:"prev_hash"`
	KeyID    string    `json:"kid"`
	SignedAt time.Time `json:"signed_at"`
	Record   *Record   `json:"record"`
}

// Entry is one signed log entry. Raw, the canonical encoding of the payload, is
// authoritative: it is what was signed and what is hashed, stored and relayed, so
// envelope fields a newer origin added survive relay through an older node. The
// decoded fields are a view of Raw.
type Entry struct {
	EntryPayload
	Raw []byte
	Sig []byte
}

// Limits on entries received from outside.
const (
	MaxEntryBytes = MaxBodyBytes + 16<<10
	SignatureSize = 64
	// MaxEpochBytes bounds an entry's epoch. Epochs are ULIDs (26 bytes) and,
	// in benchmarks, "bench-" and a centre id (at most 38); the bound leaves
	// room for other schemes. It must stay within the sync codec's string
	// limit (wire.MaxStringBytes, 256): every node relays the epochs it
	// holds in its heads, and an epoch peers refuse to decode would cut off
	// each honest node that applied it, not just its author.
	MaxEpochBytes = 128
)

// Errors from entry decoding.
var (
	ErrEntryTooLarge = errors.New("entry too large")
	ErrBadEntry      = errors.New("malformed entry")
)

// NewEntry builds an unsigned entry from p, computing its canonical bytes.
func NewEntry(p EntryPayload) (*Entry, error) {
	if p.Record == nil || !ValidCentreID(p.Origin) || p.Seq == 0 || p.KeyID == "" {
		return nil, fmt.Errorf("%w: entry needs origin, seq, kid and record", ErrBadEntry)
	}
	if p.Record.Origin != p.Origin {
		return nil, fmt.Errorf("%w: record origin %q differs from entry origin %q", ErrBadEntry, p.Record.Origin, p.Origin)
	}
	if err := checkEpoch(p.Epoch); err != nil {
		return nil, err
	}
	p.SignedAt = p.SignedAt.UTC()
	js, err := json.Marshal(&p)
	if err != nil {
		return nil, fmt.Errorf("encode entry %s/%d: %w", p.Origin, p.Seq, err)
	}
	raw, err := Canonical(js)
	if err != nil {
		return nil, fmt.Errorf("canonicalise entry %s/%d: %w", p.Origin, p.Seq, err)
	}
	return &Entry{EntryPayload: p, Raw: raw}, nil
}

// Hash returns the entry's hash (see Hash).
func (e *Entry) Hash() Hash {
	h := sha256.New()
	h.Write(e.Raw)
	h.Write(e.Sig)
	var out Hash
	h.Sum(out[:0])
	return out
}

type entryWire struct {
	Payload json.RawMessage `json:"payload"`
	Sig     string          `json:"sig"`
}

// MarshalJSON encodes the entry as {"payload": <canonical payload>, "sig": <base64>}.
// The payload bytes are written as they are: json.Marshal would escape '<', '>', '&',
// U+2028 and U+2029 in them, and the result would no longer be canonical.
func (e *Entry) MarshalJSON() ([]byte, error) {
	raw := e.Raw
	if len(raw) == 0 {
		raw = []byte("null")
	}
	b := make([]byte, 0, len(raw)+base64.StdEncoding.EncodedLen(len(e.Sig))+24)
	b = append(b, `{"payload":`...)
	b = append(b, raw...)
	b = append(b, `,"sig":"`...)
	b = base64.StdEncoding.AppendEncode(b, e.Sig)
	return append(b, `"}`...), nil
}

// UnmarshalJSON decodes the wire form, refusing a payload that is not canonical.
func (e *Entry) UnmarshalJSON(b []byte) error {
	if len(b) > MaxEntryBytes+256 {
		return ErrEntryTooLarge
	}
	var w entryWire
	if err := json.Unmarshal(b, &w); err != nil {
		return fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	sig, err := base64.StdEncoding.DecodeString(w.Sig)
	if err != nil || len(sig) != SignatureSize {
		return fmt.Errorf("%w: signature is not %d bytes of base64", ErrBadEntry, SignatureSize)
	}
	payload := w.Payload
	if bytes.IndexByte(payload, '\\') >= 0 {
		// An Entry marshalled inside another value by encoding/json has its payload
		// HTML-escaped by the outer encoder ('<' as \u003c, …). Accept exactly that
		// rendering of canonical bytes, and nothing else that is not canonical.
		if c, err := Canonical(payload); err == nil && !bytes.Equal(c, payload) {
			var esc bytes.Buffer
			json.HTMLEscape(&esc, c)
			if bytes.Equal(esc.Bytes(), payload) {
				payload = c
			}
		}
	}
	d, err := DecodeEntryPayload(payload)
	if err != nil {
		return err
	}
	d.Sig = sig
	*e = *d
	return nil
}

// DecodeEntryPayload parses canonical payload bytes into an unsigned entry.
func DecodeEntryPayload(raw []byte) (*Entry, error) {
	if len(raw) > MaxEntryBytes {
		return nil, ErrEntryTooLarge
	}
	if err := CheckCanonical(raw); err != nil {
		return nil, fmt.Errorf("%w: payload: %w", ErrBadEntry, err)
	}
	var p EntryPayload
	if err := UnmarshalPayload(raw, &p); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBadEntry, err)
	}
	if p.Record == nil || !ValidCentreID(p.Origin) || p.Seq == 0 || p.KeyID == "" {
		return nil, fmt.Errorf("%w: payload lacks origin, seq, kid or record", ErrBadEntry)
	}
	if p.Record.Origin != p.Origin {
		return nil, fmt.Errorf("%w: record origin %q differs from entry origin %q", ErrBadEntry, p.Record.Origin, p.Origin)
	}
	if err := checkEpoch(p.Epoch); err != nil {
		return nil, err
	}
	return &Entry{EntryPayload: p, Raw: append([]byte(nil), raw...)}, nil
}

// checkEpoch refuses an epoch longer than MaxEpochBytes, on entries built
// here (a node never signs one) and on entries decoded from outside (the
// peer that sent one is at fault, not whoever relays it next).
func checkEpoch(epoch string) error {
	if len(epoch) > MaxEpochBytes {
		return fmt.Errorf("%w: epoch of %d bytes exceeds %d", ErrBadEntry, len(epoch), MaxEpochBytes)
	}
	return nil
}

// Head is the tip of one origin's log as a node holds it.
type Head struct {
	Origin string `json:"origin"`
	Epoch  string `json:"epoch,omitempty"`
	Seq    uint64 `json:"seq"`
	Hash   Hash   `json:"hash"`
}

// AppendHeadJSON appends json.Marshal(h)'s bytes to dst: the state file
// keeps heads in that form, and a replica of another build must write the
// same bytes (snapshots and digests compare them). Names and epochs of
// printable ASCII that JSON does not escape, as centre ids and ULIDs are,
// are copied; anything else takes encoding/json, whose reflection was most
// of the cost of storing a head, once a write.
func AppendHeadJSON(dst []byte, h Head) ([]byte, error) {
	if !plainJSONText(h.Origin) || !plainJSONText(h.Epoch) {
		js, err := json.Marshal(h)
		if err != nil {
			return dst, err
		}
		return append(dst, js...), nil
	}
	dst = append(dst, `{"origin":"`...)
	dst = append(dst, h.Origin...)
	if h.Epoch != "" {
		dst = append(dst, `","epoch":"`...)
		dst = append(dst, h.Epoch...)
	}
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendUint(dst, h.Seq, 10)
	dst = append(dst, `,"hash":"`...)
	dst = hex.AppendEncode(dst, h.Hash[:])
	return append(dst, `"}`...), nil
}

// plainJSONText reports whether encoding/json writes s between its quotes
// as it is: printable ASCII but for the quote, the backslash and the three
// characters it escapes for HTML.
func plainJSONText(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c > 0x7e, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}
