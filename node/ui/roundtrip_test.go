package ui

// Round trips through the record forms: staff who open a record's edit form
// and save without changing anything get the record back exactly as it was;
// only what they change changes.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	xhtml "golang.org/x/net/html"

	"liandong/auth"
	"liandong/schema"
)

// formOf returns what a browser submits for the page's form #record-form when
// the user changes nothing: text inputs (without line breaks, which a browser
// strips from them), hidden inputs, checked boxes, textareas (line breaks as
// CRLF) and the selected option of each select.
func formOf(t *testing.T, page string) url.Values {
	t.Helper()
	doc, err := xhtml.Parse(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	attr := func(n *xhtml.Node, k string) (string, bool) {
		for _, a := range n.Attr {
			if a.Key == k {
				return a.Val, true
			}
		}
		return "", false
	}
	text := func(n *xhtml.Node) string {
		var b strings.Builder
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type == xhtml.TextNode {
				b.WriteString(c.Data)
			}
		}
		return b.String()
	}
	v := url.Values{}
	var walk func(n *xhtml.Node)
	walk = func(n *xhtml.Node) {
		if n.Type == xhtml.ElementNode {
			name, _ := attr(n, "name")
			switch n.Data {
			case "input":
				typ, _ := attr(n, "type")
				val, _ := attr(n, "value")
				if typ == "checkbox" {
					if _, on := attr(n, "checked"); on {
						v.Add(name, val)
					}
				} else if typ == "text" && name != "" {
					v.Add(name, strings.NewReplacer("\r", "", "\n", "").Replace(val))
				} else if name != "" {
					v.Add(name, val)
				}
			case "textarea":
				// A browser drops the first newline after <textarea>, and
				// submits line breaks as CRLF.
				v.Add(name, strings.ReplaceAll(strings.TrimPrefix(text(n), "\n"), "\n", "\r\n"))
			case "select":
				sel := ""
				for o := n.FirstChild; o != nil; o = o.NextSibling {
					if o.Type == xhtml.ElementNode && o.Data == "option" {
						if _, on := attr(o, "selected"); on {
							sel, _ = attr(o, "value")
						}
					}
				}
				v.Add(name, sel)
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	return v
}

// readRecord reads a record through the API with tok.
func (e *env) readRecord(tok, id string) *schema.Record {
	e.t.Helper()
	r, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/records/"+url.PathEscape(id), nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	res, err := e.cli.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var rec schema.Record
	if err := json.NewDecoder(res.Body).Decode(&rec); err != nil {
		e.t.Fatal(err)
	}
	return &rec
}

// createEnv writes a record with a full envelope through the API.
func (e *env) createEnv(tok string, env map[string]any) *schema.Record {
	e.t.Helper()
	js, _ := json.Marshal(env)
	r, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/records", bytes.NewReader(js))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("Authorization", "Bearer "+tok)
	res, err := e.cli.Do(r)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	var rec schema.Record
	if res.StatusCode != http.StatusCreated {
		e.t.Fatalf("create: %d", res.StatusCode)
	}
	if err := json.NewDecoder(res.Body).Decode(&rec); err != nil {
		e.t.Fatal(err)
	}
	return &rec
}

func bodyMap(t *testing.T, raw json.RawMessage) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// saveUnchanged opens the edit form of id, submits it as the browser would with
// nothing changed, and returns the record after.
func (e *env) saveUnchanged(tok, id string) (*schema.Record, *answer) {
	e.t.Helper()
	s := session(tok)
	form := e.get("/ui/records/"+id+"/edit", s...)
	form.want(e.t, http.StatusOK)
	v := formOf(e.t, form.html)
	saved := e.post("/ui/records/"+id+"/edit", v, s...)
	return e.readRecord(tok, id), saved
}

// TestEditUnchangedKeepsUnshownMembers: members the form does not show are
// kept at the top of the body and inside the objects it fills in part
// (budget, contact).
func TestEditUnchangedKeepsUnshownMembers(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	body := needBody("带扩展字段的需求")
	body["budget"] = map[string]any{"min": 100000, "max": 500000, "currency": "CNY", "note": "含税"}
	body["contact"] = map[string]any{"person": "李经理", "phone": "022-23400000", "wechat": "li_wx"}
	body["source"] = "2026 年度征集"
	rec := e.create(w, "need", "federation", body)
	after, saved := e.saveUnchanged(w, rec.ID)
	if saved.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", saved.StatusCode, saved.html)
	}
	m := bodyMap(t, after.Body)
	if m["source"] != "2026 年度征集" {
		t.Errorf("top-level unknown member lost: %v", m["source"])
	}
	if b, _ := m["budget"].(map[string]any); b["note"] != "含税" {
		t.Errorf("budget.note lost on an unchanged edit: budget now %v", m["budget"])
	}
	if c, _ := m["contact"].(map[string]any); c["wechat"] != "li_wx" {
		t.Errorf("contact.wechat lost on an unchanged edit: contact now %v", m["contact"])
	}
}

// TestEditUnchangedKeepsBodyOfEachCatalogue: the whole body of a record of
// each catalogue comes back from an unchanged edit as it was; a supply item
// without the disruptive flag does not get "disruptive": false.
func TestEditUnchangedKeepsBodyOfEachCatalogue(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	for _, c := range []struct {
		cat  string
		body map[string]any
	}{
		{"supply", func() map[string]any { b := supplyBody("供给", 5); delete(b, "disruptive"); return b }()},
		{"need", needBody("需求")},
		{"expert", map[string]any{"name": "张教授", "affiliation": "天津大学", "fields": []string{"new-materials"}, "roles": []string{"evaluation"}}},
	} {
		rec := e.create(w, c.cat, "federation", c.body)
		after, saved := e.saveUnchanged(w, rec.ID)
		if saved.StatusCode != http.StatusSeeOther {
			t.Errorf("%s save: %d\n%s", c.cat, saved.StatusCode, saved.html)
			continue
		}
		ja, _ := json.Marshal(bodyMap(t, rec.Body))
		jb, _ := json.Marshal(bodyMap(t, after.Body))
		if string(ja) != string(jb) {
			t.Errorf("%s body changed on an unchanged edit:\nbefore %s\nafter  %s", c.cat, ja, jb)
		}
	}
}

// TestBuildBodySetsOnlyWhatTheFormControls: buildBody starts from the stored
// body; a control left empty removes its member, an object left empty is
// dropped, and an unticked box removes no flag the record never had while it
// clears one the record had.
func TestBuildBodySetsOnlyWhatTheFormControls(t *testing.T) {
	for _, c := range []struct {
		name       string
		base, want string
		v          formValues
	}{
		{"unticked, never set", `{"title":"a"}`, `{"title":"a"}`, formValues{"body.title": {"a"}}},
		{"unticked, was true", `{"title":"a","disruptive":true}`, `{"disruptive":false,"title":"a"}`, formValues{"body.title": {"a"}}},
		{"unticked, was false", `{"title":"a","disruptive":false}`, `{"disruptive":false,"title":"a"}`, formValues{"body.title": {"a"}}},
		{"ticked", `{"title":"a"}`, `{"disruptive":true,"title":"a"}`, formValues{"body.title": {"a"}, "body.disruptive": {"on"}}},
		// Personal data: every shown control cleared erases the unshown members too.
		{"contact emptied but for an unshown member", `{"contact":{"person":"王","qq":"1"}}`, `{}`, formValues{}},
		{"contact of unshown members only, left empty", `{"contact":{"qq":"1"}}`, `{"contact":{"qq":"1"}}`, formValues{}},
		{"contact with a member left", `{"contact":{"person":"王","phone":"2","qq":"1"}}`, `{"contact":{"phone":"2","qq":"1"}}`, formValues{"body.contact.phone": {"2"}}},
		{"contact emptied", `{"contact":{"person":"王"}}`, `{}`, formValues{}},
		{"contact not an object, untouched", `{"contact":"call"}`, `{"contact":"call"}`, formValues{}},
		{"contact typed", `{}`, `{"contact":{"phone":"1"}}`, formValues{"body.contact.phone": {"1"}}},
	} {
		got, err := buildBody(formSpecs["supply"], c.v, json.RawMessage(c.base))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// TestEditClearedContactErasesUnshownPersonalData: staff who clear every
// contact control of a record (a person asks for their details to be erased)
// erase the contact members the form does not show (contact.wechat) too; the
// record page and the edit form show such members, so staff know they exist.
func TestEditClearedContactErasesUnshownPersonalData(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	s := session(w)
	body := needBody("联系人将被清除的需求")
	body["contact"] = map[string]any{"person": "李经理", "phone": "022-23400000", "wechat": "li_wx"}
	rec := e.create(w, "need", "federation", body)
	e.get("/ui/records/"+rec.ID, s...).want(t, http.StatusOK, "李经理", "wechat", "li_wx")
	form := e.get("/ui/records/"+rec.ID+"/edit", s...)
	form.want(t, http.StatusOK, `data-unshown="body.contact"`, "li_wx")
	v := formOf(t, form.html)
	for _, k := range []string{"body.contact.person", "body.contact.phone", "body.contact.email"} {
		v.Set(k, "")
	}
	if res := e.post("/ui/records/"+rec.ID+"/edit", v, s...); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	if c, ok := bodyMap(t, e.readRecord(w, rec.ID).Body)["contact"]; ok {
		t.Fatalf("every contact control cleared, yet personal data stays stored: contact %v", c)
	}
	e.get("/ui/records/"+rec.ID, s...).wantNot(t, "li_wx")
}

// TestEditKeepsUnofferedCheckedCode: a stored code the checkboxes do not
// offer (a newer build's) is shown ticked so that saving keeps it: it is kept
// when another box is ticked too, and dropped when it is unticked.
func TestEditKeepsUnofferedCheckedCode(t *testing.T) {
	stored := `{"title":"a","transfer_modes":["future-mode"]}`
	for _, c := range []struct {
		name    string
		checked []string
		want    string
	}{
		{"another ticked", []string{"future-mode", schema.TransferModes[0]}, `["` + schema.TransferModes[0] + `","future-mode"]`},
		{"unticked", []string{schema.TransferModes[0]}, `["` + schema.TransferModes[0] + `"]`},
		{"a code never stored", []string{"future-mode", "forged"}, `["future-mode"]`},
	} {
		got, err := buildBody(formSpecs["supply"], formValues{"body.title": {"a"}, "body.transfer_modes": c.checked}, json.RawMessage(stored))
		if err != nil {
			t.Fatal(err)
		}
		if modes, _ := json.Marshal(bodyMap(t, got)["transfer_modes"]); string(modes) != c.want {
			t.Errorf("%s: ticked %v: transfer_modes %s, want %s", c.name, c.checked, modes, c.want)
		}
	}
}

// TestEditUnchangedKeepsIPRights: IP rights come back from an unchanged edit
// as they were: one without a number keeps its status (not moved into the
// number), a number written with a space (ZL 2021…) does not make the save
// fail, and members of a right the form does not show are kept.
func TestEditUnchangedKeepsIPRights(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	for _, ip := range []string{
		`[{"status":"granted","type":"know-how"}]`,
		`[{"number":"ZL 202120000001.1","status":"granted","type":"patent"}]`,
		`[{"type":"software-copyright"},{"country":"CN","number":"ZL202110000001.1","type":"patent"}]`,
	} {
		body := supplyBody("知识产权 "+ip, 5)
		var rights []map[string]any
		json.Unmarshal([]byte(ip), &rights)
		body["ip"] = rights
		rec := e.create(w, "supply", "federation", body)
		after, saved := e.saveUnchanged(w, rec.ID)
		if saved.StatusCode != http.StatusSeeOther {
			t.Errorf("%s: unchanged save refused: %d\n%s", ip, saved.StatusCode, between(saved.html, `id="form-errors"`, `</div>`)+saved.field(t, "body.ip"))
			continue
		}
		if got, _ := json.Marshal(bodyMap(t, after.Body)["ip"]); string(got) != ip {
			t.Errorf("ip before %s, after an unchanged edit %s", ip, got)
		}
	}
}

// TestEditIPLineMergesIntoStoredRight: a changed line sets the columns it
// shows and keeps the right's other members; a line as rendered keeps its
// right even when the one before it was removed.
func TestEditIPLineMergesIntoStoredRight(t *testing.T) {
	stored := `{"ip":[{"type":"patent","number":"ZL1","status":"pending","country":"CN"},{"type":"know-how","note":"x"},{"type":"trademark","number":"T 1"}]}`
	for _, c := range []struct{ text, want string }{
		{"patent | ZL1 | granted\nknow-how | - | -\ntrademark | T 1 | -", `[{"country":"CN","number":"ZL1","status":"granted","type":"patent"},{"note":"x","type":"know-how"},{"number":"T 1","type":"trademark"}]`},
		{"patent | - | pending\nknow-how | - | -\ntrademark | T 1 | -", `[{"country":"CN","status":"pending","type":"patent"},{"note":"x","type":"know-how"},{"number":"T 1","type":"trademark"}]`},
		{"know-how | - | -\ntrademark | T 1 | -", `[{"note":"x","type":"know-how"},{"number":"T 1","type":"trademark"}]`},
	} {
		got, err := buildBody(formSpecs["supply"], formValues{"body.ip": {c.text}}, json.RawMessage(stored))
		if err != nil {
			t.Fatal(err)
		}
		if ip, _ := json.Marshal(bodyMap(t, got)["ip"]); string(ip) != c.want {
			t.Errorf("%q:\n got %s\nwant %s", c.text, ip, c.want)
		}
	}
}

// TestEditIPLineKeepsTheRightItWasShownFrom: a changed line is merged into
// the stored right it was shown from, not the one at its position, when lines
// are removed, moved or inserted around it; a line that cannot be told apart
// from another starts a new right rather than borrowing one's members.
func TestEditIPLineKeepsTheRightItWasShownFrom(t *testing.T) {
	stored := `{"ip":[{"type":"patent","number":"ZL1","status":"pending","country":"CN"},{"type":"know-how","note":"x"}]}`
	for _, c := range []struct{ name, text, want string }{
		// The patent line is deleted, the know-how line gets a status.
		{"delete first, edit second", "know-how | - | granted", `[{"note":"x","status":"granted","type":"know-how"}]`},
		// The two lines swapped, the know-how line gets a status.
		{"swap, edit one", "know-how | - | granted\npatent | ZL1 | pending", `[{"note":"x","status":"granted","type":"know-how"},{"country":"CN","number":"ZL1","status":"pending","type":"patent"}]`},
		// A line inserted first, the patent line gets a status.
		{"insert, edit one", "trademark | T2 | -\npatent | ZL1 | granted\nknow-how | - | -", `[{"number":"T2","type":"trademark"},{"country":"CN","number":"ZL1","status":"granted","type":"patent"},{"note":"x","type":"know-how"}]`},
		// The patent's number corrected in place: its line, by position among the unchanged ones.
		{"number corrected in place", "patent | ZL2 | pending\nknow-how | - | -", `[{"country":"CN","number":"ZL2","status":"pending","type":"patent"},{"note":"x","type":"know-how"}]`},
		// Both lines edited in place.
		{"both edited in place", "patent | ZL2 | granted\nsoftware-copyright | - | -", `[{"country":"CN","number":"ZL2","status":"granted","type":"patent"},{"note":"x","type":"software-copyright"}]`},
		// The patent line deleted and the know-how one replaced by another right: nothing tells which it was.
		{"delete one, replace other", "trademark | T2 | -", `[{"number":"T2","type":"trademark"}]`},
	} {
		got, err := buildBody(formSpecs["supply"], formValues{"body.ip": {c.text}}, json.RawMessage(stored))
		if err != nil {
			t.Fatal(err)
		}
		if ip, _ := json.Marshal(bodyMap(t, got)["ip"]); string(ip) != c.want {
			t.Errorf("%s: %q\n got %s\nwant %s", c.name, c.text, ip, c.want)
		}
	}
}

// TestIPRightsTextBox: what the IP rights box accepts in a new record: columns
// separated by |, ｜ or a tab with - for an empty one, or words separated by
// spaces.
func TestIPRightsTextBox(t *testing.T) {
	for text, want := range map[string]string{
		"patent | ZL 202110345678.9 | granted":    `[{"number":"ZL 202110345678.9","status":"granted","type":"patent"}]`,
		"patent｜ZL1｜-":                            `[{"number":"ZL1","type":"patent"}]`,
		"know-how | - | granted":                  `[{"status":"granted","type":"know-how"}]`,
		"know-how || granted":                     `[{"status":"granted","type":"know-how"}]`,
		"patent\tZL 1\tpending":                   `[{"number":"ZL 1","status":"pending","type":"patent"}]`,
		"patent ZL202110345678.9 granted":         `[{"number":"ZL202110345678.9","status":"granted","type":"patent"}]`,
		"patent ZL 202110345678.9 granted":        `[{"number":"ZL 202110345678.9","status":"granted","type":"patent"}]`,
		"know-how granted":                        `[{"status":"granted","type":"know-how"}]`,
		"patent ZL1":                              `[{"number":"ZL1","type":"patent"}]`,
		"patent | ZL1 | granted | extra":          `[{"number":"ZL1","status":"granted | extra","type":"patent"}]`,
		"software-copyright\n\npatent ZL2 lapsed": `[{"type":"software-copyright"},{"number":"ZL2","status":"lapsed","type":"patent"}]`,
	} {
		got, _ := json.Marshal(ipRights(text, nil))
		if string(got) != want {
			t.Errorf("%q:\n got %s\nwant %s", text, got, want)
		}
	}
}

// TestEditUnchangedKeepsKeywords: a keyword with a comma or 、 in it stays one
// keyword through an unchanged edit (the edit form shows one a line and reads
// lines), while a new record's box still takes words separated by commas.
func TestEditUnchangedKeepsKeywords(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	for _, kw := range [][]string{{"1,3-丁二烯", "锂、钠离子电池"}, {"1,3-丁二烯"}} {
		body := supplyBody("关键词", 5)
		body["keywords"] = kw
		rec := e.create(w, "supply", "federation", body)
		form := e.get("/ui/records/"+rec.ID+"/edit", session(w)...)
		if f := form.field(t, "body.keywords"); !strings.Contains(f, "<textarea") || !strings.Contains(f, "每行一项") {
			t.Errorf("the edit form's keywords box is no textarea that says one a line:\n%s", f)
		}
		after, saved := e.saveUnchanged(w, rec.ID)
		if saved.StatusCode != http.StatusSeeOther {
			t.Fatalf("save: %d\n%s", saved.StatusCode, saved.html)
		}
		want, _ := json.Marshal(kw)
		if got, _ := json.Marshal(bodyMap(t, after.Body)["keywords"]); string(got) != string(want) {
			t.Errorf("keywords %s after an unchanged edit: %s", want, got)
		}
	}
	// Added on a line of its own at an edit: one more keyword, commas and all.
	got, err := buildBody(formSpecs["supply"], formValues{listFormat: {listLines}, "body.keywords": {"1,3-丁二烯\r\n锂、钠离子电池\r\n甲, 乙"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if kw, _ := json.Marshal(bodyMap(t, got)["keywords"]); string(kw) != `["1,3-丁二烯","锂、钠离子电池","甲, 乙"]` {
		t.Errorf("keywords of an edit: %s", kw)
	}
	// A new record's form: separators as before.
	got, _ = buildBody(formSpecs["supply"], formValues{"body.keywords": {"超导，带材、涂层;薄膜\n电缆"}}, nil)
	if kw, _ := json.Marshal(bodyMap(t, got)["keywords"]); string(kw) != `["超导","带材","涂层","薄膜","电缆"]` {
		t.Errorf("keywords of a new record: %s", kw)
	}
}

// TestEditUnchangedKeepsExpiry: an expiry set through the API at a time that
// is not the end of a day in China stays as it was through an unchanged edit;
// a date changed on the form is the end of that day in China.
func TestEditUnchangedKeepsExpiry(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	exp := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(24 * time.Hour) // midnight UTC
	rec := e.createEnv(w, map[string]any{"catalogue": "supply", "visibility": "federation",
		"expires_at": exp.Format(time.RFC3339), "body": supplyBody("有效期成果", 5)})
	after, saved := e.saveUnchanged(w, rec.ID)
	if saved.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", saved.StatusCode, saved.html)
	}
	if after.ExpiresAt == nil || !after.ExpiresAt.Equal(*rec.ExpiresAt) {
		t.Fatalf("expires_at before %v, after an unchanged edit %v", rec.ExpiresAt, after.ExpiresAt)
	}

	s := session(w)
	v := formOf(t, e.get("/ui/records/"+rec.ID+"/edit", s...).html)
	day := exp.Add(24 * time.Hour).In(chinaTime).Format(time.DateOnly)
	v.Set("expires_at", day)
	if res := e.post("/ui/records/"+rec.ID+"/edit", v, s...); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", res.StatusCode, res.html)
	}
	want, _ := time.ParseInLocation(time.DateTime, day+" 23:59:59", chinaTime)
	if got := e.readRecord(w, rec.ID).ExpiresAt; got == nil || !got.Equal(want) {
		t.Fatalf("expiry changed to %s on the form: %v, want %v", day, got, want)
	}
}

// TestSavedRecordReadThroughLeader: a console at a replica that has not yet
// applied a save made through it (here an API that knows the record only when
// asked for a consistent read) shows the record on the page the save
// redirects to and on its edit form.
func TestSavedRecordReadThroughLeader(t *testing.T) {
	rec := schema.Record{ID: "tianjin:01TESTRECORD", Catalogue: "supply", Origin: "tianjin", Version: 1, Visibility: "federation",
		Body: json.RawMessage(`{"title":"刚保存的成果","summary":"简介","industry":"new-materials"}`)}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/records":
			w.WriteHeader(http.StatusCreated)
			json.NewEncoder(w).Encode(rec)
		case r.Method == http.MethodGet && r.URL.Path == "/v1/records/"+rec.ID && r.URL.Query().Get("consistent") == "true":
			json.NewEncoder(w).Encode(rec)
		default: // this replica has not applied the write yet
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(`{"status":404,"title":"Not Found","detail":"no such record"}`))
		}
	})
	e, tok := consoleOver(t, api)
	s := session(tok)
	saved := e.post("/ui/new", url.Values{"catalogue": {"supply"}, "body.title": {"刚保存的成果"}}, s...)
	if saved.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", saved.StatusCode, saved.html)
	}
	e.get(saved.Header.Get("Location"), s...).want(t, http.StatusOK, "刚保存的成果")
	e.get("/ui/records/"+rec.ID+"/edit", s...).want(t, http.StatusOK, `value="刚保存的成果"`)
}

