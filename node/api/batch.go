package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"

	"liandong/auth"
	"liandong/node"
	"liandong/schema"
)

// Limits of POST /v1/batch.
const (
	// MaxBatchItems bounds the writes of one batch, as MaxLimit bounds a page.
	MaxBatchItems = 500
	// batchWorkers bounds the writes of one batch under way at once: enough
	// for raft to commit them together (one fsync for many), few enough that
	// one batch does not crowd out the node's other clients.
	batchWorkers = 32
	// maxBatchWrites bounds the writes of all batches under way at once.
	maxBatchWrites = 4 * batchWorkers
)

// batchItem is one write of a batch: what POST, PUT or DELETE on
// /v1/records would do, with the URL's id and the If-Match header as members.
type batchItem struct {
	Method  string          `json:"method"`
	ID      string          `json:"id"`
	IfMatch json.RawMessage `json:"if_match"`
	// IfNoneMatch is If-None-Match: only "*" (PUT: create, never replace).
	IfNoneMatch json.RawMessage `json:"if_none_match"`
	Record      json.RawMessage `json:"record"`
}

// batchOutcome is what one item did: the status and record the single-record
// route would have answered, or its error.
type batchOutcome struct {
	status int
	rec    *schema.Record
	err    error
	logged bool // err was logged where it happened (a panic, with its stack)
}

// batch applies many writes in one request (POST /v1/batch). Each item is
// answered as the single-record route would answer it, in the order sent,
// and the request is 200 whenever the batch itself could be read: one
// refused item does not undo or stop the others. Items are applied
// concurrently, in no set order, so a batch may name each record id once.
// What a batch saves is the request per write: partner systems loading a
// catalogue (and liandong import) send hundreds of records at once.
func (h *handler) batch(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionWrite, nil); err != nil {
		return err
	}
	data, err := readBody(w, r, h.maxBody)
	if err != nil {
		return err
	}
	items, err := decodeBatch(data, h.centre)
	if err != nil {
		return err
	}
	out := make([]batchOutcome, len(items))
	ctx := r.Context()
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(batchWorkers, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if items[i].err != nil {
					out[i] = batchOutcome{err: items[i].err} // refused as read: no write to bound
					continue
				}
				select {
				case h.batchSlots <- struct{}{}:
				case <-ctx.Done():
					// Not proposed. The cause says who ended it: a
					// stop's drain ends requests with node.ErrShutdown
					// (503), which the client is still there to read;
					// ctx.Err() alone said 499, "the client closed".
					out[i] = batchOutcome{err: context.Cause(ctx)}
					continue
				}
				out[i] = h.batchWriteRecovering(ctx, r, p, i, items[i])
				<-h.batchSlots
			}
		}()
	}
	for i := range items {
		next <- i
	}
	close(next)
	wg.Wait()

	ri := info(r)
	answer := make([]byte, 0, 64+len(data)+len(items)*256)
	answer = append(answer, `{"items":[`...)
	retryAfter := 0
	// Items ended with the request (a stop's drain, or the client gone)
	// fail alike, up to 500 of them: one line says so for the batch, where a
	// line each flooded a stop's log with the same error.
	var ended []int
	var endedErr error
	for i, o := range out {
		if i > 0 {
			answer = append(answer, ',')
		}
		if o.err != nil {
			pr := toProblem(o.err, ri.id)
			h.metrics.batchItems.WithLabelValues(strconv.Itoa(pr.Status)).Inc()
			switch {
			case pr.Status < http.StatusInternalServerError || o.logged:
			case endedWithRequest(ctx, o.err):
				ended = append(ended, i)
				endedErr = cmp.Or(endedErr, o.err)
			default:
				h.log.Error("batch item failed", "request_id", ri.id, "item", i, "status", pr.Status, "err", o.err)
			}
			// An item's headers cannot travel with it; the one a client
			// acts on, when to retry, goes on the answer: the longest any
			// item asked for.
			if n, err := strconv.Atoi(pr.header.Get("Retry-After")); err == nil {
				retryAfter = max(retryAfter, n)
			}
			doc := pr.Problem
			doc.Instance = fmt.Sprintf("%s#items/%d", r.URL.Path, i)
			doc.RequestID = ri.id
			answer = fmt.Appendf(answer, `{"status":%d,"problem":`, pr.Status)
			answer = appendJSON(answer, doc)
			answer = append(answer, '}')
			continue
		}
		h.metrics.batchItems.WithLabelValues(strconv.Itoa(o.status)).Inc()
		answer = fmt.Appendf(answer, `{"status":%d,"record":`, o.status)
		v := h.writtenView(p, o.rec)
		if rec, ok := schema.AppendRecordJSON(answer, v); ok {
			answer = rec
		} else {
			answer = appendJSON(answer, v)
		}
		answer = append(answer, '}')
	}
	answer = append(answer, "]}\n"...)
	if len(ended) > 0 {
		h.log.Error("batch items ended with the request, not applied or with their outcome unknown", "request_id", ri.id,
			"items", len(ended), "of", len(items), "first", ended[:min(len(ended), 10)], "cause", context.Cause(ctx), "err", endedErr)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Content-Length", strconv.Itoa(len(answer)))
	if retryAfter > 0 {
		hdr.Set("Retry-After", strconv.Itoa(retryAfter))
	}
	w.WriteHeader(http.StatusOK)
	w.Write(answer)
	return nil
}

