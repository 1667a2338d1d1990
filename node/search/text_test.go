package search

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// TestDecodeTextFastTakesCorpus checks that the bodies of the test corpus,
// compact as the store keeps them, take decodeTextFast and decode as
// encoding/json decodes them: if they fell back, indexing would quietly be
// a sixth slower.
func TestDecodeTextFastTakesCorpus(t *testing.T) {
	n := 0
	for _, name := range []string{"supply.jsonl", "needs.jsonl", "experts.jsonl"} {
		for _, it := range loadCorpus(t, name) {
			var body bytes.Buffer
			if err := json.Compact(&body, it.Body); err != nil {
				t.Fatal(err)
			}
			var fast textBody
			if !decodeTextFast(body.Bytes(), &fast) {
				t.Fatalf("%s %s: fast path refused %s", name, it.Key, body.Bytes())
			}
			if slow := decodeTextSlow(body.Bytes()); !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%s %s: fast %+v, encoding/json %+v", name, it.Key, fast, slow)
			}
			n++
		}
	}
	if n < 50 {
		t.Fatalf("only %d corpus bodies", n)
	}
}

func TestDecodeTextFastRefuses(t *testing.T) {
	for _, body := range []string{
		`{"title":"a\"b"}`,          // an escape
		`{"title":"a","title":"b"}`, // a duplicate
		`{"Title":"a"}`,             // a case variant
		`{"title": "a"}`,            // space
		`{"keywords":["a", "b"]}`,   // space in an array
		`{"keywords":["a",]}`,       // a trailing comma
		`{"keywords":null}`,
		`{"trl":"5"}`, // another kind of value
		`{"trl":05}`,
		`{"title":null}`,
		`[]`,
		``,
	} {
		var b textBody
		if decodeTextFast([]byte(body), &b) {
			t.Errorf("%s: fast path took it: %+v", body, b)
		}
	}
}

// FuzzDecodeText holds decodeTextFast to encoding/json on any valid JSON:
// where it takes a body, it decodes what encoding/json decodes.
func FuzzDecodeText(f *testing.F) {
	for _, s := range []string{
		`{"title":"锂电池","keywords":["正极","材料"],"trl":6,"industry":"new-materials"}`,
		`{"name":"王","fields":["ai"],"bio":"x","affiliation":"天津大学"}`,
		`{"challenge":{"targets":["a","b"],"bounty":1},"ip":[{"type":"patent","number":"ZL1"}]}`,
		`{"keywords":[],"fields":[""],"deadline":"2026-01-01"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		var fast textBody
		if !decodeTextFast(body, &fast) {
			return
		}
		if slow := decodeTextSlow(body); !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %+v, encoding/json %+v", body, fast, slow)
		}
	})
}
