package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"liandong/node/store"
	"liandong/schema"
)

// FuzzDecodeReplica: a replica to add (POST /v1/replicas, from an admin of
// the centre or a joining replica) of any body is read or refused with a 400
// naming the member at fault where it is one, never a panic; what is read
// was the whole body, one JSON object, and re-encodes to itself.
func FuzzDecodeReplica(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzDecodeReplica.
	f.Fuzz(func(t *testing.T, body []byte) {
		var r store.Replica
		err := decodeReplica(bytes.NewReader(body), &r)
		if err != nil {
			var p *problem
			if !errors.As(err, &p) || p.Status != http.StatusBadRequest || len(p.Errors) != 1 {
				t.Fatalf("refusal is not a 400 with one field error: %#v", err)
			}
			// A member of the wrong type is named (a body of the wrong
			// type, such as an array, has none to name).
			var te *json.UnmarshalTypeError
			if errors.As(json.Unmarshal(body, new(store.Replica)), &te) && te.Field != "" &&
				(p.Errors[0].Rule != schema.RuleType || p.Errors[0].Path != te.Field) {
				t.Fatalf("member %s of the wrong type refused as %+v", te.Field, p.Errors[0])
			}
			// An unknown member is named (even one named "").
			if fe := p.Errors[0]; fe.Rule == schema.RuleForbidden && !strings.Contains(p.Detail, strconv.Quote(fe.Path)) {
				t.Fatalf("unknown member named %q: %v", fe.Path, err)
			}
			return
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		var v map[string]any
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("read a body that holds no JSON object: %v", err)
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			t.Fatalf("read a body with more after its object (%d bytes)", len(body))
		}
		js, _ := json.Marshal(r)
		var r2 store.Replica
		if err := decodeReplica(bytes.NewReader(js), &r2); err != nil || r2 != r {
			t.Fatalf("replica changed on a round trip: %+v then %+v (%v)", r, r2, err)
		}
	})
}