// endedWithRequest reports whether err is an item's failure because ctx, the
// request's, ended: never proposed (the cause), its wait for the commit cut
// (ctx's error), or raft shut down under it.
func endedWithRequest(ctx context.Context, err error) bool {
	if ctx.Err() == nil {
		return false
	}
	return errors.Is(err, ctx.Err()) || errors.Is(err, context.Cause(ctx)) || errors.Is(err, node.ErrShutdown)
}

// appendJSON appends v as encoding/json writes it, without HTML escaping and
// without the encoder's newline. Only values of ours reach it.
func appendJSON(dst []byte, v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return append(dst, "null"...)
	}
	return append(dst, bytes.TrimRight(buf.Bytes(), "\n")...)
}

// batchWriteRecovering is batchWrite on a worker goroutine, where ServeHTTP's
// recovery does not reach: a panic in one write, which the single route
// answers 500, must not end the process (and the replica's raft membership).
func (h *handler) batchWriteRecovering(ctx context.Context, r *http.Request, p *auth.Principal, i int, it *decodedItem) (o batchOutcome) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		ri := info(r)
		h.log.Error("batch write panicked", "request_id", ri.id, "item", i, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		o = batchOutcome{err: internalProblem(ri.id), logged: true}
	}()
	return h.batchWrite(ctx, p, it)
}

// batchWrite applies one item as its single-record route would.
func (h *handler) batchWrite(ctx context.Context, p *auth.Principal, it *decodedItem) batchOutcome {
	if it.err != nil {
		return batchOutcome{err: it.err}
	}
	switch it.Method {
	case http.MethodPost:
		rec, err := h.create(ctx, it.req.rec)
		return batchOutcome{status: http.StatusCreated, rec: rec, err: err}
	case http.MethodPut:
		status, rec, err := h.put(ctx, p, it.ID, it.pc, it.req)
		return batchOutcome{status: status, rec: rec, err: err}
	default: // DELETE, as decodeBatch let through
		rec, err := h.remove(ctx, p, it.ID, it.pc)
		return batchOutcome{status: http.StatusOK, rec: rec, err: err}
	}
}

// decodedItem is a batch item checked for shape, its record decoded (req);
// err refuses it alone.
type decodedItem struct {
	batchItem
	pc  precondition
	req *recordRequest
	err error
}

