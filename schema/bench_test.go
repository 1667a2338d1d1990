package schema

import (
	"encoding/json"
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
