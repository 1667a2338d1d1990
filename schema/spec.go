package schema

import (
	"regexp"
	"strings"
	"time"
	"unicode"
)

// Limits on catalogue bodies. Lengths count characters (Unicode code points), not
// bytes: a 200-character Chinese title is 600 bytes of UTF-8 and is allowed.
const (
	MaxTitleChars      = 200  // supply and need title
	MaxTextChars       = 5000 // summary, description, bio
	MaxNameChars       = 64   // a person's name, an expert's name and professional title
	MaxOrgChars        = 200  // owner_org, enterprise, affiliation
	MaxKeywords        = 20
	MaxKeywordChars    = 32
	MaxIPRights        = 50
	MaxIPTypeChars     = 32
	MaxIPNumberChars   = 64
	MaxInventors       = 50
	MaxCodes           = 10 // transfer_modes, roles, an expert's fields
	MaxTargets         = 20 // challenge targets
	MaxTargetChars     = 200
	MaxChallengeMonths = 120
	MaxAmount          = 1_000_000_000_000 // budget and bounty, in currency units
	MaxEmailChars      = 254
	MaxPhoneChars      = 32
	MaxCodeChars       = 64 // an industry or other code, including ones from newer peers

	// MaxBodyDepth bounds nesting inside a body. A body sits two levels down in a
	// signed entry (payload → record → body), whose canonical encoding allows
	// MaxDepth levels in all.
	MaxBodyDepth = MaxDepth - 2
)

// Rule names in FieldError.Rule.
const (
	RuleRequired         = "required"          // missing, empty or blank
	RuleType             = "type"              // wrong JSON type
	RuleMaxLength        = "max_length"        // too many characters
	RuleMinItems         = "min_items"         // too few array items
	RuleMaxItems         = "max_items"         // too many array items
	RuleUnique           = "unique"            // repeated array item
	RuleMin              = "min"               // number below its minimum
	RuleMax              = "max"               // number above its maximum
	RuleEnum             = "enum"              // not one of the allowed values
	RuleFormat           = "format"            // wrong shape (date, e-mail, phone, id, code…)
	RuleUTF8             = "utf8"              // not valid UTF-8 / Unicode
	RuleUnknownCatalogue = "unknown_catalogue" // catalogue this build does not know
	RuleTooLarge         = "too_large"         // body larger than MaxBodyBytes
	RuleForbidden        = "forbidden"         // present where it must not be
	RuleRange            = "range"             // bounds out of order (budget min > max)
	RuleMismatch         = "mismatch"          // id's centre differs from origin
	RuleDuplicateKey     = "duplicate_key"     // member name repeated in one object
	RuleNumber           = "number"            // number not exactly representable
	RuleDepth            = "depth"             // nesting deeper than MaxBodyDepth
	RuleSyntax           = "syntax"            // not JSON
	RuleTooManyErrors    = "too_many_errors"   // more than MaxFieldErrors errors
)

// A spec describes one JSON value of a catalogue body. The Go validator and the JSON
// Schema are both derived from the specs below, so the two agree by construction; the
// corpus test checks that they do.
type spec struct {
	kind     skind
	title    string // for JSON Schema "title"
	nonBlank bool   // string must hold a character that is not white space
	maxLen   int    // characters
	format   *stringFormat
	enum     []string // sCode: the values this build knows
	min, max *float64
	items    *spec
	minItems int
	maxItems int
	unique   bool
	props    []prop
	// check applies rules across members of an object (Go side); schemaExtra gives
	// the same rules in JSON Schema, where it can express them.
	check       func(v *validator, n *jnode, path string)
	schemaExtra func() jsObj
}

type skind uint8

const (
	sString  skind = iota
	sCode          // a code from enum: refused if unknown when strict, kept if code-shaped otherwise
	sInteger       // written without fraction or exponent
	sNumber
	sBool
	sArray
	sObject
)

type prop struct {
	name     string
	required bool
	spec     *spec
}

// stringFormat is a shape a string must have: a regular expression in the subset
// RE2 (Go) and ECMA-262 (JSON Schema validators elsewhere) agree on, plus an
// optional further check.
type stringFormat struct {
	name       string
	pattern    string
	re         *regexp.Regexp
	jsonFormat string // JSON Schema "format", if one applies
	also       func(string) bool
	want       string // for messages: "must be …"
}

func newFormat(name, pattern, jsonFormat, want string, also func(string) bool) *stringFormat {
	return &stringFormat{name: name, pattern: pattern, re: regexp.MustCompile(pattern), jsonFormat: jsonFormat, want: want, also: also}
}

func (f *stringFormat) match(s string) bool {
	return f.re.MatchString(s) && (f.also == nil || f.also(s))
}

