package schema

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// A small JSON parser for validation and personal-data stripping. Unlike encoding/json
// it keeps the byte span of every value (so members can be dropped without
// re-encoding the rest), distinguishes integer literals from others, and reports each
// problem the canonical encoding would refuse (invalid UTF-8, lone surrogates,
// duplicate member names, numbers it cannot represent exactly, excessive nesting) as a
// field error at the path where it occurs, instead of stopping at the first. A body it
// accepts without field errors is one Canonical accepts; the fuzz tests hold the two
// parsers to that.

type jkind uint8

const (
	jNull jkind = iota
	jBool
	jNumber
	jString
	jArray
	jObject
)

func (k jkind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k]
}

type jnode struct {
	kind    jkind
	boolean bool
	num     float64
	intLit  bool // number written without fraction or exponent
	str     string
	bad     bool // string not valid Unicode, or number not representable; already reported
	items   []*jnode
	members []jmember
	start   int // byte span of the value in the input
	end     int
}

type jmember struct {
	key      string
	val      *jnode
	keyStart int // offset of the name's opening quote
}

// member returns the value of the last member named key, as encoding/json and JSON
// Schema validators read duplicates.
func (n *jnode) member(key string) *jnode {
	for i := len(n.members) - 1; i >= 0; i-- {
		if n.members[i].key == key {
			return n.members[i].val
		}
	}
	return nil
}

// jsonSyntaxError stops parsing: the input is not JSON, or nests too deeply to walk.
type jsonSyntaxError struct {
	offset int
	rule   string // "syntax" or "depth"
	msg    string
}

type pathElem struct {
	key   string
	index int // -1 for a member name
}

type jparser struct {
	in       []byte
	pos      int
	maxDepth int
	errs     *collector // nil: structural problems are not reported
	root     string
	path     []pathElem
	fail     *jsonSyntaxError
	arena    []jnode // nodes are carved from here, to allocate in bulk
}

// node carves a node from the arena. The first chunk is sized by counting the
// input's commas and opening brackets, an upper bound on its values (each
// value but the root is the first of its container or follows a comma;
// those inside strings only make the count larger); later chunks double.
// A fixed first chunk of 64 nodes (6.6 KB) for a body of a dozen values was
// a fifth of all the bytes a write allocated (BenchmarkCreate's memory
// profile).
func (p *jparser) node(kind jkind) *jnode {
	if len(p.arena) == cap(p.arena) {
		n := 2 * cap(p.arena)
		if n == 0 {
			n = 1 + bytes.Count(p.in, []byte{','}) + bytes.Count(p.in, []byte{'{'}) + bytes.Count(p.in, []byte{'['})
		}
		p.arena = make([]jnode, 0, min(n, 256))
	}
	p.arena = append(p.arena, jnode{kind: kind})
	return &p.arena[len(p.arena)-1]
}

// parseTree parses in as one JSON value. Structural problems are added to errs (if
// not nil) under paths starting with root; a syntax error or nesting deeper than
// maxDepth stops the parse and is returned.
func parseTree(in []byte, root string, maxDepth int, errs *collector) (*jnode, *jsonSyntaxError) {
	p := &jparser{in: in, maxDepth: maxDepth, errs: errs, root: root}
	p.skipSpace()
	n := p.value(0)
	if p.fail != nil {
		return nil, p.fail
	}
	p.skipSpace()
	if p.pos != len(p.in) {
		p.syntax("data after the value")
		return nil, p.fail
	}
	return n, nil
}

func (p *jparser) syntax(msg string) {
	if p.fail == nil {
		p.fail = &jsonSyntaxError{offset: p.pos, rule: RuleSyntax, msg: msg}
	}
}

func (p *jparser) here() string { return formatPath(p.root, p.path) }

func (p *jparser) report(rule, format string, args ...any) {
	if p.errs != nil {
		p.errs.add(p.here(), rule, format, args...)
	}
}

