package ui

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"liandong/schema"
)

// FuzzBuildBody: a console form (typed values, a stored body of any shape) gives
// valid JSON or an error, never a panic; the edit form of a stored body, sent
// back unchanged, gives the same canonical body.
func FuzzBuildBody(f *testing.F) {
	f.Add(`{"ip":[{"type":"patent","number":"ZL1","status":"granted","country":"CN"},"x",null,true],"title":"t"}`, "patent | ZL1 | granted\nx\non\n", "a,b", "1", "supply")
	f.Add(`{"budget":5,"challenge":{"bounty":1},"contact":{"person":"p","x":1}}`, "", "", "１２", "need")
	f.Add(`{"fields":["ai",1,null],"roles":"x"}`, "", "", "", "expert")
	f.Fuzz(func(t *testing.T, base, ip, list, num, cat string) {
		secs, ok := formSpecs[cat]
		if !ok {
			secs = formSpecs["supply"]
		}
		v := formValues{}
		for _, sec := range secs {
			for _, fs := range sec.fields {
				switch fs.kind {
				case kIP, kLines, kTextarea:
					v[fs.name] = []string{ip}
				case kList, kChecks:
					v[fs.name] = strings.Split(list, ",")
				case kInt, kNumber:
					v[fs.name] = []string{num}
				default:
					v[fs.name] = []string{list}
				}
			}
		}
		if len(num)%2 == 0 {
			v[listFormat] = []string{listLines}
		}
		got, err := buildBody(secs, v, json.RawMessage(base))
		if err == nil && !json.Valid(got) {
			t.Fatalf("invalid JSON %q", got)
		}
		// the edit form's values from the stored body, submitted unchanged
		if !json.Valid([]byte(base)) || !strings.HasPrefix(strings.TrimSpace(base), "{") {
			return
		}
		rec := &schema.Record{Catalogue: cat, Visibility: "federation", Body: json.RawMessage(base)}
		v2 := valuesOf(secs, rec)
		got2, err := buildBody(secs, v2, json.RawMessage(base))
		if err != nil {
			return
		}
		a, aerr := schema.Canonical([]byte(base))
		b, berr := schema.Canonical(got2)
		if aerr == nil && berr == nil && !bytes.Equal(a, b) {
			t.Fatalf("unchanged form changed the body:\n%s\n%s", a, b)
		}
	})
}
