package search

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The analyzer turns text into index terms, the same way for documents and
// queries:
//
//   - NFKC normalisation (full-width Ａ１ becomes A1, compatibility forms fold)
//     and lower case;
//   - runs of CJK characters (Han, kana, Hangul) become overlapping character
//     bigrams — 锂电池 gives 锂电 and 电池 — since Chinese has no spaces and
//     bigrams find words of any length without a dictionary; a run of one
//     character is kept as it is;
//   - runs of other letters and digits become lower-cased words (mRNA → mrna,
//     CAR-T → car, t); a few English stop words are dropped;
//   - everything else separates.

// maxTermBytes bounds one term; longer Latin words are cut (they are ids or
// garbage, and a bbolt key must stay small).
const maxTermBytes = 64

var stopWords = map[string]bool{
	"a": true, "an": true, "and": true, "are": true, "as": true, "at": true, "be": true, "by": true,
	"for": true, "from": true, "in": true, "into": true, "is": true, "it": true, "of": true, "on": true,
	"or": true, "the": true, "to": true, "with": true,
}

func isCJK(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r)
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func normalize(s string) string { return norm.NFKC.String(s) }

// Analyze returns the terms of s in order, with repeats.
func Analyze(s string) []string {
	var out []string
	analyze(s, func(t string) { out = append(out, t) })
	return out
}

func analyze(s string, emit func(string)) {
	s = strings.ToLower(normalize(s))
	var cjk []rune
	word := -1 // start of the current Latin word in s, or -1
	flushCJK := func() {
		switch len(cjk) {
		case 0:
		case 1:
			emit(string(cjk))
		default:
			for i := 0; i+1 < len(cjk); i++ {
				emit(string(cjk[i : i+2]))
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
		emit(w)
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

// queryTerm is one term of a parsed query. A prefix term stands for a single CJK
// character: it matches every indexed term that starts with it (the bigrams it
// begins, or itself alone).
type queryTerm struct {
	text   string
	prefix bool
}

// queryWord is one whitespace-separated word of a query with its terms.
type queryWord struct {
	text  string
	terms []queryTerm
}

// need is how many distinct terms of a word a document must contain: all of
// them for words of one or two terms, 60% (rounded up) of longer ones, so a long
// Chinese phrase typed without spaces still finds documents that say it in
// other words or order.
func (w queryWord) need() int {
	k := len(w.terms)
	if k <= 2 {
		return k
	}
	return (3*k + 4) / 5
}

// parseQuery splits a query into words and their terms. Words without terms
// (punctuation, stop words) are dropped.
func parseQuery(q string) []queryWord {
	var out []queryWord
	for _, f := range strings.Fields(q) {
		var w queryWord
		w.text = f
		seen := map[string]bool{}
		terms := Analyze(f)
		for _, t := range terms {
			if seen[t] {
				continue
			}
			seen[t] = true
			prefix := utf8.RuneCountInString(t) == 1 && isCJK([]rune(t)[0])
			w.terms = append(w.terms, queryTerm{text: t, prefix: prefix})
		}
		if len(w.terms) > 0 {
			out = append(out, w)
		}
	}
	return out
}
