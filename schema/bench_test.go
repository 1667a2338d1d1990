package schema

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchRecord is a realistic supply record of about 1 KB of JSON.
func benchRecord(b *testing.B) (*Record, []byte) {
	r := newRecord(CatalogueSupply, nickelBody)
	js, err := json.Marshal(r)
	if err != nil {
		b.Fatal(err)
	}
	return r, js
}

func BenchmarkCanonical1KB(b *testing.B) {
	_, js := benchRecord(b)
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(js); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateRecord(b *testing.B) {
	r, js := benchRecord(b)
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateRecord(r, ValidateOptions{Strict: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateRecordMarked is the validation of a write: the API marks
// the body it found canonical.
func BenchmarkValidateRecordMarked(b *testing.B) {
	r, js := benchRecord(b)
	body, err := AsCanonical(r.Body)
	if err != nil {
		b.Fatal(err)
	}
	r.Body = body
	r.MarkBodyCanonical()
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateRecord(r, ValidateOptions{Strict: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeAndValidate(b *testing.B) {
	_, js := benchRecord(b)
	b.SetBytes(int64(len(js)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := DecodeRecord(js)
		if err != nil {
			b.Fatal(err)
		}
		if err := ValidateRecord(r, ValidateOptions{Strict: true}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStripPersonal(b *testing.B) {
	r, _ := benchRecord(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := StripPersonal(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewEntry(b *testing.B) {
	r, _ := benchRecord(b)
	s, _ := StripPersonal(r)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := NewEntry(EntryPayload{Origin: "tianjin", Epoch: "e", Seq: 1, KeyID: "k", Record: s}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonicalOfCanonical is the common case on the write and sync
// paths: bytes that are already canonical, passed over by the checker.
func BenchmarkCanonicalOfCanonical1KB(b *testing.B) {
	_, js := benchRecord(b)
	c, err := Canonical(js)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(c)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonical(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonicalLiterals is the speed side of TestCanonicalLiteralsLinear:
// ns/op over sixteen times the input is about sixteen times as much when the
// encoder is linear, 256 times when quadratic. The checker passes canonical
// input; the parser builds the form of input with spaces.
func BenchmarkCanonicalLiterals(b *testing.B) {
	for _, path := range []struct{ name, sep string }{{"checker", ","}, {"parser", ", "}} {
		for _, n := range []int{MaxEntryBytes / 80, MaxEntryBytes / 5} {
			in := []byte("[" + strings.Repeat("true"+path.sep, n) + "null]")
			b.Run(fmt.Sprintf("%s/%d", path.name, n), func(b *testing.B) {
				b.SetBytes(int64(len(in)))
				b.ReportAllocs()
				for b.Loop() {
					if _, err := Canonical(in); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
