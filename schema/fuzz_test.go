package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// Seed corpora live in testdata/fuzz/<FuzzName>/ so that plain `go test` runs them;
// `go test ./schema -run TestFuzzSeeds -update` regenerates them from the test
// corpus and the samples here.

func FuzzValidateRecord(f *testing.F) {
	f.Add([]byte(`{"catalogue":"supply","origin":"tianjin","version":1,"visibility":"public","body":` + nickelBody + `}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := DecodeRecord(data); err == nil {
			var std Record
			if json.Unmarshal(data, &std) == nil {
				a, _ := json.Marshal(r)
				b, _ := json.Marshal(&std)
				if !bytes.Equal(a, b) {
					t.Fatalf("DecodeRecord differs from json.Unmarshal:\n%s\n%s", a, b)
				}
			}
			checkValidate(t, r)
		} else {
			mustValidationErr(t, err)
		}
		// The input as the body of each catalogue, known or not.
		for _, cat := range []string{CatalogueSupply, CatalogueNeed, CatalogueExpert, "patent"} {
			checkValidate(t, newRecord(cat, string(data)))
		}
	})
}

func mustValidationErr(t *testing.T, err error) *ValidationError {
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) || len(ve.Errors) == 0 || len(ve.Errors) > MaxFieldErrors+1 {
		t.Fatalf("bad validation error %#v", err)
	}
	for _, fe := range ve.Errors {
		if fe.Rule == "" || fe.Message == "" || !utf8.ValidString(fe.Message) || !utf8.ValidString(fe.Path) {
			t.Fatalf("bad field error %+v", fe)
		}
	}
	_ = ve.Error()
	return ve
}

// checkValidate holds ValidateRecord to its promises on r.
func checkValidate(t *testing.T, r *Record) {
	before := r.Clone()
	strictErr := ValidateRecord(r, ValidateOptions{Strict: true})
	lenientErr := ValidateRecord(r, ValidateOptions{})
	after := r.Clone() // Clone makes an empty body nil, as in before
	if !reflect.DeepEqual(after, before) {
		t.Fatal("ValidateRecord modified the record")
	}
	_ = RedactContact(r)
	if strictErr != nil {
		mustValidationErr(t, strictErr)
	}
	if lenientErr != nil {
		mustValidationErr(t, lenientErr)
		if strictErr == nil {
			t.Fatalf("valid strictly but not leniently: %v", lenientErr)
		}
		return
	}
	if !isNull(r.Body) {
		c, err := Canonical(r.Body)
		if err != nil || len(c) > MaxBodyBytes {
			t.Fatalf("valid body has no canonical form within bounds (%d bytes): %v", len(c), err)
		}
	}
	s, err := StripPersonal(r)
	if err != nil {
		t.Fatalf("StripPersonal of a valid record: %v", err)
	}
	if err := ValidateRecord(s, ValidateOptions{}); err != nil {
		t.Fatalf("stripped record invalid: %v", err)
	}
	if strictErr == nil {
		if err := ValidateRecord(s, ValidateOptions{Strict: true}); err != nil {
			t.Fatalf("stripped record invalid: %v", err)
		}
	}
	if HasPersonal(s) {
		t.Fatalf("stripped body still has personal data: %s", s.Body)
	}
	// A valid record makes an entry that a peer decodes and accepts.
	e, err := NewEntry(EntryPayload{Origin: s.Origin, Epoch: "e", Seq: 1, KeyID: "k", Record: s})
	if err != nil {
		t.Fatalf("NewEntry of a valid record: %v", err)
	}
	d, err := DecodeEntryPayload(e.Raw)
	if err != nil {
		t.Fatalf("DecodeEntryPayload: %v", err)
	}
	if err := ValidateRecord(d.Record, ValidateOptions{}); err != nil {
		t.Fatalf("record received from the log invalid: %v\n%s", err, e.Raw)
	}
}

func FuzzCanonical(f *testing.F) {
	f.Add([]byte(`{"b":[1e-7,0.000001,-0,1.5],"a":"\u00e9\ud83d\ude00"}`))
	// Names that sort after a longer name only when their closing quote is
	// compared too (isCanonical once accepted these).
	f.Add([]byte(`{"a!":1,"a":2}`))
	f.Add([]byte(`{"x":{"a ":1,"a":2}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Canonical(data)
		// The checker that spares building the canonical form never passes
		// bytes Canonical would change.
		if slow, serr := AppendCanonical(nil, data); isCanonical(data) && (serr != nil || !bytes.Equal(slow, data)) {
			t.Fatalf("isCanonical(%q) but the canonical form is %q, %v", data, slow, serr)
		}
		// The validator's parser reports a problem exactly when Canonical refuses.
		var col collector
		root, serr := parseTree(data, "", MaxDepth, &col)
		if treeOK := serr == nil && len(col.errs) == 0; treeOK != (err == nil) {
			t.Fatalf("Canonical: %v; validator parser: %v %+v", err, serr, col.errs)
		}
		if err == nil && canonicalLen(root) != len(c) {
			t.Fatalf("canonicalLen %d, canonical form %d bytes: %s", canonicalLen(root), len(c), c)
		}
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not a *SyntaxError", err)
			}
			return
		}
		c2, err := Canonical(c)
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("not idempotent: %s → %s (%v)", c, c2, err)
		}
		if err := CheckCanonical(c); err != nil {
			t.Fatalf("CheckCanonical(Canonical(x)): %v", err)
		}
		var a, b any
		if err := json.Unmarshal(c, &b); err != nil {
			t.Fatalf("encoding/json refuses %s: %v", c, err)
		}
		if err := json.Unmarshal(data, &a); err != nil {
			t.Fatalf("encoding/json refuses input Canonical accepts: %v", err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("value changed:\n%#v\n%#v", a, b)
		}
	})
}

