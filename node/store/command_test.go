package store

import (
	"bytes"
	"encoding/json"
	"fmt"
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

// TestPreparedWritesApplyAsLegacyCommands: a prepared write leaves the same
// signed log and the same records at a replica of this build as at one of an
// older build, which knows neither member PrepareWrite adds and takes the long
// way (and as the unprepared commands older logs hold, which a restart
// replays): a centre's replicas can be upgraded one at a time.
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
		// What an older build reads of it: the members it knows.
		var members map[string]json.RawMessage
		if err := json.Unmarshal(data[1:], &members); err != nil {
			t.Fatal(err)
		}
		if st.rec != nil && (members["canonical"] == nil || members["record"] == nil) {
			t.Fatalf("step %d: command %s", i, data)
		}
		delete(members, "canonical")
		delete(members, "shared_body")
		old, err := json.Marshal(members)
		if err != nil {
			t.Fatal(err)
		}
		idx := uint64(i + 1)
		lr, err := legacy.Apply([]Log{{Index: idx, Term: 1, Data: append([]byte{cmdWrite}, old...)}})
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
	for _, r := range []*schema.Record{supply("x", schema.VisibilityFederation), expert(schema.VisibilityPrivate), {ID: "tianjin:x", Body: nil}, {ID: "tianjin:y", Deleted: true, Body: json.RawMessage("{}")},
		{ID: "tianjin:z", Body: json.RawMessage(`{ "kept": "as it is", "x":1 }`)}, {ID: "tianjin:<w>", Body: json.RawMessage(`{"t":"<b>"}`)}} {
		got, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		var a, b schema.Record
		want, _ := json.Marshal(r)
		if json.Unmarshal(got, &a) != nil || json.Unmarshal(want, &b) != nil || !sameRecord(t, &a, &b) {
			t.Fatalf("encodeRecord = %s\nencoding/json %s", got, want)
		}
		if r.Body != nil && !bytes.HasSuffix(got, append(append([]byte(`"body":`), r.Body...), '}')) {
			t.Fatalf("encodeRecord = %s: the body is not as it was", got)
		}
	}
}

