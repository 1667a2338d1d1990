package store

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"liandong/schema"
)

func expert(visibility string) *schema.Record {
	body := `{ "name": "李某", "title": "教授", "affiliation": "河北工业大学", "fields": ["new-materials"],
	  "bio": "从事电池材料研究 <储能> & \u2028", "contact": {"email": "li@hebut.edu.cn"}, "roles": ["evaluation"] }`
	return &schema.Record{Catalogue: schema.CatalogueExpert, Visibility: visibility, Schema: 1, Body: json.RawMessage(body)}
}

// TestPreparedWritesApplyAsLegacyCommands: a write prepared and encoded as
// today's binary command leaves the same signed log and the same records as
// the JSON command older logs hold, which a restart still replays.
func TestPreparedWritesApplyAsLegacyCommands(t *testing.T) {
	type step struct {
		op  Op
		id  string
		rec *schema.Record
	}
	steps := []step{
		{OpCreate, "tianjin:s1", supply("高镍三元正极材料", schema.VisibilityFederation)},
		{OpCreate, "tianjin:e1", expert(schema.VisibilityFederation)},
		{OpCreate, "tianjin:p1", supply("内部", schema.VisibilityPrivate)},
		{OpPut, "tianjin:s1", supply("高镍三元正极材料 v2", schema.VisibilityFederation)},
		{OpPut, "tianjin:e1", expert(schema.VisibilityPrivate)}, // a withdrawal
		{OpPut, "tianjin:p1", supply("公开", schema.VisibilityPublic)},
		{OpDelete, "tianjin:s1", nil},
	}
	k := mustKey(t, "tianjin")
	legacy, prepared := mustOpen(t, "tianjin", k), mustOpen(t, "tianjin", k)
	for i, st := range steps {
		w := WriteCommand{Op: st.op, ID: st.id, Record: st.rec, At: t0.Add(time.Duration(i) * time.Second), Epoch: "E1"}
		js, err := json.Marshal(&w)
		if err != nil {
			t.Fatal(err)
		}
		p := w
		if err := PrepareWrite(&p); err != nil {
			t.Fatal(err)
		}
		if st.rec != nil && (!p.Canonical || schema.CheckCanonical(p.Record.Body) != nil) {
			t.Fatalf("step %d: not prepared: %+v", i, p)
		}
		data, err := EncodeCommand(&Command{Write: &p})
		if err != nil {
			t.Fatal(err)
		}
		if data[0] != cmdWriteV2 {
			t.Fatalf("EncodeCommand wrote kind %q", data[0])
		}
		idx := uint64(i + 1)
		lr, err := legacy.Apply([]Log{{Index: idx, Term: 1, Data: append([]byte{cmdWrite}, js...)}})
		if err != nil || lr[0].Err != nil {
			t.Fatalf("step %d, legacy: %v %v", i, err, lr[0].Err)
		}
		pr, err := prepared.Apply([]Log{{Index: idx, Term: 1, Data: data}})
		if err != nil || pr[0].Err != nil {
			t.Fatalf("step %d, prepared: %v %v", i, err, pr[0].Err)
		}
		if (lr[0].Entry == nil) != (pr[0].Entry == nil) {
			t.Fatalf("step %d: entry %v, legacy entry %v", i, pr[0].Entry, lr[0].Entry)
		}
		if e := pr[0].Entry; e != nil && (!bytes.Equal(e.Raw, lr[0].Entry.Raw) || e.Hash() != lr[0].Entry.Hash()) {
			t.Fatalf("step %d: entries differ:\n prepared %s\n legacy   %s", i, e.Raw, lr[0].Entry.Raw)
		}
		for _, id := range []string{"tianjin:s1", "tianjin:e1", "tianjin:p1"} {
			a, aerr := legacy.Get(id)
			b, berr := prepared.Get(id)
			if (aerr == nil) != (berr == nil) {
				t.Fatalf("step %d, %s: %v / %v", i, id, aerr, berr)
			}
			if aerr == nil && !sameRecord(t, a, b) {
				t.Fatalf("step %d, %s: records differ:\n prepared %+v\n legacy   %+v", i, id, b, a)
			}
		}
	}
	if bytes.Contains(mustLog(t, prepared), []byte("hebut.edu.cn")) {
		t.Fatal("the prepared log carries the expert's contact")
	}
}

func mustLog(t *testing.T, s *Store) []byte {
	t.Helper()
	es, err := s.ReadRange("tianjin", 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for _, e := range es {
		all = append(all, e.Raw...)
	}
	return all
}

// sameRecord compares records with their bodies as JSON values.
func sameRecord(t *testing.T, a, b *schema.Record) bool {
	t.Helper()
	var av, bv any
	if json.Unmarshal(a.Body, &av) != nil || json.Unmarshal(b.Body, &bv) != nil {
		t.Fatalf("bodies do not decode: %s / %s", a.Body, b.Body)
	}
	ac, bc := *a, *b
	ac.Body, bc.Body = nil, nil
	return reflect.DeepEqual(av, bv) && reflect.DeepEqual(ac, bc)
}

func TestEncodeRecordMatchesEncodingJSON(t *testing.T) {
	for _, r := range []*schema.Record{supply("x", schema.VisibilityFederation), expert(schema.VisibilityPrivate), {ID: "tianjin:x", Body: nil}, {ID: "tianjin:y", Deleted: true, Body: json.RawMessage("{}")}} {
		got, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		var a, b schema.Record
		want, _ := json.Marshal(r)
		if json.Unmarshal(got, &a) != nil || json.Unmarshal(want, &b) != nil || !sameRecord(t, &a, &b) {
			t.Fatalf("encodeRecord = %s\nencoding/json %s", got, want)
		}
	}
}

// FuzzDecodeCommand: a raft log payload never panics the decoder, and a
// write command that decodes re-encodes to a command that decodes alike.
func FuzzDecodeCommand(f *testing.F) {
	w := &WriteCommand{Op: OpCreate, ID: "tianjin:a", Record: supply("x", schema.VisibilityFederation), At: t0, Epoch: "E1"}
	if err := PrepareWrite(w); err != nil {
		f.Fatal(err)
	}
	for _, c := range []*Command{{Write: w}, {Replica: &ReplicaCommand{Replica: Replica{ID: "r1"}}}} {
		data, err := EncodeCommand(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("w\x02{}\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCommand(data)
		if err != nil || c.Write == nil || len(data) == 0 || data[0] != cmdWriteV2 {
			return
		}
		again, err := EncodeCommand(c)
		if err != nil {
			return // e.g. a body that is not JSON: encoding/json refuses it
		}
		c2, err := DecodeCommand(again)
		if err != nil || !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip: %+v → %v %+v", c, err, c2)
		}
	})
}

// FuzzIndexedBody: reading the three indexed members by walking a compact
// body gives what encoding/json gives for any valid body.
func FuzzIndexedBody(f *testing.F) {
	for _, s := range []string{
		`{"industry":"new-materials","fields":["a","b"],"status":"open"}`,
		`{"Industry":"x","industry":"y","FIELDS":["z",1],"status":5}`,
		`{"a":{"industry":"no"},"b":"\"industry\":","industry":null,"fields":null}`,
		`{ "industry" : "spaced" }`, `{"in\u0064ustry":"escaped"}`, `{}`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if !json.Valid(body) {
			return
		}
		var want, got indexedBody
		_ = json.Unmarshal(body, &want)
		decodeIndexedBody(body, &got)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("decodeIndexedBody(%s) = %+v, encoding/json %+v", body, got, want)
		}
	})
}
