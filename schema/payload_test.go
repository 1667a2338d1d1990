package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
)

// payloadBodies are bodies whose canonical form exercises the body splice and
// the scan for its end: quotes, escapes and brackets inside strings, nesting,
// member names that look like the envelope's.
var payloadBodies = map[string]string{
	"supply":         nickelBody,
	"need":           challengeBody,
	"expert":         expertBody,
	"empty":          `{}`,
	"envelope-names": `{"record":{"body":{"record":1}},"body":"\"record\":{\"body\":","z":[{}]}`,
	"brackets":       `{"a":"}]},{[","b":["\\","\\\"",{"c":[]}],"d":-0.5e-3}`,
	"unicode":        `{"a":"é\u2028😀<>&","b":"\\u0022"}`,
}

func payloadFor(t testing.TB, body string) EntryPayload {
	t.Helper()
	r := newRecord(CatalogueSupply, body)
	return EntryPayload{
		Origin: "tianjin", Epoch: "01JNQ8ZK3M5T2V7W9X1Y4Z6A8C", Seq: 7, KeyID: "tianjin-record-1",
		SignedAt: time.Date(2026, 3, 5, 14, 12, 8, 5, time.UTC), Record: r,
	}
}

func TestNewEntryCanonicalBody(t *testing.T) {
	for name, body := range payloadBodies {
		t.Run(name, func(t *testing.T) {
			want, err := NewEntry(payloadFor(t, body))
			if err != nil {
				t.Fatal(err)
			}
			canon, err := Canonical([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			p := payloadFor(t, string(canon))
			got, err := NewEntryCanonicalBody(p)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Raw, want.Raw) {
				t.Fatalf("raw differs from NewEntry's:\n got %s\nwant %s", got.Raw, want.Raw)
			}
			if !bytes.Equal(got.Record.Body, canon) {
				t.Errorf("record body %s, want %s", got.Record.Body, canon)
			}
			if string(p.Record.Body) != string(canon) {
				t.Errorf("the caller's record was changed: body %s", p.Record.Body)
			}
		})
	}
}

func TestUnmarshalPayloadMatchesEncodingJSON(t *testing.T) {
	for name, body := range payloadBodies {
		t.Run(name, func(t *testing.T) {
			e, err := NewEntry(payloadFor(t, body))
			if err != nil {
				t.Fatal(err)
			}
			var p EntryPayload
			if !decodePayloadFast(e.Raw, &p) {
				t.Fatalf("the fast decoder refused a canonical payload: %s", e.Raw)
			}
			samePayloadDecoding(t, e.Raw)
		})
	}
	// A member a newer origin might add, sorting before "record" and holding
	// what looks like the record's body: the body is still the record's.
	e, err := NewEntry(payloadFor(t, nickelBody))
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(e.Raw, []byte(`"origin":`))
	decoy := append(append(append([]byte{}, e.Raw[:at]...), `"meta":{"record":{"body":"decoy"}},`...), e.Raw[at:]...)
	if err := CheckCanonical(decoy); err != nil {
		t.Fatalf("the decoy payload is not canonical: %v", err)
	}
	samePayloadDecoding(t, decoy)
	// Not the canonical layout: decoded by encoding/json whole, same result.
	for _, raw := range []string{`{"record":null,"seq":1}`, `{"seq":2}`, `{"record":{"body":`, `{"record":{"body":}`, `[1]`, `{"record":{"body":"x}`} {
		samePayloadDecoding(t, []byte(raw))
	}
}

func samePayloadDecoding(t *testing.T, raw []byte) {
	t.Helper()
	var want, got EntryPayload
	werr := json.Unmarshal(raw, &want)
	gerr := UnmarshalPayload(raw, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("UnmarshalPayload(%s): error %v, encoding/json %v", raw, gerr, werr)
	}
	if werr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("UnmarshalPayload(%s):\n got %+v\nwant %+v", raw, got, want)
	}
}

