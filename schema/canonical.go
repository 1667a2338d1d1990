package schema

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// Canonical encoding, after RFC 8785 (JCS): object members sorted by the UTF-16 code
// units of their names, no insignificant white space, strings with the minimal
// escaping, numbers in the shortest form that round-trips (ECMAScript rules).
// It is used for hashing and signing and nowhere else.
//
// The decoder is stricter than encoding/json, because two parties must agree on the
// bytes before any signature is checked: duplicate member names, invalid UTF-8,
// lone surrogate escapes, numbers that are not finite, integers whose magnitude
// reaches 2^53 and nesting deeper than MaxDepth are refused.

// MaxDepth bounds nesting of arrays and objects in canonical input.
const MaxDepth = 64

// maxSafeInteger is 2^53. Integers of smaller magnitude are exact in an IEEE double,
// and so in every JSON implementation a partner may use; from 2^53 on, a decimal
// integer may not be the double it rounds to (9007199254740993 reads as
// 9007199254740992), so such numbers are refused rather than silently changed.
const maxSafeInteger = 1 << 53

// ErrNotCanonical is returned by CheckCanonical for valid JSON that is not in canonical form.
var ErrNotCanonical = errors.New("json is not in canonical form")

// SyntaxError describes why input was refused, with the byte offset.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("canonical json: %s at byte %d", e.Msg, e.Offset)
}

// Canonical returns the canonical encoding of the JSON value in. It refuses input
// that is not a single JSON value or that breaks the rules above.
func Canonical(in []byte) ([]byte, error) {
	if isCanonical(in) {
		return bytes.Clone(in), nil
	}
	return AppendCanonical(make([]byte, 0, len(in)), in)
}

// AsCanonical is Canonical without the copy when in is canonical already: it
// returns in itself then, so the caller must own in.
func AsCanonical(in []byte) ([]byte, error) {
	if isCanonical(in) {
		return in, nil
	}
	return AppendCanonical(make([]byte, 0, len(in)), in)
}

// AppendCanonical appends the canonical encoding of in to dst.
func AppendCanonical(dst, in []byte) ([]byte, error) {
	p := canonParser{in: in}
	p.skipSpace()
	out, err := p.value(dst, 0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.in) {
		return nil, p.errf("data after the top-level value")
	}
	return out, nil
}

// CheckCanonical reports whether in is already canonical.
func CheckCanonical(in []byte) error {
	if isCanonical(in) {
		return nil
	}
	out, err := AppendCanonical(make([]byte, 0, len(in)), in)
	if err != nil {
		return err
	}
	if string(out) != string(in) {
		return ErrNotCanonical
	}
	return nil
}

type canonParser struct {
	in  []byte
	pos int
}

func (p *canonParser) errf(format string, args ...any) error {
	return &SyntaxError{Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *canonParser) skipSpace() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *canonParser) value(dst []byte, depth int) ([]byte, error) {
	if p.pos >= len(p.in) {
		return nil, p.errf("unexpected end of input")
	}
	switch c := p.in[p.pos]; {
	case c == '{':
		return p.object(dst, depth+1)
	case c == '[':
		return p.array(dst, depth+1)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		return appendCanonString(dst, s), nil
	case c == '-' || c >= '0' && c <= '9':
		return p.number(dst)
	case c == 't':
		return p.literal(dst, "true")
	case c == 'f':
		return p.literal(dst, "false")
	case c == 'n':
		return p.literal(dst, "null")
	default:
		return nil, p.errf("%s", unexpectedAt(p.in, p.pos))
	}
}

// unexpectedAt names the character at in[pos] that cannot start a value as
// the client sent it: read as one byte, a UTF-8 character shows as Latin-1
// mojibake ("'ï'" for a byte order mark, "'â'" for a curly quote).
func unexpectedAt(in []byte, pos int) string {
	r, size := utf8.DecodeRune(in[pos:])
	switch {
	case r == '\uFEFF':
		return "unexpected byte order mark (U+FEFF), which JSON text must not carry (RFC 8259 §8.1): send the JSON without it"
	case r == utf8.RuneError && size == 1:
		return fmt.Sprintf("unexpected byte 0x%02x (not UTF-8)", in[pos])
	}
	return "unexpected character " + strconv.QuoteRune(r)
}

// invalidEscapeAt names the character at in[pos], after a backslash, that
// JSON does not escape, as the client sent it (as unexpectedAt does): the byte
// alone printed a UTF-8 character as Latin-1 mojibake (`\Ã` for `\é`) and a
// control character raw.
func invalidEscapeAt(in []byte, pos int) string {
	r, size := utf8.DecodeRune(in[pos:])
	switch {
	case r == utf8.RuneError && size == 1:
		return fmt.Sprintf("invalid escape: byte 0x%02x after \\ (not UTF-8)", in[pos])
	case !unicode.IsPrint(r):
		return "invalid escape: " + strconv.QuoteRune(r) + " after \\"
	}
	return "invalid escape \\" + string(r)
}

