package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"runtime"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		// RFC 8785 §3.2.3 (1E30 left out: this encoder refuses integers ≥ 2^53, see below).
		{`{
  "numbers": [333333333.33333329, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`, `{"literals":[null,true,false],"numbers":[333333333.3333333,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`},
		// RFC 8785 §3.2.3 sorting: by UTF-16 code units, so U+1F600 (D83D DE00)
		// sorts before U+FB33 although its code point is larger.
		{`{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`, "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\",\"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\"😀\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"},
		{`{"b":1,"a":{"d":[3,{"z":0,"y":1}],"c":2}}`, `{"a":{"c":2,"d":[3,{"y":1,"z":0}]},"b":1}`},
		{`{"𠀀":1,"\uffff":2,"中":3}`, `{"中":3,"𠀀":1,"` + "\uffff" + `":2}`},
		{`{"aa":1,"a":2,"":3}`, `{"":3,"a":2,"aa":1}`},
		// Numbers.
		{`1e-7`, `1e-7`},
		{`0.000001`, `0.000001`},
		{`0.0000001`, `1e-7`},
		{`-0`, `0`},
		{`-0.0`, `0`},
		{`1.5`, `1.5`},
		{`1.0`, `1`},
		{`2.50E+1`, `25`},
		{`-1.0e2`, `-100`},
		{`1E-400`, `0`},
		{`9007199254740991`, `9007199254740991`},
		{`-9007199254740991`, `-9007199254740991`},
		{`123456789.123456789`, `123456789.12345679`},
		{`1e20`, ``}, // integral, ≥ 2^53: refused (below)
		// Strings: minimal escaping, everything else literal.
		{`"\u0041\u4e2d\/"`, `"A中/"`},
		{`"\u001f\u0000\b\f\n\r\t"`, `"\u001f\u0000\b\f\n\r\t"`},
		{`"\u007f<>&\u2028\u2029"`, "\"\u007f<>&\u2028\u2029\""},
		{`"\ud83d\ude00\uD83D\uDE00"`, `"😀😀"`},
		{`"高镍三元正极材料"`, `"高镍三元正极材料"`},
		// Literals and white space.
		{" \t\r\n[ true , false,null ] \n", `[true,false,null]`},
		{`{}`, `{}`}, {`[]`, `[]`}, {`[{}, []]`, `[{},[]]`},
	} {
		got, err := Canonical([]byte(c.in))
		if c.want == "" {
			if err == nil {
				t.Errorf("Canonical(%s) = %s, want error", c.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("Canonical(%.60s): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("Canonical(%.60s)\n got %s\nwant %s", c.in, got, c.want)
		}
		if err := CheckCanonical(got); err != nil {
			t.Errorf("CheckCanonical(%s): %v", got, err)
		}
		in := []byte(c.in)
		as, err := AsCanonical(in)
		if err != nil || string(as) != c.want {
			t.Errorf("AsCanonical(%.60s) = %s, %v; want %s", c.in, as, err, c.want)
		}
		// In place for the inputs here that are canonical already, a copy for the others.
		if same := len(as) > 0 && &as[0] == &in[0]; same != (c.in == c.want) {
			t.Errorf("AsCanonical(%.60s) returned its input: %v, want %v", c.in, same, c.in == c.want)
		}
	}
}

func TestCanonicalRefuses(t *testing.T) {
	for _, in := range []string{
		// Integers at or beyond 2^53, however written: 123456789012345680000 is the
		// RFC's 1.2345678901234568e+20, refused here as a JSON integer.
		`123456789012345680000`, `9007199254740992`, `-9007199254740992`, `9007199254740993`,
		`1e21`, `1E30`, `9007199254740992.5`, `[1, 2, 1e300]`,
		// Not finite.
		`1e400`, `-1e400`,
		// Repeated names, also when spelled differently.
		`{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"x":{"b":1,"c":{},"b":[]}}`,
		// Invalid UTF-8 and lone surrogates.
		"\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "{\"\xfe\":1}", "\"a\\n\xe4\xb8\"",
		`"\ud800"`, `"\udc00"`, `"\ud83d\u0041"`, `"\ud83d\ud83d"`, `"\ude00\ud83d"`, `"\ud83d x"`,
		// Syntax.
		``, ` `, `{`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `01`, `-`, `1.`, `.5`, `1e`, `+1`, `0x10`,
		`tru`, `nul`, `True`, `NaN`, `Infinity`, `"a` + "\n" + `"`, `"\x"`, `"\u12"`, `"\u12G4"`,
		`[1] [2]`, `{}x`, `'a'`, "\ufeff{}",
		// Control bytes past the first word of a long string, and after CJK.
		"\"abcdefghijkl\x1fmn\"", "{\"body\":{\"a\":\"abcdefg\x1f\"}}", "\"成果转化成果\x00\"", "\"abcdefgh\x7f\x10\"",
	} {
		if got, err := Canonical([]byte(in)); err == nil {
			t.Errorf("Canonical(%q) = %s, want error", in, got)
		} else {
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Errorf("Canonical(%q) error %v is not a *SyntaxError", in, err)
			}
		}
		if got, err := AsCanonical([]byte(in)); err == nil {
			t.Errorf("AsCanonical(%q) = %s, want error", in, got)
		}
	}
}

// TestControlByte holds the word-at-a-time scan to a byte loop: every byte
// value at every position of slices of up to 17 bytes, on fills below, at
// and above the boundary.
func TestControlByte(t *testing.T) {
	for _, fill := range []byte{' ', 'a', 0x7f, 0x80, 0xe6, 0xff} {
		for n := 0; n <= 17; n++ {
			for at := 0; at < n; at++ {
				for v := 0; v < 256; v++ {
					b := bytes.Repeat([]byte{fill}, n)
					b[at] = byte(v)
					if got, want := controlByte(b), v < 0x20; got != want {
						t.Fatalf("controlByte(% x) = %v, want %v", b, got, want)
					}
				}
			}
		}
	}
}

func TestCanonicalDepth(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	if _, err := Canonical([]byte(nest(MaxDepth))); err != nil {
		t.Errorf("depth %d: %v", MaxDepth, err)
	}
	if _, err := Canonical([]byte(nest(MaxDepth + 1))); err == nil {
		t.Errorf("depth %d accepted", MaxDepth+1)
	}
	obj := strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1)
	if _, err := Canonical([]byte(obj)); err == nil {
		t.Errorf("object depth %d accepted", MaxDepth+1)
	}
	if _, err := Canonical([]byte(strings.Repeat("[", 1<<20))); err == nil {
		t.Error("a million open brackets accepted")
	}
}

// RFC 8785 Appendix B: IEEE 754 doubles and their ECMAScript rendering.
func TestAppendCanonicalNumber(t *testing.T) {
	for _, c := range []struct {
		bits uint64
		want string
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	} {
		f := math.Float64frombits(c.bits)
		if got := string(AppendCanonicalNumber(nil, f)); got != c.want {
			t.Errorf("%016x (%g): got %s, want %s", c.bits, f, got, c.want)
		}
	}
	for f, want := range map[float64]string{1e21: "1e+21", 1e-7: "1e-7", 1e30: "1e+30", 0.000001: "0.000001",
		1.5: "1.5", 100: "100", 123e-20: "1.23e-18", 1e20: "100000000000000000000", -0.5: "-0.5"} {
		if got := string(AppendCanonicalNumber([]byte("x"), f)); got != "x"+want {
			t.Errorf("%g: got %s, want %s", f, got[1:], want)
		}
	}
}

func TestCheckCanonical(t *testing.T) {
	if err := CheckCanonical([]byte(`{"a":1,"b":[true]}`)); err != nil {
		t.Error(err)
	}
	for _, in := range []string{`{"b":1,"a":2}`, `{"a": 1}`, `[1.0]`, `"\u0041"`, `{"a":1} `, `"\/"`, `1E2`} {
		if err := CheckCanonical([]byte(in)); !errors.Is(err, ErrNotCanonical) {
			t.Errorf("CheckCanonical(%s) = %v, want ErrNotCanonical", in, err)
		}
	}
	if err := CheckCanonical([]byte(`{"a":1,"a":1}`)); err == nil || errors.Is(err, ErrNotCanonical) {
		t.Errorf("duplicate names: %v, want a syntax error", err)
	}
}

// Canonical output is what encoding/json reads back to the same value.
func TestCanonicalAgreesWithEncodingJSON(t *testing.T) {
	for _, in := range []string{nickelBody, challengeBody, expertBody} {
		c, err := Canonical([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		var a, b any
		if err := json.Unmarshal([]byte(in), &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(c, &b); err != nil {
			t.Fatalf("encoding/json refuses canonical output: %v", err)
		}
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Errorf("values differ:\n%s\n%s", ja, jb)
		}
	}
}

// Long runs of literals are linear, not quadratic. The quadratic encoder this
// guards against compared each literal with the whole rest of the input
// converted to a string, a copy per literal; the bound is therefore on bytes
// allocated, which a loaded machine does not change, not on time (speed is
// for BenchmarkCanonicalLiterals). Canonical input goes through the checker
// and the rest through the parser, so both are covered; each input is kept
// small, as the copies of a quadratic encoder would run to gigabytes on a
// full-size entry.
func TestCanonicalLiteralsLinear(t *testing.T) {
	const n = 4000
	for _, c := range []struct{ name, in string }{
		{"checker, true", "[" + strings.Repeat("true,", n) + "null]"},
		{"checker, false", "[" + strings.Repeat("false,", n) + "null]"},
		{"checker, in an object", `{"a":[` + strings.Repeat("null,", n) + "true]}"},
		{"parser, true", "[" + strings.Repeat("true, ", n) + "null]"},
		{"parser, false", "[" + strings.Repeat("false, ", n) + "null]"},
		{"parser, in an object", `{"b":1, "a":[` + strings.Repeat("null, ", n) + "true]}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := []byte(c.in)
			allocated := minBytesAllocated(t, func() {
				if _, err := Canonical(in); err != nil {
					t.Fatal(err)
				}
			})
			// The output buffer (at most the input's size, rounded up to a
			// size class) and, in an object, the member's value built apart
			// and grown by doubling: a few times the input, where a copy of
			// the rest per literal is about n/2 times it.
			if limit := 4*uint64(len(in)) + 64<<10; allocated > limit {
				t.Errorf("%d bytes of input allocated %d bytes, more than %d: the encoder copies per literal", len(in), allocated, limit)
			}
		})
	}
}

// minBytesAllocated returns the fewest heap bytes f allocated over three runs:
// the fewest, because another goroutine allocating during a run can only add.
func minBytesAllocated(t *testing.T, f func()) uint64 {
	t.Helper()
	least := uint64(math.MaxUint64)
	var before, after runtime.MemStats
	for range 3 {
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

func TestCanonicalRefusesCaseVariantNames(t *testing.T) {
	for _, in := range []string{
		`{"origin":"hq","Origin":"tianjin"}`,
		`{"a":{"ID":"x","id":"y"}}`,
		`[{"Kid":1,"kid":2}]`,
	} {
		if _, err := Canonical([]byte(in)); err == nil || !strings.Contains(err.Error(), "differ only in case") {
			t.Errorf("%s: %v", in, err)
		}
	}
	if _, err := Canonical([]byte(`{"ID":"x","name":"y"}`)); err != nil {
		t.Errorf("distinct names refused: %v", err)
	}
}

// TestUnexpectedCharacterNamed: a character out of place is named as the
// character the client sent, not as its first byte read as Latin-1 (a UTF-8
// byte order mark from a Windows client came back as "unexpected character
// 'ï'", a curly quote from a Chinese input method as 'â'), by both parsers.
func TestUnexpectedCharacterNamed(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{"byte order mark", "\uFEFF{\"a\":1}", "byte order mark (U+FEFF)"},
		{"curly quote", "{\"a\":\u201cx\u201d}", "unexpected character '\u201c'"},
		{"full-width digit", "{\"a\":\uFF11}", "unexpected character '\uFF11'"},
		{"invalid UTF-8", "{\"a\":\xff}", "unexpected byte 0xff"},
		{"ASCII", "{\"a\":x}", "unexpected character 'x'"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Canonical([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Canonical: %v, want %q", err, c.want)
			}
			_, serr := parseTree([]byte(c.in), "body", MaxDepth, nil)
			if serr == nil || !strings.Contains(serr.msg, c.want) {
				t.Errorf("parseTree: %+v, want %q", serr, c.want)
			}
		})
	}
}

// TestInvalidEscapeNamed: a backslash before a character JSON does not escape
// names that character as sent, as an out-of-place character is
// (TestUnexpectedCharacterNamed); printing the byte after the backslash with
// %c made "\é" come back as "invalid escape \Ã" and wrote a control character
// raw into the detail.
func TestInvalidEscapeNamed(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
	}{
		{"ASCII", `{"a":"\x"}`, `invalid escape \x`},
		{"non-ASCII", "{\"a\":\"\\\u00e9\"}", "invalid escape \\\u00e9"},
		{"full-width", "{\"a\":\"\\\uFF4E\"}", "invalid escape \\\uFF4E"},
		{"control character", "{\"a\":\"\\\x01\"}", `invalid escape: '\x01' after \`},
		{"invalid UTF-8", "{\"a\":\"\\\xff\"}", `invalid escape: byte 0xff after \ (not UTF-8)`},
		{"truncated UTF-8 at the end", "{\"a\":\"\\\xe2\x80", `invalid escape: byte 0xe2 after \ (not UTF-8)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Canonical([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Canonical(%q): %v, want %q", c.in, err, c.want)
			}
			if err := CheckCanonical([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("CheckCanonical(%q): %v, want %q", c.in, err, c.want)
			}
		})
	}
}
