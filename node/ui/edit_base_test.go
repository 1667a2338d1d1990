package ui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"liandong/schema"
)

// Two rights with the same shown line, told apart only by a member the form
// does not show (note, country). The user edits the FIRST line only; the
// second line is submitted exactly as it was shown.
func TestEditFirstOfTwoLinesShownAlike(t *testing.T) {
	for _, c := range []struct{ name, stored, text, want string }{
		{"two know-how rights without number",
			`{"ip":[{"type":"know-how","note":"配方"},{"type":"know-how","note":"工艺"}]}`,
			"know-how | - | granted\nknow-how | - | -",
			`[{"note":"配方","status":"granted","type":"know-how"},{"note":"工艺","type":"know-how"}]`},
		{"same type+number, two countries",
			`{"ip":[{"type":"patent","number":"ZL1","status":"pending","country":"CN"},{"type":"patent","number":"ZL1","status":"pending","country":"US"}]}`,
			"patent | ZL1 | granted\npatent | ZL1 | pending",
			`[{"country":"CN","number":"ZL1","status":"granted","type":"patent"},{"country":"US","number":"ZL1","status":"pending","type":"patent"}]`},
	} {
		got, err := buildBody(formSpecs["supply"], formValues{"body.ip": {c.text}}, json.RawMessage(c.stored))
		if err != nil {
			t.Fatal(err)
		}
		if ip, _ := json.Marshal(bodyMap(t, got)["ip"]); string(ip) != c.want {
			t.Errorf("%s: edited line 1 only:\n got %s\nwant %s", c.name, ip, c.want)
		}
	}
}

// The consistent read fails once (a leader change); the local copy lags at
// version 1; the write then goes through (new leader) at version 2. The form
// was opened at version 2, which added contact.wechat "li_wx" (a member the form does
// not show). The save must not write a body built on version 1 under
// If-Match 2.
func TestEditFallbackToOlderCopyIsRefused(t *testing.T) {
	v1 := schema.Record{ID: "tianjin:01TESTRECORD", Catalogue: "need", Origin: "tianjin", Version: 1, Visibility: "federation",
		Body: json.RawMessage(`{"title":"需求","description":"描述","industry":"new-materials","enterprise":"某公司","contact":{"person":"李经理"}}`)}
	var putIfMatch string
	var putBody []byte
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Query().Get("consistent") == "true":
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"status":503,"title":"Service Unavailable","detail":"leadership changed"}`))
		case r.Method == http.MethodGet:
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(v1) // this replica lags: version 1
		case r.Method == http.MethodPut:
			putIfMatch = r.Header.Get("If-Match")
			putBody, _ = io.ReadAll(r.Body)
			if putIfMatch != "2" { // live is at version 2
				w.Header().Set("Content-Type", "application/problem+json")
				w.WriteHeader(http.StatusPreconditionFailed)
				w.Write([]byte(`{"status":412,"title":"Precondition Failed","detail":"record is at version 2"}`))
				return
			}
			var rec schema.Record
			json.Unmarshal(putBody, &rec)
			rec.ID, rec.Origin, rec.Version = v1.ID, "tianjin", 3
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(rec)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	})
	e, tok := consoleOver(t, api)
	// The form as opened at version 2 (contact.wechat added then, not shown); the user edits the description.
	res := e.post("/ui/records/"+v1.ID+"/edit", url.Values{"catalogue": {"need"}, "version": {"2"}, "_list": {"lines"},
		"body.title": {"需求"}, "body.description": {"新描述"}, "body.industry": {"new-materials"}, "body.enterprise": {"某公司"},
		"body.contact.person": {"李经理"}}, session(tok)...)
	if putBody == nil || putIfMatch != "2" {
		return // refused: fine
	}
	// Accepted by the leader over version 2, whose body had contact.wechat.
	if !strings.Contains(string(putBody), "li_wx") {
		t.Fatalf("save accepted (status %d, If-Match %s) with a body built on the local version 1: contact.wechat of version 2 erased:\n%s", res.StatusCode, putIfMatch, putBody)
	}
}
