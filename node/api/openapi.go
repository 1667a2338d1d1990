package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"liandong/auth"
	"liandong/schema"
)

// The OpenAPI 3.1 description of the API, served at GET /v1/openapi.json. It is
// built from Go values here, with the catalogues' JSON Schemas taken from
// schema.JSONSchema, so the record shapes cannot drift from the validator. Tests
// check every route registered in New is described, and validate real answers
// against the document (kin-openapi).

// OpenAPIVersion is the version of the API the document describes.
const OpenAPIVersion = "1.0.0"

type obj = map[string]any

var openAPIDoc = sync.OnceValues(buildOpenAPI)

// OpenAPI returns the OpenAPI 3.1 document of the API as indented JSON.
func OpenAPI() ([]byte, error) {
	b, err := openAPIDoc()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(b), nil
}

func (h *handler) openAPI(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if _, err := h.authorize(p, auth.ActionRead, nil); err != nil {
		return err
	}
	if _, err := parseQuery(r.URL.RawQuery); err != nil {
		return err
	}
	doc, err := openAPIDoc()
	if err != nil {
		return err
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "max-age=300")
	hdr.Set("Content-Length", strconv.Itoa(len(doc)))
	hdr.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(doc)
	return nil
}

func schemaRef(name string) obj { return obj{"$ref": "#/components/schemas/" + name} }

func title(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

// catalogueSchemas turns a catalogue's JSON Schema document into components: the
// record (<C>Record) and its $defs (<C>Body …), with $id and $schema dropped and
// the references rewritten to the components, as OpenAPI resolves them against
// the whole document.
func catalogueSchemas(c string, into obj) error {
	raw, err := schema.JSONSchema(c)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc obj
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("JSON Schema of %s: %w", c, err)
	}
	prefix := title(c)
	defs, _ := doc["$defs"].(obj)
	delete(doc, "$defs")
	delete(doc, "$schema")
	delete(doc, "$id")
	var rewrite func(v any)
	rewrite = func(v any) {
		switch v := v.(type) {
		case obj:
			if s, ok := v["$ref"].(string); ok {
				if name, ok := strings.CutPrefix(s, "#/$defs/"); ok {
					v["$ref"] = "#/components/schemas/" + prefix + title(name)
				}
			}
			for _, x := range v {
				rewrite(x)
			}
		case []any:
			for _, x := range v {
				rewrite(x)
			}
		}
	}
	rewrite(doc)
	for name, d := range defs {
		rewrite(d)
		into[prefix+title(name)] = d
	}
	doc["description"] = fmt.Sprintf("%v The same document, standalone, is served at /v1/schema/%s.", doc["description"], c)
	into[prefix+"Record"] = doc

	// What a client submits: the envelope members of the record schema, none
	// required but catalogue and body (the server assigns id, origin, version and
	// times, and ignores created_at, updated_at and broker).
	props := obj{}
	if p, ok := doc["properties"].(obj); ok {
		for k, v := range p {
			props[k] = v
		}
	}
	props["body"] = schemaRef(prefix + "Body")
	props["deleted"] = obj{"type": []any{"boolean", "null"}, "const": false, "description": "delete with DELETE /v1/records/{id}"}
	into[prefix+"Submission"] = obj{
		"title":                "a " + c + " record as submitted to POST or PUT",
		"type":                 "object",
		"required":             []any{"catalogue", "body"},
		"properties":           props,
		"additionalProperties": false,
	}
	return nil
}

