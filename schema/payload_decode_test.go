package schema

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestDecodePayloadFast: the fast decoder takes the canonical payloads
// NewEntry makes (else it would be dead code that tests cannot tell from a
// working one), and on every payload below, taken or not, UnmarshalPayload
// agrees with encoding/json.
func TestDecodePayloadFast(t *testing.T) {
	for name, body := range payloadBodies {
		e, err := NewEntry(payloadFor(t, body))
		if err != nil {
			t.Fatal(err)
		}
		var p EntryPayload
		if !decodePayloadFast(e.Raw, &p) {
			t.Errorf("%s: the fast decoder refused a payload NewEntry made: %s", name, e.Raw)
		}
		samePayloadDecoding(t, e.Raw)
	}

	e, err := NewEntry(payloadFor(t, `{"title":"镍氢电池","n":[1,2.5,{"x":null}]}`))
	if err != nil {
		t.Fatal(err)
	}
	base := string(e.Raw)
	edit := func(old, new string) string {
		if !strings.Contains(base, old) {
			t.Fatalf("%q not in %s", old, base)
		}
		return strings.Replace(base, old, new, 1)
	}
	cases := []struct {
		name string
		raw  string
		fast bool // taken by the fast decoder
	}{
		{"as made", base, true},
		{"a case variant of a field", edit(`"seq":7`, `"SEQ":8`), false},
		{"a case variant in the record", edit(`"version":`, `"Version":`), false},
		{"an escaped string", edit(`"origin":"tianjin"`, `"origin":"tian\u006ain"`), false},
		{"a duplicate member", edit(`"seq":7`, `"seq":7,"seq":9`), false},
		{"a fractional seq", edit(`"seq":7`, `"seq":7.5`), false},
		{"a negative seq", edit(`"seq":7`, `"seq":-7`), false},
		{"a seq past uint64", edit(`"seq":7`, `"seq":18446744073709551616`), false},
		{"a short prev_hash", edit(`"prev_hash":"`, `"prev_hash":"ab`), false},
		{"a null kid", edit(`"kid":"tianjin-record-1"`, `"kid":null`), false},
		{"a bad time", edit(`"signed_at":"2026-03-05T14:12:08.000000005Z"`, `"signed_at":"2026-13-05T14:12:08Z"`), false},
		{"a null record", edit(base[strings.Index(base, `"record":`):strings.Index(base, `,"seq"`)], `"record":null`), false},
		{"an unknown member", edit(`"seq":7`, `"seq":7,"zz":[1,{"a":"}"}]`), true},
		{"deleted", edit(`"version":`, `"deleted":true,"version":`), true},
		{"deleted not a bool", edit(`"version":`, `"deleted":1,"version":`), false},
		{"expires_at null", edit(`"id":`, `"expires_at":null,"id":`), true},
		{"expires_at", edit(`"id":`, `"expires_at":"2027-01-02T03:04:05Z","id":`), true},
		{"a negative schema", edit(`"schema":1`, `"schema":-3`), true},
	}
	for _, tc := range cases {
		var p EntryPayload
		if got := decodePayloadFast([]byte(tc.raw), &p); got != tc.fast {
			t.Errorf("%s: fast decoder took it: %v, want %v (%s)", tc.name, got, tc.fast, tc.raw)
		}
		samePayloadDecoding(t, []byte(tc.raw))
	}
}

// FuzzUnmarshalRecord: whenever the fast decoder takes valid JSON, encoding/json
// decodes it without error to the same record; UnmarshalRecord agrees with
// encoding/json on everything.
func FuzzUnmarshalRecord(f *testing.F) {
	for _, body := range payloadBodies {
		r := newRecord(CatalogueSupply, body)
		js, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js)
		exp := time.Date(2027, 1, 2, 3, 4, 5, 6, time.UTC)
		r.ExpiresAt, r.Deleted, r.Broker = &exp, true, "hq"
		if js, err = json.Marshal(r); err != nil {
			f.Fatal(err)
		}
		f.Add(js)
	}
	f.Add([]byte(`{"ID":"x","body":{}}`))
	f.Add([]byte(`{"id":"\u0078","schema":1.5,"body":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var fast Record
		took := decodeRecordFast(raw, &fast)
		var want, got Record
		werr := json.Unmarshal(raw, &want)
		gerr := UnmarshalRecord(raw, &got)
		if took && json.Valid(raw) && (werr != nil || !reflect.DeepEqual(fast, want)) {
			t.Fatalf("fast decoder took %s as %+v; encoding/json: %+v, %v", raw, fast, want, werr)
		}
		if !json.Valid(raw) {
			return
		}
		if (werr == nil) != (gerr == nil) || werr == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("UnmarshalRecord(%s) = %+v, %v; encoding/json %+v, %v", raw, got, gerr, want, werr)
		}
	})
}