// decodeBatch reads a batch body of records for centre. A body that is not a
// batch is a 400 for the whole request; an item that is not a write is refused
// alone (its err), with the member at fault, as the single-record route would
// refuse it.
func decodeBatch(data []byte, centre string) ([]*decodedItem, error) {
	malformed := func(path, rule, msg string) error {
		p := newProblem(http.StatusBadRequest, "malformed-json", msg)
		p.Errors = []FieldError{{Path: path, Rule: rule, Message: msg}}
		return p
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, malformed("", schema.RuleRequired, `the body is empty; send {"items": [...]}`)
	}
	canonical, err := checkJSON(data)
	if err != nil {
		return nil, err
	}
	// Clients that send canonical JSON (sorted members, no spaces) are read
	// by walking it: encoding/json took a tenth of a batch's CPU. Anything
	// else, and anything the walk does not expect, takes encoding/json's
	// way, which also words the refusals.
	raws, ok := batchItemsCanonical(data, canonical)
	if !ok {
		if raws, err = batchItems(data); err != nil {
			return nil, err
		}
	}
	switch {
	case len(raws) == 0:
		return nil, malformed("items", schema.RuleRequired, "the batch has no items")
	case len(raws) > MaxBatchItems:
		// Both walks stop at one item past the bound: a body of tiny items
		// must not cost many times its size before it is refused.
		return nil, malformed("items", schema.RuleMaxItems, fmt.Sprintf("more than %d items; a batch holds at most %d", MaxBatchItems, MaxBatchItems))
	}
	items := make([]*decodedItem, len(raws))
	writer := make(map[string]int, len(raws))
	for i, raw := range raws {
		it := decodeBatchItem(raw, canonical, centre)
		items[i] = it
		if it.err != nil || it.ID == "" {
			continue
		}
		if first, ok := writer[it.ID]; ok {
			it.err = badParam("id", schema.RuleUnique, fmt.Sprintf("item %d of this batch writes %s too; send one write per record in a batch", first, it.ID))
			continue
		}
		writer[it.ID] = i
	}
	return items, nil
}

// batchItemsCanonical returns the items of a canonical batch body, or false
// for any body but {"items":[...]} (left to encoding/json).
func batchItemsCanonical(data []byte, canonical bool) ([][]byte, bool) {
	if !canonical {
		return nil, false
	}
	var items []byte
	if schema.EachMember(data, func(name, value []byte) error {
		if string(name) != "items" {
			return errNotFast
		}
		items = value
		return nil
	}) != nil || items == nil {
		return nil, false
	}
	raws := make([][]byte, 0, 64)
	err := schema.EachElement(items, func(v []byte) error {
		raws = append(raws, v)
		if len(raws) > MaxBatchItems {
			return errTooMany
		}
		return nil
	})
	if err != nil && err != errTooMany {
		return nil, false
	}
	return raws, true
}

// errTooMany stops a walk of a batch's items one past MaxBatchItems.
var errTooMany = errors.New("too many items")

// batchItems returns the items of a batch body checkJSON passed, by
// encoding/json's tokens: {"items": [...]} and nothing else, the member named
// exactly. It stops one item past MaxBatchItems.
func batchItems(data []byte) ([][]byte, error) {
	const want = `want {"items": [...]}, an array of writes`
	malformed := func(path, rule, msg string) error {
		p := newProblem(http.StatusBadRequest, "malformed-json", msg)
		p.Errors = []FieldError{{Path: path, Rule: rule, Message: msg}}
		return p
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil, malformed("", schema.RuleType, want)
	}
	var raws [][]byte
	seen := false
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, malformed("", schema.RuleSyntax, err.Error())
		}
		if name, _ := t.(string); name != "items" {
			return nil, malformed(clip(fmt.Sprint(t)), schema.RuleForbidden, "unknown member; "+want)
		}
		seen = true
		t, err = dec.Token()
		switch {
		case err != nil:
			return nil, malformed("items", schema.RuleSyntax, err.Error())
		case t == nil:
			return nil, malformed("items", schema.RuleRequired, want)
		case t != json.Delim('['):
			return nil, malformed("items", schema.RuleType, want)
		}
		for dec.More() && len(raws) <= MaxBatchItems {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return nil, malformed("items", schema.RuleSyntax, err.Error())
			}
			raws = append(raws, raw)
		}
		if len(raws) > MaxBatchItems {
			return raws, nil
		}
		if _, err := dec.Token(); err != nil {
			return nil, malformed("items", schema.RuleSyntax, err.Error())
		}
	}
	if !seen {
		return nil, malformed("items", schema.RuleRequired, want)
	}
	return raws, nil
}

// errNotFast stops a walk that found what only encoding/json's way handles.
var errNotFast = errors.New("not for the fast path")

