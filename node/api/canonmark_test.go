package api

import "testing"

// TestDecodeRecordMarksCanonicalBodies: a request checkJSON found canonical
// hands its body on marked canonical (so PrepareWrite does not walk it
// again); any other request's body is not marked, whatever it looks like.
func TestDecodeRecordMarksCanonicalBodies(t *testing.T) {
	for _, tc := range []struct {
		name, req string
		want      bool
	}{
		{"canonical", `{"body":{"industry":"other","title":"x"},"catalogue":"supply"}`, true},
		{"a space outside the body", `{"body":{"industry":"other","title":"x"}, "catalogue":"supply"}`, false},
		{"members unsorted", `{"catalogue":"supply","body":{"industry":"other","title":"x"}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := decodeRecord([]byte(tc.req), "", "tianjin")
			if err != nil {
				t.Fatal(err)
			}
			if got := req.rec.BodyCanonical(); got != tc.want {
				t.Fatalf("body %s marked canonical: %v, want %v", req.rec.Body, got, tc.want)
			}
		})
	}
}
