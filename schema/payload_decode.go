package schema

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"
)

// decodePayloadFast decodes a canonical payload without encoding/json: every
// stored, received and replicated entry is decoded several times on its way
// (the holder reads it, the receiver checks it, its state machine and search
// index read it), and encoding/json's reflection was a sixth of a catch-up's
// CPU. It handles the shape canonical payloads have — compact, members named
// without escapes, each at most once, values of the expected kinds — and
// reports false for anything else, which UnmarshalPayload then gives to
// encoding/json, so on valid JSON the two never disagree
// (FuzzUnmarshalPayload). Values of members it does not know, and the body,
// are delimited, not checked: callers pass bytes they know valid (checked
// canonical on receipt, or stored after that check). A damaged state file is
// found by the store's check at open, not by this decoder.
func decodePayloadFast(raw []byte, p *EntryPayload) bool {
	var q EntryPayload
	if !DecodeMembers(raw, payloadFields, func(field int, v []byte) bool {
		switch field {
		case 0:
			return MemberString(v, &q.Origin)
		case 1:
			return MemberString(v, &q.Epoch)
		case 2:
			return MemberUint(v, &q.Seq)
		case 3:
			return memberHash(v, &q.PrevHash)
		case 4:
			return MemberString(v, &q.KeyID)
		case 5:
			return MemberTime(v, &q.SignedAt)
		default:
			q.Record = new(Record)
			return decodeRecordFast(v, q.Record)
		}
	}) {
		return false
	}
	*p = q
	return true
}

var (
	payloadFields = []string{"origin", "epoch", "seq", "prev_hash", "kid", "signed_at", "record"}
	recordFields  = []string{"id", "catalogue", "origin", "version", "visibility", "schema",
		"created_at", "updated_at", "expires_at", "deleted", "broker", "body"}
)

func decodeRecordFast(raw []byte, r *Record) bool {
	return DecodeMembers(raw, recordFields, func(field int, v []byte) bool {
		switch field {
		case 0:
			return MemberString(v, &r.ID)
		case 1:
			return MemberString(v, &r.Catalogue)
		case 2:
			return MemberString(v, &r.Origin)
		case 3:
			return MemberUint(v, &r.Version)
		case 4:
			return MemberString(v, &r.Visibility)
		case 5:
			return MemberInt(v, &r.Schema)
		case 6:
			return MemberTime(v, &r.CreatedAt)
		case 7:
			return MemberTime(v, &r.UpdatedAt)
		case 8:
			if string(v) == "null" {
				r.ExpiresAt = nil
				return true
			}
			r.ExpiresAt = new(time.Time)
			return MemberTime(v, r.ExpiresAt)
		case 9:
			return MemberBool(v, &r.Deleted)
		case 10:
			return MemberString(v, &r.Broker)
		default:
			r.Body = append(json.RawMessage(nil), v...)
			return true
		}
	})
}

// DecodeMembers walks a compact JSON object (EachMember's) and hands decode
// each member named in fields, by its index there. It reports false — the
// caller then leaves the object to encoding/json — when the walk or decode
// fails, a field comes twice, or a name it does not know would match a field
// the way encoding/json matches names (case-insensitively). Unknown members
// are skipped, as encoding/json skips them.
func DecodeMembers(raw []byte, fields []string, decode func(field int, v []byte) bool) bool {
	if len(fields) > 64 {
		return false // seen has a bit a field
	}
	var seen uint64
	ok := true
	err := walkMembers(raw, func(name []byte, start, end int) error {
		i := -1
		for k, f := range fields {
			if string(name) == f {
				i = k
				break
			}
		}
		switch {
		case i < 0:
			ok = !FoldsTo(name, fields...)
		case seen&(1<<i) != 0:
			ok = false
		default:
			seen |= 1 << i
			ok = decode(i, raw[start:end])
		}
		if !ok {
			return errStop
		}
		return nil
	})
	return err == nil && ok
}

