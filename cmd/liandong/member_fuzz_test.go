package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
)

// FuzzDecodeMember: a --member file of any content is decoded or refused with
// an error naming the file, never a panic; a decoded file held exactly one
// JSON value, and the entry re-encodes to one that decodes to itself.
func FuzzDecodeMember(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzDecodeMember.
	f.Fuzz(func(t *testing.T, data []byte) {
		const name = "member.json"
		m, err := decodeMember(name, data)
		if err != nil {
			if !strings.Contains(err.Error(), name) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("decoded a file that holds no JSON value: %v", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			t.Fatalf("decoded a file with more after its entry: %q", data[dec.InputOffset():])
		}
		js, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("decoded entry does not encode: %v", err)
		}
		m2, err := decodeMember(name, js)
		if err != nil {
			t.Fatalf("re-encoded entry refused: %v\n%s", err, js)
		}
		js2, _ := json.Marshal(m2)
		if !bytes.Equal(js, js2) {
			t.Fatalf("entry changed on a round trip:\n%s\n%s", js, js2)
		}
	})
}