// TestEditWithoutLeaderKeepsTyped: while there is no raft leader (an
// election, a partition) the edit form opens from this replica's copy, and a
// save is answered with the form and what was typed, with the API's refusal,
// not an error page; the save still names the version it started from.
func TestEditWithoutLeaderKeepsTyped(t *testing.T) {
	rec := schema.Record{ID: "tianjin:01TESTRECORD", Catalogue: "need", Origin: "tianjin", Version: 1, Visibility: "federation",
		Body: json.RawMessage(`{"title":"需求","description":"旧描述","industry":"new-materials","enterprise":"某公司"}`)}
	var ifMatch []string
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/v1/records/"+rec.ID && r.URL.Query().Get("consistent") != "true":
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(rec) // this replica's own state
		default: // consistent reads and writes need the leader
			if r.Method == http.MethodPut {
				ifMatch = append(ifMatch, r.Header.Get("If-Match"))
			}
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"status":503,"title":"Service Unavailable","detail":"no raft leader"}`))
		}
	})
	e, tok := consoleOver(t, api)
	e.get("/ui/records/"+rec.ID+"/edit", session(tok)...).want(t, http.StatusOK, `id="record-form"`, "旧描述")
	typed := "用户输入了二十分钟的新描述"
	res := e.post("/ui/records/"+rec.ID+"/edit", url.Values{"catalogue": {"need"}, "version": {"1"}, "_list": {"lines"},
		"body.title": {"需求"}, "body.description": {typed}, "body.industry": {"new-materials"}, "body.enterprise": {"某公司"}}, session(tok)...)
	if !strings.Contains(res.html, typed) || !strings.Contains(res.html, `id="record-form"`) || !strings.Contains(res.html, "no raft leader") {
		t.Fatalf("save without a leader: status %d, the form with what was typed is gone:\n%s", res.StatusCode, between(res.html, "<main", "</main>"))
	}
	if len(ifMatch) != 1 || ifMatch[0] != "1" {
		t.Errorf("If-Match of the save: %q, want the version the form was opened at", ifMatch)
	}
}

// resubmit submits the form of a page as it is, with cookies.
func (e *env) resubmit(page *answer, path string, cookies ...*http.Cookie) *answer {
	e.t.Helper()
	return e.do(http.MethodPost, path, formOf(e.t, page.html), cookies, nil)
}

// TestExpiredSignInKeepsTypedNewRecord: the token expires while a new record
// is typed; the save answers the form again with what was typed, a "sign in
// to save" notice that opens the sign-in in a new tab, and the session's CSRF
// token, so that once signed in again the same form saves.
func TestExpiredSignInKeepsTypedNewRecord(t *testing.T) {
	e := newEnv(t)
	old, err := e.issuers["tianjin"].Issue("staff-tianjin", []auth.Scope{auth.ScopeRead, auth.ScopeWrite, auth.ScopePII}, time.Hour, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	typed := "一段很长的需求描述，用户花了二十分钟输入"
	res := e.post("/ui/new", url.Values{"catalogue": {"need"}, "body.title": {"需求标题"}, "body.description": {typed},
		"body.industry": {"new-materials"}, "body.enterprise": {"某公司"}, "visibility": {"federation"}}, session(old)...)
	res.want(t, http.StatusUnauthorized, typed, `id="form-refused"`, tr(langZH, "form.signin.save"), `target="_blank"`,
		`name="_csrf" value="`+testCSRF+`"`, `name="catalogue" value="need"`)
	res.wantNot(t, tr(langZH, "fed.needscope"))
	if c := res.cookie(sessionCookie); c == nil || c.MaxAge >= 0 {
		t.Fatalf("the expired session was not cleared: %+v", c)
	}
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	saved := e.resubmit(res, "/ui/new", session(w)...)
	if saved.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving again once signed in: %d\n%s", saved.StatusCode, saved.html)
	}
	e.get(saved.Header.Get("Location"), session(w)...).want(t, http.StatusOK, typed)
}

// TestAnonymousSubmitAsksToSignInToSave: a record form submitted without a
// sign-in is shown again with what was typed and a "sign in to save" notice,
// not the federation page's message.
func TestAnonymousSubmitAsksToSignInToSave(t *testing.T) {
	e := newEnv(t)
	res := e.post("/ui/new", url.Values{"catalogue": {"need"}, "body.title": {"匿名需求"}, "body.description": {"描述"}}, session("")...)
	res.want(t, http.StatusUnauthorized, "匿名需求", tr(langZH, "form.signin.save"))
	res.wantNot(t, tr(langZH, "fed.needscope"))
}

// TestExpiredSignInKeepsTypedEdit: the token expires while a record is
// edited; the save answers the edit form again with the changes typed and the
// version opened, and once signed in again it saves them.
func TestExpiredSignInKeepsTypedEdit(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	rec := e.create(w, "need", "federation", needBody("风电齿轮箱轴承寿命预测"))
	v := formOf(t, e.get("/ui/records/"+rec.ID+"/edit", session(w)...).html)
	v.Set("body.description", "改过的需求描述")
	expired, err := e.issuers["tianjin"].Issue("staff-tianjin", []auth.Scope{auth.ScopeRead, auth.ScopeWrite, auth.ScopePII}, time.Hour, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	res := e.post("/ui/records/"+rec.ID+"/edit", v, session(expired)...)
	res.want(t, http.StatusUnauthorized, "改过的需求描述", tr(langZH, "form.signin.save"), `name="version" value="1"`)
	saved := e.resubmit(res, "/ui/records/"+rec.ID+"/edit", session(w)...)
	if saved.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving again once signed in: %d\n%s", saved.StatusCode, saved.html)
	}
	if got := bodyMap(t, e.readRecord(w, rec.ID).Body)["description"]; got != "改过的需求描述" {
		t.Fatalf("description after saving again: %v", got)
	}
}

// TestSignInElsewhereKeepsOpenForm: signing in again in another tab keeps the
// CSRF cookie, so a form open in the first tab still saves; when the cookie
// did change (signed out and in again there), the save shows the form again
// with what was typed and the current token, and saving again works.
func TestSignInElsewhereKeepsOpenForm(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	s := session(w)
	typed := "用户在 A 标签页里输入的很长的需求描述"
	form := func(title string) url.Values {
		return url.Values{csrfField: {testCSRF}, "catalogue": {"need"}, "body.title": {title}, "body.description": {typed},
			"body.industry": {"new-materials"}, "body.enterprise": {"某公司"}}
	}
	e.get("/ui/new?catalogue=need", s...).want(t, http.StatusOK) // tab A opens the form (CSRF testCSRF)

	// Tab B signs in again: tab A's form still saves.
	in := e.post("/ui/signin", url.Values{"token": {w}}, s...)
	if in.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", in.StatusCode)
	}
	jar := s[0] // the browser's CSRF cookie: as it was unless the sign-in set another
	if c := in.cookie(csrfCookie); c != nil {
		jar = c
	}
	if res := e.post("/ui/new", form("标题一"), in.cookie(sessionCookie), jar); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("tab A's save after a sign-in in tab B: %d\n%s", res.StatusCode, between(res.html, "<main", "</main>"))
	}

	// Tab B signs out (a new CSRF cookie) and in again.
	out := e.post("/ui/signout", url.Values{}, s...)
	csrf := out.cookie(csrfCookie)
	if csrf == nil || csrf.Value == testCSRF {
		t.Fatalf("sign-out kept the CSRF cookie: %+v", csrf)
	}
	in = e.post("/ui/signin", url.Values{"token": {w}, csrfField: {csrf.Value}}, csrf)
	cookies := []*http.Cookie{in.cookie(sessionCookie), csrf}
	res := e.post("/ui/new", form("标题二"), cookies...)
	res.want(t, http.StatusForbidden, typed, "标题二", `id="form-refused"`, `name="_csrf" value="`+csrf.Value+`"`)
	if saved := e.resubmit(res, "/ui/new", cookies...); saved.StatusCode != http.StatusSeeOther {
		t.Fatalf("saving the refused form again: %d\n%s", saved.StatusCode, saved.html)
	}
}

// switchLanguage clicks the language switch of a form page with v as typed,
// as app.js does: it posts the form, marked _relang, to the switch's link.
func (e *env) switchLanguage(page *answer, v url.Values, cookies ...*http.Cookie) *answer {
	e.t.Helper()
	if !strings.Contains(page.html, `id="record-form"`) {
		e.t.Fatal("no record form on the page")
	}
	target := html.UnescapeString(between(page.html, `<a href="`, `" id="lang-switch"`))
	v.Set("_relang", "1")
	return e.do(http.MethodPost, target, v, cookies, nil)
}

// TestLanguageSwitchKeepsForm: the language switch of a refused new need
// form links to the need form (not the supply form) in the other language,
// and posted with what was typed (as app.js does) shows it again; on an edit
// form it keeps the changes typed and the version opened; neither saves.
func TestLanguageSwitchKeepsForm(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	s := session(w)
	res := e.post("/ui/new", url.Values{"catalogue": {"need"}, "body.title": {"缺描述的需求"}}, s...)
	res.want(t, http.StatusUnprocessableEntity)
	if sw := between(res.html, `<a href="`, `" id="lang-switch"`); !strings.Contains(sw, "catalogue=need") {
		t.Errorf("the language switch of a refused need form leads to %q (the supply form)", sw)
	}
	en := e.switchLanguage(res, formOf(t, res.html), s...)
	en.want(t, http.StatusOK, `lang="en"`, "New Industry need", `name="catalogue" value="need"`, `value="缺描述的需求"`)
	if c := en.cookie(langCookie); c == nil || c.Value != langEN {
		t.Errorf("the language was not remembered: %+v", c)
	}

	rec := e.create(w, "need", "federation", needBody("风电齿轮箱轴承寿命预测"))
	form := e.get("/ui/records/"+rec.ID+"/edit", s...)
	v := formOf(t, form.html)
	v.Set("body.description", "改了一半的描述")
	en = e.switchLanguage(form, v, s...)
	en.want(t, http.StatusOK, `lang="en"`, "改了一半的描述", `name="version" value="1"`)
	if after := e.readRecord(w, rec.ID); after.Version != 1 {
		t.Fatalf("switching the language saved the record: version %d", after.Version)
	}
}

// TestEditUnchangedKeepsTextAsStored: values the form shows come back from an
// unchanged edit as stored even where the form's text differs from them: line
// breaks in a textarea (a browser submits CRLF), a text that starts with a
// line break or has spaces around it, checked boxes in another order than the
// form's, and a code the form's list does not offer.
func TestEditUnchangedKeepsTextAsStored(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	sup := supplyBody("  前后有空格的标题 ", 5)
	sup["summary"] = "\n第一段\n第二段\n"
	sup["transfer_modes"] = []string{"equity", "license"}
	sup["inventors"] = []string{"张三", "李四"}
	ex := map[string]any{"name": "张教授", "affiliation": "天津大学", "bio": "第一行\r\n第二行", "fields": []string{"new-materials"}, "roles": []string{"review", "evaluation"}}
	for _, c := range []struct {
		cat  string
		body map[string]any
	}{{"supply", sup}, {"expert", ex}} {
		rec := e.create(w, c.cat, "federation", c.body)
		after, saved := e.saveUnchanged(w, rec.ID)
		if saved.StatusCode != http.StatusSeeOther {
			t.Errorf("%s save: %d\n%s", c.cat, saved.StatusCode, saved.html)
			continue
		}
		ja, _ := json.Marshal(bodyMap(t, rec.Body))
		jb, _ := json.Marshal(bodyMap(t, after.Body))
		if string(ja) != string(jb) {
			t.Errorf("%s body changed on an unchanged edit:\nbefore %s\nafter  %s", c.cat, ja, jb)
		}
	}

	// A code this build's form does not offer (a newer build's, say) is shown
	// selected and kept.
	got, err := buildBody(formSpecs["need"], formValues{"body.kind": {"tender"}, "body.status": {"open"}},
		json.RawMessage(`{"kind":"tender","status":"open"}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != `{"kind":"tender","status":"open"}` {
		t.Errorf("unknown code: %s", got)
	}
	// Typed line breaks are stored as LF, not as the CRLF a browser submits.
	if got, _ := buildBody(formSpecs["supply"], formValues{"body.summary": {"第一段\r\n第二段"}}, nil); string(got) != `{"summary":"第一段\n第二段"}` {
		t.Errorf("typed summary: %s", got)
	}
	p := &page{Lang: langZH}
	ff := renderField(p, fieldSpec{name: "body.kind", kind: kSelect, options: codes("kind.", []string{"need"})}, formValues{"body.kind": {"tender"}}, nil)
	if n := len(ff.Options); n != 2 || !ff.Options[1].Selected || ff.Options[1].Value != "tender" {
		t.Errorf("a stored code the select does not offer: %+v", ff.Options)
	}
}