// decodeBatchItem reads one item of a batch for centre; canonical says the
// batch was canonical, and so the item is.
func decodeBatchItem(raw []byte, canonical bool, centre string) *decodedItem {
	it := &decodedItem{}
	malformed := func(path, rule, msg string) *decodedItem {
		p := newProblem(http.StatusBadRequest, "malformed-json", path+": "+msg)
		if path == "" {
			p.Detail = msg
		}
		p.Errors = []FieldError{{Path: path, Rule: rule, Message: msg}}
		it.err = p
		return it
	}
	if !canonical || !it.decodeCanonical(raw) {
		it.batchItem = batchItem{}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&it.batchItem); err != nil {
			const want = `want a write: {"method": "POST"|"PUT"|"DELETE", "id", "if_match", "if_none_match", "record"}`
			var ute *json.UnmarshalTypeError
			if errors.As(err, &ute) && ute.Field != "" {
				return malformed(ute.Field, schema.RuleType, "want a "+ute.Type.String())
			}
			if errors.As(err, &ute) {
				return malformed("", schema.RuleType, want)
			}
			return malformed("", schema.RuleForbidden, want+": "+err.Error())
		}
	}
	hasRecord := len(it.Record) > 0 && string(it.Record) != "null"
	switch it.Method {
	case http.MethodPost:
		switch {
		case it.ID != "":
			return malformed("id", schema.RuleForbidden, "POST assigns the id; to choose one, use PUT")
		case len(it.IfMatch) > 0:
			return malformed("if_match", schema.RuleForbidden, ifMatchOnPost)
		case len(it.IfNoneMatch) > 0:
			return malformed("if_none_match", schema.RuleForbidden, ifNoneMatchOnPost)
		}
	case http.MethodPut, http.MethodDelete:
		if _, _, err := schema.SplitID(it.ID); err != nil {
			return malformed("id", schema.RuleFormat, "want <centre>:<key>, the key 1-128 letters, digits, '-', '_' or '.'")
		}
		if len(it.IfMatch) > 0 && string(it.IfMatch) != "null" {
			var text string
			if json.Unmarshal(it.IfMatch, &text) != nil {
				var n json.Number
				if json.Unmarshal(it.IfMatch, &n) != nil {
					return malformed("if_match", schema.RuleType, `want a version (3) or "*"`)
				}
				text = n.String()
			}
			pc, err := parsePrecondition("if_match", text)
			if err != nil {
				it.err = err
				return it
			}
			it.pc = pc
		}
		if len(it.IfNoneMatch) > 0 && string(it.IfNoneMatch) != "null" {
			if it.Method == http.MethodDelete {
				return malformed("if_none_match", schema.RuleForbidden, ifNoneMatchOnDelete)
			}
			if string(it.IfNoneMatch) != `"*"` {
				return malformed("if_none_match", schema.RuleFormat, `want "*": create the record only if it does not exist`)
			}
			pc, err := ifAbsent("if_none_match", it.pc)
			if err != nil {
				it.err = err
				return it
			}
			it.pc = pc
		}
	case "":
		return malformed("method", schema.RuleRequired, "want POST, PUT or DELETE")
	default:
		return malformed("method", schema.RuleEnum, fmt.Sprintf("%q: want POST, PUT or DELETE", clip(it.Method)))
	}
	switch {
	case it.Method == http.MethodDelete && hasRecord:
		return malformed("record", schema.RuleForbidden, "DELETE takes no record")
	case it.Method == http.MethodDelete:
		return it
	case !hasRecord:
		return malformed("record", schema.RuleRequired, "send the record to write")
	}
	// The record is checked as the single-record route checks its body,
	// but for what checkJSON already did over the whole batch.
	it.req, it.err = decodeCheckedRecord(it.Record, it.ID, centre, canonical)
	return it
}

// decodeCanonical fills it from a canonical item by walking its members, and
// reports false for anything it leaves to encoding/json: a member it does
// not know, an escaped string, a value of the wrong kind.
func (it *decodedItem) decodeCanonical(raw []byte) bool {
	return schema.EachMember(raw, func(name, value []byte) error {
		ok := true
		switch string(name) {
		case "id":
			ok = schema.MemberString(value, &it.ID)
		case "method":
			ok = schema.MemberString(value, &it.Method)
		case "if_match":
			it.IfMatch = value
		case "if_none_match":
			it.IfNoneMatch = value
		case "record":
			it.Record = value
		default:
			ok = false
		}
		if !ok {
			return errNotFast
		}
		return nil
	}) == nil
}
