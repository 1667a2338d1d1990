package api

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/fnv"
	"math"
	"net/http"
	"strconv"

	"liandong/auth"
	"liandong/node/search"
	"liandong/schema"
)

// Searcher is what a service with a full-text index adds: GET /v1/records with
// q= then ranks by relevance through it. *node.Node satisfies it. A Service
// without it filters q= by substring, in id order.
type Searcher interface {
	Search(ctx context.Context, q search.Query) (*search.Page, error)
}

// Sort orders of the list.
const (
	sortRelevance = "relevance"
	sortID        = "id"
)

func sortParam(q map[string]string, query string) (string, error) {
	s, ok := q["sort"]
	switch {
	case !ok:
		if query != "" {
			return sortRelevance, nil
		}
		return sortID, nil
	case s != sortRelevance && s != sortID:
		return "", badParam("sort", schema.RuleEnum, "want relevance or id")
	case s == sortRelevance && query == "":
		return "", badParam("sort", schema.RuleRequired, "relevance order needs a q to rank by")
	}
	return s, nil
}

// Relevance cursors: the kind byte, the score of the last hit (IEEE 754 bits),
// a hash of the query and filters they belong to, and the last hit's id.
const cursorSearch = 's'

func isSearchCursor(s string) bool {
	b, err := cursorEncoding.DecodeString(s)
	return err == nil && len(b) > 0 && b[0] == cursorSearch
}

// queryHash ties a relevance cursor to its query: scores of another query are
// not comparable.
func queryHash(lp *listParams) uint32 {
	h := fnv.New32a()
	for _, s := range []string{lp.Query, lp.Catalogue, lp.Origin, lp.Industry, lp.Status, lp.UpdatedSince.String()} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return h.Sum32()
}

func encodeSearchCursor(lp *listParams, c *search.Cursor) string {
	b := make([]byte, 0, 13+len(c.ID))
	b = append(b, cursorSearch)
	b = binary.BigEndian.AppendUint64(b, math.Float64bits(c.Score))
	b = binary.BigEndian.AppendUint32(b, queryHash(lp))
	b = append(b, c.ID...)
	return cursorEncoding.EncodeToString(b)
}

func decodeSearchCursor(lp *listParams, s string) (*search.Cursor, error) {
	bad := badParam("cursor", schema.RuleFormat, "malformed cursor; pass next_cursor from the previous page unchanged")
	b, err := decodeCursor(s, cursorSearch)
	if err != nil || len(b) < 13 {
		return nil, bad
	}
	score := math.Float64frombits(binary.BigEndian.Uint64(b))
	if math.IsNaN(score) || math.IsInf(score, 0) {
		return nil, bad
	}
	if binary.BigEndian.Uint32(b[8:]) != queryHash(lp) {
		return nil, badParam("cursor", schema.RuleMismatch, "the cursor belongs to another query; page with the same q and filters it came with")
	}
	id := string(b[12:])
	if _, _, err := schema.SplitID(id); err != nil {
		return nil, bad
	}
	return &search.Cursor{Score: score, ID: id}, nil
}

// hit is the ranking of one item of a search page.
type hit struct {
	ID    string  `json:"id"`
	Score float64 `json:"score"`
	// Matched lists the words of q the record matches.
	Matched []string `json:"matched"`
}

type searchResponse struct {
	Items      []*schema.Record `json:"items"`
	NextCursor string           `json:"next_cursor,omitempty"`
	// Total counts the matches the caller may see, on all pages
	// (search.Page.Total says when a walk finds fewer).
	Total int `json:"total"`
	// Hits are the items' scores and matched words, in the same order.
	Hits []hit `json:"hits"`
}

