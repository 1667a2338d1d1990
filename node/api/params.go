package api

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"liandong/node"
	"liandong/schema"
)

// Limits on query parameters.
const (
	maxQueryRunes = 200
	maxQueryTerms = 10
	maxTokenParam = 64
)

// parseQuery decodes a raw query string, refusing malformed escapes, invalid
// UTF-8, parameters not in allowed and parameters given twice. Empty values count
// as absent.
func parseQuery(raw string, allowed ...string) (map[string]string, error) {
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return nil, badParam("query", schema.RuleSyntax, "malformed query string: "+err.Error())
	}
	out := make(map[string]string, len(vals))
	names := make([]string, 0, len(vals))
	for k := range vals {
		names = append(names, k)
	}
	slices.Sort(names) // deterministic complaints
	for _, k := range names {
		v := vals[k]
		if !slices.Contains(allowed, k) {
			return nil, badParam(clip(k), "unknown_parameter", fmt.Sprintf("unknown parameter; known: %s", strings.Join(allowed, ", ")))
		}
		if len(v) > 1 {
			return nil, badParam(k, "repeated", "given more than once")
		}
		if !utf8.ValidString(v[0]) {
			return nil, badParam(k, schema.RuleUTF8, "not valid UTF-8")
		}
		if v[0] != "" {
			out[k] = v[0]
		}
	}
	return out, nil
}

// clip shortens a client-chosen name for use in a message and keeps it valid UTF-8.
func clip(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// listParams are the parameters of GET /v1/records.
type listParams struct {
	Catalogue, Origin, Industry, Status string
	Terms                               []string // q, lower-cased words; all must match
	UpdatedSince                        time.Time
	After                               string // from cursor
	Limit                               int
	// Query is q as given; Sort is "relevance", "id" or "" (relevance when
	// there is a q); SearchCursor is a relevance-order cursor, still encoded
	// (it names its query: see searchCursor).
	Query, Sort, SearchCursor string
	// IDs, when not nil, names the records to answer, each once, in order
	// (ids=, which takes no other parameter but consistent).
	IDs []string
	// Consistent asks for a read through the raft leader (consistent=true).
	Consistent bool
}

func parseListParams(raw string) (listParams, error) {
	var lp listParams
	q, err := parseQuery(raw, "catalogue", "q", "industry", "origin", "status", "updated_since", "cursor", "limit", "sort", "ids", "consistent")
	if err != nil {
		return lp, err
	}
	if lp.Consistent, err = consistentParam(q); err != nil {
		return lp, err
	}
	if s, ok := q["ids"]; !ok {
		// parseQuery takes an empty value for an absent one; an empty ids
		// must not become a list of everything.
		if vals, _ := url.ParseQuery(raw); vals.Has("ids") {
			return lp, badParam("ids", schema.RuleRequired, "names no record; give ids=<centre>:<key>,…")
		}
	} else {
		others := len(q) - 1
		if _, ok := q["consistent"]; ok {
			others--
		}
		if others > 0 {
			return lp, badParam("ids", schema.RuleForbidden, "ids names the records to read; it takes no other parameter but consistent")
		}
		lp.IDs, err = idsParam(s)
		return lp, err
	}
	if lp.Catalogue, err = catalogueParam(q); err != nil {
		return lp, err
	}
	if lp.Origin, err = originParam(q); err != nil {
		return lp, err
	}
	if lp.Industry, err = tokenParam(q, "industry"); err != nil {
		return lp, err
	}
	if lp.Status, err = tokenParam(q, "status"); err != nil {
		return lp, err
	}
	if s, ok := q["q"]; ok {
		if utf8.RuneCountInString(s) > maxQueryRunes {
			return lp, badParam("q", schema.RuleMaxLength, fmt.Sprintf("at most %d characters", maxQueryRunes))
		}
		lp.Query = s
		lp.Terms = strings.Fields(strings.ToLower(s))
		if len(lp.Terms) > maxQueryTerms {
			return lp, badParam("q", schema.RuleMaxItems, fmt.Sprintf("at most %d words", maxQueryTerms))
		}
	}
	if s, ok := q["updated_since"]; ok {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			// An offset's + typed unescaped reaches here as a space (query
			// decoding), and no RFC 3339 time holds a space.
			t, err = time.Parse(time.RFC3339Nano, strings.Replace(s, " ", "+", 1))
		}
		if err != nil {
			return lp, badParam("updated_since", schema.RuleFormat, "want an RFC 3339 time such as 2025-01-02T15:04:05Z (escape a + in an offset as %2B)")
		}
		lp.UpdatedSince = t
	}
	if lp.Sort, err = sortParam(q, lp.Query); err != nil {
		return lp, err
	}
	if s, ok := q["cursor"]; ok && isSearchCursor(s) {
		if lp.Query == "" {
			// Without q the page would be a list's first: a client paging
			// on next_cursor would go round again, not on.
			return lp, badParam("cursor", schema.RuleMismatch, "a search cursor pages only the search it came from; send the same q")
		}
		lp.SearchCursor = s
	} else if ok {
		if lp.After, err = decodeListCursor(s); err != nil {
			return lp, badParam("cursor", schema.RuleFormat, "malformed cursor; pass next_cursor from the previous page unchanged")
		}
	}
	if lp.Limit, err = limitParam(q); err != nil {
		return lp, err
	}
	return lp, nil
}

