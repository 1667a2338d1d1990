package search

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"go.etcd.io/bbolt"

	"liandong/schema"
)

// Matchmaking (供需对接): from a need, rank the supply items and experts that
// could answer it; from a supply item, the needs it could answer and the experts
// who know its field. A candidate must share text with the source; its score is
//
//	text × (1 + ½·industry + ½·keywords + ¼·challenge) × (0.6 + 0.4·maturity)
//
// where each factor is between 0 and 1:
//
//   - text: BM25F of the source's text as a query over the candidate, the
//     source's keywords weighing 3, its title 2, its summary or description 1
//     and a challenge's targets 1.5, divided by the source's score against
//     itself (so 1 is "says everything the source says, as strongly");
//   - industry: 1 for the same industry code (an expert: one of their fields),
//     ½ for a parent or child field (信创 within 智能科技), else 0;
//   - keywords: the share of the source's keywords the candidate contains;
//   - challenge: for a challenge call (揭榜挂帅), the share of its targets the
//     candidate speaks to;
//   - maturity: how far a supply item's TRL reaches the need's expectation: the
//     need's own "trl" member if it has one, else TRL 6 for a need (an
//     enterprise wants something proven at pilot scale) and 4 for a challenge
//     (which funds the development); 1 at or above it, 0.15 less per level
//     below (at least 0.2), 0.6 when the TRL is not stated. Experts: 1.
//
// Needs that are closed or already matched are not offered for a supply item.
// Each match carries its reasons: the terms of the source it shares and in
// which fields of the candidate, the industry, the maturity and the targets.

// ErrNotMatchable is returned for a source that is neither a need nor a supply item.
var ErrNotMatchable = errors.New("matchmaking starts from a need or a supply item")

// Source-side weights of the query built from a record.
const (
	weightKeyword   = 3.0
	weightTitle     = 2.0
	weightText      = 1.0
	weightChallenge = 1.5
	maxTermWeight   = 6.0
)

// Maturity expected of a supply item when the need does not say.
const (
	defaultNeedTRL      = 6
	defaultChallengeTRL = 4
)

// MatchOptions configure Match.
type MatchOptions struct {
	// Catalogues are the lists to return; nil means the default for the
	// source: supply and expert for a need, need and expert for a supply item.
	Catalogues []string
	// Limit bounds each list (default 10).
	Limit int
	// Allow, when set, decides whether the caller may see a candidate.
	Allow func(*Doc) bool
	// AllowRecord, when set, decides again on each candidate kept, on the
	// record as read from the store: as Query.AllowRecord, the index's copy
	// of its attributes may be older than the record.
	AllowRecord func(*schema.Record) bool
	// Now is when the match is asked (time.Now() when zero): a candidate
	// whose expiry is at or before it is not suggested (a need past its
	// expiry is closed, a profile past it awaits renewal).
	Now time.Time
}

// Reason explains part of a match's score.
type Reason struct {
	// Kind is text, keywords, industry, maturity or challenge.
	Kind string `json:"kind"`
	// Score is the factor's value, 0 to 1.
	Score float64 `json:"score"`
	// Terms are the source's words the candidate shares (text), its keywords
	// found (keywords), or its targets addressed (challenge).
	Terms []string `json:"terms,omitempty"`
	// Fields are the candidate's fields where the terms occur.
	Fields []string `json:"fields,omitempty"`
	Detail string   `json:"detail,omitempty"`
}

// Match is one ranked candidate.
type Match struct {
	Doc     *Doc
	Record  *schema.Record
	Score   float64
	Reasons []Reason
}

// MatchResult holds the ranked lists by catalogue.
type MatchResult struct {
	Lists map[string][]Match
	// Behind is as in Page.
	Behind uint64
}

// phrase is a piece of the source's text with its weight and terms.
type phrase struct {
	text   string
	weight float64
	terms  []string
}

func phrasesOf(texts []string, weight float64) []phrase {
	var out []phrase
	for _, t := range texts {
		if strings.TrimSpace(t) == "" {
			continue
		}
		ts := dedupe(Analyze(t))
		if len(ts) > 0 {
			out = append(out, phrase{text: t, weight: weight, terms: ts})
		}
	}
	return out
}

