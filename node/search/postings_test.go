package search

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestBlockRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		first uint32
		ps    []posting
	}{
		{"empty", 7, nil},
		{"one at the key", 5, []posting{{ord: 5, tf: [numFields]uint32{1}}}},
		{"first above the key", 5, []posting{{ord: 9, tf: [numFields]uint32{0, 0, 3}}}},
		{"ones in several fields", 0, []posting{{ord: 0, tf: [numFields]uint32{1, 1, 0, 0, 0, 1}}, {ord: 1, tf: [numFields]uint32{0, 1}}}},
		{"large frequencies and gaps", 1 << 20, []posting{
			{ord: 1 << 20, tf: [numFields]uint32{200, 0, 70000}},
			{ord: 1<<20 + 300, tf: [numFields]uint32{0, 0, 0, 0, 0, 2}},
			{ord: math.MaxUint32, tf: [numFields]uint32{1, 2, 3, 4, 5, 6}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := encodeBlock(nil, tc.first, tc.ps)
			got, err := decodeBlock(nil, tc.first, v)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.ps) {
				t.Fatalf("decoded %v, want %v", got, tc.ps)
			}
			if h, ok := readBlockHeader(tc.first, v); !ok || h.n != len(tc.ps) {
				t.Fatalf("count %d %v", h.n, ok)
			}
		})
	}
}

func TestBlockMalformed(t *testing.T) {
	good := encodeBlock(nil, 3, []posting{{ord: 3, tf: [numFields]uint32{1}}, {ord: 10, tf: [numFields]uint32{0, 4}}})
	for _, tc := range []struct {
		name string
		v    []byte
	}{
		{"nothing", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing bytes", append(slices.Clone(good), 0)},
		{"count too large", append([]byte{9}, good[1:]...)},
		{"count too small", append([]byte{1}, good[1:]...)},
		{"last ordinal wrong", append([]byte{2, 6}, good[2:]...)},
		{"no fields", []byte{1, 0, 0, 0}},
		{"unknown mask bit", []byte{1, 0, 0, 0x81}},
		{"repeated ordinal", []byte{2, 0, 0, 0x41, 0, 0x41}},
		{"zero frequency", []byte{1, 0, 0, 0x01, 0}},
		{"ordinal overflow", []byte{1, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x41}},
		{"last past the end", []byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := uint32(3)
			if tc.name == "ordinal overflow" {
				first = 1
			}
			if ps, err := decodeBlock(nil, first, tc.v); err == nil {
				t.Fatalf("decoded %v without error", ps)
			}
		})
	}
}

// FuzzBlock decodes arbitrary bytes as a block, as a query or an index
// transaction may read from a torn file: no panic, and what decodes encodes
// back to a block that decodes the same.
func FuzzBlock(f *testing.F) {
	f.Add(uint32(0), encodeBlock(nil, 0, []posting{{ord: 0, tf: [numFields]uint32{1}}, {ord: 2, tf: [numFields]uint32{0, 3, 1}}}))
	f.Add(uint32(1<<31), []byte{1, 0, 0, 0x41})
	f.Add(uint32(5), []byte{3, 4, 0, 0x01, 0x02})
	f.Fuzz(func(t *testing.T, first uint32, v []byte) {
		ps, err := decodeBlock(nil, first, v)
		h, headerOK := readBlockHeader(first, v)
		if err != nil {
			return
		}
		if !headerOK || h.n != len(ps) || len(ps) > 0 && h.last != ps[len(ps)-1].ord {
			t.Fatalf("header %+v (%v) for %d postings", h, headerOK, len(ps))
		}
		for i, p := range ps {
			if p.ord < first || i > 0 && p.ord <= ps[i-1].ord || p.tf == [numFields]uint32{} {
				t.Fatalf("posting %d: %+v after %+v", i, p, ps[max(0, i-1)])
			}
		}
		again, err := decodeBlock(nil, first, encodeBlock(nil, first, ps))
		if err != nil || !slices.Equal(again, ps) {
			t.Fatalf("re-encoded: %v %v, want %v", again, err, ps)
		}
		// Reading ordinals only agrees.
		r := newBlockReader(first, v)
		var p posting
		for i := 0; ; i++ {
			if _, ok := r.next(&p, false); !ok {
				break
			}
			if p.ord != ps[i].ord {
				t.Fatalf("ordinal %d: %d, want %d", i, p.ord, ps[i].ord)
			}
		}
	})
}

func TestDocRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   time.Time
	}{
		{"a time", time.Date(2026, 3, 5, 14, 12, 8, 123456789, time.UTC)},
		{"zero", time.Time{}},
		{"another zone", time.Date(2026, 3, 5, 22, 12, 8, 0, time.FixedZone("CST", 8*3600))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &Doc{ID: "tianjin:x", TRL: 7, updated: unixNanos(tc.at), Len: [numFields]uint32{1, 2, 300, 4, 0, 6},
				DocAttrs: &DocAttrs{Catalogue: "supply", Origin: "tianjin", Visibility: "public", Industries: []string{"a", "b"}, Status: "open", Kind: "need"}}
			v, attrs := encodeDoc(nil, 42, d)
			interned := map[string]*DocAttrs{}
			intern := func(raw []byte) *DocAttrs {
				if a, ok := interned[string(raw)]; ok {
					return a
				}
				a := decodeAttrs(raw)
				interned[string(raw)] = a
				return a
			}
			ord, got, err := decodeDoc(d.ID, v, intern)
			if err != nil || ord != 42 {
				t.Fatalf("ord %d, %v", ord, err)
			}
			if got.ID != d.ID || got.TRL != d.TRL || got.Len != d.Len || !got.UpdatedAt().Equal(tc.at) || got.UpdatedAt().IsZero() != tc.at.IsZero() {
				t.Fatalf("got %+v (updated %v), want %+v (%v)", got, got.UpdatedAt(), d, tc.at)
			}
			if a, b := *got.DocAttrs, *d.DocAttrs; a.Catalogue != b.Catalogue || a.Origin != b.Origin || a.Visibility != b.Visibility ||
				a.Status != b.Status || a.Kind != b.Kind || !slices.Equal(a.Industries, b.Industries) {
				t.Fatalf("attrs %+v, want %+v", a, b)
			}
			if _, again, _ := decodeDoc(d.ID, v, intern); again.DocAttrs != got.DocAttrs || string(attrs) == "" {
				t.Fatal("attributes not shared")
			}
			if r := got.Record(); r.ID != d.ID || r.Catalogue != "supply" || r.Origin != "tianjin" || r.Visibility != "public" || !r.UpdatedAt.Equal(tc.at) {
				t.Fatalf("record %+v", r)
			}
			for i := range v {
				if _, _, err := decodeDoc(d.ID, v[:i], intern); err == nil {
					t.Fatalf("decoded %d of %d bytes", i, len(v))
				}
			}
		})
	}
}

func TestUnixNanosBounds(t *testing.T) {
	far := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	early := time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)
	if n := unixNanos(far); n != math.MaxInt64 {
		t.Fatalf("year 9999: %d", n)
	}
	if n := unixNanos(early); n != minTime {
		t.Fatalf("year 1000: %d", n)
	}
	d := &Doc{updated: unixNanos(early)}
	if d.UpdatedAt().IsZero() || !d.UpdatedAt().Before(time.Date(1700, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("year 1000 kept as %v", d.UpdatedAt())
	}
}

// TestSpliceOut removes random sets of ordinals from random blocks: the
// result decodes to the block's postings without them.
func TestSpliceOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	for range 3000 {
		first := uint32(rng.IntN(1000))
		var ps []posting
		ord := first + uint32(rng.IntN(3))
		for range rng.IntN(12) {
			var tf [numFields]uint32
			tf[rng.IntN(numFields)] = 1 + uint32(rng.IntN(3))
			if rng.IntN(3) == 0 {
				tf[rng.IntN(numFields)] = 1 + uint32(rng.IntN(300))
			}
			ps = append(ps, posting{ord: ord, tf: tf})
			ord += 1 + uint32(rng.IntN(200))
		}
		v := encodeBlock(nil, first, ps)
		var rm []uint32
		for o := first; o < ord+5; o++ {
			if rng.IntN(8) == 0 {
				rm = append(rm, o)
			}
		}
		var want []posting
		for _, p := range ps {
			if !slices.Contains(rm, p.ord) {
				want = append(want, p)
			}
		}
		sp, err := spliceOut(nil, first, v, rm)
		if err != nil {
			t.Fatal(err)
		}
		if sp.kept != len(want) || sp.removed != len(ps)-len(want) {
			t.Fatalf("kept %d removed %d, want %d of %d", sp.kept, sp.removed, len(want), len(ps))
		}
		for _, o := range sp.rest {
			if len(ps) > 0 && o <= ps[len(ps)-1].ord {
				t.Fatalf("rest %v holds %d, in the block up to %d", sp.rest, o, ps[len(ps)-1].ord)
			}
		}
		if sp.removed == 0 || sp.kept == 0 {
			continue
		}
		got, err := decodeBlock(nil, first, append(appendBlockHeader(nil, first, sp.kept, sp.last), sp.body...))
		if err != nil || !slices.Equal(got, want) {
			t.Fatalf("block %v without %v: %v (%v), want %v", ps, rm, got, err, want)
		}
	}
}