func buildOpenAPI() ([]byte, error) {
	schemas := obj{}
	for _, c := range schema.Catalogues {
		if err := catalogueSchemas(c, schemas); err != nil {
			return nil, err
		}
	}
	var known []any
	var records, submissions []any
	for _, c := range schema.Catalogues {
		known = append(known, c)
		records = append(records, schemaRef(title(c)+"Record"))
		submissions = append(submissions, schemaRef(title(c)+"Submission"))
	}
	schemas["ForeignRecord"] = obj{
		"title":    "a record this build cannot read: of a catalogue or a body schema version added later, stored and relayed as it came",
		"type":     "object",
		"required": []any{"id", "catalogue", "origin", "version", "visibility"},
		"properties": obj{
			"id":         obj{"type": "string"},
			"catalogue":  obj{"type": "string"},
			"origin":     obj{"type": "string"},
			"version":    obj{"type": "integer", "minimum": 1},
			"visibility": obj{"type": "string"},
			"schema":     obj{"type": "integer"},
			"body":       obj{"type": []any{"object", "null"}},
		},
		"anyOf": []any{
			obj{"properties": obj{"catalogue": obj{"not": obj{"enum": known}}}},
			obj{"required": []any{"schema"}, "properties": obj{"schema": obj{"type": "integer", "minimum": schema.CurrentSchema + 1}}},
		},
	}
	schemas["Record"] = obj{
		"description": "A record envelope as the API answers it. Personal data (body.contact, body.inventors) is redacted unless the token has scope pii at the record's origin centre. Records from other centres may carry codes and body members added by a newer build.",
		"anyOf":       append(records, schemaRef("ForeignRecord")),
	}
	schemas["Submission"] = obj{"oneOf": submissions}
	schemas["FieldError"] = obj{
		"type":       "object",
		"required":   []any{"path", "rule", "message"},
		"properties": obj{"path": obj{"type": "string", "description": "the field, query parameter or header at fault"}, "rule": obj{"type": "string"}, "message": obj{"type": "string"}},
	}
	schemas["Problem"] = obj{
		"description": "RFC 9457 problem details. type is a urn:liandong:problem:… URN clients may branch on.",
		"type":        "object",
		"required":    []any{"type", "title", "status"},
		"properties": obj{
			"type":       obj{"type": "string", "pattern": "^" + ProblemTypePrefix + "[a-z-]+$", "description": problemTypes()},
			"title":      obj{"type": "string"},
			"status":     obj{"type": "integer", "minimum": 400, "maximum": 599},
			"detail":     obj{"type": "string"},
			"instance":   obj{"type": "string"},
			"request_id": obj{"type": "string"},
			"errors":     obj{"type": "array", "items": schemaRef("FieldError")},
		},
	}
	schemas["BatchRequest"] = obj{
		"type":     "object",
		"required": []any{"items"},
		"properties": obj{
			"items": obj{"type": "array", "minItems": 1, "maxItems": MaxBatchItems, "items": schemaRef("BatchItem")},
		},
		"additionalProperties": false,
	}
	schemas["BatchItem"] = obj{
		"description": "One write, as POST /v1/records (method POST, no id), PUT /v1/records/{id} or DELETE /v1/records/{id} would do it. A batch names each id once.",
		"type":        "object",
		"required":    []any{"method"},
		"properties": obj{
			"method":        obj{"enum": []any{"POST", "PUT", "DELETE"}},
			"id":            obj{"type": "string", "description": "PUT and DELETE: the record, <centre>:<key>"},
			"if_match":      obj{"type": []any{"integer", "string"}, "description": `PUT and DELETE: the version the record must have, as If-Match: 3, "3" or "*"`},
			"if_none_match": obj{"const": "*", "description": "PUT: create the record or revive its tombstone, never replace it (412), as If-None-Match: *"},
			"record":        schemaRef("Submission"),
		},
		"additionalProperties": false,
	}
	schemas["BatchResponse"] = obj{
		"type":     "object",
		"required": []any{"items"},
		"properties": obj{
			"items": obj{"type": "array", "description": "one result per item, in the order sent", "items": obj{
				"type":     "object",
				"required": []any{"status"},
				"properties": obj{
					"status":  obj{"type": "integer", "description": "what the single-record route would have answered"},
					"record":  schemaRef("Record"),
					"problem": schemaRef("Problem"),
				},
				"additionalProperties": false,
			}},
		},
		"additionalProperties": false,
	}
	schemas["ListResponse"] = obj{
		"type":     "object",
		"required": []any{"items"},
		"properties": obj{
			"items":       obj{"type": "array", "items": schemaRef("Record")},
			"next_cursor": obj{"type": "string", "description": "pass as cursor for the next page; absent on the last page"},
			"total":       obj{"type": "integer", "minimum": 0, "description": "with q: the number of matches the caller may see, on all pages, as the index held them when this page was read (less those this page found deleted or no longer readable). With no write in between, a walk through the pages finds exactly this many; a record deleted or withdrawn during the walk, beyond the page that counted it, is counted but not found (and one written during it may be found though not counted). While the answer carries Liandong-Index-Behind, the index is that many changes short of the node's state and the total may be off by as many"},
			"hits": obj{"type": "array", "description": "with q: each item's relevance, in the order of items", "items": obj{
				"type":     "object",
				"required": []any{"id", "score", "matched"},
				"properties": obj{
					"id":      obj{"type": "string"},
					"score":   obj{"type": "number", "description": "BM25F relevance; comparable within one query only"},
					"matched": obj{"type": "array", "items": obj{"type": "string"}, "description": "the words of q the record matches"},
				},
				"additionalProperties": false,
			}},
		},
		"additionalProperties": false,
	}
	schemas["Change"] = obj{
		"type":     "object",
		"required": []any{"position", "record"},
		"properties": obj{
			"position": obj{"type": "string", "description": "opaque cursor of this change; pass as since (or Last-Event-ID) to continue after it"},
			"record":   schemaRef("Record"),
		},
		"additionalProperties": false,
	}
	schemas["Reason"] = obj{
		"type":     "object",
		"required": []any{"kind", "score"},
		"properties": obj{
			"kind":   obj{"enum": []any{"text", "keywords", "industry", "maturity", "challenge"}},
			"score":  obj{"type": "number", "minimum": 0, "maximum": 1, "description": "the factor's value"},
			"terms":  obj{"type": "array", "items": obj{"type": "string"}, "description": "text: the source's words the candidate shares; keywords: the source's keywords it contains; challenge: the targets it addresses"},
			"fields": obj{"type": "array", "items": obj{"type": "string"}, "description": "the candidate's fields where the shared words occur"},
			"detail": obj{"type": "string"},
		},
		"additionalProperties": false,
	}
	schemas["MatchItem"] = obj{
		"type":     "object",
		"required": []any{"id", "score", "reasons", "record"},
		"properties": obj{
			"id":      obj{"type": "string"},
			"score":   obj{"type": "number", "minimum": 0, "description": "text × (1 + ½·industry + ½·keywords + ¼·challenge) × (0.6 + 0.4·maturity)"},
			"reasons": obj{"type": "array", "items": schemaRef("Reason")},
			"record":  schemaRef("Record"),
		},
		"additionalProperties": false,
	}
	schemas["MatchResponse"] = obj{
		"type":     "object",
		"required": []any{"source", "matches"},
		"properties": obj{
			"source": schemaRef("Record"),
			"matches": obj{
				"type":                 "object",
				"description":          "ranked lists by catalogue, best first: supply and expert for a need; need and expert for a supply item",
				"propertyNames":        obj{"enum": anySlice(schema.Catalogues)},
				"additionalProperties": obj{"type": "array", "items": schemaRef("MatchItem")},
			},
		},
		"additionalProperties": false,
	}
	schemas["ChangesResponse"] = obj{
		"type":     "object",
		"required": []any{"changes", "next_cursor"},
		"properties": obj{
			"changes":     obj{"type": "array", "items": schemaRef("Change")},
			"next_cursor": obj{"type": "string", "description": "the since of the next poll; it moves on past changes the caller may not see or its filter leaves out, so an answer without changes is not the end of the feed when next_cursor differs from the since sent: poll again at once. The reader is caught up when changes is empty and next_cursor equals since"},
		},
		"additionalProperties": false,
	}
	schemas["HistoryResponse"] = obj{
		"description": "Versions of a record as its origin's signed log carries them, newest first. Versions written while the record was private never entered the log and are not listed.",
		"type":        "object",
		"required":    []any{"id", "origin", "items"},
		"properties": obj{
			"id":     obj{"type": "string"},
			"origin": obj{"type": "string"},
			"items": obj{"type": "array", "items": obj{
				"type":     "object",
				"required": []any{"seq", "version", "time", "op", "visibility", "kid", "hash", "prev_hash", "verified", "signature_check"},
				"properties": obj{
					"seq":        obj{"type": "integer", "minimum": 1, "description": "position in the origin's log"},
					"version":    obj{"type": "integer", "minimum": 1},
					"time":       obj{"type": "string", "format": "date-time", "description": "when the origin signed the entry"},
					"op":         obj{"enum": []any{historyCreate, historyUpdate, historyDelete, historyWithdraw}, "description": "withdraw: turned private at the origin, a deletion to every other centre"},
					"visibility": obj{"type": "string"},
					"kid":        obj{"type": "string", "description": "the origin's record-signing key"},
					"epoch":      obj{"type": "string"},
					"hash":       obj{"type": "string", "description": "SHA-256 of the entry's canonical bytes and signature (hex)"},
					"prev_hash":  obj{"type": "string"},
					"verified": obj{"enum": []any{verifiedSignedHere, verifiedAtReceipt},
						"description": "signed-here: this centre's own log, signed by this node; verified-at-receipt: checked against the trust bundle before it was stored"},
					"signature_check": obj{"type": "string", "description": "the signature checked again against the current trust bundle: valid, or why not (revoked-key, unknown-key, bad-signature …)"},
				},
				"additionalProperties": false,
			}},
			"next_cursor": obj{"type": "string", "description": "pass as cursor for older versions; absent on the last page"},
		},
		"additionalProperties": false,
	}
	head := obj{
		"type":       "object",
		"required":   []any{"origin", "seq", "hash"},
		"properties": obj{"origin": obj{"type": "string"}, "epoch": obj{"type": "string"}, "seq": obj{"type": "integer", "minimum": 0}, "hash": obj{"type": "string"}},
	}
	schemas["Head"] = head
	schemas["Federation"] = obj{
		"description": "This node's view of the federation: members, trust bundle, this replica's raft state and per-peer sync state and lag.",
		"type":        "object",
		"required":    []any{"centre", "bundle", "members"},
		"properties": obj{
			"centre":  obj{"type": "string"},
			"peer_id": obj{"type": "string"},
			"replica": schemaRef("ReplicaStatus"),
			"bundle": obj{"type": "object", "required": []any{"federation", "version"}, "properties": obj{
				"federation": obj{"type": "string"}, "version": obj{"type": "integer"}, "expires_at": obj{"type": "string", "format": "date-time"},
			}},
			"members": obj{"type": "array", "items": obj{"type": "object", "required": []any{"id"}, "properties": obj{
				"id": obj{"type": "string"}, "name": obj{"type": "string"}, "name_zh": obj{"type": "string"}, "removed": obj{"type": "boolean"},
			}}},
			"sync": obj{"type": "object", "properties": obj{
				"federation":     obj{"type": "string"},
				"bundle_version": obj{"type": "integer"},
				"centre":         obj{"type": "string"},
				"peer_id":        obj{"type": "string"},
				"addrs":          obj{"type": []any{"array", "null"}, "items": obj{"type": "string"}},
				"can_apply":      obj{"type": "boolean"},
				"block": obj{"type": "array", "items": obj{"type": "string"},
					"description": "this node's p2p.block as configured: centres it neither dials nor admits (an entry naming no centre blocks nothing)"},
				"peers": obj{"type": []any{"array", "null"}, "items": obj{"type": "object", "required": []any{"peer_id", "connected", "stalled"}, "properties": obj{
					"peer_id": obj{"type": "string"}, "member": obj{"type": "string"}, "connected": obj{"type": "boolean"}, "stalled": obj{"type": "boolean"},
					"addrs": obj{"type": "array", "items": obj{"type": "string"}}, "conn_addrs": obj{"type": "array", "items": obj{"type": "string"}},
					"rtt_seconds": obj{"type": "number"}, "last_error": obj{"type": "string"},
					"blocked":        obj{"type": "boolean", "description": "its centre is in this node's p2p.block: not dialled nor admitted, by the operator's choice"},
					"revoked":        obj{"type": "boolean", "description": "the trust bundle revokes this peer id: no node holding the bundle dials or admits it"},
					"revoked_reason": obj{"type": "string", "description": "the revocation's reason, when it gives one"},
					"last_contact":   obj{"type": "string", "format": "date-time"}, "heads": obj{"type": "array", "items": schemaRef("Head")},
				}}},
				"origins": obj{"type": []any{"array", "null"}, "items": obj{"type": "object", "required": []any{"origin", "local", "best", "lag_entries", "lag_seconds"}, "properties": obj{
					"origin": obj{"type": "string"}, "local": schemaRef("Head"), "best": schemaRef("Head"), "best_peer": obj{"type": "string"},
					"lag_entries": obj{"type": "integer", "minimum": 0}, "lag_seconds": obj{"type": "number", "minimum": 0}, "pulling": obj{"type": "boolean"},
				}}},
			}},
		},
	}
	schemas["ReplicaStatus"] = obj{
		"type":     "object",
		"required": []any{"replica_id", "state", "term", "commit_index", "applied_index"},
		"properties": obj{
			"replica_id": obj{"type": "string"}, "state": obj{"type": "string"}, "leader": obj{"type": "string"},
			"term": obj{"type": "integer"}, "commit_index": obj{"type": "integer"}, "applied_index": obj{"type": "integer"},
			"voters":    obj{"type": []any{"array", "null"}, "items": obj{"type": "string"}},
			"not_ready": obj{"type": "string", "description": "why this replica cannot serve (what /readyz answers 503 for); absent when ready"},
		},
	}
	schemas["Replica"] = obj{
		"type":     "object",
		"required": []any{"id", "raft_addr", "http"},
		"properties": obj{
			"id": obj{"type": "string"}, "raft_addr": obj{"type": "string"}, "http": obj{"type": "string"}, "peer_id": obj{"type": "string"},
		},
		"additionalProperties": false,
	}
	schemas["ReplicaInfo"] = obj{
		"type":     "object",
		"required": []any{"id", "raft_addr", "http", "suffrage", "leader"},
		"properties": obj{
			"id": obj{"type": "string"}, "raft_addr": obj{"type": "string"}, "http": obj{"type": "string"}, "peer_id": obj{"type": "string"},
			"suffrage": obj{"type": "string"}, "leader": obj{"type": "boolean"},
			"features":    obj{"type": "string", "description": "what the replica's build announced on its /healthz, as the leader last recorded it (comma-separated); the group uses a feature once every replica lists it"},
			"add_back_at": obj{"type": "string", "description": "set while a move to a new raft address (or to its recorded host name) is under way: the replica is taken out of the group and added back at this address, by whichever replica leads by then"},
		},
	}
	schemas["JWKS"] = obj{
		"type":     "object",
		"required": []any{"keys"},
		"properties": obj{"keys": obj{"type": "array", "items": obj{
			"type":     "object",
			"required": []any{"kty", "crv", "x", "kid", "centre", "nbf"},
			"properties": obj{
				"kty": obj{"const": "OKP"}, "crv": obj{"const": "Ed25519"}, "x": obj{"type": "string"}, "kid": obj{"type": "string"},
				"use": obj{"const": "sig"}, "alg": obj{"const": "EdDSA"}, "centre": obj{"type": "string"},
				"nbf": obj{"type": "integer"}, "exp": obj{"type": "integer"},
				"revoked_before": obj{"type": "integer", "description": "tokens this key signed with an iat before this time (seconds since the epoch) are revoked: refuse them"},
			},
		}}},
	}

	doc := obj{
		"openapi": "3.1.0",
		"info": obj{
			"title":   "liandong 联动 node API",
			"version": OpenAPIVersion,
			"summary": "Data exchange of the Beijing–Tianjin–Hebei National Technology Innovation Centre (京津冀国家技术创新中心)",
			"description": "Each centre's node serves its own records and the shared catalogues replicated from the other centres: " +
				"technology supply lists (科技成果供给清单, catalogue supply), industry need lists (产业技术需求清单, need) and the expert registry (专家库, expert). " +
				"Errors are application/problem+json (RFC 9457) naming the field, parameter or header at fault. Lists and the change feed page with opaque cursors. " +
				"Without a token only public records are readable (when the node allows anonymous reads); personal data is redacted unless the token has scope pii at the record's origin centre.",
		},
		"components": obj{
			"schemas": schemas,
			"securitySchemes": obj{
				"bearer": obj{"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA), issued by a member centre; scopes read, pii, write, admin"},
			},
			"responses": problemResponses(),
		},
		// No token is allowed (public records only); a token that is sent must be valid.
		"security": []any{obj{}, obj{"bearer": []any{}}},
		"paths":    paths(),
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode OpenAPI document: %w", err)
	}
	return buf.Bytes(), nil
}

