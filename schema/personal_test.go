package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// members returns the top-level members of a JSON object, raw, in order.
func members(t *testing.T, body []byte) (names []string, raw map[string]string) {
	t.Helper()
	root, serr := parseTree(body, "body", MaxDepth, nil)
	if serr != nil || root.kind != jObject {
		t.Fatalf("not an object: %s", body)
	}
	raw = map[string]string{}
	for _, m := range root.members {
		names = append(names, m.key)
		raw[m.key] = string(body[m.val.start:m.val.end])
	}
	return names, raw
}

func TestStripPersonal(t *testing.T) {
	body := `{
  "title": "高镍三元正极材料连续化制备技术",
  "contact": {"person": "王老师", "phone": "022-27401234"},
  "inventors": ["王某某", "赵某"],
  "pilot": { "city" : "天津",  "note": "\u003c中试\u003e \ud83d\ude00", "n": 1.50e2 },
  "team": [{"name": "李某"}],
  "members": ["张某"],
  "trl": 6,
  "contact": {"email": "dup@example.cn"},
  "industry": "new-materials"
}`
	r := newRecord(CatalogueSupply, body)
	r.Broker = "hq"
	orig := r.Clone()
	s, err := StripPersonal(r)
	if err != nil {
		t.Fatal(err)
	}
	if s.Broker != "tianjin" {
		t.Errorf("Broker = %q, want the origin", s.Broker)
	}
	if !bytes.Equal(r.Body, orig.Body) || r.Broker != "hq" {
		t.Error("StripPersonal modified its argument")
	}
	names, raw := members(t, s.Body)
	if want := []string{"title", "pilot", "trl", "industry"}; !slices.Equal(names, want) {
		t.Errorf("members %q, want %q", names, want)
	}
	_, origRaw := members(t, []byte(body))
	for _, n := range names {
		if raw[n] != origRaw[n] {
			t.Errorf("member %s changed: %s → %s", n, origRaw[n], raw[n])
		}
	}
	for _, leak := range []string{"王老师", "022-", "王某某", "李某", "张某", "dup@"} {
		if strings.Contains(string(s.Body), leak) {
			t.Errorf("stripped body still holds %q: %s", leak, s.Body)
		}
	}
	if !json.Valid(s.Body) {
		t.Errorf("stripped body is not JSON: %s", s.Body)
	}
	// Everything else about the record is as it was.
	s.Body, s.Broker = r.Body, r.Broker
	a, _ := json.Marshal(s)
	b, _ := json.Marshal(r)
	if !bytes.Equal(a, b) {
		t.Errorf("envelope changed:\n%s\n%s", a, b)
	}
}

// A stripped record is still valid, and makes a canonical entry.
func TestStripPersonalSamples(t *testing.T) {
	for _, r := range []*Record{
		newRecord(CatalogueSupply, nickelBody),
		newRecord(CatalogueNeed, challengeBody),
		newRecord(CatalogueExpert, expertBody),
	} {
		s, err := StripPersonal(r)
		if err != nil {
			t.Fatal(err)
		}
		if HasPersonal(s) || !HasPersonal(r) {
			t.Errorf("%s: HasPersonal before %v, after %v", r.Catalogue, HasPersonal(r), HasPersonal(s))
		}
		if err := ValidateRecord(s, ValidateOptions{Strict: true}); err != nil {
			t.Errorf("%s stripped: %v", r.Catalogue, err)
		}
		e, err := NewEntry(EntryPayload{Origin: "tianjin", Epoch: "e1", Seq: 1, KeyID: "k1", Record: s})
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(e.Raw, []byte(`"contact"`)) || !bytes.Contains(e.Raw, []byte(`"broker":"tianjin"`)) {
			t.Errorf("%s entry: %s", r.Catalogue, e.Raw)
		}
	}
}

