package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestValidateSamples(t *testing.T) {
	for _, r := range []*Record{
		newRecord(CatalogueSupply, nickelBody),
		newRecord(CatalogueNeed, challengeBody),
		newRecord(CatalogueExpert, expertBody),
	} {
		for _, strict := range []bool{true, false} {
			if err := ValidateRecord(r, ValidateOptions{Strict: strict}); err != nil {
				t.Errorf("%s (strict %v): %v", r.Catalogue, strict, err)
			}
		}
	}
}

// Each case changes one thing in a valid record and names every field error expected
// (exactly), in strict and in lenient mode.
func TestValidateRules(t *testing.T) {
	type tc struct {
		name    string
		rec     func() *Record
		strict  []string // errors with Strict; nil: valid
		lenient []string // errors without; nil: valid
	}
	supply := func(k, v string) func() *Record {
		return func() *Record { return newRecord(CatalogueSupply, setBody(t, nickelBody, k, v)) }
	}
	need := func(k, v string) func() *Record {
		return func() *Record { return newRecord(CatalogueNeed, setBody(t, challengeBody, k, v)) }
	}
	expert := func(k, v string) func() *Record {
		return func() *Record { return newRecord(CatalogueExpert, setBody(t, expertBody, k, v)) }
	}
	env := func(f func(r *Record)) func() *Record {
		return func() *Record { r := newRecord(CatalogueSupply, nickelBody); f(r); return r }
	}
	both := func(errs ...string) ([]string, []string) { return errs, errs }
	cases := []tc{}
	add := func(name string, rec func() *Record, strict, lenient []string) {
		cases = append(cases, tc{name, rec, strict, lenient})
	}
	addBoth := func(name string, rec func() *Record, errs ...string) {
		s, l := both(errs...)
		add(name, rec, s, l)
	}

	// Envelope.
	add("unknown catalogue", env(func(r *Record) { r.Catalogue = "patent" }), []string{"catalogue unknown_catalogue"}, nil)
	add("catalogue not code-shaped", env(func(r *Record) { r.Catalogue = "专利" }), []string{"catalogue unknown_catalogue"}, []string{"catalogue format"})
	addBoth("catalogue missing", env(func(r *Record) { r.Catalogue = "" }), "catalogue required")
	addBoth("origin missing", env(func(r *Record) { r.Origin = "" }), "origin required")
	addBoth("origin bad", env(func(r *Record) { r.Origin = "Tian jin"; r.ID = "" }), "origin format")
	addBoth("id bad", env(func(r *Record) { r.ID = "tianjin" }), "id format")
	addBoth("id key too long", env(func(r *Record) { r.ID = "tianjin:" + strings.Repeat("k", 129) }), "id format")
	addBoth("id other centre", env(func(r *Record) { r.ID = "hebei:k1" }), "id mismatch")
	add("id absent", env(func(r *Record) { r.ID = "" }), nil, nil)
	addBoth("version 0", env(func(r *Record) { r.Version = 0 }), "version min")
	addBoth("version 2^53", env(func(r *Record) { r.Version = 1 << 53 }), "version max")
	add("version 2^53-1", env(func(r *Record) { r.Version = 1<<53 - 1 }), nil, nil)
	addBoth("visibility missing", env(func(r *Record) { r.Visibility = "" }), "visibility required")
	addBoth("visibility unknown", env(func(r *Record) { r.Visibility = "internal" }), "visibility enum")
	addBoth("schema negative", env(func(r *Record) { r.Schema = -1 }), "schema min")
	add("schema absent", env(func(r *Record) { r.Schema = 0 }), nil, nil)
	add("schema newer", env(func(r *Record) { r.Schema = 2; r.Body = json.RawMessage(`{"title2":"新版本"}`) }), []string{"schema max"}, nil)
	addBoth("broker bad", env(func(r *Record) { r.Broker = "Hebei" }), "broker format")
	addBoth("body missing", env(func(r *Record) { r.Body = nil }), "body required")
	addBoth("body null", env(func(r *Record) { r.Body = json.RawMessage(" null ") }), "body required")
	addBoth("body string", env(func(r *Record) { r.Body = json.RawMessage(`"高镍"`) }), "body type")
	addBoth("body not JSON", env(func(r *Record) { r.Body = json.RawMessage(`{"title": "a",}`) }), "body syntax")
	addBoth("body trailing data", env(func(r *Record) { r.Body = json.RawMessage(`{} {}`) }), "body syntax")
	add("tombstone without body", env(func(r *Record) { r.Deleted = true; r.Body = nil }), nil, nil)
	add("tombstone with old body", env(func(r *Record) { r.Deleted = true; r.Body = json.RawMessage(`{"title":""}`) }), nil, nil)
	addBoth("tombstone with array body", env(func(r *Record) { r.Deleted = true; r.Body = json.RawMessage(`[]`) }), "body type")

	// Supply body.
	addBoth("title missing", supply("title", ""), "body.title required")
	addBoth("title blank ideographic", supply("title", `"\u3000 \t"`), "body.title required")
	addBoth("title number", supply("title", `42`), "body.title type")
	addBoth("title object", supply("title", `{"zh":"标题"}`), "body.title type")
	addBoth("summary 5001", supply("summary", `"`+strings.Repeat("述", 5001)+`"`), "body.summary max_length")
	add("industry unknown", supply("industry", `"quantum"`), []string{"body.industry enum"}, nil)
	add("industry not code", supply("industry", `"Quantum Tech"`), []string{"body.industry enum"}, []string{"body.industry format"})
	add("industry too long", supply("industry", `"`+strings.Repeat("q", 65)+`"`), []string{"body.industry enum"}, []string{"body.industry format"})
	addBoth("industry array", supply("industry", `["new-materials"]`), "body.industry type")
	addBoth("keywords object", supply("keywords", `{}`), "body.keywords type")
	addBoth("keywords 21", supply("keywords", `[`+strings.TrimSuffix(strings.Repeat(`"k",`, 0), ",")+seq(21)+`]`), "body.keywords max_items")
	addBoth("keyword 33", supply("keywords", `["`+strings.Repeat("词", 33)+`"]`), "body.keywords[0] max_length")
	addBoth("keyword number", supply("keywords", `["a", 7]`), "body.keywords[1] type")
	addBoth("keyword repeated", supply("keywords", `["a","b","a","a"]`), "body.keywords[2] unique", "body.keywords[3] unique")
	addBoth("trl 10", supply("trl", `10`), "body.trl max")
	addBoth("trl 0", supply("trl", `0`), "body.trl min")
	addBoth("trl -1", supply("trl", `-1`), "body.trl min")
	addBoth("trl 6.5", supply("trl", `6.5`), "body.trl type")
	addBoth("trl 6.0", supply("trl", `6.0`), "body.trl type")
	addBoth("trl 6e0", supply("trl", `6e0`), "body.trl type")
	addBoth("trl string", supply("trl", `"6"`), "body.trl type")
	addBoth("trl null", supply("trl", `null`), "body.trl type")
	addBoth("ip object", supply("ip", `{"type":"patent"}`), "body.ip type")
	addBoth("ip 51", supply("ip", `[`+strings.TrimSuffix(strings.Repeat(`{"type":"patent"},`, 51), ",")+`]`), "body.ip max_items")
	addBoth("ip type missing", supply("ip", `[{"type":"patent"},{"number":"ZL1"}]`), "body.ip[1].type required")
	addBoth("ip type 33", supply("ip", `[{"type":"`+strings.Repeat("t", 33)+`"}]`), "body.ip[0].type max_length")
	addBoth("ip number 65", supply("ip", `[{"type":"patent","number":"`+strings.Repeat("1", 65)+`"}]`), "body.ip[0].number max_length")
	add("ip status unknown", supply("ip", `[{"type":"patent","status":"approved"}]`), []string{"body.ip[0].status enum"}, nil)
	addBoth("ip status number", supply("ip", `[{"type":"patent","status":1}]`), "body.ip[0].status type")
	add("transfer mode unknown", supply("transfer_modes", `["license","sale"]`), []string{"body.transfer_modes[1] enum"}, nil)
	addBoth("transfer mode repeated", supply("transfer_modes", `["license","license"]`), "body.transfer_modes[1] unique")
	add("transfer modes 11", supply("transfer_modes", `[`+seq(11)+`]`),
		append(itemErrs("body.transfer_modes", 11, "enum"), "body.transfer_modes max_items"), []string{"body.transfer_modes max_items"})
	addBoth("owner_org 201", supply("owner_org", `"`+strings.Repeat("院", 201)+`"`), "body.owner_org max_length")
	add("owner_org empty", supply("owner_org", `""`), nil, nil)
	addBoth("disruptive string", supply("disruptive", `"false"`), "body.disruptive type")
	addBoth("disruptive 0", supply("disruptive", `0`), "body.disruptive type")
	addBoth("inventors 51", supply("inventors", `[`+seq(51)+`]`), "body.inventors max_items")
	addBoth("inventor blank", supply("inventors", `["王某",""]`), "body.inventors[1] required")
	addBoth("inventor 65", supply("inventors", `["`+strings.Repeat("王", 65)+`"]`), "body.inventors[0] max_length")
	addBoth("contact array", supply("contact", `[]`), "body.contact type")
	addBoth("contact person 65", supply("contact", `{"person":"`+strings.Repeat("王", 65)+`"}`), "body.contact.person max_length")
	add("contact empty", supply("contact", `{}`), nil, nil)
	for _, ok := range []string{"022-23456789", "+86 138 0000 0000", "(022) 2345 6789", "12345", "+8613800000000", "010-8888-8888"} {
		add("phone "+ok, supply("contact", `{"phone":"`+ok+`"}`), nil, nil)
	}
	for _, bad := range []string{"1234", "022 2345 678x", "+86 138 0000 0000 1234 5678", "＋86 13800000000", "022–23456789", "1+2345", " ", "ext. 12345", "１２３４５"} {
		addBoth("phone "+bad, supply("contact", `{"phone":"`+bad+`"}`), "body.contact.phone format")
	}
	addBoth("phone 33 chars", supply("contact", `{"phone":"1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7"}`), "body.contact.phone max_length")
	for _, ok := range []string{"wang@tju.edu.cn", "a.b+c@mail.example.com", "王@例子.中国"} {
		add("email "+ok, supply("contact", `{"email":"`+ok+`"}`), nil, nil)
	}
	for _, bad := range []string{"wang", "wang@tju", "wang@@tju.cn", "wang @tju.cn", "wang@tju..cn", "@tju.cn", "wang@.cn", "wang@tju.cn."} {
		addBoth("email "+bad, supply("contact", `{"email":"`+bad+`"}`), "body.contact.email format")
	}
	addBoth("email 255", supply("contact", `{"email":"`+strings.Repeat("a", 243)+`@example.com"}`), "body.contact.email max_length")

	// Need body.
	addBoth("enterprise missing", need("enterprise", ""), "body.enterprise required")
	addBoth("description blank", need("description", `"   "`), "body.description required")
	addBoth("enterprise 201", need("enterprise", `"`+strings.Repeat("企", 201)+`"`), "body.enterprise max_length")
	addBoth("budget array", need("budget", `[1,2]`), "body.budget type")
	addBoth("budget min > max", need("budget", `{"min":3,"max":2}`), "body.budget range")
	add("budget min = max", need("budget", `{"min":2,"max":2}`), nil, nil)
	addBoth("budget negative", need("budget", `{"min":-0.5}`), "body.budget.min min")
	addBoth("budget too big", need("budget", `{"max":1000000000001}`), "body.budget.max max")
	addBoth("budget string", need("budget", `{"max":"200万"}`), "body.budget.max type")
	addBoth("currency lower", need("budget", `{"currency":"cny"}`), "body.budget.currency format")
	addBoth("currency 4", need("budget", `{"currency":"CNYY"}`), "body.budget.currency format")
	addBoth("currency 人民币", need("budget", `{"currency":"人民币"}`), "body.budget.currency format")
	for _, bad := range []string{"2027/06/30", "2027-6-30", "2027-02-29", "2027-13-01", "27-06-30", "2027-06-30T00:00:00Z", "明年六月"} {
		addBoth("deadline "+bad, need("deadline", `"`+bad+`"`), "body.deadline format")
	}
	add("deadline leap day", need("deadline", `"2028-02-29"`), nil, nil)
	add("status unknown", need("status", `"pending"`), []string{"body.status enum"}, nil)
	add("kind unknown with challenge", need("kind", `"tender"`), []string{"body.kind enum", "body.challenge forbidden"}, nil)
	add("kind number", need("kind", `1`), []string{"body.kind type", "body.challenge forbidden"}, []string{"body.kind type"})
	addBoth("challenge without terms", need("challenge", ""), "body.challenge required")
	addBoth("challenge without deadline", need("deadline", ""), "body.deadline required")
	addBoth("plain need with terms", need("kind", `"need"`), "body.challenge forbidden")
	addBoth("absent kind with terms", need("kind", ""), "body.challenge forbidden")
	add("plain need", func() *Record {
		r := newRecord(CatalogueNeed, setBody(t, setBody(t, challengeBody, "kind", `"need"`), "challenge", ""))
		return r
	}, nil, nil)
	addBoth("challenge string", need("challenge", `"150万"`), "body.challenge type")
	addBoth("targets missing", need("challenge", `{"bounty":1}`), "body.challenge.targets required")
	addBoth("targets empty", need("challenge", `{"targets":[]}`), "body.challenge.targets min_items")
	addBoth("targets 21", need("challenge", `{"targets":[`+seq(21)+`]}`), "body.challenge.targets max_items")
	addBoth("target 201", need("challenge", `{"targets":["`+strings.Repeat("标", 201)+`"]}`), "body.challenge.targets[0] max_length")
	addBoth("bounty negative", need("challenge", `{"targets":["a"],"bounty":-1}`), "body.challenge.bounty min")
	addBoth("max_months 121", need("challenge", `{"targets":["a"],"max_months":121}`), "body.challenge.max_months max")
	addBoth("max_months 0", need("challenge", `{"targets":["a"],"max_months":0}`), "body.challenge.max_months min")

	// Expert body.
	addBoth("name missing", expert("name", ""), "body.name required")
	addBoth("affiliation missing", expert("affiliation", ""), "body.affiliation required")
	addBoth("expert title 65", expert("title", `"`+strings.Repeat("职", 65)+`"`), "body.title max_length")
	add("field unknown", expert("fields", `["robotics"]`), []string{"body.fields[0] enum"}, nil)
	add("it-innovation field", expert("fields", `["it-innovation","intelligent-tech"]`), nil, nil)
	add("fields 11", expert("fields", `[`+seq(11)+`]`),
		append(itemErrs("body.fields", 11, "enum"), "body.fields max_items"), []string{"body.fields max_items"})
	add("role unknown", expert("roles", `["judge"]`), []string{"body.roles[0] enum"}, nil)
	addBoth("role repeated", expert("roles", `["review","review"]`), "body.roles[1] unique")
	addBoth("bio 5001", expert("bio", `"`+strings.Repeat("简", 5001)+`"`), "body.bio max_length")

	// Encoding rules, anywhere in a body, known member or not.
	addBoth("duplicate member", supply("trl", `6, "trl": 7`), "body.trl duplicate_key")
	addBoth("duplicate nested", supply("extra", `{"a":1,"b":{"c":1,"c":2}}`), "body.extra.b.c duplicate_key")
	addBoth("duplicate by escape", supply("extra", `{"a":1,"\u0061":2}`), "body.extra.a duplicate_key")
	addBoth("lone surrogate", supply("owner_org", `"天津\ud800大学"`), "body.owner_org utf8")
	addBoth("low surrogate first", supply("extra", `["\udc00\ud800"]`), "body.extra[0] utf8")
	addBoth("invalid utf8", supply("owner_org", "\"\xcc\xec\xbd\xf2\""), "body.owner_org utf8")
	addBoth("invalid utf8 member name", supply("extra", "{\"\xff\":1}"), `body.extra["\xff"] utf8`)
	addBoth("big integer", supply("serial", `9007199254740993`), "body.serial number")
	addBoth("2^53", supply("serial", `-9007199254740992`), "body.serial number")
	add("2^53-1", supply("serial", `9007199254740991`), nil, nil)
	addBoth("1e21", supply("extra", `[1e21]`), "body.extra[0] number")
	addBoth("1e400", supply("trl", `1e400`), "body.trl number")
	add("tiny fraction", supply("extra", `1e-400`), nil, nil)
	addBoth("odd member name path", supply("名称 x", `"\ud800"`), `body["名称 x"] utf8`)

	for _, c := range cases {
		for _, strict := range []bool{true, false} {
			want := c.lenient
			if strict {
				want = c.strict
			}
			t.Run(fmt.Sprintf("%s/strict=%v", c.name, strict), func(t *testing.T) {
				r := c.rec()
				before := r.Clone()
				got := fieldErrors(t, ValidateRecord(r, ValidateOptions{Strict: strict}))
				if !sameSet(got, want) {
					t.Errorf("got  %q\nwant %q", got, want)
				}
				if !bytes.Equal(r.Body, before.Body) || r.ID != before.ID || r.Version != before.Version {
					t.Error("ValidateRecord modified the record")
				}
			})
		}
	}
}

