package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// FieldError is one problem with one field of a record.
type FieldError struct {
	// Path locates the field as a JSON path: "visibility", "body.title",
	// "body.ip[2].number", `body["名称"]`. Empty for the record as a whole.
	Path string `json:"path"`
	// Rule is a short machine word: one of the Rule… constants.
	Rule string `json:"rule"`
	// Message explains the problem in English; values are quoted as they are, so
	// Chinese text reads as Chinese. Always valid UTF-8.
	Message string `json:"message"`
}

func (e FieldError) String() string {
	if e.Path == "" {
		return e.Message
	}
	return e.Path + ": " + e.Message
}

// ErrInvalid is matched (errors.Is) by every *ValidationError.
var ErrInvalid = errors.New("invalid record")

// ErrUnknownCatalogue is returned for catalogue names this build does not know.
var ErrUnknownCatalogue = errors.New("unknown catalogue")

// ValidationError lists every problem found in a record. Checking stops after
// MaxFieldErrors; then one more error, with rule too_many_errors, says so.
type ValidationError struct {
	Errors []FieldError
}

// MaxFieldErrors bounds the field errors reported for one record.
const MaxFieldErrors = 100

func (e *ValidationError) Error() string {
	const show = 5
	var b strings.Builder
	b.WriteString("invalid record: ")
	for i, fe := range e.Errors {
		if i == show {
			fmt.Fprintf(&b, "; and %d more", len(e.Errors)-show)
			break
		}
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(fe.String())
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

// ValidateOptions says how strictly to validate.
type ValidateOptions struct {
	// Strict is for writes made at this centre (the API, import): unknown
	// catalogues, industry codes and other enumerated values are refused, and so is
	// a body schema newer than CurrentSchema.
	//
	// Without Strict — for records received from other centres, which may run a
	// newer build — unknown codes are kept if they are code-shaped, a record of an
	// unknown catalogue or of a newer body schema has only its envelope and the
	// size and encoding of its body checked, and its body is kept byte for byte.
	//
	// Either way unknown body members are allowed: they are harmless, and how the
	// catalogues grow.
	Strict bool
}

// ValidateRecord checks r and returns a *ValidationError listing every problem, or
// nil. It never panics and never modifies r.
//
// A tombstone (Deleted) may have no body; if it has one, only its size and encoding
// are checked. Schema 0 stands for CurrentSchema, as the store reads it.
func ValidateRecord(r *Record, opts ValidateOptions) error {
	v := &validator{strict: opts.Strict}
	v.at = v.atBuf[:0]
	if r == nil {
		v.add("", RuleRequired, "record is missing")
		return v.result()
	}
	v.envelope(r)
	v.body(r)
	return v.result()
}

type collector struct {
	errs []FieldError
	more bool
}

func (c *collector) add(path, rule, format string, args ...any) {
	if len(c.errs) >= MaxFieldErrors {
		c.more = true
		return
	}
	msg := format
	if len(args) > 0 {
		msg = fmt.Sprintf(format, args...)
	}
	c.errs = append(c.errs, FieldError{Path: path, Rule: rule, Message: strings.ToValidUTF8(msg, "\uFFFD")})
}

func (c *collector) full() bool { return len(c.errs) >= MaxFieldErrors }

func (c *collector) result() error {
	if len(c.errs) == 0 {
		return nil
	}
	errs := c.errs
	if c.more {
		errs = append(errs, FieldError{Rule: RuleTooManyErrors,
			Message: fmt.Sprintf("checking stopped after %d errors", MaxFieldErrors)})
	}
	return &ValidationError{Errors: errs}
}

type validator struct {
	collector
	strict bool
	in     []byte  // the body being validated
	at     []vstep // where check is in it (see here)
	atBuf  [8]vstep
}

func (v *validator) envelope(r *Record) {
	switch {
	case r.Catalogue == "":
		v.add("catalogue", RuleRequired, "is required: one of %s", strings.Join(Catalogues, ", "))
	case KnownCatalogue(r.Catalogue):
	case v.strict:
		v.add("catalogue", RuleUnknownCatalogue, "must be one of %s, not %s", strings.Join(Catalogues, ", "), quoteValue(r.Catalogue))
	case len(r.Catalogue) > MaxCodeChars || !codeFormat.match(r.Catalogue):
		v.add("catalogue", RuleFormat, "must be %s, not %s", codeFormat.want, quoteValue(r.Catalogue))
	}

	originOK := false
	switch {
	case r.Origin == "":
		v.add("origin", RuleRequired, "is required: the id of the centre that owns the record")
	case !ValidCentreID(r.Origin):
		v.add("origin", RuleFormat, "must be %s, not %s", centreFormat.want, quoteValue(r.Origin))
	default:
		originOK = true
	}

	if r.ID != "" {
		origin, _, err := SplitID(r.ID)
		switch {
		case err != nil:
			v.add("id", RuleFormat, "must be %s, not %s", idFormat.want, quoteValue(r.ID))
		case originOK && origin != r.Origin:
			v.add("id", RuleMismatch, "names centre %s but the record's origin is %s", quoteValue(origin), quoteValue(r.Origin))
		}
	}

	switch {
	case r.Version < 1:
		v.add("version", RuleMin, "must be at least 1")
	case r.Version >= maxSafeInteger:
		v.add("version", RuleMax, "must be below 2^53")
	}

	switch r.Visibility {
	case VisibilityPrivate, VisibilityFederation, VisibilityPublic:
	case "":
		v.add("visibility", RuleRequired, "is required: private, federation or public")
	default:
		v.add("visibility", RuleEnum, "must be private, federation or public, not %s", quoteValue(r.Visibility))
	}

	// Schema 0 (absent) means the current version: the store fills it in.
	switch {
	case r.Schema < 0:
		v.add("schema", RuleMin, "must be at least 1, or absent for the current version")
	case r.Schema > CurrentSchema && v.strict:
		v.add("schema", RuleMax, "body schema %d is newer than this build writes (%d)", r.Schema, CurrentSchema)
	}

	if r.Broker != "" && !ValidCentreID(r.Broker) {
		v.add("broker", RuleFormat, "must be %s, not %s", centreFormat.want, quoteValue(r.Broker))
	}
}

// isNull reports whether raw is absent or the JSON literal null.
func isNull(raw []byte) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func (v *validator) body(r *Record) {
	if isNull(r.Body) {
		if !r.Deleted {
			v.add("body", RuleRequired, "is required: a JSON object")
		}
		return
	}
	if len(r.Body) > MaxBodyBytes {
		v.add("body", RuleTooLarge, "is %d bytes; at most %d are allowed", len(r.Body), MaxBodyBytes)
		return
	}
	v.in = r.Body
	before := len(v.errs)
	root, serr := parseTree(r.Body, "body", MaxBodyDepth, &v.collector)
	if serr != nil {
		if serr.rule == RuleDepth {
			v.add("body", RuleDepth, "%s", serr.msg)
		} else {
			v.add("body", RuleSyntax, "is not valid JSON: %s at byte %d", serr.msg, serr.offset)
		}
		return
	}
	if root.kind != jObject {
		v.add("body", RuleType, "want object, got %s", root.kind)
		return
	}
	if len(v.errs) == before && !v.more && !r.BodyCanonical() {
		// What is signed and stored in the log is the canonical form, which exists
		// whenever the parse found nothing wrong: it must fit too. A body marked
		// canonical is that form, its length checked above (the walk was a sixth
		// of a write's validation).
		if n := canonicalLen(root); n > MaxBodyBytes {
			v.add("body", RuleTooLarge, "is %d bytes in canonical form; at most %d are allowed", n, MaxBodyBytes)
		}
	}
	if r.Deleted || r.Schema > CurrentSchema {
		return
	}
	if s := bodySpecs[r.Catalogue]; s != nil {
		v.check(s, root)
	}
}

// raw returns the JSON text of n, shortened for messages.
func (v *validator) raw(n *jnode) string {
	if n.end > len(v.in) || n.start > n.end {
		return ""
	}
	return truncate(string(v.in[n.start:n.end]), 40)
}

func (v *validator) wrongType(want string, n *jnode) {
	v.add(v.here(), RuleType, "want %s, got %s", want, n.kind)
}

// vstep is one step below the body to the value being checked: a member
// (index -1) or an item.
type vstep struct {
	name  string
	index int
}

// here spells out the path of the value being checked (v.at below "body"),
// for a problem reported there: building every member's and item's path on
// the way down was a fifth of a valid write's allocations in validation.
func (v *validator) here() string {
	if len(v.at) == 0 {
		return "body"
	}
	b := make([]byte, 0, 64)
	b = append(b, "body"...)
	for _, st := range v.at {
		if st.index >= 0 {
			b = strconv.AppendInt(append(b, '['), int64(st.index), 10)
			b = append(b, ']')
			continue
		}
		b = append(append(b, '.'), st.name...)
	}
	return string(b)
}

// check validates n against s. Problems found while parsing (bad UTF-8, numbers out
// of range) were reported then; such values are skipped here.
func (v *validator) check(s *spec, n *jnode) {
	if v.full() {
		v.more = true
		return
	}
	switch s.kind {
	case sString, sCode:
		if n.kind != jString {
			v.wrongType("string", n)
			return
		}
		if !n.bad {
			v.checkString(s, n.str)
		}
	case sInteger:
		if n.kind != jNumber {
			v.wrongType("integer", n)
			return
		}
		if n.bad {
			return
		}
		if !n.intLit {
			v.add(v.here(), RuleType, "want integer written without fraction or exponent, got %s", v.raw(n))
			return
		}
		v.bounds(s, n)
	case sNumber:
		if n.kind != jNumber {
			v.wrongType("number", n)
			return
		}
		if !n.bad {
			v.bounds(s, n)
		}
	case sBool:
		if n.kind != jBool {
			v.wrongType("boolean", n)
		}
	case sArray:
		if n.kind != jArray {
			v.wrongType("array", n)
			return
		}
		v.checkArray(s, n)
	case sObject:
		if n.kind != jObject {
			v.wrongType("object", n)
			return
		}
		for _, p := range s.props {
			m := n.member(p.name)
			if m == nil {
				if p.required {
					v.add(v.here()+"."+p.name, RuleRequired, "is required")
				}
				continue
			}
			v.at = append(v.at, vstep{name: p.name, index: -1})
			v.check(p.spec, m)
			v.at = v.at[:len(v.at)-1]
		}
		if s.check != nil {
			s.check(v, n, v.here())
		}
	}
}

func (v *validator) checkString(s *spec, str string) {
	if s.kind == sCode {
		switch {
		case slices.Contains(s.enum, str):
		case v.strict:
			v.add(v.here(), RuleEnum, "must be one of %s, not %s", codeValues(s), quoteValue(str))
		case len(str) > MaxCodeChars || !codeFormat.match(str):
			v.add(v.here(), RuleFormat, "must be %s, not %s", codeFormat.want, quoteValue(str))
		}
		return
	}
	if s.nonBlank && isBlank(str) {
		v.add(v.here(), RuleRequired, "must not be empty or blank")
		return
	}
	if s.maxLen > 0 {
		// Count no further than needed: the string may be long.
		if n := utf8.RuneCountInString(str); n > s.maxLen {
			v.add(v.here(), RuleMaxLength, "must be at most %d characters, has %d", s.maxLen, n)
		}
	}
	if s.format != nil && !s.format.match(str) {
		v.add(v.here(), RuleFormat, "must be %s, not %s", s.format.want, quoteValue(str))
	}
}

func (v *validator) bounds(s *spec, n *jnode) {
	switch {
	case s.min != nil && n.num < *s.min:
		v.add(v.here(), RuleMin, "must be at least %s, is %s", formatNumber(*s.min), v.raw(n))
	case s.max != nil && n.num > *s.max:
		v.add(v.here(), RuleMax, "must be at most %s, is %s", formatNumber(*s.max), v.raw(n))
	}
}

func (v *validator) checkArray(s *spec, n *jnode) {
	if len(n.items) < s.minItems {
		v.add(v.here(), RuleMinItems, "must have at least %d items, has %d", s.minItems, len(n.items))
	}
	if s.maxItems > 0 && len(n.items) > s.maxItems {
		v.add(v.here(), RuleMaxItems, "must have at most %d items, has %d", s.maxItems, len(n.items))
	}
	var seen map[string]int
	if s.unique {
		seen = make(map[string]int, len(n.items))
	}
	for i, it := range n.items {
		if v.full() {
			v.more = true
			return
		}
		v.at = append(v.at, vstep{index: i})
		if seen != nil && it.kind == jString && !it.bad {
			if j, dup := seen[it.str]; dup {
				v.add(v.here(), RuleUnique, "repeats item %d, %s", j, quoteValue(it.str))
			} else {
				seen[it.str] = i
			}
		}
		v.check(s.items, it)
		v.at = v.at[:len(v.at)-1]
	}
}

func formatNumber(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// MaxRecordBytes bounds the JSON of one record envelope given to DecodeRecord.
const MaxRecordBytes = MaxBodyBytes + 16<<10

// DecodeRecord decodes a record envelope from JSON as json.Unmarshal would, but
// reports every envelope field of the wrong type at once, as a *ValidationError. It
// does not validate the result: call ValidateRecord.
func DecodeRecord(data []byte) (*Record, error) {
	var c collector
	if len(data) > MaxRecordBytes {
		c.add("", RuleTooLarge, "record is %d bytes; at most %d are allowed", len(data), MaxRecordBytes)
		return nil, c.result()
	}
	var w struct {
		ID         json.RawMessage `json:"id"`
		Catalogue  json.RawMessage `json:"catalogue"`
		Origin     json.RawMessage `json:"origin"`
		Version    json.RawMessage `json:"version"`
		Visibility json.RawMessage `json:"visibility"`
		Schema     json.RawMessage `json:"schema"`
		CreatedAt  json.RawMessage `json:"created_at"`
		UpdatedAt  json.RawMessage `json:"updated_at"`
		ExpiresAt  json.RawMessage `json:"expires_at"`
		Deleted    json.RawMessage `json:"deleted"`
		Broker     json.RawMessage `json:"broker"`
		Body       json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			c.add("", RuleType, "want a JSON object, got %s", te.Value)
		} else {
			c.add("", RuleSyntax, "is not valid JSON: %v", err)
		}
		return nil, c.result()
	}
	r := &Record{Body: w.Body}
	field := func(name string, raw json.RawMessage, dst any, want string) {
		if raw == nil {
			return
		}
		if err := json.Unmarshal(raw, dst); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				c.add(name, RuleType, "want %s, got %s %s", want, te.Value, truncate(string(raw), 40))
			} else {
				c.add(name, RuleFormat, "want %s, got %s", want, truncate(string(raw), 40))
			}
		}
	}
	field("id", w.ID, &r.ID, "string")
	field("catalogue", w.Catalogue, &r.Catalogue, "string")
	field("origin", w.Origin, &r.Origin, "string")
	field("version", w.Version, &r.Version, "integer ≥ 0")
	field("visibility", w.Visibility, &r.Visibility, "string")
	field("schema", w.Schema, &r.Schema, "integer")
	field("created_at", w.CreatedAt, &r.CreatedAt, "RFC 3339 time")
	field("updated_at", w.UpdatedAt, &r.UpdatedAt, "RFC 3339 time")
	field("expires_at", w.ExpiresAt, &r.ExpiresAt, "RFC 3339 time")
	field("deleted", w.Deleted, &r.Deleted, "boolean")
	field("broker", w.Broker, &r.Broker, "string")
	if err := c.result(); err != nil {
		return nil, err
	}
	return r, nil
}
