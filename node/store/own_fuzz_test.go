package store

import (
	"bytes"
	"encoding/json"
	"testing"

	"liandong/schema"
)

// FuzzOwnWriteAgreesWithReplica: the leader, applying the very payload it
// proposed (its check skipped, ownWrites), signs the entry a follower signs
// from its copy of the payload (checked). A body the leader trusts that the
// follower's check refuses would sign two different entries: the group's
// replicas would disagree about the centre's log.
func FuzzOwnWriteAgreesWithReplica(f *testing.F) {
	for _, s := range []string{
		`{"title":"x"}`, `{ "title": "x" }`, `{"contact":{"person":"王"},"title":"x"}`,
		`{"title":"\u00e9"}`, `{"a":1.0}`, `{"a":1e2}`, `{"a":[1,2,{"b":null}]}`,
		`{"owner_org":"x","title":"<b>"}`, `{"a":"\u2028"}`, `{"title":12345678901234567890}`,
	} {
		f.Add(s, true, false)
		f.Add(s, false, true)
	}
	k := mustKey(f, "tianjin")
	f.Fuzz(func(t *testing.T, body string, mark, private bool) {
		if !json.Valid([]byte(body)) {
			return
		}
		vis := schema.VisibilityFederation
		if private {
			vis = schema.VisibilityPrivate
		}
		rec := &schema.Record{ID: "tianjin:x", Origin: "tianjin", Version: 1, Catalogue: schema.CatalogueSupply, Visibility: vis, Schema: 1, Body: json.RawMessage(body)}
		// What the API marks: a body its check found canonical.
		if mark && schema.CheckCanonical(rec.Body) == nil {
			rec.MarkBodyCanonical()
		}
		w := &WriteCommand{Op: OpCreate, ID: "tianjin:x", Record: rec, At: t0, Epoch: "E1"}
		if err := PrepareWrite(w); err != nil {
			return
		}
		leader, follower := mustOpen(t, "tianjin", k), mustOpen(t, "tianjin", k)
		data, release, err := leader.EncodeOwn(&Command{Write: w})
		if err != nil {
			return
		}
		defer release()
		lr, lerr := leader.Apply([]Log{{Index: 1, Term: 1, Data: data}})
		fr, ferr := follower.Apply([]Log{{Index: 1, Term: 1, Data: bytes.Clone(data)}})
		if (lerr == nil) != (ferr == nil) {
			t.Fatalf("body %q: leader's apply %v, follower's %v", body, lerr, ferr)
		}
		if lerr != nil {
			return
		}
		if (lr[0].Err == nil) != (fr[0].Err == nil) {
			t.Fatalf("body %q: leader's result %v, follower's %v", body, lr[0].Err, fr[0].Err)
		}
		le, fe := lr[0].Entry, fr[0].Entry
		if (le == nil) != (fe == nil) || le != nil && !bytes.Equal(le.Raw, fe.Raw) {
			t.Fatalf("body %q: leader signed %s, follower %s", body, entryRaw(le), entryRaw(fe))
		}
	})
}

func entryRaw(e *schema.Entry) []byte {
	if e == nil {
		return nil
	}
	return e.Raw
}