// TestEditUntouchedSingleLineTextWithBreakKept: a stored text member with a
// line break (the API accepts it) shown in a single-line input, which cannot
// hold one, comes back from an edit that did not touch it as it was stored.
func TestEditUntouchedSingleLineTextWithBreakKept(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	s := session(w)
	body := supplyBody("多行单位", 5)
	body["owner_org"] = "天津大学\n化学工程学院"
	body["contact"] = map[string]any{"person": "王\r\n老师"}
	rec := e.create(w, "supply", "federation", body)
	v := formOf(t, e.get("/ui/records/"+rec.ID+"/edit", s...).html) // breaks stripped from text inputs
	v.Set("body.trl", "6")                                          // the edit the user made
	if res := e.post("/ui/records/"+rec.ID+"/edit", v, s...); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	m := bodyMap(t, e.readRecord(w, rec.ID).Body)
	if m["owner_org"] != body["owner_org"] {
		t.Errorf("owner_org, not touched: %q, stored before %q", m["owner_org"], body["owner_org"])
	}
	if c, _ := m["contact"].(map[string]any); c["person"] != "王\r\n老师" {
		t.Errorf("contact.person, not touched: %q", c["person"])
	}
	if m["trl"] != 6.0 {
		t.Errorf("trl: %v, want the 6 typed", m["trl"])
	}
	// Typed into the input: saved as typed.
	v.Set("body.owner_org", "天津大学化工学院")
	v.Set("version", "2")
	if res := e.post("/ui/records/"+rec.ID+"/edit", v, s...); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("second save: %d", res.StatusCode)
	}
	if got := bodyMap(t, e.readRecord(w, rec.ID).Body)["owner_org"]; got != "天津大学化工学院" {
		t.Errorf("owner_org typed: %q", got)
	}
}

