package wire_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"liandong/schema"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

func entries(t testing.TB, origin string, n int) []*schema.Entry {
	t.Helper()
	fed, err := exchangetest.NewFederation(origin)
	if err != nil {
		t.Fatal(err)
	}
	es, err := fed.Author(origin).NextN(n)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func TestRoundTrip(t *testing.T) {
	es := entries(t, "tianjin", 3)
	h := schema.Head{Origin: "tianjin", Epoch: "e1", Seq: 3, Hash: es[2].Hash()}
	msgs := []wire.Message{
		&wire.Ping{Nonce: 1 << 60},
		&wire.Pong{Nonce: 7},
		&wire.Heads{Request: true, Federation: "jjj", BundleVersion: 4, Heads: []schema.Head{h, {Origin: "hq", Seq: 1}},
			Digest: wire.HeadsDigest([]schema.Head{h, {Origin: "hq", Seq: 1}}), Known: schema.Hash{9}},
		&wire.Heads{Federation: "jjj"},
		&wire.Heads{Federation: "jjj", Digest: schema.Hash{1, 2}},
		&wire.RangeReq{Origin: "tianjin", Epoch: "e1", FromSeq: 2, Limit: 1000},
		&wire.RangeReq{Origin: "tianjin", FromSeq: 2, Limit: 1000, MaxBatch: 100, MaxFrameBytes: 1 << 20},
		&wire.RangeReq{Origin: "tianjin", FromSeq: 2, Limit: 1000, MaxFrameBytes: 1 << 20},
		&wire.Batch{Origin: "tianjin", Entries: es},
		&wire.Batch{Origin: "tianjin", Done: true},
		&wire.Push{Origin: "tianjin", Entries: es[:1]},
		&wire.Error{Code: wire.CodeEpochMismatch, Message: "持有另一个纪元"},
		&wire.TrustReq{Version: 3},
		&wire.Trust{Bundle: []byte(`{"payload":{},"signatures":[]}`)},
	}
	var stream bytes.Buffer
	for _, m := range msgs {
		if err := wire.WriteFrame(&stream, wire.Encode(m)); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&stream)
	for _, want := range msgs {
		body, err := wire.ReadFrame(r, 1<<20)
		if err != nil {
			t.Fatalf("%s: %v", want.Type(), err)
		}
		got, err := wire.Decode(body)
		if err != nil {
			t.Fatalf("%s: %v", want.Type(), err)
		}
		if !bytes.Equal(wire.Encode(got), wire.Encode(want)) || got.Type() != want.Type() {
			t.Errorf("%s: round trip changed the message", want.Type())
		}
		if b, ok := got.(*wire.Batch); ok && len(b.Entries) > 0 {
			for i, e := range b.Entries {
				if e.Hash() != es[i].Hash() || e.Seq != es[i].Seq || !reflect.DeepEqual(e.Record.Body, es[i].Record.Body) {
					t.Errorf("entry %d changed in transit", i)
				}
			}
		}
	}
	if _, err := wire.ReadFrame(r, 1<<20); err != io.EOF {
		t.Errorf("end of stream: %v, want io.EOF", err)
	}
}

func TestDecodeRefuses(t *testing.T) {
	es := entries(t, "hebei", 2)
	batch := wire.Encode(&wire.Batch{Origin: "hebei", Entries: es})
	other := wire.Encode(&wire.Batch{Origin: "hq", Entries: es})
	forgedCount := append([]byte{byte(wire.TypeBatch)}, 5, 'h', 'e', 'b', 'e', 'i', 0)
	forgedCount = binary.AppendUvarint(forgedCount, 1<<40)
	longString := append([]byte{byte(wire.TypeRangeReq)}, binary.AppendUvarint(nil, wire.MaxStringBytes+1)...)
	longString = append(longString, bytes.Repeat([]byte{'a'}, wire.MaxStringBytes+1)...)
	badDone := bytes.Clone(batch)
	badDone[1+1+len("hebei")] = 2
	cases := map[string][]byte{
		"empty":            {},
		"unknown type":     {99},
		"truncated ping":   {byte(wire.TypePing)},
		"trailing bytes":   append(wire.Encode(&wire.Ping{Nonce: 1}), 0),
		"zero limits":      append(wire.Encode(&wire.RangeReq{Origin: "hq", FromSeq: 1, Limit: 1}), 0, 0),
		"one limit":        append(wire.Encode(&wire.RangeReq{Origin: "hq", FromSeq: 1, Limit: 1}), 5),
		"after limits":     append(wire.Encode(&wire.RangeReq{Origin: "hq", FromSeq: 1, Limit: 1, MaxBatch: 5}), 0),
		"truncated batch":  batch[:len(batch)-10],
		"forged count":     forgedCount,
		"long string":      longString,
		"entry of another": other,
		"bad done flag":    badDone,
		"bad varint":       {byte(wire.TypePing), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
		"empty trust":      {byte(wire.TypeTrust), 0},
		"oversized trust":  binary.AppendUvarint([]byte{byte(wire.TypeTrust)}, wire.MaxTrustBytes+1),
	}
	for name, body := range cases {
		if m, err := wire.Decode(body); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: got %v, %v; want ErrMalformed", name, m, err)
		}
	}
	// A payload with insignificant space is refused: only canonical bytes are
	// hashed and signed.
	raw := bytes.Replace(es[0].Raw, []byte(`"seq":1,`), []byte(`"seq": 1,`), 1)
	body := append([]byte{byte(wire.TypePush)}, 5, 'h', 'e', 'b', 'e', 'i', 1)
	body = binary.AppendUvarint(body, uint64(len(raw)))
	body = append(append(body, raw...), es[0].Sig...)
	if _, err := wire.Decode(body); !errors.Is(err, wire.ErrMalformed) || !strings.Contains(err.Error(), "canonical") {
		t.Errorf("non-canonical payload: %v", err)
	}
}

// The encoder writes every uvarint in its shortest form; the decoder refuses
// any other, so each message has one encoding (here: a Ping whose nonce 5 is
// written 0x85 0x00, a string length 0x82 0x00, and a frame length 0x82 0x00).
func TestDecodeRefusesNonMinimalVarints(t *testing.T) {
	canonical := wire.Encode(&wire.Ping{Nonce: 5})
	for name, body := range map[string][]byte{
		"nonce":         {byte(wire.TypePing), 0x85, 0x00},
		"nonce 3 bytes": {byte(wire.TypePing), 0x85, 0x80, 0x00},
		"string length": {byte(wire.TypeError), 1, 0x82, 0x00, 'n', 'o'},
	} {
		if m, err := wire.Decode(body); !errors.Is(err, wire.ErrMalformed) {
			t.Errorf("%s: decoded %#v, %v from %x, which the encoder never writes", name, m, err, body)
		}
	}
	if m, err := wire.Decode([]byte{byte(wire.TypePing), 0x80, 0x01}); err != nil || m.(*wire.Ping).Nonce != 128 {
		t.Errorf("a minimal two-byte varint: %v, %v", m, err)
	}
	frame := append([]byte{0x80 | byte(len(canonical)), 0x00}, canonical...)
	if _, err := wire.ReadFrame(bufio.NewReader(bytes.NewReader(frame)), 1000); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("non-minimal frame length: %v", err)
	}
	frame = append([]byte{byte(len(canonical))}, canonical...)
	if _, err := wire.ReadFrame(bufio.NewReader(bytes.NewReader(frame)), 1000); err != nil {
		t.Errorf("minimal frame length: %v", err)
	}
}

