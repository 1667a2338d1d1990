package search

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAnalyze(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{"锂电池", []string{"锂电", "电池"}},
		{"高镍三元正极材料", []string{"高镍", "镍三", "三元", "元正", "正极", "极材", "材料"}},
		{"锂", []string{"锂"}},
		{"mRNA疫苗递送", []string{"mrna", "疫苗", "苗递", "递送"}},
		{"CAR-T细胞", []string{"car", "t", "细胞"}},
		{"Ｆｕｌｌ－width ＡＩ，大模型", []string{"full", "width", "ai", "大模", "模型"}},
		{"The design of a PEM electrolyser", []string{"design", "pem", "electrolyser"}},
		{"预测误差 < 10%", []string{"预测", "测误", "误差", "10"}},
		{"ZL202110345678.9", []string{"zl202110345678", "9"}},
		{"", nil},
		{"，。！ 、", nil},
	} {
		if got := Analyze(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Analyze(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestQueryWords(t *testing.T) {
	ws := parseQuery("锂电池 正极材料  PEM 的 氢")
	var got []int
	for _, w := range ws {
		got = append(got, w.need())
	}
	// 锂电池: 2 bigrams, both; 正极材料: 3 bigrams, 2; pem: 1; 的: 1 (a prefix term); 氢: 1.
	if want := []int{2, 2, 1, 1, 1}; !slices.Equal(got, want) {
		t.Fatalf("needs %v, want %v", got, want)
	}
	if !ws[4].terms[0].prefix || ws[2].terms[0].prefix {
		t.Fatalf("prefix terms wrong: %+v", ws)
	}
	long := parseQuery("风电齿轮箱轴承寿命预测")
	if k, n := len(long[0].terms), long[0].need(); k != 10 || n != 6 {
		t.Fatalf("long word: %d terms, need %d", k, n)
	}
}

// TestNormalizeLowerFastPath: the fast path agrees with NFKC and lower
// case, for every character it handles alone and in mixed strings.
func TestNormalizeLowerFastPath(t *testing.T) {
	slow := func(s string) string { return strings.ToLower(normalize(s)) }
	var fast []rune
	for r := rune(0); r < utf8.RuneSelf; r++ {
		fast = append(fast, r)
	}
	for _, rg := range [][2]rune{{0x4e00, 0x9fff}, {0x3001, 0x3002}, {0x3008, 0x3011}, {0xff01, 0xff5e}} {
		for r := rg[0]; r <= rg[1]; r++ {
			fast = append(fast, r)
		}
	}
	for _, r := range fast {
		if got, want := normalizeLower(string(r)), slow(string(r)); got != want {
			t.Fatalf("%U: %q, want %q", r, got, want)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	others := []rune{0x301, 0x3000, 0xff61, 0xf900, 0x2460, 'é', 0x1100, 0x1161, 0xac00, 0x3099, 0xff9e, 0xfffd}
	for range 20000 {
		var sb strings.Builder
		for range rng.IntN(12) {
			if rng.IntN(10) == 0 {
				sb.WriteRune(others[rng.IntN(len(others))])
			} else {
				sb.WriteRune(fast[rng.IntN(len(fast))])
			}
		}
		if rng.IntN(50) == 0 {
			sb.WriteByte(0xff) // invalid UTF-8
		}
		s := sb.String()
		if got, want := normalizeLower(s), slow(s); got != want {
			t.Fatalf("%q: %q, want %q", s, got, want)
		}
	}
}