var (
	dateFormat = newFormat("date", `^[0-9]{4}-[0-9]{2}-[0-9]{2}$`, "date",
		"a calendar date YYYY-MM-DD", func(s string) bool {
			_, err := time.Parse(time.DateOnly, s)
			return err == nil
		})
	emailFormat = newFormat("email", `^[^@\x00-\x20\x7f]+@[^@.\x00-\x20\x7f]+(?:\.[^@.\x00-\x20\x7f]+)+$`, "",
		"an e-mail address like name@example.cn", nil)
	phoneFormat = newFormat("phone", `^\+?[ ()-]*(?:[0-9][ ()-]*){5,20}$`, "",
		"a phone number of 5–20 digits with optional leading +, spaces, '-' and parentheses, like 022-23456789 or +86 138 0000 0000", nil)
	currencyFormat = newFormat("currency", `^[A-Z]{3}$`, "",
		"an ISO 4217 currency code of three capital letters, like CNY", nil)
	codeFormat = newFormat("code", `^[a-z][a-z0-9-]*$`, "",
		"a code of lowercase letters, digits and '-', starting with a letter", nil)
	centreFormat = newFormat("centre", `^[a-z][a-z0-9-]{0,31}$`, "",
		"a centre id of 1–32 lowercase letters, digits or '-', starting with a letter", nil)
	idFormat = newFormat("id", `^[a-z][a-z0-9-]{0,31}:[A-Za-z0-9._-]{1,128}$`, "",
		"<centre>:<key>, the key of 1–128 letters, digits, '-', '_' or '.'", nil)
)

// nonBlankPattern matches a string holding a character that is not white space, in
// the sense of unicode.IsSpace. The non-ASCII spaces are literal characters, which
// both RE2 and ECMA-262 read the same way (their \s classes differ).
const nonBlankPattern = "[^\\t\\n\\v\\f\\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"

func isBlank(s string) bool { return strings.TrimFunc(s, unicode.IsSpace) == "" }

func fptr(f float64) *float64 { return &f }

func text(title string, maxLen int) *spec {
	return &spec{kind: sString, title: title, nonBlank: true, maxLen: maxLen}
}

func optText(title string, maxLen int) *spec {
	return &spec{kind: sString, title: title, maxLen: maxLen}
}

func code(title string, values []string) *spec {
	return &spec{kind: sCode, title: title, enum: values}
}

func codeList(title string, values []string) *spec {
	return &spec{kind: sArray, title: title, maxItems: MaxCodes, unique: true, items: code("", values)}
}

func amount(title string) *spec {
	return &spec{kind: sNumber, title: title, min: fptr(0), max: fptr(MaxAmount)}
}

func industryCodes() []string {
	codes := make([]string, len(Industries))
	for i, in := range Industries {
		codes[i] = in.Code
	}
	return codes
}

func industryTitle() string {
	var b strings.Builder
	b.WriteString("行业 industry:")
	for i, in := range Industries {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(" " + in.Code + " " + in.ZH)
	}
	return b.String()
}