func FuzzEntryUnmarshal(f *testing.F) {
	f.Add([]byte(`{"payload":{},"sig":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Entry
		if err := e.UnmarshalJSON(data); err != nil {
			if !errors.Is(err, ErrBadEntry) && !errors.Is(err, ErrEntryTooLarge) {
				t.Fatalf("error %v is neither ErrBadEntry nor ErrEntryTooLarge", err)
			}
			return
		}
		if err := CheckCanonical(e.Raw); err != nil || len(e.Sig) != SignatureSize || e.Record == nil {
			t.Fatalf("accepted entry: raw canonical %v, sig %d bytes", err, len(e.Sig))
		}
		_ = ValidateRecord(e.Record, ValidateOptions{})
		_, _ = StripPersonal(e.Record)
		wire, err := e.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		batch := mustJSON(t, []*Entry{&e}) // escaped by encoding/json
		for _, w := range [][]byte{wire, batch[1 : len(batch)-1]} {
			var d Entry
			if err := d.UnmarshalJSON(w); err != nil {
				t.Fatalf("re-encoded entry refused: %v\n%s", err, w)
			}
			if !bytes.Equal(d.Raw, e.Raw) || !bytes.Equal(d.Sig, e.Sig) || d.Hash() != e.Hash() {
				t.Fatal("entry changed in a round trip")
			}
		}
	})
}

func mustJSON(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestFuzzSeeds checks (or with -update writes) the seed corpora.
func TestFuzzSeeds(t *testing.T) {
	seeds := map[string]map[string][]byte{"FuzzValidateRecord": {}, "FuzzCanonical": {}, "FuzzEntryUnmarshal": {}}
	for _, dir := range []string{"valid", "invalid"} {
		for name, data := range readCorpus(t, dir) {
			if len(data) > 8<<10 {
				continue // the big ones slow fuzzing down without adding much
			}
			seeds["FuzzValidateRecord"][dir+"_"+name] = data
			var w struct{ Body json.RawMessage }
			if json.Unmarshal(data, &w) == nil && len(w.Body) > 0 {
				seeds["FuzzCanonical"]["body_"+dir+"_"+name] = w.Body
			}
		}
	}
	for name, s := range map[string]string{
		"rfc8785_numbers": `{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],"string":"\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/","literals":[null,true,false]}`,
		"rfc8785_sort":    `{"\u20ac":"Euro Sign","\r":"Carriage Return","\ufb33":"Hebrew","1":"One","\ud83d\ude00":"Emoji","\u0080":"Control","\u00f6":"o"}`,
		"surrogates":      `["\ud83d\ude00","\ud800","\udc00\ud800","\ud83d\u0041"]`,
		"invalid_utf8":    "{\"\xff\":\"\xc0\xaf\xed\xa0\x80\"}",
		"duplicates":      `{"a":1,"\u0061":2,"b":{"c":[],"c":{}}}`,
		"numbers":         `[0,-0,1e21,9007199254740991,9007199254740992,1e-400,1e400,-1.0e-7,0.1,123456789012345680000]`,
		"deep":            strings.Repeat("[", 70) + strings.Repeat("]", 70),
		"literals":        `[true,false,null,tru]`,
	} {
		seeds["FuzzCanonical"][name] = []byte(s)
	}
	for i, body := range []string{challengeBody, nickelBody, expertBody, `{"title":"<&>\u2028"}`} {
		r := newRecord(CatalogueNeed, body)
		e, err := NewEntry(EntryPayload{Origin: "tianjin", Epoch: "e1", Seq: uint64(i + 1), KeyID: "k1",
			SignedAt: time.Date(2026, 3, 5, 22, 0, 0, 0, time.UTC), Record: r})
		if err != nil {
			t.Fatal(err)
		}
		e.Sig = bytes.Repeat([]byte{byte(i)}, SignatureSize)
		w, _ := e.MarshalJSON()
		seeds["FuzzEntryUnmarshal"]["entry_"+strconv.Itoa(i)] = w
		batch := mustJSON(t, []*Entry{e})
		seeds["FuzzEntryUnmarshal"]["escaped_"+strconv.Itoa(i)] = batch[1 : len(batch)-1]
	}
	seeds["FuzzEntryUnmarshal"]["junk"] = []byte(`{"payload":[1,2],"sig":"AAAA"}`)

	for fuzzName, files := range seeds {
		dir := filepath.Join("testdata", "fuzz", fuzzName)
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for name, data := range files {
			want := []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n")
			path := filepath.Join(dir, name)
			if *update {
				if err := os.WriteFile(path, want, 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, want) {
				t.Errorf("seed %s is not current (%v); run go test ./schema -run TestFuzzSeeds -update", path, err)
			}
		}
	}
}
