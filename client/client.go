// Package client is a small Go client of a liandong node's HTTP API (/v1): records,
// lists and search, the change feed (long poll and server-sent events with
// resumption), matchmaking, and problem documents as Go errors.
//
// A Client is safe for concurrent use. Every call takes a context; a failed call
// returns a *Problem when the node answered with a problem document, so callers
// can branch on Status, Type and the field errors.
//
//	c := client.New("http://127.0.0.1:8702", token)
//	rec, err := c.Get(ctx, "tianjin:01J…")
//	var p *client.Problem
//	if errors.As(err, &p) && p.Status == 404 { … }
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"liandong/schema"
)

// Client calls one node's API.
type Client struct {
	// BaseURL is the node's API root, such as http://127.0.0.1:8701.
	BaseURL string
	// Token is the bearer token; empty calls anonymously.
	Token string
	// HTTP sends the requests; nil means http.DefaultClient. Its Timeout, if
	// any, also bounds a long poll and each connection of a stream, so leave it
	// 0 for those and bound calls with the context.
	HTTP *http.Client
	// Consistent reads records (Get, GetMany, List, Search, All) through the
	// centre's raft leader (consistent=true): a replica that lags behind the
	// leader answers what the leader holds, at the cost of a round through
	// raft a request.
	Consistent bool
}

// readQuery adds consistent=true to a record read's query when c asks for it.
func (c *Client) readQuery(q url.Values) url.Values {
	if !c.Consistent {
		return q
	}
	if q == nil {
		q = url.Values{}
	}
	q.Set("consistent", "true")
	return q
}

// New returns a client of the node at baseURL calling with token.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token}
}

