// Package openapitest checks real HTTP exchanges against the API's OpenAPI 3.1
// document with kin-openapi, for tests of node/api and of the packages that
// serve it, so the document cannot drift from what the node answers.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

func init() {
	// The change stream's body is text; the document says so.
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.PlainBodyDecoder)
}

// Validator checks exchanges against one OpenAPI document.
type Validator struct {
	Doc    *openapi3.T
	router routers.Router
}

// New loads and validates an OpenAPI document.
func New(doc []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	d, err := loader.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("load OpenAPI document: %w", err)
	}
	if d.OpenAPIMajorMinor() != "3.1" {
		return nil, fmt.Errorf("the document is OpenAPI %s, want 3.1", d.OpenAPI)
	}
	if err := d.Validate(loader.Context, openapi3.EnableMultiError()); err != nil {
		return nil, fmt.Errorf("validate OpenAPI document: %w", err)
	}
	r, err := gorillamux.NewRouter(d)
	if err != nil {
		return nil, fmt.Errorf("route OpenAPI document: %w", err)
	}
	return &Validator{Doc: d, router: r}, nil
}

// Exchange is one request and its answer, bodies read whole.
type Exchange struct {
	Request     *http.Request
	RequestBody []byte
	Response    *http.Response
	Body        []byte
	// SkipRequest skips checking the request: for requests that are wrong on
	// purpose, whose problem answer is still checked.
	SkipRequest bool
}

// Check validates the exchange: the request (unless skipped) and the answer's
// status, content type and body.
func (v *Validator) Check(x Exchange) error {
	req := x.Request.Clone(context.Background())
	req.Body = io.NopCloser(bytes.NewReader(x.RequestBody))
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		// No such operation: the answer must be a 404 or 405 problem.
		if x.Response.StatusCode != http.StatusNotFound && x.Response.StatusCode != http.StatusMethodNotAllowed {
			return fmt.Errorf("%s %s: no operation in the document (%v), yet the answer is %d", req.Method, req.URL.Path, err, x.Response.StatusCode)
		}
		return v.checkProblem(x)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		MultiError:         true,
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
	if !x.SkipRequest {
		if err := openapi3filter.ValidateRequest(context.Background(), in); err != nil {
			return fmt.Errorf("%s %s: request does not match the document: %w", req.Method, req.URL, err)
		}
	}
	if route.Operation.Responses.Status(x.Response.StatusCode) == nil && route.Operation.Responses.Default() == nil {
		return fmt.Errorf("%s %s: status %d not in the document", req.Method, req.URL.Path, x.Response.StatusCode)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 x.Response.StatusCode,
		Header:                 x.Response.Header,
		Options:                &openapi3filter.Options{MultiError: true, IncludeResponseStatus: true},
	}
	out.SetBodyBytes(x.Body)
	if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
		return fmt.Errorf("%s %s: %d answer does not match the document: %w\nbody: %.600s", req.Method, req.URL, x.Response.StatusCode, err, x.Body)
	}
	return nil
}

// Do sends a request with c, reads the answer and checks the exchange, failing
// t when it does not match. It returns the answer and its body.
func (v *Validator) Do(t testing.TB, c *http.Client, req *http.Request, body []byte, skipRequest bool) (*http.Response, []byte) {
	t.Helper()
	if body != nil {
		req.Body = io.NopCloser(bytes.NewReader(body))
		req.ContentLength = int64(len(body))
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("%s %s: read answer: %v", req.Method, req.URL, err)
	}
	if err := v.Check(Exchange{Request: req, RequestBody: body, Response: resp, Body: data, SkipRequest: skipRequest}); err != nil {
		t.Error(err)
	}
	return resp, data
}

// checkProblem validates an answer outside every operation as a Problem.
func (v *Validator) checkProblem(x Exchange) error {
	if ct := x.Response.Header.Get("Content-Type"); ct != "application/problem+json" {
		return fmt.Errorf("%s %s: %d answer of type %q, want application/problem+json", x.Request.Method, x.Request.URL.Path, x.Response.StatusCode, ct)
	}
	ref := v.Doc.Components.Schemas["Problem"]
	if ref == nil {
		return fmt.Errorf("the document has no Problem schema")
	}
	var body any
	if err := json.Unmarshal(x.Body, &body); err != nil {
		return fmt.Errorf("%s %s: problem body: %w", x.Request.Method, x.Request.URL.Path, err)
	}
	if err := v.Doc.ValidateSchemaJSON(ref.Value, body); err != nil {
		return fmt.Errorf("%s %s: problem does not match the document: %w", x.Request.Method, x.Request.URL.Path, err)
	}
	return nil
}
