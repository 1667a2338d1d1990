package schema

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// FuzzAppendRecordJSON: when AppendRecordJSON takes a record, its bytes are
// encoding/json's, with HTML escaping and without.
func FuzzAppendRecordJSON(f *testing.F) {
	f.Add("tianjin:01JNQ8ZK3M5T2V7W9X1Y4Z6A8B", "supply", uint64(3), "federation", 1, int64(1772719928), int64(5), false, "", `{"a":"b","n":[1,2.5]}`, true)
	f.Add("x<y", "a&b", uint64(0), "p\u2028", -7, int64(-62135596800), int64(0), true, "hq", `{"t":"<b>"}`, false)
	f.Add("\xff", "\n", uint64(1)<<63, "\"", 1<<40, int64(253402300800), int64(1), false, "é", `{ "a": 1 }`, true)
	f.Add("ok", "ok", uint64(1), "ok", 0, int64(0), int64(0), false, "", ``, false)
	f.Fuzz(func(t *testing.T, id, catalogue string, version uint64, vis string, schemaV int, sec, nsec int64, deleted bool, broker, body string, expires bool) {
		at := time.Unix(sec, nsec).In(time.FixedZone("", int(sec%40000)))
		r := &Record{ID: id, Catalogue: catalogue, Origin: "tianjin", Version: version, Visibility: vis, Schema: schemaV,
			CreatedAt: at, UpdatedAt: at.Add(time.Minute), Deleted: deleted, Broker: broker}
		if body != "" || expires {
			r.Body = json.RawMessage(body) // empty, not nil: encoding/json refuses it
		}
		if expires {
			r.ExpiresAt = &at
		}
		got, ok := AppendRecordJSON([]byte("prefix"), r)
		// The variant for a body known canonical writes encoding/json's bytes
		// without walking the body; it takes every record AppendRecordJSON
		// takes, and more (isCanonical is unsure of some canonical bodies).
		if r.Body != nil && CheckCanonical(r.Body) == nil {
			vgot, vok := AppendRecordJSONCanonicalBody([]byte("prefix"), r)
			switch {
			case ok && (!vok || !bytes.Equal(vgot, got)):
				t.Fatalf("AppendRecordJSONCanonicalBody %s, %v\n AppendRecordJSON %s", vgot, vok, got)
			case vok:
				if want, err := json.Marshal(r); err != nil || !bytes.Equal(vgot[len("prefix"):], want) {
					t.Fatalf("AppendRecordJSONCanonicalBody %s\n json.Marshal %s, %v", vgot, want, err)
				}
			case string(vgot) != "prefix":
				t.Fatalf("variant refused, but left %q", vgot)
			}
		}
		if !ok {
			if string(got) != "prefix" {
				t.Fatalf("refused, but left %q", got)
			}
			return
		}
		got = got[len("prefix"):]
		marshalled, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("took a record encoding/json refuses (%v): %s", err, got)
		}
		if !bytes.Equal(got, marshalled) {
			t.Fatalf("AppendRecordJSON %s\n json.Marshal %s", got, marshalled)
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(r); err != nil {
			t.Fatal(err)
		}
		if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
			t.Fatalf("AppendRecordJSON %s\n Encoder %s", got, want)
		}
	})
}

// TestAppendRecordJSONTakesStoredRecords: a record as the store keeps it
// (canonical body, plain strings) is written without encoding/json.
func TestAppendRecordJSONTakesStoredRecords(t *testing.T) {
	taken := 0
	for name, body := range payloadBodies {
		canon, err := Canonical([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		r := newRecord(CatalogueSupply, string(canon))
		if htmlSensitive(canon) {
			continue
		}
		if _, ok := AppendRecordJSON(nil, r); !ok {
			t.Errorf("%s: refused a stored record", name)
		}
		taken++
	}
	if taken == 0 {
		t.Fatal("no sample body without HTML-sensitive bytes: the test checks nothing")
	}
}

func BenchmarkRecordJSON(b *testing.B) {
	canon, err := Canonical([]byte(nickelBody))
	if err != nil {
		b.Fatal(err)
	}
	r := newRecord(CatalogueSupply, string(canon))
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendRecordJSON", func(b *testing.B) {
		for b.Loop() {
			if _, ok := AppendRecordJSON(nil, r); !ok {
				b.Fatal("refused")
			}
		}
	})
}