func TestReadFrameLimits(t *testing.T) {
	read := func(b []byte, max int) error {
		_, err := wire.ReadFrame(bufio.NewReader(bytes.NewReader(b)), max)
		return err
	}
	if err := read(binary.AppendUvarint(nil, 1001), 1000); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Errorf("oversized: %v", err)
	}
	if err := read([]byte{0}, 1000); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("empty frame: %v", err)
	}
	if err := read(bytes.Repeat([]byte{0xff}, 11), 1000); !errors.Is(err, wire.ErrMalformed) {
		t.Errorf("overlong length: %v", err)
	}
	if err := read([]byte{5, 1, 2}, 1000); err != io.ErrUnexpectedEOF {
		t.Errorf("short body: %v", err)
	}
	if err := read([]byte{0x80}, 1000); err != io.ErrUnexpectedEOF {
		t.Errorf("short length: %v", err)
	}
	if err := read(nil, 1000); err != io.EOF {
		t.Errorf("nothing: %v", err)
	}
	failing := iotestErr{}
	if _, err := wire.ReadFrame(bufio.NewReader(failing), 1000); err == nil || errors.Is(err, wire.ErrMalformed) {
		t.Errorf("a failing stream is not the peer's fault: %v", err)
	}
	if !strings.Contains(wire.TypeBatch.String(), "batch") {
		t.Error("type names")
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("stream reset") }

