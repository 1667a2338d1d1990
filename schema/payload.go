package schema

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"time"
	"unicode/utf8"
)

// The record body is most of an entry (a 1 KB record is ~1.2 KB of payload),
// and encoding/json scans every byte of it on each pass. On the hot paths —
// signing at the origin and decoding stored or received payloads — the body
// is already known to be canonical JSON, so it is copied as it is and only
// the small envelope around it goes through encoding/json.

// NewEntryCanonicalBody is NewEntry for a record whose body is already
// canonical (Canonical's output): the body is spliced into the payload instead
// of being parsed again. The result is byte for byte what NewEntry gives; a
// body that is not canonical gives an entry peers refuse, so callers pass only
// bodies they canonicalised themselves.
func NewEntryCanonicalBody(p EntryPayload) (*Entry, error) {
	if p.Record == nil || len(p.Record.Body) == 0 {
		return NewEntry(p)
	}
	if !ValidCentreID(p.Origin) || p.Seq == 0 || p.KeyID == "" || p.Record.Origin != p.Origin || checkEpoch(p.Epoch) != nil {
		return NewEntry(p) // for its error
	}
	p.SignedAt = p.SignedAt.UTC()
	raw, ok := appendEntryEnvelope(make([]byte, 0, len(p.Record.Body)+512), &p)
	if !ok {
		return NewEntry(p)
	}
	return &Entry{EntryPayload: p, Raw: raw}, nil
}

// UnmarshalPayload decodes canonical payload bytes (as stored, or once
// checked with CheckCanonical) into p: by a walk of its members when it has
// the shape NewEntry gives (decodePayloadFast), else by encoding/json. The
// result is encoding/json's either way.
func UnmarshalPayload(raw []byte, p *EntryPayload) error {
	if decodePayloadFast(raw, p) {
		return nil
	}
	return json.Unmarshal(raw, p)
}

var errStop = errors.New("stop")