// itemErrs returns "path[i] rule" for i < n.
func itemErrs(path string, n int, rule string) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s[%d] %s", path, i, rule))
	}
	return out
}

// seq returns n distinct JSON strings "k0","k1",… joined by commas.
func seq(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = fmt.Sprintf(`"k%d"`, i)
	}
	return strings.Join(parts, ",")
}

// Lengths are counted in characters: 200 Chinese characters (600 bytes) pass, 201
// fail; a character outside the BMP (4 bytes, two UTF-16 units) counts once.
func TestValidateLengthsInCharacters(t *testing.T) {
	for _, c := range []struct {
		char  string
		n     int
		valid bool
	}{
		{"材", 200, true}, {"材", 201, false},
		{"𠀀", 200, true}, {"𠀀", 201, false}, // CJK Extension B
		{"é", 200, true}, {"a", 201, false},
	} {
		title := strings.Repeat(c.char, c.n)
		r := newRecord(CatalogueSupply, setBody(t, nickelBody, "title", `"`+title+`"`))
		err := ValidateRecord(r, ValidateOptions{Strict: true})
		if (err == nil) != c.valid {
			t.Errorf("%d × %q (%d bytes): err = %v, want valid %v", c.n, c.char, len(title), err, c.valid)
		}
		if !c.valid {
			if got := fieldErrors(t, err); !sameSet(got, []string{"body.title max_length"}) {
				t.Errorf("got %q", got)
			}
			var ve *ValidationError
			errors.As(err, &ve)
			if want := fmt.Sprintf("has %d", c.n); !strings.Contains(ve.Errors[0].Message, want) {
				t.Errorf("message %q does not say %q", ve.Errors[0].Message, want)
			}
		}
	}
}

