package store

import (
	"bytes"
	"encoding/json"
	"testing"

	"liandong/schema"
)

// TestOwnWritesSkipOnlyTheirOwnCheck: the state machine takes a write's
// bodies as canonical without checking them only for the very payload
// EncodeOwn listed, and only until it is released; a copy of the same bytes
// (a follower's, a log read back at start) is checked. The body here is
// not canonical although marked so, which no caller does: it shows which
// way the state machine went, spliced as it is (trusted) or re-encoded by
// NewEntry (checked).
func TestOwnWritesSkipOnlyTheirOwnCheck(t *testing.T) {
	const liar, fixed = `{"b":1,"a":2}`, `{"a":2,"b":1}`
	k := mustKey(t, "tianjin")
	for _, tc := range []struct {
		name    string
		prepare bool // PrepareWrite, with the body marked canonical
		apply   func(data []byte, release func()) []byte
		want    string
	}{
		{"own payload", true, func(d []byte, _ func()) []byte { return d }, liar},
		{"copy of it", true, func(d []byte, _ func()) []byte { return bytes.Clone(d) }, fixed},
		{"released first", true, func(d []byte, release func()) []byte { release(); return d }, fixed},
		{"not prepared here", false, func(d []byte, _ func()) []byte { return d }, fixed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustOpen(t, "tianjin", k)
			rec := &schema.Record{Catalogue: schema.CatalogueSupply, Visibility: schema.VisibilityFederation, Schema: 1, Body: json.RawMessage(liar)}
			w := &WriteCommand{Op: OpCreate, ID: "tianjin:x", Record: rec, At: t0, Epoch: "E1"}
			if tc.prepare {
				rec.MarkBodyCanonical()
				if err := PrepareWrite(w); err != nil {
					t.Fatal(err)
				}
			} else {
				w.Canonical = true // claimed, as a command from the log may
			}
			data, release, err := s.EncodeOwn(&Command{Write: w})
			if err != nil {
				t.Fatal(err)
			}
			defer release()
			res, err := s.Apply([]Log{{Index: 1, Term: 1, Data: tc.apply(data, release)}})
			if err != nil || res[0].Err != nil || res[0].Entry == nil {
				t.Fatalf("apply: %v %+v", err, res)
			}
			if !bytes.Contains(res[0].Entry.Raw, []byte(`"body":`+tc.want)) {
				t.Fatalf("entry %s, want the body %s in it", res[0].Entry.Raw, tc.want)
			}
		})
	}
}

// TestPrepareWriteTakesTheMark: PrepareWrite canonicalises a body unless it
// is marked canonical, and a body replaced after the mark is not marked.
func TestPrepareWriteTakesTheMark(t *testing.T) {
	const spaced = `{ "title": "x" }`
	for _, tc := range []struct {
		name string
		mark func(r *schema.Record)
		want string
	}{
		{"unmarked", func(*schema.Record) {}, `{"title":"x"}`},
		{"marked", (*schema.Record).MarkBodyCanonical, spaced},
		{"marked, then cloned", func(r *schema.Record) { r.MarkBodyCanonical(); *r = *r.Clone() }, spaced},
		{"marked, then replaced", func(r *schema.Record) {
			r.MarkBodyCanonical()
			r.Body = json.RawMessage(string(r.Body))
		}, `{"title":"x"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &schema.Record{Catalogue: schema.CatalogueSupply, Visibility: schema.VisibilityFederation, Body: json.RawMessage(spaced)}
			tc.mark(rec)
			w := &WriteCommand{Op: OpCreate, ID: "tianjin:x", Record: rec}
			if err := PrepareWrite(w); err != nil {
				t.Fatal(err)
			}
			if string(w.Record.Body) != tc.want {
				t.Fatalf("prepared body %s, want %s", w.Record.Body, tc.want)
			}
		})
	}
}