// TestRecordTextShownEscaped: record text with HTML and script is shown as
// text on every page that shows it, the edit forms included.
func TestRecordTextShownEscaped(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	evil := `"><script>alert(1)</script><img src=x onerror=alert(2)>`
	b := supplyBody("标题"+evil, 5)
	b["summary"] = "简介" + evil
	b["owner_org"] = evil
	b["keywords"] = []string{"<script>alert(1)</script>"}
	b["ip"] = []map[string]string{{"type": "<img src=x onerror=a()>", "number": "<script>alert(1)</script>"}}
	b["extra"] = map[string]string{"x": evil}
	b["contact"] = map[string]string{"person": evil}
	rec := e.create(w, "supply", "federation", b)
	ex := e.create(w, "expert", "federation", map[string]any{"name": "专家" + evil, "affiliation": evil, "bio": evil})
	s := session(w)
	for _, path := range []string{"/ui/", "/ui/?q=" + url.QueryEscape(evil), "/ui/records/" + rec.ID, "/ui/records/" + rec.ID + "/edit",
		"/ui/records/" + ex.ID, "/ui/records/" + ex.ID + "/edit", "/ui/?lang=en&q=" + url.QueryEscape(evil), "/ui/?cursor=" + url.QueryEscape(evil)} {
		p := e.get(path, s...)
		if strings.Contains(p.html, "<script>alert") || strings.Contains(p.html, "<img src=x") {
			t.Errorf("%s: unescaped record text", path)
		}
		if p.StatusCode >= 500 {
			t.Errorf("%s: %d", path, p.StatusCode)
		}
	}
}