// FuzzUnmarshalPayload: on valid JSON the fast decoder agrees with
// encoding/json; on anything else it must only not panic.
func FuzzUnmarshalPayload(f *testing.F) {
	for _, body := range payloadBodies {
		e, err := NewEntry(payloadFor(f, body))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(e.Raw)
	}
	f.Add([]byte(`{"record":{"body": 1,"origin":"a"},"seq":1}`))
	f.Add([]byte(`{"seq":01,"record":{"body":1}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var p EntryPayload
		err := UnmarshalPayload(raw, &p)
		if !json.Valid(raw) {
			return
		}
		var want EntryPayload
		werr := json.Unmarshal(raw, &want)
		if (werr == nil) != (err == nil) || werr == nil && !reflect.DeepEqual(p, want) {
			t.Fatalf("UnmarshalPayload(%s) = %+v, %v; encoding/json %+v, %v", raw, p, err, want, werr)
		}
	})
}

// FuzzNewEntryCanonicalBody: for any object body, splicing its canonical form
// gives NewEntry's bytes.
func FuzzNewEntryCanonicalBody(f *testing.F) {
	for _, body := range payloadBodies {
		f.Add([]byte(body))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		canon, err := Canonical(body)
		if err != nil || len(canon) == 0 || canon[0] != '{' {
			return
		}
		want, err := NewEntry(payloadFor(t, string(body)))
		if err != nil {
			return
		}
		got, err := NewEntryCanonicalBody(payloadFor(t, string(canon)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Raw, want.Raw) {
			t.Fatalf("raw differs:\n got %s\nwant %s", got.Raw, want.Raw)
		}
	})
}

func BenchmarkPayload(b *testing.B) {
	canon, err := Canonical([]byte(nickelBody))
	if err != nil {
		b.Fatal(err)
	}
	p := payloadFor(b, string(canon))
	b.Run("NewEntry", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewEntry(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("NewEntryCanonicalBody", func(b *testing.B) {
		for b.Loop() {
			if _, err := NewEntryCanonicalBody(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	e, err := NewEntry(p)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			var q EntryPayload
			if err := json.Unmarshal(e.Raw, &q); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("UnmarshalPayload", func(b *testing.B) {
		for b.Loop() {
			var q EntryPayload
			if err := UnmarshalPayload(e.Raw, &q); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestIsCanonical: the checker passes canonical payloads as they come (that is
// its point) and nothing Canonical would change.
func TestIsCanonical(t *testing.T) {
	for name, body := range payloadBodies {
		e, err := NewEntry(payloadFor(t, body))
		if err != nil {
			t.Fatal(err)
		}
		if !isCanonical(e.Raw) {
			t.Errorf("%s: canonical payload not recognised: %s", name, e.Raw)
		}
	}
	for _, in := range []string{
		`{"b":1,"a":2}`, `{"a":1,"a":1}`, `{"a":1 }`, ` {}`, `{"a":1.0}`, `{"a":1e2}`, `{"a":-0}`,
		`{"a":"\u0041"}`, `{"a":"\/"}`, `{"A":1}`, `{"a":"x"}x`, `[1,]`, `{"a":9007199254740992}`,
		`{"a":"` + "\x01" + `"}`, `{"a":"` + "\xff" + `"}`, `"\ud800"`, `{"\u00e9":1}`,
		`{"a!":1,"a":2}`, `{"a ":1,"a":2}`, `{"ab":1,"a":2}`, `{"b":{"a!":1,"a":2}}`,
	} {
		c, err := AppendCanonical(nil, []byte(in)) // the full path, not the checker's shortcut
		if isCanonical([]byte(in)) && (err != nil || string(c) != in) {
			t.Errorf("isCanonical(%s) = true; Canonical gives %s, %v", in, c, err)
		}
	}
}

// TestHeadsTakeTheFastPath: the heads a store writes (json.Marshal's) are
// decoded without encoding/json, or UnmarshalHead would gain nothing.
func TestHeadsTakeTheFastPath(t *testing.T) {
	for _, h := range []Head{{Origin: "tianjin"}, {Origin: "hq", Epoch: "01JNQ8ZK3M5T2V7W9X1Y4Z6A8B", Seq: 12, Hash: Hash{9}}} {
		js, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		var got Head
		if !decodeHeadFast(js, &got) || got != h {
			t.Errorf("%s: fast path gave %+v", js, got)
		}
		// The fast way allocates the two strings and nothing else;
		// encoding/json's allocated several times that.
		if n := testing.AllocsPerRun(100, func() { _ = UnmarshalHead(js, &got) }); n > 2 {
			t.Errorf("%s: UnmarshalHead allocated %v times: not the fast way", js, n)
		}
	}
}

// FuzzUnmarshalHead: UnmarshalHead decodes what encoding/json decodes, and
// refuses what it refuses, on any valid JSON.
func FuzzUnmarshalHead(f *testing.F) {
	for _, h := range []Head{{Origin: "tianjin"}, {Origin: "hq", Epoch: "01JNQ8ZK3M5T2V7W9X1Y4Z6A8B", Seq: 1 << 40, Hash: Hash{1, 2, 3, 0xff}}} {
		js, err := json.Marshal(h)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(js)
	}
	f.Add([]byte(`{"origin":"a","ORIGIN":"b","seq":1}`))
	f.Add([]byte(`{"seq":-1,"hash":"00"}`))
	f.Add([]byte(`{"origin":"\u00e9","seq":1.0,"extra":[1,{"x":null}]}`))
	f.Add([]byte(`{"origin":null,"seq":2,"seq":3}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var got Head
		err := UnmarshalHead(raw, &got)
		if !json.Valid(raw) {
			return
		}
		var want Head
		werr := json.Unmarshal(raw, &want)
		if (werr == nil) != (err == nil) || werr == nil && got != want {
			t.Fatalf("UnmarshalHead(%s) = %+v, %v; encoding/json %+v, %v", raw, got, err, want, werr)
		}
	})
}

