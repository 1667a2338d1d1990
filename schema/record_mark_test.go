package schema

import (
	"encoding/json"
	"testing"
)

// TestBodyCanonicalMark: the mark holds for the body it was set on and for
// a clone's copy, and not once the body is replaced; AppendRecordJSON takes
// a marked body as it is instead of walking it. (The body below is not
// canonical, which no caller marks, to show which way the encoder went.)
func TestBodyCanonicalMark(t *testing.T) {
	r := &Record{ID: "tianjin:x", Body: json.RawMessage(`{"b":1,"a":2}`)}
	if r.BodyCanonical() {
		t.Fatal("unmarked body reported canonical")
	}
	if _, ok := AppendRecordJSON(nil, r); ok {
		t.Fatal("an unmarked non-canonical body was taken as it is")
	}
	r.MarkBodyCanonical()
	c := r.Clone()
	if !r.BodyCanonical() || !c.BodyCanonical() {
		t.Fatalf("mark lost: on the record %v, on its clone %v", r.BodyCanonical(), c.BodyCanonical())
	}
	if _, ok := AppendRecordJSON(nil, c); !ok {
		t.Fatal("a marked body was walked")
	}
	c.Body = json.RawMessage(`{"b":1,"a":2}`)
	if c.BodyCanonical() {
		t.Fatal("a replaced body kept the mark")
	}
	var empty Record
	empty.MarkBodyCanonical()
	if empty.BodyCanonical() {
		t.Fatal("an absent body reported canonical")
	}
}