// problemTypes lists the problem types the node answers with (titles), for
// clients that branch on them; a later build may add more.
func problemTypes() string {
	var kinds []string
	for kind, title := range titles {
		if kind == "client-closed" { // logged, never sent: the client left
			continue
		}
		kinds = append(kinds, ProblemTypePrefix+kind+" ("+title+")")
	}
	slices.Sort(kinds)
	return "one of " + strings.Join(kinds, ", ") + "; a later build may add others, which a client treats by status"
}

func problemResponses() obj {
	out := obj{}
	for name, desc := range map[string]string{
		"BadRequest":          "A malformed parameter, header or body; errors name the one at fault.",
		"Unauthorized":        "No token where one is needed, or a token that was refused (see WWW-Authenticate).",
		"Forbidden":           "The token does not allow this.",
		"NotFound":            "No such record or resource, or one the caller may not see.",
		"PreconditionFailed":  "If-Match does not match the record's version, or If-None-Match: * found it live.",
		"Unprocessable":       "The record does not pass validation; errors name each field at fault.",
		"Unavailable":         "The node cannot serve now (no raft leader, shutting down); retry after Retry-After seconds.",
		"Conflict":            "The record exists, the trust bundle offered is older than or differs from the one held, or a membership change would leave the group unable to commit.",
		"TooLarge":            fmt.Sprintf("The body is over the limit, which the detail names: %d bytes (1 MiB) for a record and for a whole batch, whatever its number of items; %d for a trust bundle. A record's body alone is at most %d bytes (422 beyond).", DefaultMaxBodyBytes, auth.MaxBundleBytes, schema.MaxBodyBytes),
		"InsufficientStorage": "The node's disk is full: writes are refused until space returns; reads go on.",
		"TooManyWrites":       "The node is serving as many writes as its configuration allows (max_writes, 1024 unless set): nothing of this one was done; send it again after Retry-After seconds.",
		"UnsupportedMedia":    "The body is not application/json in UTF-8.",
		"MethodNotAllowed":    "The route exists for other methods (see Allow).",
		"InternalServerError": "The node failed; the request id is in its log.",
		"FeedReset":           "The cursor is not of this node's change feed: another centre's node issued it (each centre's feed counts its own positions; the replicas of one centre share theirs), or it is from another life of this centre's feed (its state was rebuilt from its peers, which counts positions anew). Read the feed again from the beginning and reconcile.",
	} {
		out[name] = obj{"description": desc, "content": obj{"application/problem+json": obj{"schema": schemaRef("Problem")}}}
	}
	// Retry-After is what a partner's retry loop waits on, so the document
	// declares it where the node sends it: on every 503 (unavailable() sets
	// it), and on the 507s of a full disk (not on a backup's lack of room,
	// which no wait may cure).
	retryAfter := func(required bool, desc string) obj {
		return obj{"Retry-After": obj{"description": desc, "required": required, "schema": obj{"type": "integer", "minimum": 0}}}
	}
	out["Unavailable"].(obj)["headers"] = retryAfter(true, "seconds to wait before retrying (the same request, or at another replica of the centre)")
	out["TooManyWrites"].(obj)["headers"] = retryAfter(true, "seconds to wait before sending the write again")
	out["InsufficientStorage"].(obj)["headers"] = retryAfter(false, "seconds to wait before retrying, when the node expects space to return (a full disk)")
	return out
}

