package store

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzDecodeIndexedBody: decodeIndexedBody reads what json.Unmarshal reads
// (errors ignored) from any valid JSON, as the indexes always read it.
func FuzzDecodeIndexedBody(f *testing.F) {
	f.Add([]byte(`{"industry":"new-materials","status":"open","fields":["a","b"]}`))
	f.Add([]byte(`{"Industry":"a","industry":"b","STATUS":"c"}`))
	f.Add([]byte(`{"industry":"\u00e9\n","status":1,"fields":null}`))
	f.Add([]byte(`{"industry":null,"status":"x\"y","fields":[1,"a"]}`))
	f.Add([]byte(`{ "industry" : "spaced" }`))
	f.Add([]byte("{\"industry\":\"\xff\"}"))
	f.Add([]byte(`["industry"]`))
	// Review 153: names escaped or folded beyond ASCII (encoding/json
	// matches "ſtatus" and "\u212Aey" by Unicode folding), surrogates,
	// numbers in strings, nested members and a duplicate of another kind.
	f.Add([]byte(`{"industr\u0079":"x","\u0073tatus":"s"}`))
	f.Add([]byte(`{"ſtatus":"x","İndustry":"y"}`))
	f.Add([]byte(`{"industry":"\ud800","status":"\ud83d\ude00"}`))
	f.Add([]byte(`{"industry":"1","status":2,"fields":["3",4]}`))
	f.Add([]byte(`{"x":{"industry":"n","status":"o"},"industry":"m"}`))
	f.Add([]byte(`{"industry":"a","industry":1,"status":"b","STATUS":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		var got, want indexedBody
		decodeIndexedBody(body, &got)
		_ = json.Unmarshal(body, &want)
		if got.Industry != want.Industry || got.Status != want.Status || !slices.Equal(got.Fields, want.Fields) {
			t.Fatalf("decodeIndexedBody(%s) = %+v; encoding/json %+v", body, got, want)
		}
	})
}