func TestStripPersonalUnchangedBody(t *testing.T) {
	body := "{ \"title\" :\"无个人信息\" ,\n\t\"contact_policy\": \"经天津中心对接\", \"x\": {\"contact\": \"nested is kept\"} }"
	r := newRecord(CatalogueSupply, body)
	s, err := StripPersonal(r)
	if err != nil {
		t.Fatal(err)
	}
	if string(s.Body) != body {
		t.Errorf("body without personal members changed: %s", s.Body)
	}
	s.Body[0] = 'X'
	if r.Body[0] != '{' {
		t.Error("stripped record shares its body with the original")
	}
}

func TestStripPersonalEdgeCases(t *testing.T) {
	for _, c := range []struct {
		body, want string
		err        bool
	}{
		{body: ``, want: ``},
		{body: `null`, want: `null`},
		{body: `{}`, want: `{}`},
		{body: `{"contact":{}}`, want: `{}`},
		{body: `{"contact":1,"inventors":2,"team":3,"members":4}`, want: `{}`},
		{body: `{"a":1,"contact":{}}`, want: `{"a":1}`},
		{body: `{"contact":{},"a":1}`, want: `{"a":1}`},
		{body: `{"Contact":{"phone":"1"}}`, want: `{"Contact":{"phone":"1"}}`}, // names are exact
		{body: `[{"contact":1}]`, err: true},
		{body: `"contact"`, err: true},
		{body: `{"contact":`, err: true},
	} {
		r := newRecord(CatalogueSupply, c.body)
		s, err := StripPersonal(r)
		if c.err {
			if err == nil {
				t.Errorf("StripPersonal(%s) = %s, want error", c.body, s.Body)
			}
			if red := RedactContact(r); string(red.Body) != `{}` {
				t.Errorf("RedactContact(%s) = %s, want {} (fail closed)", c.body, red.Body)
			}
			continue
		}
		if err != nil {
			t.Errorf("StripPersonal(%s): %v", c.body, err)
			continue
		}
		if string(s.Body) != c.want {
			t.Errorf("StripPersonal(%s) = %s, want %s", c.body, s.Body, c.want)
		}
	}
	if _, err := StripPersonal(newRecord(CatalogueSupply, `[]`)); !errors.Is(err, ErrBodyNotObject) {
		t.Errorf("array body: %v, want ErrBodyNotObject", err)
	}
	if _, err := StripPersonal(nil); err == nil {
		t.Error("StripPersonal(nil) succeeded")
	}
	if RedactContact(nil) != nil {
		t.Error("RedactContact(nil) != nil")
	}
}

func TestRedactContact(t *testing.T) {
	r := newRecord(CatalogueExpert, expertBody)
	red := RedactContact(r)
	if red.Broker != "" {
		t.Errorf("RedactContact set Broker %q", red.Broker)
	}
	s, _ := StripPersonal(r)
	if !bytes.Equal(red.Body, s.Body) {
		t.Errorf("RedactContact and StripPersonal remove different things:\n%s\n%s", red.Body, s.Body)
	}
	if bytes.Contains(red.Body, []byte("hebut.edu.cn")) || !bytes.Contains(r.Body, []byte("hebut.edu.cn")) {
		t.Error("contact not removed from the copy, or removed from the original")
	}
	var b ExpertBody
	if err := json.Unmarshal(red.Body, &b); err != nil || b.Name != "李某" || b.Contact != nil {
		t.Errorf("redacted body %+v, %v", b, err)
	}
}

