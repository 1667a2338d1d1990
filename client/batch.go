package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"liandong/schema"
)

// MaxBatch is the most writes a node takes in one Batch.
const MaxBatch = 500

// Write is one write of a Batch: what Create (Method POST), Put (PUT) or
// Delete (DELETE) would do.
type Write struct {
	Method string
	// ID names the record of a PUT or DELETE; a POST has none.
	ID string
	// IfMatch, when not 0, is the version the record must have (PUT, DELETE).
	IfMatch uint64
	// IfAbsent makes a PUT what PutIfAbsent does: create or revive, never
	// replace (412).
	IfAbsent bool
	// Record is what a POST or PUT stores.
	Record *schema.Record
}

// WriteResult is what one write of a Batch did. A refused write's Err is a
// *Problem; a 503's or 507's RetryAfter is the longest any write of the
// batch was given (the node answers the batch with one Retry-After).
type WriteResult struct {
	// Status is what the single-record call would have been answered: 201
	// created, 200 replaced or deleted, or the problem's status.
	Status int
	// Record is the record written (the tombstone of a DELETE); nil when Err.
	Record *schema.Record
	// Err is a *Problem when the node refused this write.
	Err error
}

type batchItem struct {
	Method  string `json:"method"`
	ID      string `json:"id,omitempty"`
	IfMatch uint64 `json:"if_match,omitempty"`
	// IfNoneMatch is "*" for Write.IfAbsent.
	IfNoneMatch string      `json:"if_none_match,omitempty"`
	Record      *submission `json:"record,omitempty"`
}

// Batch sends up to MaxBatch writes in one request (POST /v1/batch) and
// returns one result per write, in order. The node applies them concurrently,
// so writes may name each record id once; one refused write neither stops nor
// undoes the others. The error is for the batch as a whole: a *Problem when
// the node refused it (401, 403, 413; 404 or 405 from a node too old to take
// batches), or a transport error, after which some writes may have been applied.
func (c *Client) Batch(ctx context.Context, writes []Write) ([]WriteResult, error) {
	items := make([]batchItem, len(writes))
	for i, w := range writes {
		items[i] = batchItem{Method: w.Method, ID: w.ID, IfMatch: w.IfMatch}
		if w.IfAbsent {
			items[i].IfNoneMatch = "*"
		}
		if w.Record != nil {
			id := w.ID
			if w.Method == http.MethodPost {
				id = ""
			}
			s := submit(w.Record, id)
			items[i].Record = &s
		}
	}
	req, err := c.request(ctx, http.MethodPost, "/v1/batch", nil, map[string]any{"items": items})
	if err != nil {
		return nil, err
	}
	var answer struct {
		Items []struct {
			Status  int             `json:"status"`
			Record  *schema.Record  `json:"record"`
			Problem json.RawMessage `json:"problem"`
		} `json:"items"`
	}
	resp, err := c.do(req, &answer)
	if err != nil {
		return nil, err
	}
	// The node puts on the answer the longest Retry-After its refused
	// writes were given; each write refused for a while (503, 507) gets it.
	wait := retryAfter(resp.Header)
	if len(answer.Items) != len(writes) {
		return nil, fmt.Errorf("POST /v1/batch: %d results for %d writes", len(answer.Items), len(writes))
	}
	out := make([]WriteResult, len(writes))
	for i, a := range answer.Items {
		out[i] = WriteResult{Status: a.Status, Record: a.Record}
		if a.Status >= 300 || a.Record == nil {
			p := &Problem{}
			if err := json.Unmarshal(a.Problem, p); err != nil || p.Status == 0 {
				p = &Problem{Status: a.Status, Title: http.StatusText(a.Status)}
			}
			if a.Status != 0 {
				p.trustStatus(a.Status) // the item's status, as readProblem trusts the answer's
			}
			if p.Status == http.StatusServiceUnavailable || p.Status == http.StatusInsufficientStorage {
				p.RetryAfter = wait
			}
			out[i] = WriteResult{Status: p.Status, Err: p}
		}
	}
	return out, nil
}