func (p *jparser) skipSpace() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jparser) value(depth int) *jnode {
	if p.pos >= len(p.in) {
		p.syntax("unexpected end of input")
		return nil
	}
	start := p.pos
	var n *jnode
	switch c := p.in[p.pos]; {
	case c == '{' || c == '[':
		if depth+1 > p.maxDepth {
			p.fail = &jsonSyntaxError{offset: p.pos, rule: RuleDepth, msg: "nesting deeper than " + strconv.Itoa(p.maxDepth) + " levels at " + p.here()}
			return nil
		}
		if c == '{' {
			n = p.object(depth + 1)
		} else {
			n = p.array(depth + 1)
		}
	case c == '"':
		s, ok := p.str()
		if p.fail != nil {
			return nil
		}
		n = p.node(jString)
		n.str, n.bad = s, !ok
		if !ok {
			p.report(RuleUTF8, "is not valid UTF-8 text (invalid bytes or a lone surrogate escape)")
		}
	case c == '-' || c >= '0' && c <= '9':
		n = p.number()
	case c == 't':
		n = p.node(jBool)
		n.boolean = true
		p.literal("true")
	case c == 'f':
		n = p.node(jBool)
		p.literal("false")
	case c == 'n':
		n = p.node(jNull)
		p.literal("null")
	default:
		p.syntax(unexpectedAt(p.in, p.pos))
	}
	if p.fail != nil {
		return nil
	}
	n.start, n.end = start, p.pos
	return n
}

func (p *jparser) literal(lit string) {
	if len(p.in)-p.pos < len(lit) || string(p.in[p.pos:p.pos+len(lit)]) != lit {
		p.syntax("invalid literal")
		return
	}
	p.pos += len(lit)
}

func (p *jparser) object(depth int) *jnode {
	p.pos++ // '{'
	n := p.node(jObject)
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		return n
	}
	var seen map[string]struct{}
	for {
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			p.syntax("expected object member name")
			return nil
		}
		keyStart := p.pos
		key, ok := p.str()
		if p.fail != nil {
			return nil
		}
		p.path = append(p.path, pathElem{key: key, index: -1})
		if !ok {
			p.report(RuleUTF8, "member name is not valid UTF-8 text")
		}
		if len(n.members) >= 8 && seen == nil {
			seen = make(map[string]struct{}, 2*len(n.members))
			for _, m := range n.members {
				seen[m.key] = struct{}{}
			}
		}
		dup := false
		if seen != nil {
			_, dup = seen[key]
			seen[key] = struct{}{}
		} else {
			for _, m := range n.members {
				if m.key == key {
					dup = true
					break
				}
			}
		}
		if dup {
			p.report(RuleDuplicateKey, "member name %s appears more than once", quoteValue(key))
		}
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			p.syntax("expected ':' after member name")
			return nil
		}
		p.pos++
		p.skipSpace()
		v := p.value(depth)
		if p.fail != nil {
			return nil
		}
		p.path = p.path[:len(p.path)-1]
		n.members = append(n.members, jmember{key: key, val: v, keyStart: keyStart})
		p.skipSpace()
		if p.pos >= len(p.in) {
			p.syntax("unexpected end of input in object")
			return nil
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			if a, b, ok := caseVariant(len(n.members), func(i int) string { return n.members[i].key }); ok {
				p.report(RuleDuplicateKey, "member names %s and %s differ only in case", quoteValue(a), quoteValue(b))
			}
			return n
		default:
			p.syntax("expected ',' or '}' in object")
			return nil
		}
	}
}

func (p *jparser) array(depth int) *jnode {
	p.pos++ // '['
	n := p.node(jArray)
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		return n
	}
	for {
		p.skipSpace()
		p.path = append(p.path, pathElem{index: len(n.items)})
		v := p.value(depth)
		if p.fail != nil {
			return nil
		}
		p.path = p.path[:len(p.path)-1]
		n.items = append(n.items, v)
		p.skipSpace()
		if p.pos >= len(p.in) {
			p.syntax("unexpected end of input in array")
			return nil
		}
		switch p.in[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return n
		default:
			p.syntax("expected ',' or ']' in array")
			return nil
		}
	}
}

// str parses a JSON string at p.pos. ok is false if the string is not valid Unicode:
// invalid UTF-8 bytes, or a surrogate escape that is not part of a pair. Syntax errors
// set p.fail.
func (p *jparser) str() (s string, ok bool) {
	p.pos++ // opening quote
	start := p.pos
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if c == '"' {
			raw := p.in[start:p.pos]
			p.pos++
			return string(raw), utf8.Valid(raw)
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			p.syntax("control character in string")
			return "", false
		}
		p.pos++
	}
	var b strings.Builder
	b.Write(p.in[start:p.pos])
	ok = true
	for {
		if p.pos >= len(p.in) {
			p.syntax("unterminated string")
			return "", false
		}
		c := p.in[p.pos]
		switch {
		case c == '"':
			p.pos++
			s := b.String()
			return s, ok && utf8.ValidString(s)
		case c < 0x20:
			p.syntax("control character in string")
			return "", false
		case c != '\\':
			b.WriteByte(c)
			p.pos++
			continue
		}
		if p.pos+1 >= len(p.in) {
			p.syntax("unterminated escape")
			return "", false
		}
		esc := p.in[p.pos+1]
		p.pos += 2
		if c, ok := simpleEscape(esc); ok {
			b.WriteByte(c)
			continue
		}
		switch esc {
		case 'u':
			r := p.hex4()
			if r < 0 {
				return "", false
			}
			if utf16.IsSurrogate(r) {
				if r >= 0xDC00 || p.pos+1 >= len(p.in) || p.in[p.pos] != '\\' || p.in[p.pos+1] != 'u' {
					ok = false
					b.WriteRune(utf8.RuneError)
					continue
				}
				p.pos += 2
				r2 := p.hex4()
				if r2 < 0 {
					return "", false
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					ok = false
				}
			}
			b.WriteRune(r)
		default:
			p.syntax("invalid escape")
			return "", false
		}
	}
}