// FieldError is one field-level complaint of a problem document.
type FieldError struct {
	Path    string `json:"path"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem document the node answered with.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
	// RetryAfter is the answer's Retry-After (every 503 and 429 carries one,
	// and so does a 507 of a full disk), 0 when absent.
	RetryAfter time.Duration `json:"-"`
}

func (p *Problem) Error() string {
	msg := fmt.Sprintf("%d %s", p.Status, p.Title)
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	return msg
}

// Kind is the problem type without its "urn:liandong:problem:" prefix, such as
// "not-found" or "bad-parameter".
func (p *Problem) Kind() string {
	return strings.TrimPrefix(p.Type, "urn:liandong:problem:")
}

// Health is the body of GET /healthz.
type Health struct {
	Status string `json:"status"`
	// Features lists what this node's build supports that its group uses only
	// once every replica has it (such as "feed-epoch"). Older builds list none.
	Features []string `json:"features"`
	// FeedEpoch is the name of the node's change feed, "" before it is named.
	FeedEpoch string `json:"feed_epoch"`
	// DiskFull: the replica's state file or raft log could not grow the last
	// time it tried, so it stores no writes (its leader cannot count on it);
	// Disk says which. Older builds never set it.
	DiskFull bool   `json:"disk_full"`
	Disk     string `json:"disk"`
	// CommitIndex is raft's commit index at the replica (0 from older builds):
	// a replica starting up follows its leader's until it has applied as far.
	CommitIndex uint64 `json:"commit_index"`
}

// Health asks whether the node's process serves, and what its build supports.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	req, err := c.request(ctx, http.MethodGet, "/healthz", nil, nil)
	if err != nil {
		return nil, err
	}
	var h Health
	if _, err := c.do(req, &h); err != nil {
		return nil, err
	}
	return &h, nil
}

// IsFeedReset reports whether err is the node's answer to a feed cursor that
// is not of its change feed (410 feed-reset): the centre rebuilt its state from
// its peers and counts positions anew, or another centre's node issued the
// cursor. Read the feed again from the beginning ("") and reconcile what you
// hold.
func IsFeedReset(err error) bool {
	var p *Problem
	return errors.As(err, &p) && p.Status == http.StatusGone && p.Kind() == "feed-reset"
}

// IsTooManyWrites reports whether err is the node's refusal of a write it
// did not begin (429 too-many-writes: it serves as many writes at once as it
// is configured to): send the same write again after the problem's
// RetryAfter. Unlike a 503's, its outcome is known: nothing was done.
func IsTooManyWrites(err error) bool {
	var p *Problem
	return errors.As(err, &p) && p.Status == http.StatusTooManyRequests && p.Kind() == "too-many-writes"
}

// IsNotFound reports whether err is a 404 problem.
func IsNotFound(err error) bool {
	var p *Problem
	return errors.As(err, &p) && p.Status == http.StatusNotFound
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return http.DefaultClient
}

// request builds a request of path (with query) and an optional JSON body.
func (c *Client) request(ctx context.Context, method, path string, query url.Values, body any) (*http.Request, error) {
	u := strings.TrimRight(c.BaseURL, "/") + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	return req, nil
}

// do sends req and decodes a 2xx JSON answer into out (when not nil).
func (c *Client) do(req *http.Request, out any) (*http.Response, error) {
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp, readProblem(resp)
	}
	if out != nil {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp, fmt.Errorf("%s %s: %w: %w", req.Method, req.URL.Path, ErrBrokenAnswer, err)
		}
	}
	return resp, nil
}

// ErrBrokenAnswer is a 2xx answer that could not be read whole: the node cut
// it short (a failure part-way through a streamed answer) or something on the
// way mangled it. The node was reached; a write's outcome is unknown.
var ErrBrokenAnswer = errors.New("the answer could not be read whole")

// readProblem turns a non-2xx answer into a *Problem (a synthetic one when the
// body is not a problem document, as from a proxy).
func readProblem(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	p := &Problem{}
	if err := json.Unmarshal(data, p); err != nil || p.Status == 0 {
		p = &Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(data))}
		if len(p.Detail) > 200 {
			// Cut at a character's start: a proxy's page in Chinese would
			// otherwise end in half a character.
			cut := 200
			for cut > 0 && !utf8.RuneStart(p.Detail[cut]) {
				cut--
			}
			p.Detail = p.Detail[:cut]
		}
	}
	p.trustStatus(resp.StatusCode)
	p.RetryAfter = retryAfter(resp.Header)
	return p
}

// trustStatus makes status, the answer's own, the problem's: callers decide
// on it (IsNotFound, whether to retry), and a document that names another
// (a proxy's, a confused server's; RFC 9457 §3.1.4 makes the member
// advisory) must not turn a 503 into a definitive 404. What the document
// said is kept in the detail, under the answer's own title.
func (p *Problem) trustStatus(status int) {
	if p.Status == status {
		return
	}
	said := fmt.Sprintf("the problem document says %d", p.Status)
	if p.Title != "" {
		said += " " + p.Title
	}
	if p.Detail != "" {
		said += ": " + p.Detail
	}
	p.Status, p.Title, p.Detail = status, http.StatusText(status), said
}

// retryAfter is the Retry-After header in seconds, 0 when absent or not a
// number of seconds.
func retryAfter(h http.Header) time.Duration {
	if n, err := strconv.ParseInt(h.Get("Retry-After"), 10, 64); err == nil && n >= 0 {
		// Capped, as a product past the largest Duration would wrap round
		// to any value, negative or short.
		return time.Duration(min(n, math.MaxInt64/int64(time.Second))) * time.Second
	}
	return 0
}

func recordPath(id string) string { return "/v1/records/" + url.PathEscape(id) }

// Get returns the record id.
func (c *Client) Get(ctx context.Context, id string) (*schema.Record, error) {
	req, err := c.request(ctx, http.MethodGet, recordPath(id), c.readQuery(nil), nil)
	if err != nil {
		return nil, err
	}
	var rec schema.Record
	if _, err := c.do(req, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// submission is the envelope a client sends: the server assigns the rest.
type submission struct {
	ID         string          `json:"id,omitempty"`
	Catalogue  string          `json:"catalogue"`
	Visibility string          `json:"visibility,omitempty"`
	Schema     int             `json:"schema,omitempty"`
	ExpiresAt  *time.Time      `json:"expires_at,omitempty"`
	Body       json.RawMessage `json:"body"`
}

func submit(rec *schema.Record, id string) submission {
	return submission{ID: id, Catalogue: rec.Catalogue, Visibility: rec.Visibility, Schema: rec.Schema, ExpiresAt: rec.ExpiresAt, Body: rec.Body}
}

// Create stores a new record at the node's centre, which assigns its id.
func (c *Client) Create(ctx context.Context, rec *schema.Record) (*schema.Record, error) {
	req, err := c.request(ctx, http.MethodPost, "/v1/records", nil, submit(rec, ""))
	if err != nil {
		return nil, err
	}
	var out schema.Record
	if _, err := c.do(req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Put creates or replaces the record id ("<centre>:<your key>"). ifMatch, when
// not 0, must be the current version, else the node answers 412.
func (c *Client) Put(ctx context.Context, id string, rec *schema.Record, ifMatch uint64) (*schema.Record, error) {
	if ifMatch == 0 {
		return c.put(ctx, id, rec, "", "")
	}
	return c.put(ctx, id, rec, "If-Match", strconv.FormatUint(ifMatch, 10))
}

// put sends rec to PUT /v1/records/{id} with the precondition header
// (none when header is "").
func (c *Client) put(ctx context.Context, id string, rec *schema.Record, header, value string) (*schema.Record, error) {
	req, err := c.request(ctx, http.MethodPut, recordPath(id), nil, submit(rec, id))
	if err != nil {
		return nil, err
	}
	if header != "" {
		req.Header.Set(header, value)
	}
	var out schema.Record
	if _, err := c.do(req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PutIfAbsent creates the record id, or revives it over its tombstone, but
// never replaces a live one: the node answers 412 then (IsPreconditionFailed),
// deciding as it applies the write, so a record another writer created after
// the caller looked is not overwritten. A node from before it refuses with a
// 400 naming If-None-Match (RefusesIfAbsent).
func (c *Client) PutIfAbsent(ctx context.Context, id string, rec *schema.Record) (*schema.Record, error) {
	return c.put(ctx, id, rec, "If-None-Match", "*")
}

// IsPreconditionFailed reports whether err is the node's 412: the record was
// not at the version If-Match named, or existed where If-None-Match said it
// must not.
func IsPreconditionFailed(err error) bool {
	var p *Problem
	return errors.As(err, &p) && p.Status == http.StatusPreconditionFailed
}

// RefusesIfAbsent reports whether err is a node's refusal of If-None-Match
// itself (PutIfAbsent, Write.IfAbsent), as a build from before it answers:
// on PUT a 400 naming the header as unsupported, in a batch a 400 for the
// item's unknown member. A current node never answers either.
func RefusesIfAbsent(err error) bool {
	var p *Problem
	if !errors.As(err, &p) || p.Status != http.StatusBadRequest {
		return false
	}
	for _, fe := range p.Errors {
		if fe.Path == "If-None-Match" && fe.Rule == "unsupported" {
			return true
		}
	}
	return strings.Contains(p.Detail, `unknown field "if_none_match"`)
}

// Delete tombstones the record id and returns the tombstone.
func (c *Client) Delete(ctx context.Context, id string, ifMatch uint64) (*schema.Record, error) {
	req, err := c.request(ctx, http.MethodDelete, recordPath(id), nil, nil)
	if err != nil {
		return nil, err
	}
	if ifMatch != 0 {
		req.Header.Set("If-Match", strconv.FormatUint(ifMatch, 10))
	}
	var out schema.Record
	if _, err := c.do(req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
