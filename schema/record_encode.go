package schema

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendRecordJSON appends r as encoding/json writes it (members in struct
// order, omitempty honoured, no trailing newline), byte for byte, with or
// without HTML escaping, when it can promise that: every string needs no
// escaping at all and the body is canonical (so encoding/json's compaction of
// it is the identity). Otherwise it reports false and the caller uses
// encoding/json. Records are written to the raft log, the state file and
// every API answer; encoding/json's reflection and its scan of the body cost
// ~7 µs each time, this ~4 (BenchmarkRecordJSON; FuzzAppendRecordJSON holds
// the two to the same bytes).
func AppendRecordJSON(dst []byte, r *Record) ([]byte, bool) {
	return appendRecordJSON(dst, r, false)
}

// AppendRecordJSONCanonicalBody is AppendRecordJSON for a record whose body
// the caller holds canonical (CheckCanonical passed on it, or AsCanonical or
// StripPersonal made it): the body is spliced without a second walk. A local
// write's body is checked once and then encoded twice more on its way (the
// raft command, the stored record), each walk about 3 µs of a 1 KB body. A
// body that is not canonical after all is written as it is, so the caller
// must know, not hope.
func AppendRecordJSONCanonicalBody(dst []byte, r *Record) ([]byte, bool) {
	return appendRecordJSON(dst, r, true)
}

func appendRecordJSON(dst []byte, r *Record, bodyCanonical bool) ([]byte, bool) {
	start := len(dst)
	ok := true
	str := func(s string) {
		var took bool
		dst, took = AppendPlainString(dst, s)
		ok = ok && took
	}
	when := func(t time.Time) {
		var took bool
		dst, took = AppendTime(dst, t)
		ok = ok && took
	}
	dst = append(dst, `{"id":`...)
	str(r.ID)
	dst = append(dst, `,"catalogue":`...)
	str(r.Catalogue)
	dst = append(dst, `,"origin":`...)
	str(r.Origin)
	dst = append(dst, `,"version":`...)
	dst = strconv.AppendUint(dst, r.Version, 10)
	dst = append(dst, `,"visibility":`...)
	str(r.Visibility)
	dst = append(dst, `,"schema":`...)
	dst = strconv.AppendInt(dst, int64(r.Schema), 10)
	dst = append(dst, `,"created_at":`...)
	when(r.CreatedAt)
	dst = append(dst, `,"updated_at":`...)
	when(r.UpdatedAt)
	if r.ExpiresAt != nil {
		dst = append(dst, `,"expires_at":`...)
		when(*r.ExpiresAt)
	}
	if r.Deleted {
		dst = append(dst, `,"deleted":true`...)
	}
	if r.Broker != "" {
		dst = append(dst, `,"broker":`...)
		str(r.Broker)
	}
	dst = append(dst, `,"body":`...)
	switch {
	case r.Body == nil:
		dst = append(dst, "null"...)
	case (bodyCanonical && len(r.Body) > 0 || r.BodyCanonical() || isCanonical(r.Body)) && !htmlSensitive(r.Body):
		dst = append(dst, r.Body...)
	default:
		ok = false
	}
	dst = append(dst, '}')
	if !ok {
		return dst[:start], false
	}
	return dst, true
}

// AppendTime appends t quoted, as encoding/json writes it (time.Time's
// MarshalJSON: RFC 3339 with nanoseconds, trailing zeros dropped), without
// allocating; it reports false for a time MarshalJSON refuses (a year outside
// 0–9999, an offset of a day or more).
func AppendTime(dst []byte, t time.Time) ([]byte, bool) {
	out, err := t.AppendText(append(dst, '"'))
	if err != nil {
		return dst, false
	}
	return append(out, '"'), true
}

// AppendPlainString appends s quoted, as encoding/json writes it, when it
// needs no escaping (plainString); otherwise it reports false.
func AppendPlainString(dst []byte, s string) ([]byte, bool) {
	if !plainString(s) {
		return dst, false
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}

// plainString reports whether encoding/json writes s as it is between quotes,
// whether it escapes HTML or not: valid UTF-8 with no control character,
// quote, backslash, <, >, & or U+2028/U+2029.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		case c == 0xe2 && i+2 < len(s) && s[i+1] == 0x80 && (s[i+2] == 0xa8 || s[i+2] == 0xa9):
			return false
		}
	}
	return utf8.ValidString(s)
}

// htmlSensitive reports whether a body holds bytes encoding/json would escape
// when it escapes HTML (<, >, & and U+2028/U+2029 in strings; canonical form
// has them nowhere else).
func htmlSensitive(body []byte) bool {
	// A search per byte value finds these a word at a time; the loop that
	// tested every byte was 1.6 % of a catch-up's CPU.
	if bytes.IndexByte(body, '<') >= 0 || bytes.IndexByte(body, '>') >= 0 || bytes.IndexByte(body, '&') >= 0 {
		return true
	}
	for rest := body; ; {
		i := bytes.IndexByte(rest, 0xe2)
		if i < 0 {
			return false
		}
		if i+2 < len(rest) && rest[i+1] == 0x80 && (rest[i+2] == 0xa8 || rest[i+2] == 0xa9) {
			return true
		}
		rest = rest[i+1:]
	}
}