var (
	keywordsSpec = &spec{kind: sArray, title: "关键词 keywords", maxItems: MaxKeywords, unique: true,
		items: text("", MaxKeywordChars)}

	contactSpec = &spec{kind: sObject, title: "联系人 contact (personal data: stays at the origin centre)", props: []prop{
		{"person", false, optText("联系人 person", MaxNameChars)},
		{"phone", false, &spec{kind: sString, title: "电话 phone", maxLen: MaxPhoneChars, format: phoneFormat}},
		{"email", false, &spec{kind: sString, title: "邮箱 e-mail", maxLen: MaxEmailChars, format: emailFormat}},
	}}

	supplySpec = &spec{kind: sObject, title: "科技成果供给 supply item", props: []prop{
		{"title", true, text("成果名称 title", MaxTitleChars)},
		{"summary", true, text("成果简介 summary", MaxTextChars)},
		{"industry", true, code(industryTitle(), industryCodes())},
		{"keywords", false, keywordsSpec},
		{"trl", false, &spec{kind: sInteger, title: "技术成熟度 technology readiness level", min: fptr(1), max: fptr(9)}},
		{"ip", false, &spec{kind: sArray, title: "知识产权 intellectual property", maxItems: MaxIPRights,
			items: &spec{kind: sObject, props: []prop{
				{"type", true, text("类型 type, e.g. patent, utility-model, software-copyright, know-how", MaxIPTypeChars)},
				{"number", false, optText("编号 number, e.g. ZL202110345678.9", MaxIPNumberChars)},
				{"status", false, code("状态 status", IPStatuses)},
			}}}},
		{"transfer_modes", false, codeList("转化方式 transfer modes", TransferModes)},
		{"owner_org", false, optText("成果单位 owner organisation", MaxOrgChars)},
		{"disruptive", false, &spec{kind: sBool, title: "颠覆性技术 disruptive"}},
		{"inventors", false, &spec{kind: sArray, title: "发明人 inventors (personal data: stays at the origin centre)",
			maxItems: MaxInventors, items: text("", MaxNameChars)}},
		{"contact", false, contactSpec},
	}}

	needSpec = &spec{kind: sObject, title: "产业技术需求 need", props: []prop{
		{"title", true, text("需求名称 title", MaxTitleChars)},
		{"description", true, text("需求描述 description", MaxTextChars)},
		{"industry", true, code(industryTitle(), industryCodes())},
		{"keywords", false, keywordsSpec},
		{"enterprise", true, text("需求企业 enterprise", MaxOrgChars)},
		{"budget", false, &spec{kind: sObject, title: "预算 budget range", props: []prop{
			{"min", false, amount("下限 minimum")},
			{"max", false, amount("上限 maximum")},
			{"currency", false, &spec{kind: sString, title: "币种 currency", format: currencyFormat}},
		}, check: checkBudget}},
		{"deadline", false, &spec{kind: sString, title: "截止日期 deadline", format: dateFormat}},
		{"status", false, code("状态 status (absent: open)", NeedStatuses)},
		{"kind", false, code("类型 kind: need, or challenge for 揭榜挂帅 (absent: need)", NeedKinds)},
		{"challenge", false, &spec{kind: sObject, title: "揭榜挂帅 challenge terms; required when kind is challenge, refused otherwise", props: []prop{
			{"bounty", false, amount("榜额 bounty")},
			{"targets", true, &spec{kind: sArray, title: "攻关目标 targets", minItems: 1, maxItems: MaxTargets,
				items: text("", MaxTargetChars)}},
			{"max_months", false, &spec{kind: sInteger, title: "攻关期限（月） maximum months", min: fptr(1), max: fptr(MaxChallengeMonths)}},
		}}},
		{"contact", false, contactSpec},
	}, check: checkNeed, schemaExtra: needSchemaExtra}

	expertSpec = &spec{kind: sObject, title: "专家 expert", props: []prop{
		{"name", true, text("姓名 name", MaxNameChars)},
		{"title", false, optText("职称 professional title", MaxNameChars)},
		{"affiliation", true, text("单位 affiliation", MaxOrgChars)},
		{"fields", false, codeList("领域 fields (industry codes)", industryCodes())},
		{"keywords", false, keywordsSpec},
		{"bio", false, optText("简介 bio", MaxTextChars)},
		{"roles", false, codeList("角色 roles", ExpertRoles)},
		{"contact", false, contactSpec},
	}}

	bodySpecs = map[string]*spec{
		CatalogueSupply: supplySpec,
		CatalogueNeed:   needSpec,
		CatalogueExpert: expertSpec,
	}
)

// checkNeed: a challenge call needs its terms and a deadline; a plain need has no
// challenge terms. From a peer, an unknown kind is kept, with or without terms.
func checkNeed(v *validator, n *jnode, path string) {
	kind, challenge := n.member("kind"), n.member("challenge")
	if kind != nil && kind.kind == jString && kind.str == NeedKindChallenge {
		if challenge == nil {
			v.add(path+".challenge", RuleRequired, `is required when kind is "challenge"`)
		}
		if n.member("deadline") == nil {
			v.add(path+".deadline", RuleRequired, `is required when kind is "challenge"`)
		}
		return
	}
	plain := kind == nil || kind.kind == jString && kind.str == NeedKindNeed
	if challenge != nil && (plain || v.strict) {
		v.add(path+".challenge", RuleForbidden, `is allowed only when kind is "challenge"`)
	}
}

func needSchemaExtra() jsObj {
	return jsObj{
		{"if", jsObj{{"required", []string{"kind"}}, {"properties", jsObj{{"kind", jsObj{{"const", NeedKindChallenge}}}}}}},
		{"then", jsObj{{"required", []string{"challenge", "deadline"}}}},
		{"else", jsObj{{"not", jsObj{{"required", []string{"challenge"}}}}}},
	}
}

// checkBudget: min must not exceed max. JSON Schema cannot compare two members.
func checkBudget(v *validator, n *jnode, path string) {
	lo, hi := n.member("min"), n.member("max")
	if lo == nil || hi == nil || lo.kind != jNumber || hi.kind != jNumber || lo.bad || hi.bad {
		return
	}
	if lo.num > hi.num {
		v.add(path, RuleRange, "min (%s) is greater than max (%s)", v.raw(lo), v.raw(hi))
	}
}

// codeValues returns the allowed values of a code spec, for messages.
func codeValues(s *spec) string {
	if len(s.enum) > 12 {
		return strings.Join(s.enum[:12], ", ") + ", …"
	}
	return strings.Join(s.enum, ", ")
}