// hex4 reads four hex digits; -1 and p.fail on error.
func (p *jparser) hex4() rune {
	if len(p.in)-p.pos < 4 {
		p.syntax("short \\u escape")
		return -1
	}
	var r rune
	for _, c := range p.in[p.pos : p.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			p.syntax("invalid \\u escape")
			return -1
		}
	}
	p.pos += 4
	return r
}

func (p *jparser) number() *jnode {
	start := p.pos
	end, isInt, msg := scanNumber(p.in, p.pos)
	p.pos = end
	if msg != "" {
		p.syntax(msg)
		return nil
	}
	n := p.node(jNumber)
	n.intLit = isInt
	f, err := strconv.ParseFloat(string(p.in[start:p.pos]), 64)
	switch {
	case err != nil || math.IsInf(f, 0) || math.IsNaN(f):
		n.bad = true
		p.report(RuleNumber, "number %s is out of range", truncate(string(p.in[start:p.pos]), 40))
	case f == math.Trunc(f) && math.Abs(f) >= maxSafeInteger:
		// The same rule as the canonical encoding: such a number may not be exactly
		// the double it rounds to, so two parties could read it differently.
		n.bad = true
		p.report(RuleNumber, "integer %s is too large to be exact in JSON (magnitude at least 2^53)", truncate(string(p.in[start:p.pos]), 40))
	}
	n.num = f
	return n
}

// formatPath renders root followed by the elements: .name for plain names,
// ["name"] for others, [i] for array indexes.
func formatPath(root string, elems []pathElem) string {
	if len(elems) == 0 {
		return root
	}
	var b strings.Builder
	b.WriteString(root)
	for _, e := range elems {
		if e.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(e.index))
			b.WriteByte(']')
			continue
		}
		b.WriteString(pathKey(b.Len() == 0, e.key))
	}
	return b.String()
}

// pathKey renders one member name as a path step.
func pathKey(first bool, key string) string {
	if plainName(key) {
		if first {
			return key
		}
		return "." + key
	}
	return "[" + strconv.Quote(key) + "]"
}

func plainName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && (c >= '0' && c <= '9' || c == '-')) {
			return false
		}
	}
	return true
}

// quoteValue quotes s for a message: Chinese and other printable text as is, invalid
// bytes and control characters escaped, long values shortened.
func quoteValue(s string) string { return strconv.Quote(truncate(s, 40)) }

// truncate shortens s to at most n runes, marking the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i, count := 0, 0
	for i < len(s) {
		if count == n {
			return s[:i] + "…"
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		count++
	}
	return s
}

// canonicalLen returns the length of n's canonical encoding (see Canonical), for a
// tree parsed without field errors.
func canonicalLen(n *jnode) int {
	switch n.kind {
	case jNull:
		return len("null")
	case jBool:
		if n.boolean {
			return len("true")
		}
		return len("false")
	case jNumber:
		var buf [32]byte
		return len(AppendCanonicalNumber(buf[:0], n.num))
	case jString:
		return canonicalStringLen(n.str)
	case jArray:
		l := 2 + max(len(n.items)-1, 0)
		for _, it := range n.items {
			l += canonicalLen(it)
		}
		return l
	default:
		l := 2 + max(len(n.members)-1, 0)
		for _, m := range n.members {
			l += canonicalStringLen(m.key) + 1 + canonicalLen(m.val)
		}
		return l
	}
}

// canonicalStringLen returns the length of s as appendCanonString writes it.
func canonicalStringLen(s string) int {
	l := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
			l += 2
		case c < 0x20:
			l += 6
		default:
			l++
		}
	}
	return l
}