// Envelope and body errors all come back from one call.
func TestValidateAllErrorsAtOnce(t *testing.T) {
	r := newRecord(CatalogueNeed, `{"title":"","industry":"robots","enterprise":"某公司","kind":"challenge",
		"budget":{"min":5,"max":1,"currency":"rmb"},"deadline":"2027-02-30","status":"new","keywords":["a","a"],
		"contact":{"phone":"x","email":"y"}}`)
	r.Visibility = "everyone"
	r.Version = 0
	r.ID = "hebei:k"
	got := fieldErrors(t, ValidateRecord(r, ValidateOptions{Strict: true}))
	want := []string{
		"id mismatch", "version min", "visibility enum",
		"body.title required", "body.description required", "body.industry enum", "body.keywords[1] unique",
		"body.budget.currency format", "body.budget range", "body.deadline format", "body.status enum",
		"body.contact.phone format", "body.contact.email format", "body.challenge required",
	}
	if !sameSet(got, want) {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

func TestValidateTooManyErrors(t *testing.T) {
	body := `{"title":"t","summary":"s","industry":"other","keywords":[` + strings.TrimSuffix(strings.Repeat("1,", 500), ",") + `]}`
	got := fieldErrors(t, ValidateRecord(newRecord(CatalogueSupply, body), ValidateOptions{Strict: true}))
	if len(got) != MaxFieldErrors+1 || got[len(got)-1] != " too_many_errors" {
		t.Errorf("got %d errors, last %q; want %d and too_many_errors", len(got), got[len(got)-1], MaxFieldErrors+1)
	}
	if got[0] != "body.keywords max_items" {
		t.Errorf("first error %q", got[0])
	}
}

func TestValidateSizeAndDepth(t *testing.T) {
	strict := ValidateOptions{Strict: true}
	pad := func(n int) string { // a valid supply body of exactly n bytes
		base := `{"title":"t","summary":"s","industry":"other","pad":""}`
		return strings.Replace(base, `"pad":""`, `"pad":"`+strings.Repeat("x", n-len(base))+`"`, 1)
	}
	if err := ValidateRecord(newRecord(CatalogueSupply, pad(MaxBodyBytes)), strict); err != nil {
		t.Errorf("body of MaxBodyBytes: %v", err)
	}
	for _, opts := range []ValidateOptions{strict, {}} {
		r := newRecord(CatalogueSupply, pad(MaxBodyBytes+1))
		if got := fieldErrors(t, ValidateRecord(r, opts)); !sameSet(got, []string{"body too_large"}) {
			t.Errorf("body of MaxBodyBytes+1: %q", got)
		}
		r.Schema = 7 // size counts for newer schemas too
		r.Catalogue = "patent"
		if got := fieldErrors(t, ValidateRecord(r, ValidateOptions{})); !sameSet(got, []string{"body too_large"}) {
			t.Errorf("newer schema, body of MaxBodyBytes+1: %q", got)
		}
	}
	// Small in the request, too large in canonical form: 1e5 is 100000.
	nums := strings.TrimSuffix(strings.Repeat("1e5,", 15000), ",")
	r := newRecord(CatalogueSupply, `{"title":"t","summary":"s","industry":"other","n":[`+nums+`]}`)
	if got := fieldErrors(t, ValidateRecord(r, strict)); !sameSet(got, []string{"body too_large"}) {
		t.Errorf("canonical form too large: %q", got)
	}

	// Nesting: a body at MaxBodyDepth still makes a canonical entry.
	nest := func(levels int) string { // the body object is level 1
		return `{"title":"t","summary":"s","industry":"other","n":` + strings.Repeat("[", levels-1) + strings.Repeat("]", levels-1) + `}`
	}
	r = newRecord(CatalogueSupply, nest(MaxBodyDepth))
	if err := ValidateRecord(r, strict); err != nil {
		t.Errorf("body at MaxBodyDepth: %v", err)
	}
	if _, err := NewEntry(EntryPayload{Origin: "tianjin", Epoch: "e", Seq: 1, KeyID: "k", Record: r}); err != nil {
		t.Errorf("entry of a body at MaxBodyDepth: %v", err)
	}
	r = newRecord(CatalogueSupply, nest(MaxBodyDepth+1))
	if got := fieldErrors(t, ValidateRecord(r, strict)); !sameSet(got, []string{"body depth"}) {
		t.Errorf("body deeper than MaxBodyDepth: %q", got)
	}
	// Very deep input does not exhaust the stack.
	r.Body = json.RawMessage(strings.Repeat("[", 1<<16))
	if got := fieldErrors(t, ValidateRecord(r, strict)); !sameSet(got, []string{"body depth"}) {
		t.Errorf("64k open brackets: %q", got)
	}
}

// A record from a newer peer (body schema above CurrentSchema) is accepted with only
// its envelope checked, and its body is not touched.
func TestValidateNewerSchemaKeptByteForByte(t *testing.T) {
	body := "{ \"标题\" : \"新字段\",\n  \"trl\": \"high\", \"contact\": {\"wechat\": \"x\"}, \"n\": 1.50 }"
	r := newRecord(CatalogueSupply, body)
	r.Schema = CurrentSchema + 1
	if err := ValidateRecord(r, ValidateOptions{}); err != nil {
		t.Fatalf("lenient: %v", err)
	}
	if string(r.Body) != body {
		t.Error("body changed")
	}
	if got := fieldErrors(t, ValidateRecord(r, ValidateOptions{Strict: true})); !sameSet(got, []string{"schema max"}) {
		t.Errorf("strict: %q", got)
	}
	// Through JSON and back, as it arrives from a peer.
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeRecord(js)
	if err != nil {
		t.Fatal(err)
	}
	if err := ValidateRecord(back, ValidateOptions{}); err != nil {
		t.Errorf("after JSON: %v", err)
	}
	// Its personal data still goes, by name; the rest stays as written.
	s, err := StripPersonal(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := "{\"标题\" : \"新字段\",\"trl\": \"high\",\"n\": 1.50}"; string(s.Body) != want {
		t.Errorf("stripped body %s, want %s", s.Body, want)
	}
	// An unknown catalogue from a peer is kept too.
	r.Schema, r.Catalogue = CurrentSchema, "patent"
	if err := ValidateRecord(r, ValidateOptions{}); err != nil {
		t.Errorf("unknown catalogue, lenient: %v", err)
	}
}

func TestValidateNil(t *testing.T) {
	if got := fieldErrors(t, ValidateRecord(nil, ValidateOptions{})); !sameSet(got, []string{" required"}) {
		t.Errorf("nil record: %q", got)
	}
	if got := fieldErrors(t, ValidateRecord(&Record{}, ValidateOptions{Strict: true})); !sameSet(got,
		[]string{"catalogue required", "origin required", "version min", "visibility required", "body required"}) {
		t.Errorf("zero record: %q", got)
	}
}

func TestValidationErrorText(t *testing.T) {
	r := newRecord(CatalogueSupply, `{"title":"`+strings.Repeat("长", 300)+`","summary":"s","industry":"新材料"}`)
	err := ValidateRecord(r, ValidateOptions{Strict: true})
	if err == nil {
		t.Fatal("valid")
	}
	msg := err.Error()
	for _, want := range []string{"invalid record: ", "body.title: must be at most 200 characters, has 300", `not "新材料"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q does not contain %q", msg, want)
		}
	}
	var ve *ValidationError
	errors.As(err, &ve)
	js, _ := json.Marshal(ve.Errors[0])
	if !strings.Contains(string(js), `"path":"body.title","rule":"max_length","message":`) {
		t.Errorf("FieldError JSON: %s", js)
	}
	// Invalid bytes in values never reach messages.
	r = newRecord(CatalogueSupply, "{\"title\":\"t\",\"summary\":\"s\",\"industry\":\"x\xff\"}")
	r.Visibility = "\xfe"
	for _, fe := range mustValidationError(t, ValidateRecord(r, ValidateOptions{Strict: true})).Errors {
		if !utf8.ValidString(fe.Message) || !utf8.ValidString(fe.Path) {
			t.Errorf("invalid UTF-8 in %+v", fe)
		}
	}
	// Error() shortens long lists.
	r = newRecord(CatalogueSupply, `{"keywords":[1,2,3,4,5,6,7,8,9]}`)
	if msg := ValidateRecord(r, ValidateOptions{Strict: true}).Error(); !strings.Contains(msg, "and 7 more") {
		t.Errorf("long message: %s", msg)
	}
}

func mustValidationError(t *testing.T, err error) *ValidationError {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("%v is not a ValidationError", err)
	}
	return ve
}

func TestDecodeRecord(t *testing.T) {
	good := `{"id":"tianjin:a","catalogue":"supply","origin":"tianjin","version":3,"visibility":"public","schema":1,
		"created_at":"2026-03-02T09:30:00+08:00","updated_at":"2026-03-02T09:30:00Z","expires_at":null,"deleted":false,
		"broker":"","future":{"x":1},"body":{"title":"t"}}`
	r, err := DecodeRecord([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	var want Record
	if err := json.Unmarshal([]byte(good), &want); err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(r)
	b, _ := json.Marshal(&want)
	if !bytes.Equal(a, b) {
		t.Errorf("DecodeRecord differs from json.Unmarshal:\n%s\n%s", a, b)
	}

	for _, c := range []struct {
		in   string
		want []string
	}{
		{`{"version":"3","schema":1.5,"deleted":"no","created_at":"yesterday","id":7,"body":{}}`,
			[]string{"version type", "schema type", "deleted type", "created_at format", "id type"}},
		{`{"version":-1}`, []string{"version type"}},
		{`[1]`, []string{" type"}},
		{`{"id":`, []string{" syntax"}},
		{``, []string{" syntax"}},
		{`{"body":` + strings.Repeat(" ", MaxRecordBytes) + `{}}`, []string{" too_large"}},
	} {
		_, err := DecodeRecord([]byte(c.in))
		if got := fieldErrors(t, err); !sameSet(got, c.want) {
			t.Errorf("DecodeRecord(%.40s): got %q, want %q", c.in, got, c.want)
		}
	}
}