func respRef(name string) obj { return obj{"$ref": "#/components/responses/" + name} }

func jsonContent(s any) obj { return obj{"application/json": obj{"schema": s}} }

// op is one operation with the problem answers every /v1 route can give.
func op(id, summary string, params []any, ok obj, extra obj) obj {
	responses := obj{
		"400":     respRef("BadRequest"),
		"401":     respRef("Unauthorized"),
		"403":     respRef("Forbidden"),
		"503":     respRef("Unavailable"),
		"default": obj{"description": "a problem", "content": obj{"application/problem+json": obj{"schema": schemaRef("Problem")}}},
	}
	for k, v := range ok {
		responses[k] = v
	}
	o := obj{"operationId": id, "summary": summary, "responses": responses}
	if len(params) > 0 {
		o["parameters"] = params
	}
	for k, v := range extra {
		o[k] = v
	}
	return o
}

// openOp is an operational route: no authentication.
func openOp(id, summary string, ok obj) obj {
	return obj{"operationId": id, "summary": summary, "security": []any{}, "responses": ok}
}

func qparam(name, desc string, s obj) obj {
	return obj{"name": name, "in": "query", "description": desc, "schema": s}
}

func pathParam(name, desc string, s obj) obj {
	return obj{"name": name, "in": "path", "required": true, "description": desc, "schema": s}
}