func dedupe(ts []string) []string {
	seen := map[string]bool{}
	out := ts[:0:0]
	for _, t := range ts {
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	return out
}

// covered reports whether a phrase is found: as many of its terms as a query
// word would need (queryWord.need).
func covered(p phrase, has func(string) bool) bool {
	n := 0
	for _, t := range p.terms {
		if has(t) {
			n++
		}
	}
	return n >= need(len(p.terms))
}

// expectedTRL is the maturity a need expects of a supply item.
func expectedTRL(b *textBody, d *Doc) int {
	if b != nil && b.TRL >= 1 && b.TRL <= 9 {
		return b.TRL
	}
	if d != nil && d.TRL >= 1 && d.TRL <= 9 {
		return d.TRL
	}
	kind := ""
	if b != nil {
		kind = b.Kind
	} else if d != nil {
		kind = d.attrs().Kind
	}
	if kind == schema.NeedKindChallenge {
		return defaultChallengeTRL
	}
	return defaultNeedTRL
}

func maturity(trl, want int) (float64, string) {
	mat := maturityScore(trl, want)
	switch {
	case trl < 1 || trl > 9:
		return mat, fmt.Sprintf("TRL not stated; the need expects %d or more", want)
	case trl >= want:
		return mat, fmt.Sprintf("TRL %d meets the %d or more the need expects", trl, want)
	}
	return mat, fmt.Sprintf("TRL %d, below the %d the need expects", trl, want)
}

func maturityScore(trl, want int) float64 {
	switch {
	case trl < 1 || trl > 9:
		return 0.6
	case trl >= want:
		return 1
	}
	return math.Max(0.2, 1-0.15*float64(want-trl))
}

// industryScore compares the source's industry with a candidate's codes.
func industryScore(src string, cand []string) (float64, string) {
	switch score, code := industryMatch(src, cand); score {
	case 1:
		return 1, "same industry: " + industryLabel(code)
	case 0.5:
		return 0.5, "related industry: " + industryLabel(code)
	}
	return 0, ""
}

// industryMatch returns 1 and the code for the same industry among a
// candidate's codes, else ½ and the last related one, else 0.
func industryMatch(src string, cand []string) (float64, string) {
	if src == "" || len(cand) == 0 {
		return 0, ""
	}
	best, code := 0.0, ""
	si, _ := schema.LookupIndustry(src)
	for _, c := range cand {
		if c == src {
			return 1, c
		}
		ci, _ := schema.LookupIndustry(c)
		if si.Parent == c || ci.Parent == src || si.Parent != "" && si.Parent == ci.Parent {
			best, code = 0.5, c
		}
	}
	return best, code
}

func industryLabel(code string) string {
	if in, ok := schema.LookupIndustry(code); ok {
		return code + " " + in.ZH
	}
	return code
}

// Match ranks candidates for the source record, which must be a need or a
// supply item (it need not be indexed).
func (ix *Index) Match(src *schema.Record, opts MatchOptions) (*MatchResult, error) {
	if src.Catalogue != schema.CatalogueNeed && src.Catalogue != schema.CatalogueSupply {
		return nil, ErrNotMatchable
	}
	if opts.Limit <= 0 {
		opts.Limit = 10
	}
	if opts.Catalogues == nil {
		opts.Catalogues = []string{schema.CatalogueSupply, schema.CatalogueExpert}
		if src.Catalogue == schema.CatalogueSupply {
			opts.Catalogues = []string{schema.CatalogueNeed, schema.CatalogueExpert}
		}
	}
	for _, c := range opts.Catalogues {
		if c == src.Catalogue || !schema.KnownCatalogue(c) {
			return nil, fmt.Errorf("%w: cannot match a %s with %ss", ErrNotMatchable, src.Catalogue, c)
		}
	}
	last, err := ix.syncForQuery()
	if err != nil {
		return nil, err
	}

	b := decodeText(src)
	keywords := phrasesOf(b.Keywords, weightKeyword)
	var targets []phrase
	if b.Challenge != nil {
		targets = phrasesOf(b.Challenge.Targets, weightChallenge)
	}
	title := phrasesOf([]string{b.Title}, weightTitle)
	text := phrasesOf([]string{b.Summary, b.Description}, weightText)
	all := slices.Concat(keywords, title, text, targets)
	if len(all) == 0 {
		return &MatchResult{Lists: map[string][]Match{}}, nil
	}
	// Query terms and their weights.
	qw := map[string]float64{}
	for _, p := range all {
		for _, t := range p.terms {
			qw[t] = math.Min(maxTermWeight, qw[t]+p.weight)
		}
	}
	terms := make([]queryTerm, 0, len(qw))
	for t := range qw {
		terms = append(terms, queryTerm{text: t})
	}
	slices.SortFunc(terms, func(a, b queryTerm) int { return cmp.Compare(a.text, b.text) })

	weights := make([]float64, len(terms))
	for ti, t := range terms {
		weights[ti] = qw[t.text]
	}
	// The source against itself, for the text score's scale.
	self := analyzeRecord(src)

	now := nowNanos(opts.Now)
	admit := func(d *Doc) bool {
		a := d.attrs()
		if !slices.Contains(opts.Catalogues, a.Catalogue) || d.ID == src.ID || d.expiredAt(now) {
			return false
		}
		return a.Catalogue != schema.CatalogueNeed || d.statusAt(now) == schema.NeedOpen
	}
	var st stats
	var s *collected
	ix.mu.RLock()
	if ix.db == nil {
		ix.mu.RUnlock()
		return nil, ErrClosed
	}
	behind := ix.unsafeBehind(last)
	err = ix.db.View(func(tx *bbolt.Tx) error {
		st = ix.unsafeStats()
		s = ix.unsafeCollect(tx, terms, collectOptions{admit: admit, weights: weights})
		return nil
	})
	ix.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	defer s.release()

	out := &MatchResult{Lists: map[string][]Match{}, Behind: behind}
	idfs := make([]float64, len(terms))
	var selfScore float64
	for ti, t := range terms {
		// Document frequency over the whole index, as in search.
		idfs[ti] = idf(st.n, s.df[ti])
		if tf := self.terms[t.text]; tf != nil {
			selfScore += qw[t.text] * idfs[ti] * st.termWeight(&self.doc, tf)
		}
	}
	if selfScore <= 0 {
		return out, nil
	}
	m := &matcher{src: src, b: &b, s: s, terms: terms, selfScore: selfScore, keywords: keywords, targets: targets}
	index := make(map[string]int, len(terms))
	for ti, t := range terms {
		index[t.text] = ti
	}
	m.kwTerms, m.tgTerms = phraseTerms(keywords, index), phraseTerms(targets, index)

	type scored struct {
		i     int
		doc   *Doc
		score float64
	}
	lists := map[string][]scored{}
	for _, cat := range opts.Catalogues {
		lists[cat] = nil
	}
	for i := range s.cands {
		cd := &s.cands[i]
		if opts.Allow != nil && !opts.Allow(cd.doc) {
			continue
		}
		cat := cd.doc.attrs().Catalogue
		lists[cat] = append(lists[cat], scored{i, cd.doc, m.score(i)})
	}
	order := func(a, b scored) int {
		if c := cmp.Compare(b.score, a.score); c != 0 {
			return c
		}
		return cmp.Compare(a.doc.ID, b.doc.ID)
	}
	for cat, list := range lists {
		// Only the first Limit are wanted: select them, with room for
		// records deleted since the index was read; should they use it up,
		// the rest is sorted after all.
		sorted := topHits(list, opts.Limit+opts.Limit/2+8, order)
		var kept []Match
		for i := 0; i < len(list) && len(kept) < opts.Limit; i++ {
			if i == len(sorted) {
				slices.SortFunc(list, order)
				sorted = list
			}
			rec, err := ix.src.Get(sorted[i].doc.ID)
			if err != nil || rec.Deleted {
				continue
			}
			if opts.AllowRecord != nil && !opts.AllowRecord(rec) {
				continue // changed since the index was read: no longer the caller's to see
			}
			mt := m.match(sorted[i].i)
			mt.Record = rec
			kept = append(kept, mt)
		}
		out.Lists[cat] = kept
	}
	return out, nil
}

// matcher scores the candidates of one Match.
type matcher struct {
	src       *schema.Record
	b         *textBody
	s         *collected
	terms     []queryTerm
	selfScore float64
	// keywords and targets are the source's, with their terms' indexes.
	keywords, targets []phrase
	kwTerms, tgTerms  [][]int
}

// phraseTerms returns the indexes of each phrase's terms among the query's.
func phraseTerms(ps []phrase, index map[string]int) [][]int {
	out := make([][]int, len(ps))
	for i, p := range ps {
		for _, t := range p.terms {
			out[i] = append(out[i], index[t])
		}
	}
	return out
}

// coveredCount returns how many of the phrases (their terms' indexes)
// candidate i covers (see covered).
func (m *matcher) coveredCount(i int, phrases [][]int) int {
	n := 0
	for _, ts := range phrases {
		have := 0
		for _, ti := range ts {
			if m.s.has(i, ti) {
				have++
			}
		}
		if have >= need(len(ts)) {
			n++
		}
	}
	return n
}

// maturity returns candidate d's maturity factor, and the reason when there is one.
func (m *matcher) maturity(d *Doc, reason bool) (float64, *Reason) {
	var trl, want int
	switch {
	case m.src.Catalogue == schema.CatalogueNeed && d.attrs().Catalogue == schema.CatalogueSupply:
		trl, want = d.TRL, expectedTRL(m.b, nil)
	case m.src.Catalogue == schema.CatalogueSupply && d.attrs().Catalogue == schema.CatalogueNeed:
		trl, want = m.b.TRL, expectedTRL(nil, d)
	default:
		return 1, nil
	}
	if !reason {
		return maturityScore(trl, want), nil
	}
	mat, detail := maturity(trl, want)
	return mat, &Reason{Kind: "maturity", Score: round(mat), Detail: detail}
}

// score returns candidate i's score (see the top of this file).
func (m *matcher) score(i int) float64 {
	cd := &m.s.cands[i]
	text := math.Min(1, cd.score/m.selfScore)
	kw := 0.0
	if len(m.keywords) > 0 {
		kw = float64(m.coveredCount(i, m.kwTerms)) / float64(len(m.keywords))
	}
	ind, _ := industryMatch(m.b.Industry, cd.doc.attrs().Industries)
	ch := 0.0
	if len(m.targets) > 0 {
		ch = float64(m.coveredCount(i, m.tgTerms)) / float64(len(m.targets))
	}
	mat, _ := m.maturity(cd.doc, false)
	return round(text * (1 + 0.5*ind + 0.5*kw + 0.25*ch) * (0.6 + 0.4*mat))
}

// match returns candidate i's match with its reasons.
func (m *matcher) match(i int) Match {
	cd := &m.s.cands[i]
	has := map[string]bool{}
	for ti, t := range m.terms {
		if m.s.has(i, ti) {
			has[t.text] = true
		}
	}
	hasTerm := func(t string) bool { return has[t] }
	text := math.Min(1, cd.score/m.selfScore)

	var reasons []Reason
	textReason := Reason{Kind: "text", Score: round(text), Terms: sharedWords(m.b, has)}
	for f := range numFields {
		if cd.fields&(1<<f) != 0 {
			textReason.Fields = append(textReason.Fields, FieldNames[f])
		}
	}
	reasons = append(reasons, textReason)

	kw := 0.0
	if len(m.keywords) > 0 {
		var found []string
		for _, p := range m.keywords {
			if covered(p, hasTerm) {
				found = append(found, p.text)
			}
		}
		kw = float64(len(found)) / float64(len(m.keywords))
		reasons = append(reasons, Reason{Kind: "keywords", Score: round(kw), Terms: found,
			Detail: fmt.Sprintf("%d of the %d keywords", len(found), len(m.keywords))})
	}

	ind, detail := industryScore(m.b.Industry, cd.doc.attrs().Industries)
	if ind > 0 {
		reasons = append(reasons, Reason{Kind: "industry", Score: ind, Detail: detail})
	}

	ch := 0.0
	if len(m.targets) > 0 {
		var met []string
		for _, p := range m.targets {
			if covered(p, hasTerm) {
				met = append(met, p.text)
			}
		}
		ch = float64(len(met)) / float64(len(m.targets))
		reasons = append(reasons, Reason{Kind: "challenge", Score: round(ch), Terms: met,
			Detail: fmt.Sprintf("addresses %d of the %d targets", len(met), len(m.targets))})
	}

	mat, r := m.maturity(cd.doc, true)
	if r != nil {
		reasons = append(reasons, *r)
	}
	score := text * (1 + 0.5*ind + 0.5*kw + 0.25*ch) * (0.6 + 0.4*mat)
	return Match{Doc: cd.doc, Score: round(score), Reasons: reasons}
}

func round(f float64) float64 { return math.Round(f*1e4) / 1e4 }

// sharedWords turns the terms a candidate shares with the source back into
// readable words: the source's keywords found whole, then the longest runs of
// the source's title and text whose every character pair is shared.
func sharedWords(b *textBody, has map[string]bool) []string {
	var out []string
	seen := map[string]bool{}
	add := func(w string) {
		if w != "" && !seen[w] {
			seen[w] = true
			out = append(out, w)
		}
	}
	for _, k := range b.Keywords {
		if covered(phrase{terms: dedupe(Analyze(k))}, func(t string) bool { return has[t] }) {
			add(k)
		}
	}
	texts := slices.Concat([]string{b.Title}, b.Keywords, []string{b.Summary, b.Description})
	if b.Challenge != nil {
		texts = append(texts, b.Challenge.Targets...)
	}
	for _, s := range texts {
		for _, w := range sharedRuns(s, has) {
			if !containedIn(w, out) {
				add(w)
			}
		}
	}
	if len(out) > 12 {
		out = out[:12]
	}
	return out
}

func containedIn(w string, ws []string) bool {
	for _, x := range ws {
		if strings.Contains(x, w) {
			return true
		}
	}
	return false
}

// sharedRuns returns the maximal substrings of s made of CJK character pairs
// that are all shared, and the Latin words that are.
func sharedRuns(s string, has map[string]bool) []string {
	var out []string
	var run []rune
	flush := func() {
		if len(run) >= 2 {
			out = append(out, string(run))
		}
		run = run[:0]
	}
	var prev rune
	analyzeRunes(s, func(r rune, cjk bool, word string) {
		switch {
		case cjk && prev != 0 && has[string([]rune{prev, r})]:
			if len(run) == 0 {
				run = append(run, prev)
			}
			run = append(run, r)
		case cjk:
			flush()
		default:
			flush()
			if word != "" && has[word] && utf8.RuneCountInString(word) > 1 {
				out = append(out, word)
			}
		}
		if cjk {
			prev = r
		} else {
			prev = 0
		}
	})
	flush()
	return out
}

// analyzeRunes walks normalised s: each CJK rune (cjk true), and each Latin
// word once at its end (cjk false, word set); separators come as (0, false, "").
func analyzeRunes(s string, fn func(r rune, cjk bool, word string)) {
	s = strings.ToLower(normalize(s))
	start := -1
	for i, r := range s {
		switch {
		case isCJK(r):
			if start >= 0 {
				fn(0, false, s[start:i])
				start = -1
			}
			fn(r, true, "")
		case isWordRune(r):
			if start < 0 {
				start = i
			}
		default:
			if start >= 0 {
				fn(0, false, s[start:i])
				start = -1
			} else {
				fn(0, false, "")
			}
		}
	}
	if start >= 0 {
		fn(0, false, s[start:])
	}
}
