package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"liandong/schema"
)

// readBody reads a JSON request body of at most max bytes.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != "application/json" {
		p := newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type",
			fmt.Sprintf("send the record as Content-Type: application/json (got %q)", clip(ct)))
		p.header.Set("Accept", "application/json")
		return nil, p
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		p := newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type", "JSON must be UTF-8")
		p.header.Set("Accept", "application/json")
		return nil, p
	}
	if ce := encoded(r.Header); ce != "" {
		// Read as it came, a compressed body fails as malformed JSON, and
		// a plain one mislabelled would be written as if unlabelled.
		p := newProblem(http.StatusUnsupportedMediaType, "unsupported-media-type",
			fmt.Sprintf("send the body uncompressed, without Content-Encoding (got %q)", clip(ce)))
		p.header.Set("Accept-Encoding", "identity")
		return nil, p
	}
	tooLarge := func() error {
		return newProblem(http.StatusRequestEntityTooLarge, "too-large", fmt.Sprintf("the body is over %d bytes", max))
	}
	if r.ContentLength > max {
		return nil, tooLarge()
	}
	data, err := readAll(http.MaxBytesReader(w, r.Body, max), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge()
		}
		p := newProblem(http.StatusBadRequest, "bad-request", "could not read the body")
		p.cause = err
		return nil, p
	}
	return data, nil
}

// encoded returns the first content coding other than identity that h names,
// on any of its Content-Encoding lines, or "".
func encoded(h http.Header) string {
	for _, line := range h.Values("Content-Encoding") {
		for _, c := range strings.Split(line, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return c
			}
		}
	}
	return ""
}

// envelopeFields lists the members a submitted record may carry.
var envelopeFields = []string{
	"id", "catalogue", "origin", "version", "visibility", "schema",
	"created_at", "updated_at", "expires_at", "deleted", "broker", "body",
}

// recordRequest is a decoded submission before it becomes a record.
type recordRequest struct {
	rec *schema.Record
	// version is the version member, 0 when absent: a precondition on PUT.
	version uint64
	// visibility says the visibility member was given; when it was not, a PUT
	// over a live record keeps that record's (rec holds the default for a new
	// one).
	visibility bool
}

// decodeRecord parses a submitted record strictly (see the package
// documentation for the envelope rules). pathID is the id in the URL, "" for
// POST. Malformed input is a 400 problem with the byte offset or member at
// fault; well-formed input that contradicts the server is a 422.
func decodeRecord(data []byte, pathID, centre string) (*recordRequest, error) {
	return decodeRecordWith(data, pathID, centre, true)
}

// decodeRecordWith is decodeRecord; fast false takes encoding/json's way
// through a canonical request too, which FuzzDecodeRecordFastPath holds the
// fast way to.
func decodeRecordWith(data []byte, pathID, centre string, fast bool) (*recordRequest, error) {
	malformed := func(path, rule, msg string) error {
		p := newProblem(http.StatusBadRequest, "malformed-json", msg)
		p.Errors = []FieldError{{Path: path, Rule: rule, Message: msg}}
		return p
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, malformed("", schema.RuleRequired, "the body is empty; send a record as a JSON object")
	}
	canonical, err := checkJSON(data)
	if err != nil {
		return nil, err
	}
	return decodeCheckedRecord(data, pathID, centre, canonical && fast)
}