// FuzzAppendHeadJSON: AppendHeadJSON writes json.Marshal's bytes for any
// head, so replicas of builds before and after it store the same.
func FuzzAppendHeadJSON(f *testing.F) {
	f.Add("tianjin", "01JNQ8ZK3M5T2V7W9X1Y4Z6A8B", uint64(1<<40), []byte{1, 2, 3, 0xff})
	f.Add("hq", "", uint64(0), []byte{})
	f.Add("a<b>&c", "e\"p\\o", uint64(7), []byte{9})
	f.Add("\u2028é\x00", "\xff", uint64(1<<63), []byte{0})
	f.Add("~ !", "\x7f", uint64(1), []byte{})
	f.Add("hq", "\xff", uint64(2), []byte{})
	f.Add("hq", "\u2028", uint64(3), []byte{})
	f.Add("hq", "é", uint64(4), []byte{})
	f.Fuzz(func(t *testing.T, origin, epoch string, seq uint64, hash []byte) {
		h := Head{Origin: origin, Epoch: epoch, Seq: seq}
		copy(h.Hash[:], hash)
		want, err := json.Marshal(h)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendHeadJSON([]byte("x"), h)
		if err != nil || string(got) != "x"+string(want) {
			t.Fatalf("AppendHeadJSON(%+v) = %s, %v; json.Marshal %s", h, got, err, want)
		}
	})
}

// FuzzEachElement: on a canonical array, EachElement yields the elements
// encoding/json finds, in order. What it does with other input is not
// promised (it does not check values), beyond not panicking.
func FuzzEachElement(f *testing.F) {
	f.Add([]byte(`[]`))
	f.Add([]byte(`[1,"a",null,true,{"a":[1,{"b":"]"}]},[],"\"],"]`))
	f.Add([]byte(`[{"method":"POST","record":{"body":{"title":"高镍"},"catalogue":"supply"}},{"id":"tianjin:x","method":"DELETE"}]`))
	f.Add([]byte(`[1,]`))
	f.Add([]byte(`[ 1]`))
	f.Add([]byte(`[1]]`))
	f.Add([]byte(`{"a":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var got [][]byte
		err := EachElement(data, func(v []byte) error {
			got = append(got, v)
			return nil
		})
		var want []json.RawMessage
		if CheckCanonical(data) != nil || json.Unmarshal(data, &want) != nil || want == nil {
			return
		}
		if err != nil {
			t.Fatalf("canonical array %q: %v", data, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: walked %d elements, encoding/json %d", data, len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("%q: element %d %q, encoding/json %q", data, i, got[i], want[i])
			}
		}
	})
}

func TestEachElementStops(t *testing.T) {
	stop := errors.New("stop here")
	n := 0
	err := EachElement([]byte(`[1,2,3]`), func([]byte) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if err != stop || n != 2 {
		t.Fatalf("walked %d, %v", n, err)
	}
}
