package auth

import (
	"testing"
	"time"

	"liandong/schema"
)

const benchRecordBytes = 1024

func BenchmarkSignEntry(b *testing.B) {
	f := newFixture(b)
	k := f.rec["tianjin"]
	e := makeEntry(b, entrySpec{origin: "tianjin", epoch: "e1", seq: 1, key: k, at: t0, size: benchRecordBytes})
	b.SetBytes(int64(len(e.Raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := SignEntry(k, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyEntry(b *testing.B) {
	f := newFixture(b)
	e := makeEntry(b, entrySpec{origin: "tianjin", epoch: "e1", seq: 1, key: f.rec["tianjin"], at: t0, size: benchRecordBytes})
	b.SetBytes(int64(len(e.Raw)))
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyEntry(f.bundle, e); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyChain1000(b *testing.B) {
	f := newFixture(b)
	head := schema.Head{Origin: "tianjin", Epoch: "e1"}
	es := chain(b, f.rec["tianjin"], head, 1000, t0, benchRecordBytes)
	var size int64
	for _, e := range es {
		size += int64(len(e.Raw))
	}
	for _, mode := range []VerifyMode{VerifyEverySignature, VerifyBatchSignature} {
		b.Run(mode.String(), func(b *testing.B) {
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if err := VerifyChain(f.bundle, head, es, mode); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/entry")
		})
	}
}

func BenchmarkVerifyToken(b *testing.B) {
	f := newFixture(b)
	iss := &TokenIssuer{Centre: "tianjin", Federation: testFederation, Key: f.tok["tianjin"]}
	tok, err := iss.Issue("tju-tto", []Scope{ScopeRead, ScopePII}, time.Hour, t0)
	if err != nil {
		b.Fatal(err)
	}
	v := newVerifier(f.bundle)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueToken(b *testing.B) {
	f := newFixture(b)
	iss := &TokenIssuer{Centre: "tianjin", Federation: testFederation, Key: f.tok["tianjin"]}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := iss.Issue("tju-tto", []Scope{ScopeRead}, time.Hour, t0); err != nil {
			b.Fatal(err)
		}
	}
}