// skipValue returns the end of the JSON value starting at raw[i], which has no
// whitespace outside strings (canonical form). It checks nesting and strings
// only; the caller decodes the value elsewhere or knows it valid.
func skipValue(raw []byte, i int) (int, bool) {
	depth := 0
	for i < len(raw) {
		switch c := raw[i]; c {
		case '"':
			end, ok := stringEnd(raw, i+1)
			if !ok {
				return 0, false
			}
			i = end
		case '{', '[':
			depth++
			i++
		case '}', ']':
			if depth == 0 {
				return i, true
			}
			depth--
			i++
		case ',', ':':
			if depth == 0 {
				return i, true
			}
			i++
		default:
			i++
		}
		if depth == 0 && i < len(raw) && (raw[i] == ',' || raw[i] == '}' || raw[i] == ']') {
			return i, true
		}
	}
	return i, depth == 0 && i == len(raw)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// stringEnd returns the index just past the closing quote of the JSON string
// whose contents start at raw[i]. Bodies are mostly string contents: the
// quotes are found with IndexByte, and one is the end unless an odd number of
// backslashes escapes it.
func stringEnd(raw []byte, i int) (int, bool) {
	for {
		j := bytes.IndexByte(raw[i:], '"')
		if j < 0 {
			return 0, false
		}
		k := i + j
		n := 0
		for k-1-n >= i && raw[k-1-n] == '\\' {
			n++
		}
		i = k + 1
		if n%2 == 0 {
			return i, true
		}
	}
}

// ErrNotCompact is EachMember's answer for an object it does not walk:
// whitespace between tokens or an escaped member name. Callers decode such an
// object with encoding/json instead.
var ErrNotCompact = errors.New("not a compact JSON object")

// EachMember calls fn with the name (unquoted, without escapes) and the raw
// value of each top-level member of a compact JSON object, such as a
// canonical body, in order, so a reader of a few members need not have
// encoding/json scan all of them. The values are not checked: the object is
// one the caller knows valid. fn's error stops the walk and is returned.
func EachMember(obj []byte, fn func(name, value []byte) error) error {
	return walkMembers(obj, func(name []byte, start, end int) error {
		return fn(name, obj[start:end])
	})
}

// EachElement calls fn with each element of a compact JSON array, in order,
// as EachMember does with an object's members: the array is one the caller
// knows valid (canonical, say), and fn's error stops the walk.
func EachElement(arr []byte, fn func(value []byte) error) error {
	if len(arr) < 2 || arr[0] != '[' {
		return ErrNotCompact
	}
	if arr[1] == ']' {
		if len(arr) != 2 {
			return ErrNotCompact
		}
		return nil
	}
	for i := 1; i < len(arr); {
		end, ok := skipValue(arr, i)
		if !ok || end <= i || end >= len(arr) || isSpace(arr[i]) || isSpace(arr[end-1]) {
			return ErrNotCompact
		}
		if err := fn(arr[i:end]); err != nil {
			return err
		}
		next, done, err := afterValue(arr, end, ']')
		if done || err != nil {
			return err
		}
		i = next
	}
	return ErrNotCompact
}

// afterValue reads what follows a value ending at buf[end] in a compact
// object or array closed by close: a comma, and next is where the next
// member or element starts; or close, which must end buf (done).
func afterValue(buf []byte, end int, close byte) (next int, done bool, err error) {
	switch buf[end] {
	case ',':
		return end + 1, false, nil
	case close:
		if end != len(buf)-1 {
			return 0, false, ErrNotCompact
		}
		return 0, true, nil
	}
	return 0, false, ErrNotCompact
}

// walkMembers is EachMember with the value's bounds in obj.
func walkMembers(obj []byte, fn func(name []byte, start, end int) error) error {
	if len(obj) < 2 || obj[0] != '{' {
		return ErrNotCompact
	}
	if obj[1] == '}' {
		if len(obj) != 2 {
			return ErrNotCompact
		}
		return nil
	}
	for i := 1; i < len(obj); {
		if obj[i] != '"' {
			return ErrNotCompact
		}
		end := bytes.IndexByte(obj[i+1:], '"')
		if end < 0 {
			return ErrNotCompact
		}
		name := obj[i+1 : i+1+end]
		if bytes.IndexByte(name, '\\') >= 0 {
			return ErrNotCompact
		}
		i += end + 2
		if i >= len(obj) || obj[i] != ':' {
			return ErrNotCompact
		}
		i++
		vend, ok := skipValue(obj, i)
		if !ok || vend <= i || vend >= len(obj) || isSpace(obj[i]) || isSpace(obj[vend-1]) {
			// Space around a value would be kept in the span passed on.
			return ErrNotCompact
		}
		if err := fn(name, i, vend); err != nil {
			return err
		}
		next, done, err := afterValue(obj, vend, '}')
		if done || err != nil {
			return err
		}
		i = next
	}
	return ErrNotCompact
}

// appendEntryEnvelope appends the canonical encoding of p with the record's
// body, which must already be canonical, spliced in: what NewEntry gives,
// without encoding/json's reflection and the canonical pass over its output.
// It reports false where it cannot promise NewEntry's bytes (a string that is
// not valid UTF-8, an integer at or past 2^53, a time json refuses), and the
// caller takes NewEntry's way. The members are written in canonical order;
// TestEntryEnvelopeKnowsEveryField fails when a field is added to
// EntryPayload or Record without being added here.
func appendEntryEnvelope(dst []byte, p *EntryPayload) ([]byte, bool) {
	r := p.Record
	ok := true
	str := func(s string) {
		if !utf8.ValidString(s) {
			ok = false
		}
		dst = appendCanonString(dst, s)
	}
	unsigned := func(n uint64) {
		if n >= maxSafeInteger {
			ok = false
		}
		dst = strconv.AppendUint(dst, n, 10)
	}
	when := func(t time.Time) {
		var took bool
		dst, took = AppendTime(dst, t)
		ok = ok && took
	}
	dst = append(dst, `{"epoch":`...)
	str(p.Epoch)
	dst = append(dst, `,"kid":`...)
	str(p.KeyID)
	dst = append(dst, `,"origin":`...)
	str(p.Origin)
	dst = append(dst, `,"prev_hash":"`...)
	dst = hex.AppendEncode(dst, p.PrevHash[:])
	dst = append(dst, `","record":{"body":`...)
	dst = append(dst, r.Body...)
	if r.Broker != "" {
		dst = append(dst, `,"broker":`...)
		str(r.Broker)
	}
	dst = append(dst, `,"catalogue":`...)
	str(r.Catalogue)
	dst = append(dst, `,"created_at":`...)
	when(r.CreatedAt)
	if r.Deleted {
		dst = append(dst, `,"deleted":true`...)
	}
	if r.ExpiresAt != nil {
		dst = append(dst, `,"expires_at":`...)
		when(*r.ExpiresAt)
	}
	dst = append(dst, `,"id":`...)
	str(r.ID)
	dst = append(dst, `,"origin":`...)
	str(r.Origin)
	dst = append(dst, `,"schema":`...)
	if r.Schema <= -maxSafeInteger || r.Schema >= maxSafeInteger {
		ok = false
	}
	dst = strconv.AppendInt(dst, int64(r.Schema), 10)
	dst = append(dst, `,"updated_at":`...)
	when(r.UpdatedAt)
	dst = append(dst, `,"version":`...)
	unsigned(r.Version)
	dst = append(dst, `,"visibility":`...)
	str(r.Visibility)
	dst = append(dst, `},"seq":`...)
	unsigned(p.Seq)
	dst = append(dst, `,"signed_at":`...)
	when(p.SignedAt)
	dst = append(dst, '}')
	return dst, ok
}