// decodeCheckedRecord is decodeRecord of data checkJSON passed, as part of a
// larger document or alone; canonical says it found data canonical, which a
// value inside a canonical document is.
func decodeCheckedRecord(data []byte, pathID, centre string, canonical bool) (*recordRequest, error) {
	malformed := func(path, rule, msg string) error {
		p := newProblem(http.StatusBadRequest, "malformed-json", msg)
		p.Errors = []FieldError{{Path: path, Rule: rule, Message: msg}}
		return p
	}
	if data = bytes.TrimSpace(data); len(data) == 0 || data[0] != '{' {
		return nil, malformed("", schema.RuleType, "want a JSON object (a record envelope)")
	}
	var members map[string]json.RawMessage
	if canonical {
		// Compact, each name once: its members are slices of data, and the
		// body among them is canonical already. Names with escapes (which
		// EachMember leaves) take encoding/json's way.
		// At most 8 members fit a map's small form, one allocation; sized
		// for all of envelopeFields (12) it was a table of three, 1 % of a
		// write's CPU. A request naming more grows it.
		members = make(map[string]json.RawMessage, 8)
		if schema.EachMember(data, func(name, value []byte) error {
			members[string(name)] = value
			return nil
		}) != nil {
			canonical, members = false, nil
		}
	}
	if !canonical {
		if err := json.Unmarshal(data, &members); err != nil {
			return nil, malformed("", schema.RuleSyntax, err.Error())
		}
	}

	var errs []FieldError
	typeErr := func(name, want string) {
		errs = append(errs, FieldError{Path: name, Rule: schema.RuleType, Message: "want " + want})
	}
	// Unknown members are reported in name order (sorted when any is found).
	var unknown []string
	for k := range members {
		if !slices.Contains(envelopeFields, k) {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		errs = append(errs, FieldError{Path: clip(k), Rule: schema.RuleForbidden,
			Message: "unknown envelope member; the catalogue's fields go inside body"})
	}
	str := func(name string) *string {
		raw, ok := members[name]
		if !ok {
			return nil
		}
		if v := ""; canonical && schema.MemberString(raw, &v) {
			return &v
		}
		var s *string // declared here, it is allocated for encoding/json's way alone
		if err := json.Unmarshal(raw, &s); err != nil {
			typeErr(name, "a string")
		}
		return s
	}
	id, catalogue, origin, visibility := str("id"), str("catalogue"), str("origin"), str("visibility")
	expiresAt := str("expires_at")
	// Server-assigned: type-checked, then ignored.
	str("created_at")
	str("updated_at")
	str("broker")

	var version uint64
	if raw, ok := members["version"]; ok {
		var v *uint64
		if err := json.Unmarshal(raw, &v); err != nil {
			typeErr("version", "a positive integer")
		} else if v != nil {
			version = *v
		}
	}
	var schemaVersion int
	if raw, ok := members["schema"]; ok {
		var v *int
		if err := json.Unmarshal(raw, &v); err != nil {
			typeErr("schema", "an integer")
		} else if v != nil {
			schemaVersion = *v
		}
	}
	var deleted bool
	if raw, ok := members["deleted"]; ok {
		var v *bool
		if err := json.Unmarshal(raw, &v); err != nil {
			typeErr("deleted", "a boolean")
		} else if v != nil {
			deleted = *v
		}
	}
	if len(errs) > 0 {
		p := newProblem(http.StatusBadRequest, "malformed-json", errs[0].Path+": "+errs[0].Message)
		p.Errors = errs
		return nil, p
	}

	// Well-formed: now what the server decides.
	var invalid []FieldError
	refuse := func(path, rule, msg string) {
		invalid = append(invalid, FieldError{Path: path, Rule: rule, Message: msg})
	}
	if id != nil && *id != "" {
		switch {
		case pathID == "":
			refuse("id", schema.RuleForbidden, "POST assigns the id; to choose one, PUT /v1/records/{id}")
		case *id != pathID:
			refuse("id", schema.RuleMismatch, fmt.Sprintf("the body's id %q differs from the URL's %q", clip(*id), pathID))
		}
	}
	if origin != nil && *origin != "" && *origin != centre {
		refuse("origin", schema.RuleMismatch, fmt.Sprintf("records written here have origin %q", centre))
	}
	if pathID == "" && version > 1 {
		refuse("version", schema.RuleForbidden, "a new record gets version 1")
	}
	if deleted {
		refuse("deleted", schema.RuleForbidden, "delete a record with DELETE /v1/records/{id}")
	}
	rec := &schema.Record{
		ID:         pathID,
		Origin:     centre,
		Visibility: schema.VisibilityFederation,
		Schema:     schemaVersion,
	}
	if catalogue != nil {
		rec.Catalogue = *catalogue
	}
	given := visibility != nil && *visibility != ""
	if given {
		rec.Visibility = *visibility
	}
	if expiresAt != nil && *expiresAt != "" {
		t, err := time.Parse(time.RFC3339Nano, *expiresAt)
		switch {
		case err != nil:
			refuse("expires_at", schema.RuleFormat, "want an RFC 3339 time such as 2027-06-30T00:00:00+08:00")
		case t.UTC().Year() < 0 || t.UTC().Year() > 9999:
			// Records keep times in UTC, and RFC 3339 has four-digit years:
			// 9999-12-31T23:59:59-05:00 is in year 10000 there.
			refuse("expires_at", schema.RuleFormat, "want a time between years 0000 and 9999 in UTC")
		default:
			t = t.UTC()
			rec.ExpiresAt = &t
		}
	}
	if raw, ok := members["body"]; ok && canonical {
		rec.Body = raw[:len(raw):len(raw)] // an append must not run into the request's bytes
		// checkJSON found the whole request canonical, so its body is: the
		// answer goes with the body, and PrepareWrite does not walk it again.
		rec.MarkBodyCanonical()
	} else if ok {
		var buf bytes.Buffer
		if err := json.Compact(&buf, raw); err != nil {
			return nil, malformed("body", schema.RuleSyntax, err.Error())
		}
		rec.Body = buf.Bytes()
	}
	if len(invalid) > 0 {
		p := newProblem(http.StatusUnprocessableEntity, "validation", invalid[0].Path+": "+invalid[0].Message)
		p.Errors = invalid
		return nil, p
	}
	return &recordRequest{rec: rec, version: version, visibility: given}, nil
}

// checkJSON refuses what encoding/json lets through: duplicate member names,
// lone surrogates, integers the signed log cannot carry exactly, deep nesting,
// trailing data, invalid UTF-8. A 400 problem says what and at which byte.
// canonical reports data canonical (sorted members, no spaces), as most
// clients send it: such a record is read without encoding/json, which was a
// third of the HTTP side of a write.
func checkJSON(data []byte) (canonical bool, err error) {
	malformed := func(rule, msg string) error {
		p := newProblem(http.StatusBadRequest, "malformed-json", msg)
		p.Errors = []FieldError{{Path: "", Rule: rule, Message: msg}}
		return p
	}
	switch err := schema.CheckCanonical(data); {
	case err == nil:
		return true, nil
	case !utf8.Valid(data):
		return false, malformed(schema.RuleUTF8, fmt.Sprintf("invalid UTF-8 at byte %d", invalidUTF8Offset(data)))
	case errors.Is(err, schema.ErrNotCanonical):
		return false, nil
	default:
		var se *schema.SyntaxError
		if errors.As(err, &se) {
			return false, malformed(syntaxRule(se.Msg), fmt.Sprintf("%s at byte %d", se.Msg, se.Offset))
		}
		return false, malformed(schema.RuleSyntax, err.Error())
	}
}

// syntaxRule classifies a canonical-parser complaint with the schema's rule names.
func syntaxRule(msg string) string {
	switch {
	case strings.HasPrefix(msg, "duplicate member name"):
		return schema.RuleDuplicateKey
	case strings.HasPrefix(msg, "nesting deeper"):
		return schema.RuleDepth
	case strings.HasPrefix(msg, "integer beyond"), strings.HasPrefix(msg, "number out of range"):
		return schema.RuleNumber
	case strings.Contains(msg, "UTF-8"), strings.Contains(msg, "surrogate"):
		return schema.RuleUTF8
	}
	return schema.RuleSyntax
}

func invalidUTF8Offset(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// readAll is io.ReadAll into a buffer sized by the request's Content-Length
// (when it is known and within the limit the caller checked), so a 1 KB
// body is read into one allocation rather than grown from 512 bytes.
func readAll(r io.Reader, contentLength int64) ([]byte, error) {
	if contentLength <= 0 {
		return io.ReadAll(r)
	}
	// One byte more, so that reading the whole body ends in io.EOF without
	// growing the buffer; at most 64 KB before the bytes arrive, so a
	// request that only claims a large body does not hold that memory.
	buf := make([]byte, 0, min(contentLength+1, 64<<10))
	for {
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
		if len(buf) == cap(buf) {
			// Past 64 KB, or longer than it said (net/http stops a body at
			// its Content-Length, so then a reader of another kind).
			rest, err := io.ReadAll(r)
			return append(buf, rest...), err
		}
	}
}

// precondition is a parsed If-Match header.
type precondition struct {
	// name is where it came from: the If-Match header, or a batch item's
	// if_match member.
	name    string
	present bool
	any     bool   // "*": the record must exist
	version uint64 // the version it must have
	never   bool   // a tag that cannot match any version (weak, or not ours)
	// absent is If-None-Match: * (a batch item's if_none_match): create
	// the record, or revive its tombstone, but never replace it. name then
	// names that header or member.
	absent bool
}

// parseIfMatch accepts If-Match as a version number, the quoted ETag form ("3")
// or "*". A weak tag or a quoted tag that is not a version can never match
// (RFC 9110 compares If-Match strongly): 412, not 400.
func parseIfMatch(h http.Header) (precondition, error) {
	vals := h.Values("If-Match")
	if len(vals) == 0 {
		return precondition{}, nil
	}
	if len(vals) > 1 {
		return precondition{}, badParam("If-Match", schema.RuleFormat, `want one version: 3, "3" (the ETag) or *`)
	}
	return parsePrecondition("If-Match", vals[0])
}

// parseIfNoneMatch adds If-None-Match to pc, If-Match's: on a write only "*"
// means anything (create, never replace), and the two cannot both be kept.
func parseIfNoneMatch(h http.Header, pc precondition) (precondition, error) {
	vals := h.Values("If-None-Match")
	if len(vals) == 0 {
		return pc, nil
	}
	if len(vals) > 1 || strings.TrimSpace(vals[0]) != "*" {
		return pc, badParam("If-None-Match", schema.RuleFormat, "want *: create the record only if it does not exist (a version or tag means nothing on a write)")
	}
	return ifAbsent("If-None-Match", pc)
}

// Why If-None-Match is refused on POST and DELETE, by the routes and by
// batch items alike.
const (
	ifNoneMatchOnPost   = "POST always creates a new record; to create under an id of your own only if it is free, use PUT"
	ifNoneMatchOnDelete = "DELETE needs a record to delete; use If-Match"
	ifMatchOnPost       = "a new record has no version to match"
)

// ifAbsent is the precondition "create, never replace" named name, unless
// pc (If-Match's) already holds one.
func ifAbsent(name string, pc precondition) (precondition, error) {
	if pc.present {
		return pc, badParam(name, schema.RuleMismatch, fmt.Sprintf("%s and %s together can never both hold; send one", name, pc.name))
	}
	return precondition{name: name, present: true, absent: true}, nil
}

// parsePrecondition reads v, an If-Match value, for the header or member name.
func parsePrecondition(name, v string) (precondition, error) {
	bad := badParam(name, schema.RuleFormat, `want one version: 3, "3" (the ETag) or *`)
	v = strings.TrimSpace(v)
	pc := precondition{name: name, present: true}
	switch {
	case v == "*":
		pc.any = true
		return pc, nil
	case strings.Contains(v, ","):
		return pc, bad
	case strings.HasPrefix(v, `W/"`) && strings.HasSuffix(v, `"`) && len(v) >= 4:
		pc.never = true
		return pc, nil
	case len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"':
		n, err := strconv.ParseUint(v[1:len(v)-1], 10, 64)
		if err != nil || n == 0 {
			pc.never = true
			return pc, nil
		}
		pc.version = n
		return pc, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return pc, bad
	}
	if n == 0 {
		pc.never = true
	}
	pc.version = n
	return pc, nil
}

func etag(version uint64) string { return `"` + strconv.FormatUint(version, 10) + `"` }
