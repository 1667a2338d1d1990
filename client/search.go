package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"liandong/schema"
)

// ListOptions select and page records. Empty fields do not filter.
type ListOptions struct {
	Catalogue, Origin, Industry, Status string
	// Q is a full-text query (Chinese or English words separated by spaces);
	// with it, results are ranked by relevance unless Sort is "id".
	Q string
	// Sort is "relevance" or "id"; empty takes the node's default.
	Sort         string
	UpdatedSince time.Time
	// Cursor is the NextCursor of the previous page, "" for the first.
	Cursor string
	Limit  int
}

func (o ListOptions) query() url.Values {
	q := url.Values{}
	for k, v := range map[string]string{"catalogue": o.Catalogue, "origin": o.Origin, "industry": o.Industry,
		"status": o.Status, "q": o.Q, "sort": o.Sort, "cursor": o.Cursor} {
		if v != "" {
			q.Set(k, v)
		}
	}
	if !o.UpdatedSince.IsZero() {
		q.Set("updated_since", o.UpdatedSince.UTC().Format(time.RFC3339Nano))
	}
	if o.Limit > 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	return q
}

// Hit is the relevance of one item of a search page.
type Hit struct {
	ID      string   `json:"id"`
	Score   float64  `json:"score"`
	Matched []string `json:"matched"`
}

// Page is one page of records.
type Page struct {
	Items      []*schema.Record `json:"items"`
	NextCursor string           `json:"next_cursor"`
	// Total and Hits come with a full-text query: the number of matches on all
	// pages, and each item's score and matched words. Total is what the
	// node's index held when the page was read: a record deleted during a
	// walk through the pages, beyond the page that counted it, is counted
	// and not found (/v1/openapi.json, ListResponse.total).
	Total int   `json:"total"`
	Hits  []Hit `json:"hits"`
}

// List returns one page of records.
func (c *Client) List(ctx context.Context, o ListOptions) (*Page, error) {
	req, err := c.request(ctx, http.MethodGet, "/v1/records", c.readQuery(o.query()), nil)
	if err != nil {
		return nil, err
	}
	var p Page
	if _, err := c.do(req, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Search returns one page of records matching the full-text query q, best first.
func (c *Client) Search(ctx context.Context, q string, o ListOptions) (*Page, error) {
	o.Q = q
	return c.List(ctx, o)
}

// All iterates over every record the options select, page after page. It stops
// at the first error, which it yields.
func (c *Client) All(ctx context.Context, o ListOptions) iter.Seq2[*schema.Record, error] {
	return func(yield func(*schema.Record, error) bool) {
		for {
			p, err := c.List(ctx, o)
			if err != nil {
				yield(nil, err)
				return
			}
			for _, r := range p.Items {
				if !yield(r, nil) {
					return
				}
			}
			if p.NextCursor == "" {
				return
			}
			o.Cursor = p.NextCursor
		}
	}
}

// Reason explains part of a match's score.
type Reason struct {
	Kind   string   `json:"kind"`
	Score  float64  `json:"score"`
	Terms  []string `json:"terms"`
	Fields []string `json:"fields"`
	Detail string   `json:"detail"`
}

// MatchItem is one ranked candidate.
type MatchItem struct {
	ID      string         `json:"id"`
	Score   float64        `json:"score"`
	Reasons []Reason       `json:"reasons"`
	Record  *schema.Record `json:"record"`
}

// MatchResult is the answer of Match: ranked lists by catalogue.
type MatchResult struct {
	Source  *schema.Record         `json:"source"`
	Matches map[string][]MatchItem `json:"matches"`
}

// Match ranks what could answer the need or supply item id: for a need, supply
// items and experts; for a supply item, needs and experts. catalogue, when not
// empty, asks for one list; limit bounds each (0: the node's default).
func (c *Client) Match(ctx context.Context, id, catalogue string, limit int) (*MatchResult, error) {
	q := url.Values{}
	if catalogue != "" {
		q.Set("catalogue", catalogue)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	req, err := c.request(ctx, http.MethodGet, "/v1/match/"+url.PathEscape(id), q, nil)
	if err != nil {
		return nil, err
	}
	var out MatchResult
	if _, err := c.do(req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// GetMany returns the records of ids the token may read, by id, reading
// many in a request (GET /v1/records?ids=): at most MaxBatch, and no more
// than keeps the request line well under the node's 64 KB header limit.
// An id absent from the map does not exist, is deleted, or may not be
// read, as Get would answer 404. A node from before ids= answers a 400
// *Problem.
func (c *Client) GetMany(ctx context.Context, ids []string) (map[string]*schema.Record, error) {
	out := make(map[string]*schema.Record, len(ids))
	for len(ids) > 0 {
		n, size := 0, 0
		for n < len(ids) && n < MaxBatch && (n == 0 || size+len(ids[n])+3 <= maxIDsQuery) {
			size += len(ids[n]) + 5 // ':' escaped as %3A, the comma as %2C
			n++
		}
		if err := c.getMany(ctx, ids[:n], out); err != nil {
			return nil, err
		}
		ids = ids[n:]
	}
	return out, nil
}

// maxIDsQuery bounds the ids= of one request, in bytes.
const maxIDsQuery = 16 << 10

func (c *Client) getMany(ctx context.Context, ids []string, out map[string]*schema.Record) error {
	req, err := c.request(ctx, http.MethodGet, "/v1/records", c.readQuery(url.Values{"ids": {strings.Join(ids, ",")}}), nil)
	if err != nil {
		return err
	}
	var page struct {
		Items []*schema.Record `json:"items"`
	}
	if _, err := c.do(req, &page); err != nil {
		return err
	}
	for _, rec := range page.Items {
		out[rec.ID] = rec
	}
	return nil
}