func TestKeepPersonal(t *testing.T) {
	prev := `{"title":"旧","contact":{"person":"王老师"},"team":["甲","乙"],"summary":"…"}`
	for _, c := range []struct{ name, body, prev, want string }{
		{"kept at the end", `{"title":"新"}`, prev, `{"title":"新","contact":{"person":"王老师"},"team":["甲","乙"]}`},
		{"sent wins", `{"title":"新","contact":{"person":"李老师"}}`, prev, `{"title":"新","contact":{"person":"李老师"},"team":["甲","乙"]}`},
		{"sent null wins", `{"contact":null,"team":[]}`, prev, `{"contact":null,"team":[]}`},
		{"empty body", ` { } `, prev, `{"contact":{"person":"王老师"},"team":["甲","乙"]}`},
		{"space before the brace", "{\"title\":\"新\" }\n", prev, `{"title":"新" ,"contact":{"person":"王老师"},"team":["甲","乙"]}`},
		{"nothing personal before", `{"title":"新"}`, `{"title":"旧"}`, `{"title":"新"}`},
		{"no previous body", `{"title":"新"}`, ``, `{"title":"新"}`},
	} {
		got, err := KeepPersonal([]byte(c.body), []byte(c.prev))
		if err != nil || string(got) != c.want {
			t.Errorf("%s: %s, %v; want %s", c.name, got, err, c.want)
			continue
		}
		if !json.Valid(got) {
			t.Errorf("%s: invalid JSON %s", c.name, got)
		}
	}
	for _, c := range []struct{ body, prev string }{{`[1]`, prev}, {`{"a":1}`, `"x"`}, {`{"a":`, prev}} {
		if got, err := KeepPersonal([]byte(c.body), []byte(c.prev)); err == nil {
			t.Errorf("KeepPersonal(%s, %s) = %s, want an error", c.body, c.prev, got)
		}
	}
}

// FuzzStripPersonalCanonical: on a canonical body, StripPersonalCanonical
// gives what StripPersonal gives, error or record.
func FuzzStripPersonalCanonical(f *testing.F) {
	for _, b := range []string{`{}`, `{"title":"x"}`, `{"contact":{"name":"张三"},"title":"x"}`, `{"a":{"contact":1},"team":[1]}`,
		`{"membersx":1,"contact_policy":"y"}`, `[1]`, `null`, `"s"`, `{"a":"\u0000contact"}`, `{"con\u0074act":1}`,
		`{"inventors":["x"],"title":"t"}`, `{"members":[1]}`} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		canon, err := AsCanonical(body)
		if err != nil {
			return
		}
		r := &Record{ID: "tianjin:1", Origin: "tianjin", Body: canon}
		got, gerr := StripPersonalCanonical(r)
		want, werr := StripPersonal(r)
		if (gerr == nil) != (werr == nil) {
			t.Fatalf("%s: StripPersonalCanonical error %v, StripPersonal %v", canon, gerr, werr)
		}
		if werr != nil {
			return
		}
		if !bytes.Equal(got.Body, want.Body) || got.Broker != want.Broker {
			t.Fatalf("%s: StripPersonalCanonical %s (broker %q), StripPersonal %s (broker %q)", canon, got.Body, got.Broker, want.Body, want.Broker)
		}
		if len(got.Body) > 0 && &got.Body[0] == &r.Body[0] {
			t.Fatal("the stripped record shares its body with the original")
		}
	})
}

// TestMayHavePersonal: the names alone tell a canonical body without personal
// members (the fast way), and any doubt takes the parse.
func TestMayHavePersonal(t *testing.T) {
	for _, c := range []struct {
		body string
		may  bool
	}{
		{`{"summary":"s","title":"x"}`, false},
		{`{"a":{"contact":1},"contact_policy":"y"}`, false}, // nested, or another name
		{`{"contact":{"name":"张三"},"title":"x"}`, true},
		{`{"team":[]}`, true},
		{`{"con\u0074act":1}`, true}, // an escaped name is not walked
		{`{ "title": "x" }`, true},   // not compact
		{`[1]`, true},
	} {
		if got := mayHavePersonal([]byte(c.body)); got != c.may {
			t.Errorf("mayHavePersonal(%s) = %v, want %v", c.body, got, c.may)
		}
	}
	// Every personal field, first, last or alone among other members.
	for _, f := range PersonalFields {
		for _, body := range []string{`{"` + f + `":1}`, `{"` + f + `":[],"zz":1}`, `{"a":"` + f + `","` + f + `":{}}`} {
			if !mayHavePersonal([]byte(body)) {
				t.Errorf("mayHavePersonal(%s) = false: %s would reach the federation", body, f)
			}
		}
	}
}