func (p *canonParser) literal(dst []byte, lit string) ([]byte, error) {
	// Compare only len(lit) bytes: converting the whole rest of the input made long
	// arrays of literals quadratic.
	if len(p.in)-p.pos < len(lit) || string(p.in[p.pos:p.pos+len(lit)]) != lit {
		return nil, p.errf("invalid literal")
	}
	p.pos += len(lit)
	return append(dst, lit...), nil
}

type member struct {
	key   string
	value []byte
}

func (p *canonParser) object(dst []byte, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, p.errf("nesting deeper than %d", MaxDepth)
	}
	p.pos++ // '{'
	var members []member
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '}' {
		p.pos++
		return append(dst, "{}"...), nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != '"' {
			return nil, p.errf("expected object member name")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.in) || p.in[p.pos] != ':' {
			return nil, p.errf("expected ':' after member name")
		}
		p.pos++
		p.skipSpace()
		v, err := p.value(nil, depth)
		if err != nil {
			return nil, err
		}
		members = append(members, member{key, v})
		p.skipSpace()
		if p.pos >= len(p.in) {
			return nil, p.errf("unexpected end of input in object")
		}
		if p.in[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.in[p.pos] == '}' {
			p.pos++
			break
		}
		return nil, p.errf("expected ',' or '}' in object")
	}
	slices.SortFunc(members, func(a, b member) int { return compareUTF16(a.key, b.key) })
	for i := 1; i < len(members); i++ {
		if members[i].key == members[i-1].key {
			return nil, p.errf("duplicate member name %q", members[i].key)
		}
	}
	if err := checkCaseVariants(members); err != nil {
		return nil, p.errf("%v", err)
	}
	dst = append(dst, '{')
	for i, m := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendCanonString(dst, m.key)
		dst = append(dst, ':')
		dst = append(dst, m.value...)
	}
	return append(dst, '}'), nil
}

func (p *canonParser) array(dst []byte, depth int) ([]byte, error) {
	if depth > MaxDepth {
		return nil, p.errf("nesting deeper than %d", MaxDepth)
	}
	p.pos++ // '['
	dst = append(dst, '[')
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == ']' {
		p.pos++
		return append(dst, ']'), nil
	}
	for first := true; ; first = false {
		if !first {
			dst = append(dst, ',')
		}
		p.skipSpace()
		var err error
		if dst, err = p.value(dst, depth); err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.in) {
			return nil, p.errf("unexpected end of input in array")
		}
		if p.in[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.in[p.pos] == ']' {
			p.pos++
			return append(dst, ']'), nil
		}
		return nil, p.errf("expected ',' or ']' in array")
	}
}

// str parses a JSON string at p.pos and returns its value.
func (p *canonParser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	// Fast path: no escapes.
	for p.pos < len(p.in) {
		c := p.in[p.pos]
		if c == '"' {
			s := p.in[start:p.pos]
			if !utf8.Valid(s) {
				return "", &SyntaxError{Offset: start, Msg: "invalid UTF-8 in string"}
			}
			p.pos++
			return string(s), nil
		}
		if c == '\\' {
			break
		}
		if c < 0x20 {
			return "", p.errf("control character in string")
		}
		p.pos++
	}
	var b strings.Builder
	b.Write(p.in[start:p.pos])
	for {
		if p.pos >= len(p.in) {
			return "", p.errf("unterminated string")
		}
		c := p.in[p.pos]
		switch {
		case c == '"':
			p.pos++
			s := b.String()
			if !utf8.ValidString(s) {
				return "", &SyntaxError{Offset: start, Msg: "invalid UTF-8 in string"}
			}
			return s, nil
		case c < 0x20:
			return "", p.errf("control character in string")
		case c != '\\':
			b.WriteByte(c)
			p.pos++
			continue
		}
		if p.pos+1 >= len(p.in) {
			return "", p.errf("unterminated escape")
		}
		esc := p.in[p.pos+1]
		p.pos += 2
		if c, ok := simpleEscape(esc); ok {
			b.WriteByte(c)
			continue
		}
		switch esc {
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				if r >= 0xDC00 || p.pos+1 >= len(p.in) || p.in[p.pos] != '\\' || p.in[p.pos+1] != 'u' {
					return "", p.errf("lone surrogate escape")
				}
				p.pos += 2
				r2, err := p.hex4()
				if err != nil {
					return "", err
				}
				r = utf16.DecodeRune(r, r2)
				if r == utf8.RuneError {
					return "", p.errf("invalid surrogate pair")
				}
			}
			b.WriteRune(r)
		default:
			return "", p.errf("%s", invalidEscapeAt(p.in, p.pos-1))
		}
	}
}

// simpleEscape decodes the one-character JSON escapes (everything but \u).
func simpleEscape(esc byte) (byte, bool) {
	switch esc {
	case '"', '\\', '/':
		return esc, true
	case 'b':
		return '\b', true
	case 'f':
		return '\f', true
	case 'n':
		return '\n', true
	case 'r':
		return '\r', true
	case 't':
		return '\t', true
	}
	return 0, false
}