func header(name, desc string, s obj) obj {
	return obj{"name": name, "in": "header", "description": desc, "schema": s}
}

func paths() obj {
	catalogue := qparam("catalogue", "only this catalogue", obj{"enum": anySlice(schema.Catalogues)})
	origin := qparam("origin", "only records whose origin is this centre: one the node knows (the trust bundle lists it, removed centres included, or the node holds records of it, tombstones included); any other is a 400 naming origin and the known centres, as the centre's raft leader judges it (a replica that does not know the centre asks the leader) (older builds answered it with an empty 200)", obj{"type": "string", "pattern": "^[a-z][a-z0-9-]{0,31}$"})
	limit := qparam("limit", "page size; a page also ends once its records reach 4 MiB (at least one record), with a next_cursor", obj{"type": "integer", "minimum": 1, "maximum": MaxLimit, "default": DefaultLimit})
	consistent := qparam("consistent", "true: read through the raft leader (linearizable): a replica that lags answers what the leader holds", obj{"enum": []any{"true", "false", "1", "0"}})
	code := obj{"type": "string", "pattern": "^[a-z0-9_-]{1,64}$"}
	recordID := pathParam("id", "<centre>:<key>", obj{"type": "string", "pattern": "^[a-z][a-z0-9-]{0,31}:[A-Za-z0-9._-]{1,128}$"})
	ifMatch := header("If-Match", `the version the record must have: 3, "3" (the ETag) or * (it must exist)`, obj{"type": "string"})
	ifNoneMatch := header("If-None-Match", "* only: create the record, or revive its tombstone, but never replace it (412 when it exists)", obj{"const": "*"})
	since := qparam("since", "position cursor: the next_cursor of the previous answer, or 0 for the beginning", obj{"type": "string"})
	recordOK := func(status, desc string) obj {
		return obj{status: obj{
			"description": desc,
			"headers":     obj{"ETag": obj{"description": `"<version>"`, "schema": obj{"type": "string"}}},
			"content":     jsonContent(schemaRef("Record")),
		}}
	}
	merge := func(ms ...obj) obj {
		out := obj{}
		for _, m := range ms {
			for k, v := range m {
				out[k] = v
			}
		}
		return out
	}
	submission := obj{"required": true, "content": jsonContent(schemaRef("Submission"))}

	return obj{
		"/v1/records": obj{
			"get": op("listRecords", "List records page by page, or search them with q", []any{
				catalogue,
				qparam("q", "full-text search, Chinese or English, over titles, summaries, descriptions, keywords, organisations, expert names, industries and challenge targets: "+
					"up to 10 words separated by spaces, each of which must match (a Chinese word by most of its character pairs, so 锂电池正极 finds 锂电池的正极材料); "+
					"results are ranked by relevance (BM25) unless sort=id", obj{"type": "string", "maxLength": maxQueryRunes}),
				qparam("sort", "relevance (default with q: best first, paged by score; a write between pages can move a record across the cursor) or id (default without q: stable paging)",
					obj{"enum": []any{sortRelevance, sortID}}),
				qparam("industry", "industry code (also matches an expert's fields)", code),
				origin,
				qparam("status", "need status; a need without one is open, and an open need whose expires_at has passed is closed", code),
				qparam("updated_since", "RFC 3339 time: records updated at or after it. Times are the origin's clock, and writes of different records can take effect a few milliseconds out of their order: to follow changes, read the change feed (GET /v1/changes), or overlap each poll with the last by a margin", obj{"type": "string", "format": "date-time"}),
				qparam("cursor", "next_cursor of the previous page", obj{"type": "string"}),
				limit,
				qparam("ids", "up to "+strconv.Itoa(MaxLimit)+" record ids, comma-separated: the records named that the caller may read, in that order, each once (absent, deleted and unreadable ones left out); takes no other parameter but consistent",
					obj{"type": "string"}),
				consistent,
			}, obj{"200": obj{"description": "one page", "content": jsonContent(schemaRef("ListResponse"))}}, nil),
			"post": op("createRecord", "Create a record at this centre (the node assigns the id)", nil, merge(
				obj{"201": obj{
					"description": "created",
					"headers": obj{
						"ETag":     obj{"schema": obj{"type": "string"}},
						"Location": obj{"schema": obj{"type": "string"}},
					},
					"content": jsonContent(schemaRef("Record")),
				}},
				obj{"409": respRef("Conflict"), "413": respRef("TooLarge"), "415": respRef("UnsupportedMedia"), "422": respRef("Unprocessable"), "429": respRef("TooManyWrites"), "507": respRef("InsufficientStorage")},
			), obj{"requestBody": submission}),
		},
		"/v1/records/{id}": obj{
			"get": op("getRecord", "Read one record", []any{recordID, consistent}, merge(recordOK("200", "the record"), obj{"404": respRef("NotFound")}), nil),
			"put": op("putRecord", "Create or replace a record under a caller-chosen key", []any{recordID, ifMatch, ifNoneMatch}, merge(
				recordOK("200", "replaced"), recordOK("201", "created"),
				obj{"404": respRef("NotFound"), "412": respRef("PreconditionFailed"), "413": respRef("TooLarge"), "415": respRef("UnsupportedMedia"), "422": respRef("Unprocessable"), "429": respRef("TooManyWrites"), "507": respRef("InsufficientStorage")},
			), obj{"requestBody": submission, "description": "Replaces the record with the submission, but for what the caller did not send and could not have sent back: " +
				"without visibility, an existing record keeps its own (a new one gets federation); " +
				"personal body members (" + strings.Join(schema.PersonalFields, ", ") + ") the caller could not read (no pii scope) and did not send are kept. " +
				"Sending one, even null, is a deliberate change."}),
			"delete": op("deleteRecord", "Delete a record (a tombstone replicates)", []any{recordID, ifMatch}, merge(
				recordOK("200", "the tombstone"), obj{"404": respRef("NotFound"), "412": respRef("PreconditionFailed"), "429": respRef("TooManyWrites"), "507": respRef("InsufficientStorage")},
			), nil),
		},
		"/v1/batch": obj{
			"post": op("batch", "Apply up to "+strconv.Itoa(MaxBatchItems)+" writes in one request, of at most "+strconv.Itoa(DefaultMaxBodyBytes)+" bytes in all (413 beyond: send fewer items a request)", nil, merge(
				obj{"200": obj{"description": "each item's result, in the order sent", "content": jsonContent(schemaRef("BatchResponse")),
					"headers": obj{"Retry-After": obj{"description": "the longest any refused item was given (seconds), when one was", "schema": obj{"type": "integer"}}}}},
				obj{"413": respRef("TooLarge"), "415": respRef("UnsupportedMedia"), "429": respRef("TooManyWrites")},
			), obj{"requestBody": obj{"required": true, "content": jsonContent(schemaRef("BatchRequest"))},
				"description": "Each item is answered as its single-record route would answer it (status, and record or problem). " +
					"One refused item neither stops nor undoes the others. Items are applied concurrently, in no set order; a batch names each record id once."}),
		},
		"/v1/records/{id}/history": obj{
			"get": op("recordHistory", "The versions of a record its origin's signed log carries, newest first, with seq, time, signing key, entry hash and signature check", []any{
				recordID,
				qparam("cursor", "next_cursor of the previous page (older versions)", obj{"type": "string"}),
				qparam("limit", "page size", obj{"type": "integer", "minimum": 1, "maximum": MaxHistoryLimit, "default": DefaultHistoryLimit}),
			}, obj{
				"200": obj{"description": "one page of versions", "content": jsonContent(schemaRef("HistoryResponse"))},
				"404": respRef("NotFound"),
			}, nil),
		},
		"/v1/changes": obj{
			"get": op("changes", "The change feed in this node's apply order; a long poll with wait", []any{
				since, limit,
				qparam("wait", "seconds to wait for a change when there is none (fractions allowed; capped by the node)", obj{"type": "number", "minimum": 0}),
				catalogue, origin,
			}, obj{"200": obj{"description": "changes after since", "content": jsonContent(schemaRef("ChangesResponse"))}, "410": respRef("FeedReset")}, nil),
		},
		"/v1/changes/stream": obj{
			"get": op("changesStream", "The change feed as server-sent events", []any{
				since, catalogue, origin,
				header("Last-Event-ID", "the id of the last event received; resumes after it (wins over since)", obj{"type": "string"}),
			}, obj{"200": obj{
				"description": "A text/event-stream without end. Each change is an event `change` whose id is the change's position cursor and whose data is a Change (JSON). " +
					"An event with an id and no data moves the cursor past changes the caller may not see. Comment lines are heartbeats. " +
					"The stream ends when the node shuts down: reconnect with Last-Event-ID. A failure after the stream started is an event `error` whose data is a Problem; " +
					"so is the end of a stream whose token expired or was revoked by a new trust bundle (status 401): reconnect with a valid token and Last-Event-ID.",
				"content": obj{"text/event-stream": obj{"schema": obj{"type": "string", "description": "events whose data is a Change (#/components/schemas/Change)"}}},
			}, "410": respRef("FeedReset")}, nil),
		},
		"/v1/match/{id}": obj{
			"get": op("match", "Matchmaking (供需对接): ranked supply items and experts for a need, or needs and experts for a supply item, with reasons", []any{
				pathParam("id", "a need or a supply item, <centre>:<key>", obj{"type": "string", "pattern": "^[a-z][a-z0-9-]{0,31}:[A-Za-z0-9._-]{1,128}$"}),
				qparam("catalogue", "only this list: supply or expert for a need, need or expert for a supply item", obj{"enum": anySlice(schema.Catalogues)}),
				qparam("limit", "length of each list", obj{"type": "integer", "minimum": 1, "maximum": MaxMatchLimit, "default": DefaultMatchLimit}),
			}, obj{
				"200": obj{"description": "the ranked lists", "content": jsonContent(schemaRef("MatchResponse"))},
				"404": respRef("NotFound"),
				"422": respRef("Unprocessable"),
			}, nil),
		},
		"/v1/schema/{catalogue}": obj{
			"get": op("jsonSchema", "JSON Schema (draft 2020-12) of a catalogue's records", []any{
				pathParam("catalogue", "supply, need or expert", obj{"type": "string"}),
			}, obj{
				"200": obj{"description": "the JSON Schema", "content": obj{"application/schema+json": obj{"schema": obj{"type": "object"}}}},
				"404": respRef("NotFound"),
			}, nil),
		},
		"/v1/federation": obj{
			"get": op("federation", "Members, trust bundle version, per-peer sync state and lag", nil, obj{
				"200": obj{"description": "the federation as this node sees it", "content": jsonContent(schemaRef("Federation"))},
				"404": respRef("NotFound"),
			}, nil),
		},
		"/v1/admin/replicas": obj{
			"get": op("listReplicas", "The replicas of this centre's raft group (scope admin)", nil, obj{
				"200": obj{"description": "replicas", "content": jsonContent(obj{"type": "object", "required": []any{"replicas"}, "properties": obj{"replicas": obj{"type": "array", "items": schemaRef("ReplicaInfo")}}})},
				"404": respRef("NotFound"),
			}, nil),
			"post": op("addReplica", "Add a replica to this centre's raft group (scope admin)", nil, obj{
				"200": obj{"description": "added", "content": jsonContent(obj{"type": "object", "properties": obj{"added": obj{"type": "string"}}})},
				"404": respRef("NotFound"), "409": respRef("Conflict"), "422": respRef("Unprocessable"),
			}, obj{"requestBody": obj{"required": true, "content": jsonContent(schemaRef("Replica"))}}),
		},
		"/v1/admin/replicas/{id}": obj{
			"delete": op("removeReplica", "Remove a replica from this centre's raft group (scope admin). Asked to remove itself, the leader hands leadership over and the new leader removes it; the group's only voter is not removed", []any{
				pathParam("id", "replica id", obj{"type": "string"}),
			}, obj{
				"200": obj{"description": "removed", "content": jsonContent(obj{"type": "object", "properties": obj{"removed": obj{"type": "string"}}})},
				"404": respRef("NotFound"), "409": respRef("Conflict"), "422": respRef("Unprocessable"),
			}, nil),
		},
		"/v1/bundle": obj{
			"get": openOp("getBundle", "The signed trust bundle this node runs on (public keys, members, revocations)", obj{
				"200": obj{"description": "signed trust bundle", "content": jsonContent(obj{"type": "object", "required": []any{"payload", "signatures"}})},
				"404": respRef("NotFound"),
			}),
		},
		"/v1/admin/bundle": obj{
			"post": op("publishBundle", "Install a newer signed trust bundle at this centre; sync spreads it (scope admin)", nil, obj{
				"200": obj{"description": "installed, or already held", "content": jsonContent(obj{"type": "object", "required": []any{"version", "installed"},
					"properties": obj{"federation": obj{"type": "string"}, "version": obj{"type": "integer"}, "installed": obj{"type": "boolean"}, "expires_at": obj{"type": "string", "format": "date-time"}}})},
				"400": respRef("BadRequest"), "409": respRef("Conflict"), "413": respRef("TooLarge"), "422": respRef("Unprocessable"),
			}, obj{"requestBody": obj{"required": true, "content": jsonContent(obj{"type": "object", "required": []any{"payload", "signatures"}})}}),
		},
		"/v1/admin/purge/{origin}": obj{
			"post": op("purgeOrigin", "Stop serving the records of a centre that left the federation: they become tombstones here (scope admin)", []any{
				pathParam("origin", "a removed member's centre id", obj{"type": "string"}),
			}, obj{
				"200": obj{"description": "purged", "content": jsonContent(obj{"type": "object", "required": []any{"origin", "purged"},
					"properties": obj{"origin": obj{"type": "string"}, "purged": obj{"type": "integer"}}})},
				"409": respRef("Conflict"),
			}, nil),
		},
		"/v1/admin/backup": obj{
			"get": op("backup", "A consistent copy of the leader's state file, taken while it serves (scope admin), once the audit log has recorded it (state.backup). It holds the centre's records with their personal data and its audit log: keep it as such. `liandong centre restore` lays it into an empty data directory; see deploy/README.md", nil, obj{
				"200": obj{"description": "the state file (bbolt); its headers Liandong-Backup-Centre, Liandong-Backup-Applied-Index and Liandong-Backup-Own-Seq say what it holds",
					"content": obj{"application/octet-stream": obj{"schema": obj{"type": "string", "format": "binary"}}}},
				"307": obj{"description": "asked of a follower: Location is the same path at the leader (send the token again there)"},
				"404": respRef("NotFound"), "503": respRef("Unavailable"),
			}, nil),
		},
		"/v1/audit": obj{
			"get": op("auditLog", "The centre's signed, hash-chained audit log of admin actions and bundle changes (scope admin)", []any{
				qparam("from", "first seq to return", obj{"type": "integer", "minimum": 1}),
				qparam("limit", "at most this many events", obj{"type": "integer", "minimum": 1, "maximum": MaxLimit}),
			}, obj{
				"200": obj{"description": "events", "content": jsonContent(obj{"type": "object", "required": []any{"events"},
					"properties": obj{"events": obj{"type": "array", "items": obj{"type": "object", "required": []any{"seq", "at", "centre", "actor", "action", "prev", "kid", "sig"}}}, "next": obj{"type": "integer"}}})},
				"400": respRef("BadRequest"), "404": respRef("NotFound"),
			}, nil),
		},
		"/v1/openapi.json": obj{
			"get": op("openAPI", "This document", nil, obj{
				"200": obj{"description": "OpenAPI 3.1", "content": jsonContent(obj{"type": "object", "required": []any{"openapi", "paths"}})},
			}, nil),
		},
		"/healthz": obj{
			"get": openOp("healthz", "Liveness, the features of this build its group waits for every replica to have, and whether the disk is full", obj{"200": obj{"description": "alive", "content": jsonContent(obj{"type": "object", "required": []any{"status"},
				"properties": obj{"status": obj{"const": "ok"}, "features": obj{"type": "array", "items": obj{"type": "string"}}, "feed_epoch": obj{"type": "string"},
					"disk_full": obj{"type": "boolean"}, "disk": obj{"type": "string"}}})}}),
		},
		"/readyz": obj{
			"get": openOp("readyz", "Readiness: a raft leader is known and the state file works", obj{
				"200": obj{"description": "ready", "content": jsonContent(obj{"type": "object", "required": []any{"status", "centre"}, "properties": obj{"status": obj{"const": "ready"}, "centre": obj{"type": "string"}}})},
				"503": respRef("Unavailable"),
			}),
		},
		"/metrics": obj{
			"get": openOp("metrics", "Prometheus metrics (liandong_…)", obj{"200": obj{"description": "exposition format", "content": obj{"text/plain": obj{"schema": obj{"type": "string"}}}}}),
		},
		"/.well-known/jwks.json": obj{
			"get": openOp("jwks", "Token-signing keys of every member centre", obj{"200": obj{"description": "JWK set", "content": jsonContent(schemaRef("JWKS"))}}),
		},
	}
}

func anySlice(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
