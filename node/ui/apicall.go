package ui

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"liandong/client"
)

// The console holds no rules of its own: every read and write is a request to
// the node's own API handler, served in-process with the signed-in user's
// token, so authorization, redaction of personal data and validation are the
// API's, exactly as a partner system sees them.

// maxAPIAnswer bounds an API answer the console reads (a page of 50 records is
// far below it).
const maxAPIAnswer = 16 << 20

var errAnswerTooLarge = errors.New("ui: API answer too large")

// recorder is the ResponseWriter API answers are served into.
type recorder struct {
	hdr    http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.hdr }

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	if r.body.Len()+len(b) > maxAPIAnswer {
		return 0, errAnswerTooLarge
	}
	return r.body.Write(b)
}

// Flush lets a reverse proxy inside the API (a follower forwarding a write to
// its leader) flush; the answer is complete when ServeHTTP returns anyway.
func (r *recorder) Flush() {}

// apiRequest is one call of the node's API.
type apiRequest struct {
	method, path string
	query        url.Values
	header       http.Header
	body         any // encoded as JSON when not nil
}

// call serves req with the API handler as the holder of token ("" for
// anonymous) and decodes a 2xx JSON answer into out. A non-2xx answer is
// returned as a *client.Problem.
func (s *Server) call(ctx context.Context, token string, req apiRequest, out any) (int, error) {
	u := "http://" + internalHost + req.path
	if len(req.query) > 0 {
		u += "?" + req.query.Encode()
	}
	var rd io.Reader
	if req.body != nil {
		js, err := json.Marshal(req.body)
		if err != nil {
			return 0, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(js)
	}
	hr, err := http.NewRequestWithContext(ctx, req.method, u, rd)
	if err != nil {
		return 0, err
	}
	hr.RequestURI = hr.URL.RequestURI()
	for k, v := range req.header {
		hr.Header[k] = v
	}
	if req.body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		hr.Header.Set("Authorization", "Bearer "+token)
	}
	rec := &recorder{hdr: http.Header{}}
	s.api.ServeHTTP(rec, hr)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	if rec.status < 200 || rec.status > 299 {
		p := &client.Problem{}
		if err := json.Unmarshal(rec.body.Bytes(), p); err != nil || p.Status == 0 {
			p = &client.Problem{Status: rec.status, Title: http.StatusText(rec.status), Detail: strings.TrimSpace(rec.body.String())}
		}
		return rec.status, p
	}
	if out != nil {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return rec.status, fmt.Errorf("decode %s %s: %w", req.method, req.path, err)
		}
	}
	return rec.status, nil
}

// internalHost is the Host of the console's in-process API requests.
const internalHost = "liandong-console.internal"

func recordPath(id string) string { return "/v1/records/" + url.PathEscape(id) }

// asProblem returns err as a problem document, or nil.
func asProblem(err error) *client.Problem {
	var p *client.Problem
	if errors.As(err, &p) {
		return p
	}
	return nil
}

// problemText is a problem's detail, or its title.
func problemText(err error) string {
	if p := asProblem(err); p != nil {
		if p.Detail != "" {
			return p.Detail
		}
		return p.Title
	}
	return err.Error()
}
