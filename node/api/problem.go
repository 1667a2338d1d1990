package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

// ProblemTypePrefix starts every problem type URN.
const ProblemTypePrefix = "urn:liandong:problem:"

// FieldError is one field-level complaint in a problem's errors member.
type FieldError struct {
	Path    string `json:"path"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// Problem is an RFC 9457 problem document, as the API writes it.
type Problem struct {
	Type      string       `json:"type"`
	Title     string       `json:"title"`
	Status    int          `json:"status"`
	Detail    string       `json:"detail,omitempty"`
	Instance  string       `json:"instance,omitempty"`
	RequestID string       `json:"request_id,omitempty"`
	Errors    []FieldError `json:"errors,omitempty"`
}

// problem is a Problem on its way out, with the headers that go with it and the
// internal cause that goes only to the log.
type problem struct {
	Problem
	header http.Header
	cause  error
}

func (p *problem) Error() string {
	msg := strconv.Itoa(p.Status) + " " + p.Title
	if p.Detail != "" {
		msg += ": " + p.Detail
	}
	return msg
}

func (p *problem) Unwrap() error { return p.cause }

var titles = map[string]string{
	"bad-request":            "Bad request",
	"malformed-json":         "Malformed JSON",
	"bad-parameter":          "Invalid parameter",
	"unauthorized":           "Authentication required",
	"forbidden":              "Forbidden",
	"not-found":              "Not found",
	"method-not-allowed":     "Method not allowed",
	"conflict":               "Record exists",
	"precondition-failed":    "Precondition failed",
	"too-large":              "Request body too large",
	"unsupported-media-type": "Unsupported media type",
	"validation":             "Validation failed",
	"unavailable":            "Service unavailable",
	"internal":               "Internal server error",
	"client-closed":          "Client closed the request",
	"insufficient-storage":   "Insufficient storage",
	"feed-reset":             "Change feed reset",
	"membership-refused":     "Membership change refused",
	"not-removed":            "Centre still a member",
	"bundle-refused":         "Trust bundle refused",
	"too-many-writes":        "Too many writes",
}

func newProblem(status int, kind, detail string) *problem {
	title := titles[kind]
	if title == "" {
		title = http.StatusText(status)
	}
	return &problem{
		Problem: Problem{Type: ProblemTypePrefix + kind, Title: title, Status: status, Detail: detail},
		header:  http.Header{},
	}
}

// badParam is a 400 naming the query parameter (or header) at fault.
func badParam(name, rule, msg string) *problem {
	p := newProblem(http.StatusBadRequest, "bad-parameter", name+": "+msg)
	p.Errors = []FieldError{{Path: name, Rule: rule, Message: msg}}
	return p
}

func unavailable(detail string, retryAfter int, cause error) *problem {
	p := newProblem(http.StatusServiceUnavailable, "unavailable", detail)
	p.header.Set("Retry-After", strconv.Itoa(retryAfter))
	p.cause = cause
	return p
}

// tooManyWrites is the 429 of a write that found every one of the node's
// write slots taken (handler.limitWrites): nothing of it was done.
func tooManyWrites(limit int) *problem {
	p := newProblem(http.StatusTooManyRequests, "too-many-writes",
		fmt.Sprintf("this node is serving %d writes already, its limit (its config's max_writes); nothing of this one was done: send it again after Retry-After seconds", limit))
	p.header.Set("Retry-After", strconv.Itoa(writesRetryAfter))
	return p
}

func internalProblem(requestID string) *problem {
	return newProblem(http.StatusInternalServerError, "internal",
		"the server failed to answer; the operators can find request "+requestID+" in the node's log")
}

// statusClientClosed is logged and counted when the client went away first
// (nginx's convention); the client never sees it.
const statusClientClosed = 499

// toProblem maps an error to its answer. This is the one table from the node's,
// the store's and the schema's sentinels to wire codes.
func toProblem(err error, requestID string) *problem {
	var p *problem
	if errors.As(err, &p) {
		return p
	}
	var verr *schema.ValidationError
	switch {
	case errors.As(err, &verr):
		p = newProblem(http.StatusUnprocessableEntity, "validation", "the record does not pass validation")
		for _, fe := range verr.Errors {
			p.Errors = append(p.Errors, FieldError{Path: fe.Path, Rule: fe.Rule, Message: fe.Message})
		}
	case errors.Is(err, schema.ErrInvalid):
		p = newProblem(http.StatusUnprocessableEntity, "validation", err.Error())
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrDeleted):
		p = newProblem(http.StatusNotFound, "not-found", err.Error())
	case errors.Is(err, store.ErrVersionConflict):
		p = newProblem(http.StatusPreconditionFailed, "precondition-failed", err.Error())
	case errors.Is(err, store.ErrCatalogueMove):
		// Overtaken that often by deletes and creates in another catalogue
		// (handler.put decides again each time): refused as a move.
		p = newProblem(http.StatusUnprocessableEntity, "validation", "the record does not pass validation")
		p.Errors = []FieldError{{Path: "catalogue", Rule: schema.RuleMismatch, Message: err.Error() + ": delete it first, then write it again"}}
	case errors.Is(err, store.ErrExists):
		p = newProblem(http.StatusConflict, "conflict", err.Error())
	case errors.Is(err, store.ErrNotOrigin):
		p = newProblem(http.StatusForbidden, "forbidden", err.Error()+"; send the write to that centre's node")
	case errors.Is(err, node.ErrWouldStall):
		p = newProblem(http.StatusConflict, "membership-refused", err.Error())
	case errors.Is(err, node.ErrGroupLacksFeature):
		// Until a replica is upgraded, or, for one just added, until the
		// leader has asked it (every 5 s): not a matter of seconds in
		// general, and import does not wait for it (importRetryWait).
		p = unavailable(err.Error(), 30, nil)
	case errors.Is(err, node.ErrHandoverFailed):
		p = unavailable(err.Error()+"; retry shortly", 2, nil)
	case errors.Is(err, node.ErrRemoved):
		p = unavailable("this replica was removed from its centre's raft group (liandong centre remove-replica) and takes no writes: send requests to another replica of the centre, and stop this one or add it back", 30, nil)
	case errors.Is(err, node.ErrNotLeader):
		p = unavailable("this replica is not the raft leader; retry shortly", 1, nil)
	case errors.Is(err, node.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		p = unavailable("the write was not committed in time; retry (it may have been applied: check the version)", 2, nil)
	case errors.Is(err, node.ErrRecovering):
		p = unavailable("this centre is recovering its own log from its peers (its state was lost or is new); writes resume as soon as it has", 2, nil)
	case errors.Is(err, node.ErrNoSigningKey):
		// The operator must act (clock or bundle); peers would refuse the entry.
		p = unavailable(err.Error(), 30, nil)
	case errors.Is(err, node.ErrReplaying):
		p = unavailable("this replica is applying its raft log after a restart and holds only part of its records until it has; retry, or ask another replica", 1, nil)
	case errors.Is(err, node.ErrCatchingUp):
		p = unavailable("this replica is catching up with its raft leader and holds only part of its records until it has; retry, or ask another replica", 1, nil)
	case errors.Is(err, node.ErrNotReady):
		p = unavailable("the node is not ready (no raft leader yet)", 2, nil)
	case errors.Is(err, node.ErrShutdown):
		p = unavailable("the node is shutting down", 5, nil)
	case errors.Is(err, node.ErrLogNeedsRestart):
		p = newProblem(http.StatusInsufficientStorage, "insufficient-storage",
			"this replica's raft log could not start its next segment (its disk is full): writes are refused until its operators free space and restart it; reads go on")
		p.header.Set("Retry-After", "60")
	case errors.Is(err, node.ErrNoRoomForBackup):
		p = newProblem(http.StatusInsufficientStorage, "insufficient-storage",
			err.Error()+"; the centre's writes go on: free space on the leader's disk, or take the backup later")
	case errors.Is(err, node.ErrDiskFull):
		p = newProblem(http.StatusInsufficientStorage, "insufficient-storage",
			"this node's disk is full: writes are refused until its operators free space, and then accepted again without a restart; reads go on")
		p.header.Set("Retry-After", "30")
	case errors.Is(err, node.ErrStateFailed), errors.Is(err, store.ErrClosed):
		p = unavailable("this replica cannot serve; retry at another replica", 10, nil)
	case errors.Is(err, context.Canceled):
		p = newProblem(statusClientClosed, "client-closed", "the client closed the request")
	default:
		p = internalProblem(requestID)
	}
	p.cause = err
	return p
}

// fail answers err as a problem and keeps the cause for the log line.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	ri := info(r)
	p := toProblem(err, ri.id)
	if p.cause != nil {
		ri.err = p.cause
	} else {
		ri.err = p
	}
	h.writeProblem(w, r, p)
}

func (h *handler) writeProblem(w http.ResponseWriter, r *http.Request, p *problem) {
	out := p.Problem
	out.Instance = r.URL.Path
	out.RequestID = info(r).id
	hdr := w.Header()
	for k, v := range p.header {
		hdr[k] = v
	}
	hdr.Set("Content-Type", "application/problem+json")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Del("ETag")
	hdr.Del("Location")
	writeBody(w, p.Status, out)
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	hdr := w.Header()
	if hdr.Get("Content-Type") == "" {
		hdr.Set("Content-Type", "application/json")
	}
	hdr.Set("X-Content-Type-Options", "nosniff")
	writeBody(w, status, v)
}

// appendRecordAnswer appends rec's JSON as writeBody writes it, without the
// newline.
func appendRecordAnswer(out []byte, rec *schema.Record) []byte {
	if more, ok := schema.AppendRecordJSON(out, rec); ok {
		return more
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil {
		// Only records of ours reach here; a failure is a bug, answered as one.
		panic(fmt.Sprintf("encode record %s: %v", rec.ID, err))
	}
	return append(out, bytes.TrimSuffix(buf.Bytes(), []byte("\n"))...)
}

func writeBody(w http.ResponseWriter, status int, v any) {
	if rec, ok := v.(*schema.Record); ok && rec != nil {
		// A record, the most common answer (every write and read by id):
		// written without encoding/json when it can be, to the same bytes.
		if out, ok := schema.AppendRecordJSON(make([]byte, 0, len(rec.Body)+384), rec); ok {
			out = append(out, '\n')
			w.Header().Set("Content-Length", strconv.Itoa(len(out)))
			w.WriteHeader(status)
			w.Write(out)
			return
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only values of ours reach here; a failure is a bug, answered as one.
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusInternalServerError)
		w.Write([]byte(`{"type":"urn:liandong:problem:internal","title":"Internal server error","status":500}` + "\n"))
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}
