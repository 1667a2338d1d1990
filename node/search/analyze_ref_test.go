package search

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// analyzeIntoBefore is analyzeInto as it was before it cut CJK terms from the
// text itself: the reference the new one must match term for term.
func analyzeIntoBefore(s string, doc bool, emit func([]byte)) {
	s = normalizeLower(s)
	var runes [16]rune
	cjk := runes[:0]
	term := make([]byte, 0, maxTermBytes)
	word := -1 // start of the current Latin word in s, or -1
	flushCJK := func() {
		switch len(cjk) {
		case 0:
		case 1:
			emit(utf8.AppendRune(term[:0], cjk[0]))
		default:
			for i := 0; i+1 < len(cjk); i++ {
				emit(utf8.AppendRune(utf8.AppendRune(term[:0], cjk[i]), cjk[i+1]))
			}
			if doc {
				emit(utf8.AppendRune(term[:0], cjk[len(cjk)-1]))
			}
		}
		cjk = cjk[:0]
	}
	flushWord := func(end int) {
		if word < 0 {
			return
		}
		w := s[word:end]
		word = -1
		if stopWords[w] {
			return
		}
		if len(w) > maxTermBytes {
			w = w[:maxTermBytes]
			for !utf8.ValidString(w) {
				w = w[:len(w)-1]
			}
		}
		emit(append(term[:0], w...))
	}
	for i, r := range s {
		switch {
		case isCJK(r):
			flushWord(i)
			cjk = append(cjk, r)
		case isWordRune(r):
			flushCJK()
			if word < 0 {
				word = i
			}
		default:
			flushCJK()
			flushWord(i)
		}
	}
	flushCJK()
	flushWord(len(s))
}

func analyzeBoth(s string, doc bool) (got, want []string) {
	analyzeInto(s, doc, func(t []byte) { got = append(got, string(t)) })
	analyzeIntoBefore(s, doc, func(t []byte) { want = append(want, string(t)) })
	return got, want
}

// TestAnalyzeIntoMatchesBefore holds analyzeInto to the terms, in the same
// order, of the way it re-encoded each character, on mixed text: runs of
// one and many CJK characters, full-width forms, Latin words, invalid UTF-8,
// and runs longer than the 16 runes the old one kept on the stack.
func TestAnalyzeIntoMatchesBefore(t *testing.T) {
	cases := []string{
		"", "锂", "锂电池", "高镍三元正极材料连续化制备技术 12", "CAR-T细胞治疗，mRNA疫苗",
		"ＡＢＣ１２３锂电池ｘ", "a锂b电c", "\xff锂\xfe电池\xff", strings.Repeat("成果转化", 70),
		"钙钛矿叠层太阳能电池 the Solar cell 的 of 轴承", "ひらがなカタカナ한국어漢字", "锂 电 池",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("电池储能风轴承寿命预测氢燃料钙钛矿ＡＢ１ab Z9，。、《》\u00e9\ufffd-")
	for range 2000 {
		var sb strings.Builder
		for range rng.IntN(60) {
			if rng.IntN(40) == 0 {
				sb.WriteByte(0xff) // invalid UTF-8
				continue
			}
			sb.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		cases = append(cases, sb.String())
	}
	for _, s := range cases {
		for _, doc := range []bool{false, true} {
			if got, want := analyzeBoth(s, doc); !slices.Equal(got, want) {
				t.Fatalf("analyzeInto(%q, %v) = %q, before %q", s, doc, got, want)
			}
		}
	}
}

func FuzzAnalyzeIntoMatchesBefore(f *testing.F) {
	for _, s := range []string{"锂电池", "a锂b", "\xff锂电", strings.Repeat("成果", 20), "ＡＢ锂电"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, doc := range []bool{false, true} {
			if got, want := analyzeBoth(s, doc); !slices.Equal(got, want) {
				t.Fatalf("analyzeInto(%q, %v) = %q, before %q (valid UTF-8: %v)", s, doc, got, want, utf8.ValidString(s))
			}
		}
	})
}

// BenchmarkAnalyzeInto sets analyzeInto against analyzeIntoBefore on a
// summary of `liandong bench` (成果转化 repeated) and on varied text, in one
// process, so that the neighbours on the cores weigh on both alike.
func BenchmarkAnalyzeInto(b *testing.B) {
	c := newRandomCorpus(3)
	for _, text := range []struct{ name, s string }{
		{"padded", "高镍三元正极材料连续化制备技术 12345" + strings.Repeat("成果转化", 70)},
		{"varied", c.text(300)},
	} {
		for _, impl := range []struct {
			name string
			f    func(string, bool, func([]byte))
		}{{"now", analyzeInto}, {"before", analyzeIntoBefore}} {
			b.Run(text.name+"/"+impl.name, func(b *testing.B) {
				n := 0
				for b.Loop() {
					impl.f(text.s, true, func(t []byte) { n += len(t) })
				}
			})
		}
	}
}
