package schema

import (
	"bytes"
	"encoding/binary"
	"math"
	"strconv"
	"unicode/utf8"
)

// isCanonical reports whether in is canonical without building its canonical
// form: every received entry is checked, and building the form copied each
// nested value once per level and allocated per member. It answers true only
// when Canonical(in) would return in unchanged; false may also mean "not
// sure" (a name with a capital letter or a supplementary character, which
// need the full rules), and the caller then asks Canonical.
func isCanonical(in []byte) bool {
	c := canonChecker{in: in}
	return c.value(0) && c.pos == len(in)
}

type canonChecker struct {
	in      []byte
	pos     int
	scratch []byte
}

func (c *canonChecker) value(depth int) bool {
	if c.pos >= len(c.in) {
		return false
	}
	switch ch := c.in[c.pos]; {
	case ch == '{':
		return c.object(depth + 1)
	case ch == '[':
		return c.array(depth + 1)
	case ch == '"':
		_, ok := c.str()
		return ok
	case ch == '-' || ch >= '0' && ch <= '9':
		return c.number()
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	}
	return false
}

func (c *canonChecker) literal(lit string) bool {
	if len(c.in)-c.pos < len(lit) || string(c.in[c.pos:c.pos+len(lit)]) != lit {
		return false
	}
	c.pos += len(lit)
	return true
}

func (c *canonChecker) object(depth int) bool {
	if depth > MaxDepth {
		return false
	}
	c.pos++ // '{'
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		return true
	}
	var prev []byte
	for first := true; ; first = false {
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return false
		}
		raw, ok := c.str()
		if !ok || !orderedName(raw) {
			return false
		}
		// Names compare without their quotes: with them, "a" (a, then the
		// closing quote, 0x22) would sort after "a!" and "a ".
		key := raw[1 : len(raw)-1]
		if !first && bytes.Compare(prev, key) >= 0 {
			return false
		}
		prev = key
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return false
		}
		c.pos++
		if !c.value(depth) {
			return false
		}
		if c.pos >= len(c.in) {
			return false
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
		case '}':
			c.pos++
			return true
		default:
			return false
		}
	}
}

// orderedName: a member name whose order is its bytes' order (no supplementary
// characters, where UTF-16 order differs) and which no case-variant rule can
// touch (no ASCII capital), written without escapes.
func orderedName(raw []byte) bool {
	for _, b := range raw[1 : len(raw)-1] {
		if b >= 'A' && b <= 'Z' || b >= 0xF0 || b == '\\' {
			return false
		}
	}
	return true
}

func (c *canonChecker) array(depth int) bool {
	if depth > MaxDepth {
		return false
	}
	c.pos++ // '['
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		return true
	}
	for {
		if !c.value(depth) || c.pos >= len(c.in) {
			return false
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
		case ']':
			c.pos++
			return true
		default:
			return false
		}
	}
}

// str checks the string at c.pos and returns it as written, quotes included.
func (c *canonChecker) str() ([]byte, bool) {
	start := c.pos
	// Up to the next quote, a string without escapes is canonical when it
	// holds no control character and is valid UTF-8. These are found a word
	// at a time (bytes.IndexByte, controlByte) rather than a byte at a time,
	// which was most of checking a body of Chinese text.
	if q := bytes.IndexByte(c.in[start+1:], '"'); q >= 0 {
		span := c.in[start+1 : start+1+q]
		if bytes.IndexByte(span, '\\') < 0 {
			if controlByte(span) || !utf8.Valid(span) {
				return nil, false
			}
			c.pos = start + q + 2
			return c.in[start:c.pos], true
		}
	}
	// Escapes: canonical only if re-encoding the value gives the same bytes.
	p := canonParser{in: c.in, pos: start}
	s, err := p.str()
	if err != nil {
		return nil, false
	}
	raw := c.in[start:p.pos]
	c.scratch = appendCanonString(c.scratch[:0], s)
	if !bytes.Equal(c.scratch, raw) {
		return nil, false
	}
	c.pos = p.pos
	return raw, true
}

// controlByte reports whether b holds a byte below 0x20, eight bytes at a
// time: a byte x of a word is below 0x20 exactly when x - 0x20 borrows
// into its top bit while x's own top bit is clear.
func controlByte(b []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(b) >= 8 {
		x := binary.LittleEndian.Uint64(b)
		if (x-0x20*ones)&^x&highs != 0 {
			return true
		}
		b = b[8:]
	}
	for _, x := range b {
		if x < 0x20 {
			return true
		}
	}
	return false
}

func (c *canonChecker) number() bool {
	start := c.pos
	end, _, msg := scanNumber(c.in, c.pos)
	if msg != "" {
		return false
	}
	c.pos = end
	f, err := strconv.ParseFloat(string(c.in[start:end]), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || f == math.Trunc(f) && math.Abs(f) >= maxSafeInteger {
		return false
	}
	c.scratch = AppendCanonicalNumber(c.scratch[:0], f)
	return bytes.Equal(c.scratch, c.in[start:end])
}
