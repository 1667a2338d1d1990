package schema

import (
	"bytes"
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

// recordEdgeCases are valid JSON the fast record decoder must refuse or decode
// as encoding/json does: space around values (kept in the spans a member walk
// gives), leading zeros strconv accepts, case variants, overflow.
var recordEdgeCases = []string{
	`{"ID":"x","body":{}}`,
	`{"id":"\u0078","schema":1.5,"body":null}`,
	`{"body": {}}`,
	`{"body":{} }`,
	`{"id":"a","body": [1, 2] ,"schema":1}`,
	`{"schema":01}`,
	`{"version":01}`,
	`{"schema":-01}`,
	`{"schema":-0}`,
	`{"ſchema":1}`,
	`{"schema":9223372036854775808}`,
	`{"expires_at":null,"deleted":false}`,
}

func TestRecordEdgeCases(t *testing.T) {
	for _, raw := range recordEdgeCases {
		var want, got Record
		werr := json.Unmarshal([]byte(raw), &want)
		gerr := UnmarshalRecord([]byte(raw), &got)
		if (werr == nil) != (gerr == nil) || werr == nil && !reflect.DeepEqual(got, want) {
			t.Errorf("UnmarshalRecord(%s) = %+v, %v; encoding/json %+v, %v", raw, got, gerr, want, werr)
		}
		var p, wantP EntryPayload
		payload := `{"record":` + raw + `,"seq":1}`
		perr := UnmarshalPayload([]byte(payload), &p)
		wperr := json.Unmarshal([]byte(payload), &wantP)
		if (perr == nil) != (wperr == nil) || wperr == nil && !reflect.DeepEqual(p, wantP) {
			t.Errorf("UnmarshalPayload(%s) = %+v, %v; encoding/json %+v, %v", payload, p, perr, wantP, wperr)
		}
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
	for _, raw := range recordEdgeCases {
		f.Add([]byte(raw))
	}
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

// TestEntryEnvelopeKnowsEveryField: appendEntryEnvelope writes each member of
// EntryPayload and Record by hand; a field added to either without being
// added there would be left out of signed entries.
func TestEntryEnvelopeKnowsEveryField(t *testing.T) {
	known := map[reflect.Type][]string{
		reflect.TypeFor[EntryPayload](): {"origin", "epoch", "seq", "prev_hash", "kid", "signed_at", "record"},
		reflect.TypeFor[Record](): {"id", "catalogue", "origin", "version", "visibility", "schema", "created_at",
			"updated_at", "expires_at", "deleted", "broker", "body"},
	}
	for typ, names := range known {
		var tags []string
		for f := range typ.Fields() {
			if f.IsExported() { // encoding/json skips the others (Record's checkedBody)
				tags = append(tags, strings.Split(f.Tag.Get("json"), ",")[0])
			}
		}
		if !reflect.DeepEqual(tags, names) {
			t.Errorf("%s has the JSON members %v; appendEntryEnvelope writes %v", typ, tags, names)
		}
	}
}

// FuzzEntryEnvelope: for any envelope values, NewEntryCanonicalBody gives
// NewEntry's bytes (or its error).
func FuzzEntryEnvelope(f *testing.F) {
	f.Add("01JNQ8ZK3M5T2V7W9X1Y4Z6A8C", "tianjin-record-1", "tianjin:01JNQ8", uint64(7), uint64(1), 1, int64(1772719928), int64(5), "", false, int64(0), "federation")
	f.Add("e\"\\\n\u2028<&>", "k\x00", "tianjin:\xff", uint64(1)<<53, uint64(1)<<53-1, -3, int64(-62135596800), int64(0), "hq", true, int64(1), "private")
	f.Add("", "", "", uint64(0), uint64(0), 1<<53, int64(253402300800), int64(999999999), "\u00e9", false, int64(253402300800), "")
	f.Fuzz(func(t *testing.T, epoch, kid, id string, seq, version uint64, schemaV int, atSec, atNano int64, broker string, deleted bool, expires int64, vis string) {
		tm := time.Unix(atSec, atNano).In(time.FixedZone("", int(atSec%50000)))
		r := &Record{ID: id, Catalogue: CatalogueSupply, Origin: "tianjin", Version: version, Visibility: vis, Schema: schemaV,
			CreatedAt: tm, UpdatedAt: tm.Add(time.Second), Deleted: deleted, Broker: broker, Body: json.RawMessage(`{"a":"<b>"}`)}
		if expires != 0 {
			e := time.Unix(expires, 0)
			r.ExpiresAt = &e
		}
		p := EntryPayload{Origin: "tianjin", Epoch: epoch, Seq: seq, KeyID: kid, SignedAt: tm, Record: r}
		want, werr := NewEntry(p)
		got, gerr := NewEntryCanonicalBody(p)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("NewEntry error %v, NewEntryCanonicalBody error %v", werr, gerr)
		}
		if werr == nil && (!bytes.Equal(got.Raw, want.Raw) || !reflect.DeepEqual(got.EntryPayload, want.EntryPayload)) {
			t.Fatalf("raw differs:\n got %s\nwant %s", got.Raw, want.Raw)
		}
	})
}
