package api

import (
	"testing"

	"liandong/schema"
)

// FuzzMarkedBodiesAreCanonical: a body the API marks canonical (single
// record or batch item) passes the check every replica's state machine
// makes, schema.CheckCanonical: the leader skips that check for it.
func FuzzMarkedBodiesAreCanonical(f *testing.F) {
	for _, s := range []string{
		`{"body":{"industry":"other","title":"x"},"catalogue":"supply"}`,
		`{"items":[{"method":"PUT","id":"tianjin:a","record":{"body":{"a":[1,{"b":"\u00e9"}]}}}]}`,
		`{"items":[{"RECORD":{"body":{"a":1}},"method":"POST"}]}`,
		`{"body":null}`, `{"body":"x"}`, `{"body":-0}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		check := func(rec *schema.Record) {
			if rec != nil && rec.BodyCanonical() {
				if err := schema.CheckCanonical(rec.Body); err != nil {
					t.Fatalf("body %q marked canonical: %v", rec.Body, err)
				}
			}
		}
		if req, err := decodeRecord([]byte(data), "", "tianjin"); err == nil {
			check(req.rec)
		}
		items, err := decodeBatch([]byte(data), "tianjin")
		if err != nil {
			return
		}
		for _, it := range items {
			if it.err == nil && it.req != nil {
				check(it.req.rec)
			}
		}
	})
}
