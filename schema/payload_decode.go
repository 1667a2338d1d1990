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
	var seen [7]bool
	ok := true
	err := walkMembers(raw, func(name []byte, start, end int) error {
		v := raw[start:end]
		i := -1
		switch string(name) {
		case "origin":
			i, ok = 0, MemberString(v, &q.Origin)
		case "epoch":
			i, ok = 1, MemberString(v, &q.Epoch)
		case "seq":
			i, ok = 2, MemberUint(v, &q.Seq)
		case "prev_hash":
			i, ok = 3, fastHash(v, &q.PrevHash)
		case "kid":
			i, ok = 4, MemberString(v, &q.KeyID)
		case "signed_at":
			i, ok = 5, MemberTime(v, &q.SignedAt)
		case "record":
			q.Record = new(Record)
			i, ok = 6, decodeRecordFast(v, q.Record)
		default:
			ok = !FoldsTo(name, "origin", "epoch", "seq", "prev_hash", "kid", "signed_at", "record")
		}
		if i >= 0 {
			ok = ok && !seen[i]
			seen[i] = true
		}
		if !ok {
			return errStop
		}
		return nil
	})
	if err != nil || !ok {
		return false
	}
	*p = q
	return true
}

func decodeRecordFast(raw []byte, r *Record) bool {
	var seen [12]bool
	ok := true
	err := walkMembers(raw, func(name []byte, start, end int) error {
		v := raw[start:end]
		i := -1
		switch string(name) {
		case "id":
			i, ok = 0, MemberString(v, &r.ID)
		case "catalogue":
			i, ok = 1, MemberString(v, &r.Catalogue)
		case "origin":
			i, ok = 2, MemberString(v, &r.Origin)
		case "version":
			i, ok = 3, MemberUint(v, &r.Version)
		case "visibility":
			i, ok = 4, MemberString(v, &r.Visibility)
		case "schema":
			var n int64
			i, ok = 5, false
			digits := v
			if len(digits) > 0 && digits[0] == '-' {
				digits = digits[1:]
			}
			if len(digits) > 0 && digits[0] >= '0' && digits[0] <= '9' && (digits[0] != '0' || len(digits) == 1) {
				var err error
				n, err = strconv.ParseInt(string(v), 10, 0)
				ok = err == nil
			}
			r.Schema = int(n)
		case "created_at":
			i, ok = 6, MemberTime(v, &r.CreatedAt)
		case "updated_at":
			i, ok = 7, MemberTime(v, &r.UpdatedAt)
		case "expires_at":
			i = 8
			if string(v) == "null" {
				r.ExpiresAt, ok = nil, true
			} else {
				r.ExpiresAt = new(time.Time)
				ok = MemberTime(v, r.ExpiresAt)
			}
		case "deleted":
			i = 9
			switch string(v) {
			case "true":
				r.Deleted, ok = true, true
			case "false":
				r.Deleted, ok = false, true
			default:
				ok = false
			}
		case "broker":
			i, ok = 10, MemberString(v, &r.Broker)
		case "body":
			i = 11
			r.Body = append(json.RawMessage(nil), v...)
		default:
			ok = !FoldsTo(name, "id", "catalogue", "origin", "version", "visibility", "schema",
				"created_at", "updated_at", "expires_at", "deleted", "broker", "body")
		}
		if i >= 0 {
			ok = ok && !seen[i]
			seen[i] = true
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

// MemberUint sets *n from an unsigned decimal integer.
func MemberUint(v []byte, n *uint64) bool {
	if len(v) == 0 || v[0] < '0' || v[0] > '9' || v[0] == '0' && len(v) > 1 {
		return false // not a JSON integer strconv would still take (01)
	}
	u, err := strconv.ParseUint(string(v), 10, 64)
	*n = u
	return err == nil
}

func fastHash(v []byte, h *Hash) bool {
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