func TestHeadsDigest(t *testing.T) {
	a := schema.Head{Origin: "hebei", Epoch: "e1", Seq: 3, Hash: schema.Hash{1}}
	b := schema.Head{Origin: "tianjin", Epoch: "e1", Seq: 9, Hash: schema.Hash{2}}
	if !wire.HeadsDigest(nil).IsZero() {
		t.Error("the digest of no heads is not zero: an empty heads message would read as left out")
	}
	base := wire.HeadsDigest([]schema.Head{a, b})
	if base.IsZero() || base != wire.HeadsDigest([]schema.Head{a, b}) {
		t.Fatal("digest is zero or not deterministic")
	}
	changed := []struct {
		name  string
		heads []schema.Head
	}{
		{"seq", []schema.Head{a, {Origin: b.Origin, Epoch: b.Epoch, Seq: 10, Hash: b.Hash}}},
		{"hash", []schema.Head{a, {Origin: b.Origin, Epoch: b.Epoch, Seq: b.Seq, Hash: schema.Hash{3}}}},
		{"epoch", []schema.Head{a, {Origin: b.Origin, Epoch: "e2", Seq: b.Seq, Hash: b.Hash}}},
		{"origin dropped", []schema.Head{a}},
		{"order", []schema.Head{b, a}},
	}
	for _, c := range changed {
		if wire.HeadsDigest(c.heads) == base {
			t.Errorf("%s: changing the heads left the digest alike", c.name)
		}
	}
	left := &wire.Heads{Digest: base}
	if !left.Omitted() {
		t.Error("heads left out with a digest do not read as omitted")
	}
	if (&wire.Heads{}).Omitted() || (&wire.Heads{Digest: base, Heads: []schema.Head{a, b}}).Omitted() {
		t.Error("empty or full heads read as omitted")
	}
}

// ValidHead says exactly which heads Decode takes, so senders can leave out
// the rest rather than send heads peers refuse; and schema's epoch limit fits.
func TestValidHeadMatchesDecode(t *testing.T) {
	if schema.MaxEpochBytes > wire.MaxStringBytes {
		t.Fatalf("schema admits epochs of %d bytes, heads carry %d", schema.MaxEpochBytes, wire.MaxStringBytes)
	}
	for _, h := range []schema.Head{
		{Origin: "tianjin", Epoch: "01JNQ8ZK3M5T2V7W9X1Y4Z6A8B", Seq: 3},
		{Origin: "hq", Seq: 1},
		{Origin: "hebei", Epoch: strings.Repeat("e", schema.MaxEpochBytes), Seq: 1},
		{Origin: "hebei", Epoch: strings.Repeat("e", wire.MaxStringBytes), Seq: 1},
		{Origin: "hebei", Epoch: strings.Repeat("e", wire.MaxStringBytes+1), Seq: 1},
		{Origin: "", Epoch: "e1", Seq: 1},
		{Origin: "Hebei", Epoch: "e1", Seq: 1},
		{Origin: strings.Repeat("a", 33), Epoch: "e1", Seq: 1},
	} {
		heads := []schema.Head{h}
		_, err := wire.Decode(wire.Encode(&wire.Heads{Federation: "jjj", Heads: heads, Digest: wire.HeadsDigest(heads)}))
		if err != nil && !errors.Is(err, wire.ErrMalformed) {
			t.Fatal(err)
		}
		if valid := wire.ValidHead(h); valid != (err == nil) {
			t.Errorf("head %.40q/%.40q: ValidHead %v, Decode: %v", h.Origin, h.Epoch, valid, err)
		}
	}
}