// TestOddQueriesNeverFail: odd list queries and paths do not answer 500,
// signed in or not.
func TestOddQueriesNeverFail(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	e.create(w, "supply", "federation", supplyBody("成果", 5))
	for _, s := range [][]*http.Cookie{session(""), session(w), session("garbage.token.x"), session(e.token("tianjin"))} {
		for _, path := range []string{
			"/ui/?cursor=%ff%fe", "/ui/?cursor=abc", "/ui/?q=" + strings.Repeat("电", 5000), "/ui/?trl=99", "/ui/?trl=-1&catalogue=need",
			"/ui/?catalogue=bogus", "/ui/?origin=%00", "/ui/?industry=../../", "/ui/?status=x&q=*", "/ui/?q=%22", "/ui/?q=OR+AND+NOT",
			"/ui/?trl=5&cursor=zz", "/ui/records/%2e%2e", "/ui/records/tianjin:", "/ui/records/x/edit", "/ui/records/tianjin:nope/edit",
			"/ui/new?catalogue=%00", "/ui/federation", "/ui/?lang=xx", "/ui/?lang=en&lang=zh",
		} {
			p := e.get(path, s...)
			if p.StatusCode >= 500 {
				t.Errorf("%s: %d\n%s", path, p.StatusCode, between(p.html, "<main", "</main>"))
			}
		}
	}
}

