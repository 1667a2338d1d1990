package exchange

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// FuzzReadMessage feeds arbitrary bytes to the frame reader the exchange uses on
// every stream. It must never panic or read past its limit; every refusal must be
// a fault (the peer's) or an end of input; and whatever decodes must re-encode to
// a frame that decodes to the same encoding.
func FuzzReadMessage(f *testing.F) {
	fed, err := exchangetest.NewFederation("tianjin")
	if err != nil {
		f.Fatal(err)
	}
	es, err := fed.Author("tianjin").NextN(2)
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range []wire.Message{
		&wire.Ping{Nonce: 42},
		&wire.Heads{Request: true, Federation: "jjj-test", BundleVersion: 1},
		&wire.RangeReq{Origin: "tianjin", Epoch: "e1", FromSeq: 1, Limit: 100},
		&wire.RangeReq{Origin: "tianjin", FromSeq: 1, Limit: 100, MaxBatch: 50, MaxFrameBytes: 1 << 20},
		&wire.Batch{Origin: "tianjin", Done: true, Entries: es},
		&wire.Push{Origin: "tianjin", Entries: es[:1]},
		&wire.Error{Code: 3, Message: "epoch"},
	} {
		f.Add(wire.AppendFrame(nil, m))
	}
	f.Add(binary.AppendUvarint(nil, 1<<20))
	const limit = 64 << 10
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for range 64 {
			m, n, err := readMessage(r, limit)
			if err != nil {
				var f *faultError
				if !errors.As(err, &f) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("refusal that is neither a fault nor end of input: %v", err)
				}
				return
			}
			if n > limit+binary.MaxVarintLen64 || n > len(data) {
				t.Fatalf("read %d bytes of %d with a %d limit", n, len(data), limit)
			}
			again := wire.Encode(m)
			m2, err := wire.Decode(again)
			if err != nil {
				t.Fatalf("re-encoded %s does not decode: %v", m.Type(), err)
			}
			if !bytes.Equal(wire.Encode(m2), again) {
				t.Fatalf("%s does not survive a round trip", m.Type())
			}
		}
	})
}