// searchRecords serves GET /v1/records with q= through the full-text index.
//
// In relevance order (the default with q) pages are keyset-paged on the last
// hit's (score, id): the next page holds the hits ranked after it. Scores are
// BM25 over the whole index, so a write between two pages can move a record
// across the cursor (seen twice or not at all); pages read without writes in
// between are exact. sort=id pages by id like the plain list, which is stable
// under writes, for a complete walk of a result.
func (h *handler) searchRecords(w http.ResponseWriter, r *http.Request, p *auth.Principal, lp listParams, s Searcher) error {
	q := search.Query{
		Text:         lp.Query,
		Catalogue:    lp.Catalogue,
		Origin:       lp.Origin,
		Industry:     lp.Industry,
		Status:       lp.Status,
		UpdatedSince: lp.UpdatedSince,
		Now:          h.now(),
		Limit:        lp.Limit,
		Allow:        h.allowRead(p),
		AllowRecord:  h.readable(p),
	}
	switch lp.Sort {
	case sortID:
		q.Order = search.ByID
		if lp.SearchCursor != "" {
			return badParam("cursor", schema.RuleMismatch, "a relevance cursor cannot page in id order; page with the sort it came with")
		}
		if lp.After != "" {
			q.After = &search.Cursor{ID: lp.After}
		}
	default:
		if lp.After != "" {
			return badParam("cursor", schema.RuleMismatch, "an id-order cursor cannot page in relevance order; page with the sort it came with")
		}
		if lp.SearchCursor != "" {
			c, err := decodeSearchCursor(&lp, lp.SearchCursor)
			if err != nil {
				return err
			}
			q.After = c
		}
	}
	page, err := s.Search(r.Context(), q)
	if errors.Is(err, search.ErrEmptyQuery) {
		return badParam("q", schema.RuleFormat, "no searchable words: give letters, digits or Chinese characters")
	}
	if err != nil {
		return err
	}
	resp := searchResponse{Items: make([]*schema.Record, 0, len(page.Hits)), Hits: make([]hit, 0, len(page.Hits)), Total: page.Total}
	for _, ht := range page.Hits {
		// The index decided on its own, possibly older, copy of the record;
		// this is the record as the store holds it. Checked here as well as
		// through AllowRecord so that no Searcher can hand out a record on a
		// stale decision.
		v, ok := h.view(p, ht.Record)
		if !ok {
			continue
		}
		resp.Items = append(resp.Items, v)
		// Scores travel rounded: enough to show, and JSON-safe.
		score, _ := strconv.ParseFloat(strconv.FormatFloat(ht.Score, 'f', 4, 64), 64)
		resp.Hits = append(resp.Hits, hit{ID: ht.Record.ID, Score: score, Matched: ht.Matched})
	}
	setIndexBehind(w, page.Behind)
	if page.Next != nil {
		if q.Order == search.ByID {
			resp.NextCursor = encodeListCursor(page.Next.ID)
		} else {
			resp.NextCursor = encodeSearchCursor(&lp, page.Next)
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// IndexBehindHeader carries search.Page.Behind on search and match answers.
const IndexBehindHeader = "Liandong-Index-Behind"

// setIndexBehind tells the caller that the answer comes from an index n
// changes short of the state file: one taking in a backlog
// (search.QueryCatchUp), or being rebuilt after it was emptied. Records
// written in those changes may be missing from it.
func setIndexBehind(w http.ResponseWriter, n uint64) {
	if n > 0 {
		w.Header().Set(IndexBehindHeader, strconv.FormatUint(n, 10))
	}
}

// readable is allowRead for a record read from the store.
func (h *handler) readable(p *auth.Principal) func(*schema.Record) bool {
	return func(rec *schema.Record) bool {
		return h.authz.Authorize(p, auth.ActionRead, rec).Allow
	}
}

// allowRead answers search and matchmaking's question for each hit: may p
// read it? A read's decision depends on the record's origin and visibility
// alone (auth.Authorizer.Authorize; TestReadDecisionIgnoresTheRest holds it
// to that), which docs with the same attributes share, so the authorizer is
// asked once per attribute set a query meets instead of once per hit (a word
// in every record met 100k hits, each building an envelope and a reason).
func (h *handler) allowRead(p *auth.Principal) func(*search.Doc) bool {
	seen := map[*search.DocAttrs]bool{}
	return func(d *search.Doc) bool {
		ok, found := seen[d.DocAttrs]
		if !found {
			ok = h.authz.Authorize(p, auth.ActionRead, d.Record()).Allow
			seen[d.DocAttrs] = ok
		}
		return ok
	}
}