// The Member* helpers decode one member value of a compact JSON object (as
// EachMember gives it) exactly as encoding/json would into the named type, and
// report false where they cannot promise that (an escape, null, another kind
// of value), so the caller can leave the whole object to encoding/json.

// FoldsTo reports whether name matches one of the fields the way
// encoding/json matches names it does not find exactly (case-insensitively):
// a decoder that skips unknown members must not skip those.
func FoldsTo(name []byte, fields ...string) bool {
	for _, f := range fields {
		if bytes.EqualFold(name, []byte(f)) {
			return true
		}
	}
	return false
}

// MemberString sets *s from a JSON string with no escapes and valid UTF-8.
func MemberString(v []byte, s *string) bool {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return false
	}
	in := v[1 : len(v)-1]
	for _, c := range in {
		if c == '\\' || c == '"' || c < 0x20 {
			return false
		}
	}
	if !utf8.Valid(in) {
		return false
	}
	*s = string(in)
	return true
}

// MemberBool sets *b from true or false.
func MemberBool(v []byte, b *bool) bool {
	switch string(v) {
	case "true":
		*b = true
	case "false":
		*b = false
	default:
		return false
	}
	return true
}

// MemberInt sets *n from a decimal integer that fits an int.
func MemberInt(v []byte, n *int) bool {
	digits := v
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || digits[0] < '0' || digits[0] > '9' || digits[0] == '0' && len(digits) > 1 {
		return false // not a JSON integer strconv would still take (01, +1)
	}
	i, err := strconv.ParseInt(string(v), 10, 0)
	*n = int(i)
	return err == nil
}

// MemberUint sets *n from an unsigned decimal integer.
func MemberUint(v []byte, n *uint64) bool {
	if len(v) == 0 || v[0] < '0' || v[0] > '9' || v[0] == '0' && len(v) > 1 {
		return false // not a JSON integer strconv would still take (01)
	}
	u, err := strconv.ParseUint(string(v), 10, 64)
	*n = u
	return err == nil
}

func memberHash(v []byte, h *Hash) bool {
	if len(v) != 66 || v[0] != '"' || v[65] != '"' {
		return false
	}
	return h.UnmarshalText(v[1:65]) == nil
}

// MemberTime decodes a quoted time as encoding/json does: by time.Time's own
// UnmarshalJSON, which it would call with the same bytes.
func MemberTime(v []byte, t *time.Time) bool {
	return len(v) > 2 && v[0] == '"' && t.UnmarshalJSON(v) == nil
}

// UnmarshalRecord decodes a record as the store writes it (compact, the body
// canonical), without encoding/json when its shape allows, else with it; the
// result is encoding/json's either way. List pages, the change feed and
// reads by id decode a stored record for every row.
func UnmarshalRecord(raw []byte, r *Record) error {
	var q Record
	if decodeRecordFast(raw, &q) {
		*r = q
		return nil
	}
	return json.Unmarshal(raw, r)
}

var headFields = []string{"origin", "epoch", "seq", "hash"}

// UnmarshalHead decodes a head as json.Unmarshal into a zero Head would, but
// for the compact form json.Marshal writes without encoding/json: a node
// reads its heads for every push it sends and every entry it applies, and
// their decoding was 2–3 % of a federation's CPU at 200 writes/s. Other
// input goes to encoding/json (FuzzUnmarshalHead holds the two together on
// valid JSON). Like the payload decoder, the fast way delimits the values of
// members it does not know without checking them: it reads heads the store
// wrote, not outside input.
func UnmarshalHead(raw []byte, h *Head) error {
	var q Head
	if decodeHeadFast(raw, &q) {
		*h = q
		return nil
	}
	*h = Head{}
	return json.Unmarshal(raw, h)
}

func decodeHeadFast(raw []byte, q *Head) bool {
	return DecodeMembers(raw, headFields, func(field int, v []byte) bool {
		switch field {
		case 0:
			return MemberString(v, &q.Origin)
		case 1:
			return MemberString(v, &q.Epoch)
		case 2:
			return MemberUint(v, &q.Seq)
		default:
			return memberHash(v, &q.Hash)
		}
	})
}