// TestEditUnchangedKeepsChallengeNeed: a challenge need (deadline, budget
// with fractions, targets with commas) comes back from an unchanged edit as
// it was.
func TestEditUnchangedKeepsChallengeNeed(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	b := needBody("揭榜挂帅")
	b["kind"] = "challenge"
	b["deadline"] = "2027-06-30"
	b["budget"] = map[string]any{"min": 100000.5, "max": 2e6, "currency": "USD"}
	b["challenge"] = map[string]any{"bounty": 1500000, "targets": []string{"寿命 ≥ 20 年, 误差 < 5%", "成本下降 30%"}, "max_months": 18}
	rec := e.create(w, "need", "federation", b)
	after, saved := e.saveUnchanged(w, rec.ID)
	if saved.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", saved.StatusCode, saved.html)
	}
	ja, _ := json.Marshal(bodyMap(t, rec.Body))
	jb, _ := json.Marshal(bodyMap(t, after.Body))
	if string(ja) != string(jb) {
		t.Errorf("body changed on an unchanged edit:\nbefore %s\nafter  %s", ja, jb)
	}
	if rec.Visibility != after.Visibility {
		t.Errorf("visibility %s → %s", rec.Visibility, after.Visibility)
	}
}

// TestEditClearedExpiryRemovesIt: clearing the expiry date on the edit form
// removes the expiry.
func TestEditClearedExpiryRemovesIt(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	exp := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(24 * time.Hour)
	rec := e.createEnv(w, map[string]any{"catalogue": "supply", "visibility": "federation",
		"expires_at": exp.Format(time.RFC3339), "body": supplyBody("有效期成果", 5)})
	s := session(w)
	form := e.get("/ui/records/"+rec.ID+"/edit", s...)
	v := formOf(t, form.html)
	v.Set("expires_at", "")
	if saved := e.post("/ui/records/"+rec.ID+"/edit", v, s...); saved.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d\n%s", saved.StatusCode, saved.html)
	}
	if after := e.readRecord(w, rec.ID); after.ExpiresAt != nil {
		t.Errorf("expiry not cleared: %v", after.ExpiresAt)
	}
}

