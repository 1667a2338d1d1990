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
	switch {
	case r < 0x1100: // below Hangul Jamo, the first of these scripts
		return false
	case r >= 0x4e00 && r <= 0x9fff: // CJK Unified Ideographs, all Han
		return true
	}
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Katakana, r) || unicode.Is(unicode.Hangul, r)
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

func normalize(s string) string { return norm.NFKC.String(s) }

// normalizeLower returns strings.ToLower(normalize(s)). Most text the index
// reads is CJK ideographs, ASCII and full-width punctuation, whose NFKC form
// is each character's own (none of them decomposes into, or composes with,
// another), so that is done here without the general algorithm, which is a
// sixth of indexing a record; any other character takes the general way.
func normalizeLower(s string) string {
	same := true
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			same = same && (r < 'A' || r > 'Z')
		case r >= 0x4e00 && r <= 0x9fff, r == 0x3001, r == 0x3002, r >= 0x3008 && r <= 0x3011:
		case r >= 0xff01 && r <= 0xff5e: // full-width ASCII
			same = false
		default:
			return strings.ToLower(normalize(s))
		}
	}
	if same {
		return s
	}
	b := make([]byte, 0, len(s))
	for _, r := range s {
		if r >= 0xff01 && r <= 0xff5e {
			r -= 0xfee0
		}
		if r >= 'A' && r <= 'Z' {
			r += 'a' - 'A'
		}
		b = utf8.AppendRune(b, r)
	}
	return string(b)
}

// Analyze returns the terms of s in order, with repeats.
func Analyze(s string) []string {
	var out []string
	analyze(s, func(t string) { out = append(out, t) })
	return out
}

func analyze(s string, emit func(string)) {
	analyzeInto(s, false, func(t []byte) { emit(string(t)) })
}

// analyzeInto is analyze handing each term as bytes that are only valid
// during the call, which spares a string for each repeat of a term.
//
// A document's text (doc) also gives the last character of each CJK run of two
// or more as a term of its own: a query of one character matches the terms
// that start with it, and a character that only ends runs (车 of 汽车, 析 of
// 分析) starts none of the run's bigrams. A query's text does not: 汽车 is
// the one term 汽车, not also the prefix 车.
func analyzeInto(s string, doc bool, emit func([]byte)) {
	s = normalizeLower(s)
	term := make([]byte, 0, maxTermBytes)
	// A CJK run's terms are cut from s itself: its characters are valid
	// UTF-8 there (an invalid byte decodes to U+FFFD, which separates), so
	// a bigram is the bytes of two adjacent characters. Re-encoding each
	// character of every bigram, and keeping the run's runes (on the heap
	// past 16), was a fifth of analysing a record.
	run, prev, last := 0, -1, -1 // the run's characters; where the one before the last starts, and where the last starts
	word := -1                   // start of the current Latin word in s, or -1
	flushCJK := func(end int) {
		switch {
		case run == 1:
			emit(append(term[:0], s[last:end]...))
		case run > 1 && doc:
			emit(append(term[:0], s[last:end]...))
		}
		run = 0
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
	end := 0 // where the CJK run's last character ends
	for i, r := range s {
		switch {
		case isCJK(r):
			flushWord(i)
			prev, last = last, i
			run++
			end = i + utf8.RuneLen(r)
			if run > 1 {
				emit(append(term[:0], s[prev:end]...))
			}
		case isWordRune(r):
			flushCJK(end)
			if word < 0 {
				word = i
			}
		default:
			flushCJK(end)
			flushWord(i)
		}
	}
	flushCJK(end)
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
func (w queryWord) need() int { return need(len(w.terms)) }

// need is how many of k distinct terms must be found (queryWord.need).
func need(k int) int {
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