// TestAppendTime: AppendTime writes what time.Time's MarshalJSON writes, and
// refuses what it refuses.
func TestAppendTime(t *testing.T) {
	for _, tm := range []time.Time{
		{},
		time.Now(), // with a monotonic reading
		time.Date(2026, 11, 27, 9, 30, 0, 120000000, time.FixedZone("CST", 8*3600)),
		time.Date(1920, 1, 1, 0, 0, 0, 1, time.FixedZone("", 1172)), // an offset in seconds
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600)),
	} {
		want, werr := tm.MarshalJSON()
		got, ok := AppendTime([]byte("x"), tm)
		if ok != (werr == nil) || ok && string(got) != "x"+string(want) || !ok && string(got) != "x" {
			t.Errorf("%v: AppendTime %q, %v; MarshalJSON %q, %v", tm, got, ok, want, werr)
		}
	}
}

// TestHTMLSensitive holds htmlSensitive to a byte-at-a-time reading of what
// encoding/json escapes, with the bytes at each place in a body.
func TestHTMLSensitive(t *testing.T) {
	slow := func(b []byte) bool {
		for i, c := range b {
			if c == '<' || c == '>' || c == '&' || c == 0xe2 && i+2 < len(b) && b[i+1] == 0x80 && (b[i+2] == 0xa8 || b[i+2] == 0xa9) {
				return true
			}
		}
		return false
	}
	for _, ins := range []string{"<", ">", "&", "\u2028", "\u2029", "\u2027", "\u202a", "—", "\xe2", "\xe2\x80", "成果",
		// A near miss before a match: the search must go on past the first lead byte.
		"—\u2028", "\xe2\u2029", "\xe2\x80\u2028", "“成果”\u2029"} {
		for _, base := range []string{"", `{"a":"x"}`, `{"title":"高镍三元正极材料连续化制备技术","x":[1,2]}`} {
			for at := 0; at <= len(base); at++ {
				b := []byte(base[:at] + ins + base[at:])
				if got, want := htmlSensitive(b), slow(b); got != want {
					t.Fatalf("htmlSensitive(%q) = %v, want %v", b, got, want)
				}
			}
		}
	}
}

// TestAppendRecordJSONCanonicalBodyTrustsTheCaller: a canonical body the
// quick check is unsure of (a capital in a member name) is spliced, not
// handed to encoding/json, when the caller vouches for it.
func TestAppendRecordJSONCanonicalBodyTrustsTheCaller(t *testing.T) {
	r := &Record{ID: "tianjin:1", Catalogue: "supply", Origin: "tianjin", Version: 1, Visibility: "federation", Schema: 1, Body: json.RawMessage(`{"A":"","b":1}`)}
	if CheckCanonical(r.Body) != nil || isCanonical(r.Body) {
		t.Fatal("the body is not the case this test is about")
	}
	if _, ok := AppendRecordJSON(nil, r); ok {
		t.Fatal("AppendRecordJSON took it: the variant would gain nothing here")
	}
	got, ok := AppendRecordJSONCanonicalBody(nil, r)
	want, _ := json.Marshal(r)
	if !ok || !bytes.Equal(got, want) {
		t.Fatalf("variant %s, %v; json.Marshal %s", got, ok, want)
	}
}

// TestAppendRecordJSONCanonicalBodyNeedsABody: an empty body is no JSON
// value, whatever the caller claims, and is refused rather than spliced.
func TestAppendRecordJSONCanonicalBodyNeedsABody(t *testing.T) {
	r := &Record{ID: "tianjin:1", Catalogue: "supply", Origin: "tianjin", Version: 1, Visibility: "federation", Schema: 1, Body: json.RawMessage{}}
	if got, ok := AppendRecordJSONCanonicalBody(nil, r); ok {
		t.Fatalf("took an empty body: %s", got)
	}
	r.Body = nil
	got, ok := AppendRecordJSONCanonicalBody(nil, r)
	if !ok || !bytes.HasSuffix(got, []byte(`"body":null}`)) {
		t.Fatalf("nil body: %s, %v", got, ok)
	}
}