// consistentParam reads consistent=: true or 1 asks for a read through the
// raft leader (see readMaybeConsistent), false, 0 or absent for one from this
// replica's own state.
func consistentParam(q map[string]string) (bool, error) {
	switch q["consistent"] {
	case "true", "1":
		return true, nil
	case "", "false", "0":
		return false, nil
	}
	return false, badParam("consistent", "enum", "want true or false")
}

// idsParam reads ids=: up to MaxLimit record ids, comma-separated, a
// repeat read once.
func idsParam(s string) ([]string, error) {
	parts := strings.Split(s, ",")
	if len(parts) > MaxLimit {
		return nil, badParam("ids", schema.RuleMaxItems, fmt.Sprintf("%d ids; at most %d", len(parts), MaxLimit))
	}
	ids := make([]string, 0, len(parts))
	seen := make(map[string]bool, len(parts))
	for _, id := range parts {
		if _, _, err := schema.SplitID(id); err != nil {
			return nil, badParam("ids", schema.RuleFormat, fmt.Sprintf("%q: want <centre>:<key>, comma-separated", clip(id)))
		}
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// changesParams are the parameters of GET /v1/changes.
type changesParams struct {
	Since             uint64
	Epoch             string // the feed's name in the since cursor, if any
	Limit             int
	Wait              time.Duration
	Catalogue, Origin string
}

func parseChangesParams(raw string, maxWait time.Duration) (changesParams, error) {
	var cp changesParams
	q, err := parseQuery(raw, "since", "limit", "wait", "catalogue", "origin")
	if err != nil {
		return cp, err
	}
	if cp.Catalogue, err = catalogueParam(q); err != nil {
		return cp, err
	}
	if cp.Origin, err = originParam(q); err != nil {
		return cp, err
	}
	if s, ok := q["since"]; ok && s != "0" {
		if cp.Since, cp.Epoch, err = decodePosition(s); err != nil {
			return cp, badParam("since", schema.RuleFormat, "malformed cursor; pass next_cursor from the previous answer unchanged, or 0 for the beginning")
		}
	}
	if cp.Limit, err = limitParam(q); err != nil {
		return cp, err
	}
	if s, ok := q["wait"]; ok {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 {
			return cp, badParam("wait", schema.RuleFormat, "want a number of seconds, 0 or more")
		}
		if d := time.Duration(f * float64(time.Second)); f >= maxWait.Seconds() || d > maxWait {
			cp.Wait = maxWait
		} else {
			cp.Wait = d
		}
	}
	return cp, nil
}

func catalogueParam(q map[string]string) (string, error) {
	c, ok := q["catalogue"]
	if ok && !slices.Contains(schema.Catalogues, c) {
		return "", badParam("catalogue", schema.RuleEnum, "want one of "+strings.Join(schema.Catalogues, ", "))
	}
	return c, nil
}

func originParam(q map[string]string) (string, error) {
	o, ok := q["origin"]
	if ok && !schema.ValidCentreID(o) {
		return "", badParam("origin", schema.RuleFormat, "want a centre id: 1-32 lowercase letters, digits or '-', starting with a letter")
	}
	return o, nil
}

// tokenParam accepts codes such as industry and status values.
func tokenParam(q map[string]string, name string) (string, error) {
	v, ok := q[name]
	if !ok {
		return "", nil
	}
	good := len(v) <= maxTokenParam
	for i := 0; i < len(v) && good; i++ {
		c := v[i]
		good = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	if !good {
		return "", badParam(name, schema.RuleFormat, fmt.Sprintf("want a code of 1-%d lowercase letters, digits, '-' or '_'", maxTokenParam))
	}
	return v, nil
}

func limitParam(q map[string]string) (int, error) {
	return boundedLimit(q, DefaultLimit, MaxLimit)
}

// boundedLimit reads the limit parameter: def when absent, else 1 to max.
func boundedLimit(q map[string]string, def, max int) (int, error) {
	s, ok := q["limit"]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, badParam("limit", schema.RuleRange, fmt.Sprintf("want an integer from 1 to %d", max))
	}
	return n, nil
}

// Cursors are base64url (unpadded) of a kind byte and the payload, so a list
// cursor passed as a change-feed position (or the reverse) is refused, and the
// format can change behind the kind byte.
const (
	cursorList   = 'r'
	cursorChange = 'c'
)

var cursorEncoding = base64.RawURLEncoding.Strict()

func encodeListCursor(id string) string {
	return cursorEncoding.EncodeToString(append([]byte{cursorList}, id...))
}

func decodeListCursor(s string) (string, error) {
	b, err := decodeCursor(s, cursorList)
	if err != nil {
		return "", err
	}
	id := string(b)
	if _, _, err := schema.SplitID(id); err != nil {
		return "", err
	}
	return id, nil
}

// A change cursor holds a feed position and, once the centre's group has named
// its feed, that name (node.FeedEpoch), so a cursor from another life of the
// feed is told apart (checkFeedEpoch). Cursors of older builds carry no name.
func encodePosition(pos uint64, epoch string) string {
	b := strconv.AppendUint([]byte{cursorChange}, pos, 10)
	if epoch != "" {
		b = append(append(b, '.'), epoch...)
	}
	return cursorEncoding.EncodeToString(b)
}

func decodePosition(s string) (pos uint64, epoch string, err error) {
	b, err := decodeCursor(s, cursorChange)
	if err != nil {
		return 0, "", err
	}
	digits, name, named := bytes.Cut(b, []byte{'.'})
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' {
		return 0, "", fmt.Errorf("bad position")
	}
	if named && !node.ValidFeedEpoch(string(name)) {
		return 0, "", fmt.Errorf("bad feed epoch")
	}
	pos, err = strconv.ParseUint(string(digits), 10, 64)
	return pos, string(name), err
}

func decodeCursor(s string, kind byte) ([]byte, error) {
	if len(s) > 512 {
		return nil, fmt.Errorf("cursor too long")
	}
	b, err := cursorEncoding.DecodeString(s)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 || b[0] != kind {
		return nil, fmt.Errorf("cursor of another kind")
	}
	return b[1:], nil
}

// textFields are the body fields q= searches.
type textFields struct {
	Title       string   `json:"title"`
	Summary     string   `json:"summary"`
	Description string   `json:"description"`
	Name        string   `json:"name"`
	Keywords    []string `json:"keywords"`
	OwnerOrg    string   `json:"owner_org"`
	Enterprise  string   `json:"enterprise"`
	Affiliation string   `json:"affiliation"`
}

// matchText reports whether every term occurs, case-insensitively, in one of the
// searched body fields. It is a stopgap until the full-text index.
func matchText(body json.RawMessage, terms []string) bool {
	if len(terms) == 0 {
		return true
	}
	var f textFields
	// Fields of an unexpected type are skipped; the rest still count.
	_ = json.Unmarshal(body, &f)
	fields := append([]string{f.Title, f.Summary, f.Description, f.Name, f.OwnerOrg, f.Enterprise, f.Affiliation}, f.Keywords...)
	hay := strings.ToLower(strings.Join(fields, "\x00"))
	for _, t := range terms {
		if !strings.Contains(hay, t) {
			return false
		}
	}
	return true
}