// consoleOver serves the console in front of api, a fake of the node's API,
// and returns the env to drive it and a staff token (read, write, pii) the
// fake takes on trust.
func consoleOver(t *testing.T, api http.Handler) (*env, string) {
	t.Helper()
	console, err := New(Options{API: api, Centre: "tianjin"})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Mount(console, api))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, cli: &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	tok := "x." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"tianjin","sub":"staff","scope":"read write pii"}`)) + ".y"
	return e, tok
}

// largeIPRights is n stored rights, each with a member the form does not show,
// and the form's text for them with every status changed (so that no line is
// shown as stored, and each pairs with its right by type and number).
func largeIPRights(n int) (stored []any, text string) {
	var b strings.Builder
	for i := range n {
		num := fmt.Sprintf("ZL2020%06d.1", i)
		stored = append(stored, map[string]any{"type": "patent", "number": num, "status": "granted", "note": fmt.Sprint("note ", i)})
		fmt.Fprintf(&b, "patent | %s | lapsed\n", num)
	}
	return stored, b.String()
}

// TestIPRightsManyLines: a form of thousands of changed lines keeps each
// right's unshown members (pairing by type and number at that size).
func TestIPRightsManyLines(t *testing.T) {
	stored, text := largeIPRights(3000)
	got := ipRights(text, stored)
	if len(got) != len(stored) {
		t.Fatalf("%d rights from %d lines", len(got), len(stored))
	}
	for i, x := range got {
		r := x.(map[string]any)
		if r["note"] != fmt.Sprint("note ", i) || r["status"] != "lapsed" || r["number"] != stored[i].(map[string]any)["number"] {
			t.Fatalf("right %d: %v, stored %v", i, r, stored[i])
		}
	}
}

// BenchmarkIPRightsManyLines: BENCHMARKS.md "Session 20" (9.5 s of CPU for
// 5,000 × 5,000 when each line scanned every stored right).
func BenchmarkIPRightsManyLines(b *testing.B) {
	stored, text := largeIPRights(5000)
	for b.Loop() {
		ipRights(text, stored)
	}
}