func (p *canonParser) hex4() (rune, error) {
	if p.pos+4 > len(p.in) {
		return 0, p.errf("short \\u escape")
	}
	v, err := strconv.ParseUint(string(p.in[p.pos:p.pos+4]), 16, 32)
	if err != nil {
		return 0, p.errf("invalid \\u escape")
	}
	p.pos += 4
	return rune(v), nil
}

func (p *canonParser) number(dst []byte) ([]byte, error) {
	start := p.pos
	end, _, msg := scanNumber(p.in, p.pos)
	p.pos = end
	if msg != "" {
		return nil, p.errf("%s", msg)
	}
	text := string(p.in[start:p.pos])
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, &SyntaxError{Offset: start, Msg: "number out of range"}
	}
	if f == math.Trunc(f) && math.Abs(f) >= maxSafeInteger {
		return nil, &SyntaxError{Offset: start, Msg: "integer of magnitude 2^53 or more"}
	}
	return AppendCanonicalNumber(dst, f), nil
}

// scanNumber reads the JSON number grammar from in[pos:] and returns where the
// number ends, whether it is written as an integer (no fraction, no exponent)
// and, for input that is not a number, what is wrong with it. Both parsers in
// this package (canonical encoding and the validator's) scan numbers with it.
func scanNumber(in []byte, pos int) (end int, isInt bool, msg string) {
	digits := func() int {
		n := 0
		for pos < len(in) && in[pos] >= '0' && in[pos] <= '9' {
			pos++
			n++
		}
		return n
	}
	if pos < len(in) && in[pos] == '-' {
		pos++
	}
	intStart := pos
	if n := digits(); n == 0 {
		return pos, false, "invalid number"
	} else if n > 1 && in[intStart] == '0' {
		return pos, false, "leading zero in number"
	}
	isInt = true
	if pos < len(in) && in[pos] == '.' {
		pos++
		isInt = false
		if digits() == 0 {
			return pos, false, "invalid fraction"
		}
	}
	if pos < len(in) && (in[pos] == 'e' || in[pos] == 'E') {
		pos++
		isInt = false
		if pos < len(in) && (in[pos] == '+' || in[pos] == '-') {
			pos++
		}
		if digits() == 0 {
			return pos, false, "invalid exponent"
		}
	}
	return pos, isInt, ""
}

// AppendCanonicalNumber appends f as ECMAScript's Number.prototype.toString would
// print it, which is what RFC 8785 requires. -0 prints as 0.
func AppendCanonicalNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0')
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// Shortest round-trip digits and the decimal exponent.
	e := strconv.FormatFloat(f, 'e', -1, 64) // d[.ddd]e±XX
	mant, expStr, _ := strings.Cut(e, "e")
	digits := strings.Replace(mant, ".", "", 1)
	exp, _ := strconv.Atoi(expStr)
	k := len(digits)
	n := exp + 1 // position of the decimal point relative to the digits
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for i := 0; i < n-k; i++ {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, "0."...)
		for i := 0; i < -n; i++ {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

func appendCanonString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, `\"`...)
		case '\\':
			dst = append(dst, `\\`...)
		case '\b':
			dst = append(dst, `\b`...)
		case '\f':
			dst = append(dst, `\f`...)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		default:
			dst = append(dst, `\u00`...)
			dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// compareUTF16 orders strings by their UTF-16 code units, as RFC 8785 sorts names.
func compareUTF16(a, b string) int {
	if a == b {
		return 0
	}
	// For code points below U+10000 UTF-16 order equals code point order, and byte
	// order of UTF-8 equals code point order; only supplementary characters differ.
	if !hasSupplementary(a) && !hasSupplementary(b) {
		return strings.Compare(a, b)
	}
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

// checkCaseVariants refuses member names that differ only in case:
// encoding/json matches names case-insensitively, so {"origin":…, "Origin":…}
// would mean different things to different readers of the same signed bytes.
func checkCaseVariants(members []member) error {
	if a, b, ok := caseVariant(len(members), func(i int) string { return members[i].key }); ok {
		return fmt.Errorf("member names %q and %q differ only in case", a, b)
	}
	return nil
}

// caseVariant finds two of n member names (key(i)) that differ only in case,
// the first pair in order. The canonical encoder and the validator's parser
// share it, so they refuse exactly the same objects. Objects without an ASCII
// capital letter are passed over cheaply: the names records use are lower case.
func caseVariant(n int, key func(i int) string) (a, b string, found bool) {
	upper := false
	for i := 0; i < n && !upper; i++ {
		k := key(i)
		for j := 0; j < len(k) && !upper; j++ {
			upper = k[j] >= 'A' && k[j] <= 'Z'
		}
	}
	if !upper {
		return "", "", false
	}
	seen := make(map[string]string, n)
	for i := range n {
		k := key(i)
		lower := strings.ToLower(k)
		if prev, ok := seen[lower]; ok {
			return prev, k, true
		}
		seen[lower] = k
	}
	return "", "", false
}

// hasSupplementary reports whether s holds a character outside the BMP (a 4-byte
// UTF-8 sequence).
func hasSupplementary(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0xF0 {
			return true
		}
	}
	return false
}
