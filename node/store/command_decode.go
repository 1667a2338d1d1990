package store

import (
	"encoding/json"
	"strconv"

	"liandong/schema"
)

// decodeWriteFast decodes a write command's JSON (EncodeCommand's) without
// encoding/json's reflection: the state machine is one goroutine and decodes
// every local write. It reports false for anything but the shape
// EncodeCommand writes — unescaped strings, each member once, values of the
// expected kinds — and DecodeCommand then uses encoding/json, so on valid
// JSON the two never differ (FuzzDecodeCommand). The record goes to schema.UnmarshalRecord,
// which gives encoding/json's result either way; unknown members (a newer
// proposer's) are skipped.
func decodeWriteFast(b []byte, w *WriteCommand) bool {
	var q WriteCommand
	if !schema.DecodeMembers(b, writeFields, func(field int, v []byte) bool {
		switch field {
		case 0:
			var op string
			ok := schema.MemberString(v, &op)
			q.Op = Op(op)
			return ok
		case 1:
			return schema.MemberString(v, &q.ID)
		case 2:
			return schema.MemberUint(v, &q.IfMatch)
		case 3:
			if string(v) == "null" {
				q.Record = nil
				return true
			}
			q.Record = new(schema.Record)
			// DecodeMembers never passes an empty value.
			return v[0] == '{' && schema.UnmarshalRecord(v, q.Record) == nil
		case 4:
			return schema.MemberTime(v, &q.At)
		case 5:
			return schema.MemberString(v, &q.Epoch)
		case 6:
			return schema.MemberString(v, &q.KeyID)
		case 7:
			return schema.MemberBool(v, &q.Canonical)
		case 8:
			q.SharedBody = append(json.RawMessage(nil), v...)
			return true
		case 9:
			return schema.MemberBool(v, &q.IfAbsent)
		default:
			return schema.MemberBool(v, &q.KeepCatalogue)
		}
	}) {
		return false
	}
	*w = q
	return true
}

var writeFields = []string{"op", "id", "if_match", "record", "at", "epoch", "kid", "canonical", "shared_body", "if_absent", "keep_catalogue"}

// appendWriteCommand appends w's JSON as EncodeCommand's encoding/json
// encoder writes it, byte for byte, when schema.AppendRecordJSON can write its
// record and its strings need no escaping; otherwise it reports false
// (FuzzWriteCommandEncoding).
func appendWriteCommand(dst []byte, w *WriteCommand) ([]byte, bool) {
	start := len(dst)
	ok := true
	str := func(s string) {
		var took bool
		dst, took = schema.AppendPlainString(dst, s)
		ok = ok && took
	}
	dst = append(dst, `{"op":`...)
	str(string(w.Op))
	dst = append(dst, `,"id":`...)
	str(w.ID)
	if w.IfMatch != 0 {
		dst = append(dst, `,"if_match":`...)
		dst = strconv.AppendUint(dst, w.IfMatch, 10)
	}
	if w.IfAbsent {
		dst = append(dst, `,"if_absent":true`...)
	}
	if w.Record != nil {
		dst = append(dst, `,"record":`...)
		appendRecord := schema.AppendRecordJSON
		if w.prepared {
			// PrepareWrite made the bodies canonical; the state machine
			// checks them again before it signs them.
			appendRecord = schema.AppendRecordJSONCanonicalBody
		}
		var took bool
		if dst, took = appendRecord(dst, w.Record); !took {
			ok = false
		}
	}
	dst = append(dst, `,"at":`...)
	var took bool
	if dst, took = schema.AppendTime(dst, w.At); !took {
		ok = false
	}
	dst = append(dst, `,"epoch":`...)
	str(w.Epoch)
	if w.KeyID != "" {
		dst = append(dst, `,"kid":`...)
		str(w.KeyID)
	}
	if w.Canonical {
		dst = append(dst, `,"canonical":true`...)
	}
	if len(w.SharedBody) > 0 {
		dst = append(dst, `,"shared_body":`...)
		if !w.prepared && !canonical(w.SharedBody) {
			ok = false
		}
		dst = append(dst, w.SharedBody...)
	}
	if w.KeepCatalogue {
		dst = append(dst, `,"keep_catalogue":true`...)
	}
	dst = append(dst, '}')
	if !ok {
		return dst[:start], false
	}
	return dst, true
}