// FuzzDecodeCommand: a raft log payload never panics the decoder.
func FuzzDecodeCommand(f *testing.F) {
	w := &WriteCommand{Op: OpCreate, ID: "tianjin:a", Record: expert(schema.VisibilityFederation), At: t0, Epoch: "E1"}
	if err := PrepareWrite(w); err != nil {
		f.Fatal(err)
	}
	for _, c := range []*Command{{Write: w}, {Replica: &ReplicaCommand{Replica: Replica{ID: "r1"}}},
		{Remote: &RemoteCommand{Origin: "hebei"}}} {
		data, err := EncodeCommand(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("R\x05hebei\x03abc"))
	f.Add([]byte(`W{"op":"put","ID":"x","record":null,"shared_body":null,"canonical":false,"if_match":0}`))
	f.Add([]byte(`W{"op":"put","id":"x","record":{"id":"a","Body":{}},"at":"2026-01-01T00:00:00Z"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := DecodeCommand(data)
		// A write command decodes to encoding/json's result, whichever
		// decoder took it.
		if len(data) == 0 || data[0] != cmdWrite || !json.Valid(data[1:]) {
			return
		}
		var want WriteCommand
		werr := json.Unmarshal(data[1:], &want)
		if (err == nil) != (werr == nil) {
			t.Fatalf("DecodeCommand(%s): error %v; encoding/json %v", data, err, werr)
		}
		if err == nil && !reflect.DeepEqual(*c.Write, want) {
			t.Fatalf("DecodeCommand(%s) = %+v; encoding/json %+v", data, *c.Write, want)
		}
	})
}

// TestWriteCommandsTakeTheFastDecoder: what EncodeCommand writes for a write
// is decoded without encoding/json, to the same command.
func TestWriteCommandsTakeTheFastDecoder(t *testing.T) {
	exp := t0.Add(time.Hour)
	rec := expert(schema.VisibilityFederation)
	rec.ExpiresAt = &exp
	for i, w := range []*WriteCommand{
		{Op: OpCreate, ID: "tianjin:a", Record: expert(schema.VisibilityFederation), At: t0, Epoch: "E1"},
		{Op: OpPut, ID: "tianjin:b", IfMatch: 3, Record: rec, At: t0, Epoch: "E1", KeyID: "k2"},
		{Op: OpDelete, ID: "tianjin:c", At: t0, Epoch: "E1"},
		{Op: OpPut, ID: "tianjin:d", IfAbsent: true, Record: expert(schema.VisibilityFederation), At: t0, Epoch: "E1"},
		{Op: OpPut, ID: "tianjin:k", KeepCatalogue: true, Record: supply("高镍", schema.VisibilityFederation), At: t0, Epoch: "E1"},
	} {
		if err := PrepareWrite(w); err != nil {
			t.Fatal(err)
		}
		data, err := EncodeCommand(&Command{Write: w})
		if err != nil {
			t.Fatal(err)
		}
		var got WriteCommand
		if !decodeWriteFast(data[1:], &got) {
			t.Fatalf("command %d: the fast decoder refused %s", i, data)
		}
		var want WriteCommand
		if err := json.Unmarshal(data[1:], &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("command %d: fast %+v, encoding/json %+v", i, got, want)
		}
		if got.IfAbsent != w.IfAbsent || got.KeepCatalogue != w.KeepCatalogue {
			t.Fatalf("command %d: %s decodes to if_absent %v, keep_catalogue %v", i, data, got.IfAbsent, got.KeepCatalogue)
		}
	}
}

// TestCanonicalClaimIsChecked: a command that claims a canonical body it does
// not have still yields the canonical entry peers accept.
func TestCanonicalClaimIsChecked(t *testing.T) {
	k := mustKey(t, "tianjin")
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}
	rec := &schema.Record{Catalogue: schema.CatalogueSupply, Visibility: schema.VisibilityFederation, Schema: 1,
		Body: json.RawMessage(`{"title":"x <y>", "summary":"s","industry":"new-materials"}`)}
	for i, shared := range []json.RawMessage{nil, json.RawMessage(`{ "title": "x" }`)} {
		r := a.apply(&Command{Write: &WriteCommand{Op: OpCreate, ID: fmt.Sprintf("tianjin:c%d", i), Record: rec, At: t0, Epoch: "E1", Canonical: true, SharedBody: shared}})[0]
		if r.Err != nil || r.Entry == nil {
			t.Fatalf("write: %+v", r)
		}
		if err := schema.CheckCanonical(r.Entry.Raw); err != nil {
			t.Fatalf("entry not canonical (%v): %s", err, r.Entry.Raw)
		}
	}
}

// TestUnpreparedCommandsAreWalked: only PrepareWrite's own promise lets the
// encoder splice a body; a command that says Canonical (decoded, or built by
// hand) has its bodies walked, and one that is not JSON is refused rather
// than written into the raft log, where every replica would fail on it.
func TestUnpreparedCommandsAreWalked(t *testing.T) {
	for _, c := range []struct {
		name         string
		body, shared string
	}{
		{"body", "not json", ""},
		{"shared body", `{"a":1}`, `{"x":`},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := &WriteCommand{Op: OpCreate, ID: "tianjin:a", At: t0, Epoch: "E1", Canonical: true,
				Record: &schema.Record{ID: "tianjin:a", Catalogue: schema.CatalogueSupply, Origin: "tianjin", Version: 1,
					Visibility: schema.VisibilityFederation, Schema: 1, Body: json.RawMessage(c.body)}}
			if c.shared != "" {
				w.SharedBody = json.RawMessage(c.shared)
			}
			if data, err := EncodeCommand(&Command{Write: w}); err == nil {
				t.Fatalf("encoded a command with a body that is not JSON: %s", data)
			}
		})
	}
	w := &WriteCommand{Op: OpCreate, ID: "tianjin:a", Record: expert(schema.VisibilityFederation), At: t0, Epoch: "E1"}
	if err := PrepareWrite(w); err != nil {
		t.Fatal(err)
	}
	data, err := EncodeCommand(&Command{Write: w})
	if err != nil {
		t.Fatal(err)
	}
	if c, err := DecodeCommand(data); err != nil || c.Write.prepared || !c.Write.Canonical {
		t.Fatalf("decoded %+v, %v: want Canonical from the bytes, prepared from nothing", c, err)
	}
}

// FuzzWriteCommandEncoding: when appendWriteCommand takes a command, its bytes
// are those of the encoding/json encoder EncodeCommand used before it.
func FuzzWriteCommandEncoding(f *testing.F) {
	f.Add("create", "tianjin:a", uint64(0), true, `{"name":"张三"}`, int64(1772719928), "E1", "", true, "")
	f.Add("put", "tianjin:<b>", uint64(9), true, `{"a":"<"}`, int64(-1), "E\n1", "k2", false, `{"x":1}`)
	f.Add("delete", "tianjin:c", uint64(1)<<60, false, ``, int64(253402300800), "", "kid", true, `{ "x": 1 }`)
	f.Add("put", "tianjin:d", uint64(2), true, `{ "a": 1 }`, int64(1772719928), "E1", "", false, `{ "b": 2 }`)
	f.Add("put", "tianjin:e", uint64(2), true, `{ "a": 1 }`, int64(1772719928), "E1", "", true, ``)
	f.Fuzz(func(t *testing.T, op, id string, ifMatch uint64, withRecord bool, body string, sec int64, epoch, kid string, canonicalFlag bool, shared string) {
		at := time.Unix(sec, sec%1000).In(time.FixedZone("", int(sec%30000)))
		w := &WriteCommand{Op: Op(op), ID: id, IfMatch: ifMatch, IfAbsent: ifMatch%3 == 1, KeepCatalogue: ifMatch%5 == 2, At: at, Epoch: epoch, KeyID: kid, Canonical: canonicalFlag}
		// prepared is PrepareWrite's promise that the bodies are canonical,
		// which the encoder takes on trust: it never comes with others.
		w.prepared = canonicalFlag && (!withRecord || schema.CheckCanonical([]byte(body)) == nil) &&
			(shared == "" || schema.CheckCanonical([]byte(shared)) == nil)
		if withRecord {
			w.Record = &schema.Record{ID: id, Catalogue: schema.CatalogueExpert, Origin: "tianjin", Version: ifMatch, Visibility: epoch,
				Schema: int(sec % 7), CreatedAt: at, UpdatedAt: at.Add(time.Duration(sec)), Broker: kid, Deleted: canonicalFlag,
				Body: json.RawMessage(body)}
			if sec%2 == 0 {
				exp := time.Now() // with a monotonic reading
				w.Record.ExpiresAt = &exp
			}
		}
		if shared != "" {
			w.SharedBody = json.RawMessage(shared)
		}
		got, ok := appendWriteCommand(nil, w)
		if !ok {
			return
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(w); err != nil {
			t.Fatalf("took a command encoding/json refuses (%v): %s", err, got)
		}
		if want := bytes.TrimSuffix(buf.Bytes(), []byte("\n")); !bytes.Equal(got, want) {
			t.Fatalf("appendWriteCommand %s\n encoding/json %s", got, want)
		}
	})
}
