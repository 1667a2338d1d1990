// Package api owns the HTTP API of a node: the /v1 record, change-feed, schema and
// federation routes partner systems call, and the operational endpoints (/healthz,
// /readyz, /metrics, /.well-known/jwks.json).
//
// It talks to the node through the Service interface it declares (a *node.Node
// satisfies it), checks tokens with an auth.TokenVerifier and decides what each
// caller may see or change with an auth.Authorizer. It never imports raft or
// bbolt; the store's and the node's sentinel errors are translated to HTTP status
// codes in one table (problem.go).
//
// # Routes
//
//	GET    /v1/records?catalogue=&q=&sort=&industry=&origin=&status=&updated_since=&cursor=&limit=&consistent=
//	GET    /v1/records?ids=a,b,…&consistent=   up to 500 records by id, the readable ones, in order
//	GET    /v1/records/{id}?consistent=        ETag: "<version>"
//	POST   /v1/records                 201, Location, ETag
//	PUT    /v1/records/{id}            201 created / 200 replaced
//	DELETE /v1/records/{id}            200 with the tombstone
//	POST   /v1/batch                   up to 500 of the three above, 1 MiB in all; 200, one result each
//	GET    /v1/changes?since=&limit=&wait=&catalogue=&origin=
//	GET    /v1/changes/stream?since=&catalogue=&origin=   text/event-stream, Last-Event-ID
//	GET    /v1/match/{id}?catalogue=&limit=               matchmaking with reasons
//	GET    /v1/schema/{catalogue}      application/schema+json
//	GET    /v1/openapi.json            OpenAPI 3.1 of all of these (openapi.go)
//	GET    /v1/federation              when Options.Federation is set
//	GET    /healthz /readyz /metrics /.well-known/jwks.json
//
// limit is 1–500 (default 50); a page also ends once its records reach
// store.DefaultPageBytes (4 MiB; at least one record), so a page of large
// records may hold fewer than limit and still have a next_cursor. q is a full-text query of up to ten words
// (node/search: Chinese by character bigrams, English by words, BM25F
// ranking) when the Service is a Searcher; the answer then adds total and
// hits (score and matched words per item; total counts the matches the
// index held when the page was read, less those the page found deleted or
// no longer readable, and a purged origin's none: without writes during a
// walk through the pages, it is what the walk finds; a record deleted or
// withdrawn during it, beyond the page that counted it, is counted and not
// found; with a Liandong-Index-Behind header, off by up to that many
// changes) and is ranked by relevance, paged
// by a cursor on (score, id) that a write between pages can shift (sent
// without its q, a 400 naming cursor), or with sort=id in stable id order. A Service that is not a Searcher filters q by
// substring, in id order. consistent=true reads through the raft leader (a
// follower forwards the request; the leader answers after a barrier), so a
// replica that lags answers what the leader has committed; without it a
// replica answers from its own state. wait is in seconds, fractions allowed. Every /v1 route authenticates
// (a bad token is a 401, never anonymous) and asks the Authorizer for the
// collection first, so 401/403 come before anything else; /healthz, /readyz,
// /metrics, the JWKS and GET /v1/bundle (the signed trust bundle: public keys
// that partners verify signed records and tokens with) are open. A follower that would forward a write or a
// consistent read answers 401 itself, at once, for a token no leader could
// accept (malformed, a bad signature, impossible claims, revoked) and for a
// write without a token; a token whose key, issuer or validity the leader's
// newer bundle or clock may judge otherwise is forwarded. A read a follower
// serves itself goes to the leader too when its token's issuer or signing key
// is one the follower's bundle does not list (a centre or key just added,
// whose bundle it has not applied yet): the leader's answer is relayed, and
// one already forwarded is a 503 (retry); a backup is redirected there (307)
// instead, as any backup asked of a follower is. The leader refuses such a token
// only once it has applied its predecessors' log (a leader just elected may
// not have applied the bundle yet): until then it answers 503 (retry).
//
// # Wire conventions
//
//   - Responses are JSON (no HTML escaping, so Chinese text and "<" travel as is).
//     Errors are RFC 9457 application/problem+json documents: type (a
//     "urn:liandong:problem:…" URN clients may branch on), title, status, detail,
//     instance (the request path), request_id (also in the X-Request-Id header and
//     the server log) and, for 400 and 422, errors: [{path, rule, message}].
//   - List pages and the change feed use opaque cursors (base64url). A malformed
//     cursor is a 400 naming the parameter. Unknown or repeated query parameters
//     are refused (400) rather than ignored, so a typo ("catalog=") does not
//     silently widen a query; a route that takes none refuses any (a PUT
//     with ?if_match=3 is not a PUT without a precondition).
//   - origin= (lists, search, the change feed and its stream) must name a
//     centre this node knows: one the trust bundle lists, removed centres
//     included, or one whose records, tombstones included, the node holds.
//     Any other is a 400 (rule enum) whose message lists the known centres;
//     before, a mistyped centre (tianjn) was answered an empty 200, which
//     taught the caller nothing. A known centre without records is still an
//     empty 200. The centre's raft leader decides, once it has applied all
//     that is committed: a follower that does not know the centre (one just
//     added, whose bundle it has not applied yet) sends the request to the
//     leader and relays its answer, rather than refuse what the group knows.
//   - Records submitted by clients: catalogue, visibility (default federation
//     for a new record), schema, expires_at and body come from the client. id, origin, version,
//     created_at and updated_at are the server's: created_at and updated_at are
//     ignored, so a GET → edit → PUT round trip works; id and origin must, when
//     present, agree with the URL and this centre (else 422); version, when
//     present on PUT, is a precondition like If-Match (412 when stale; 400 when it
//     contradicts an If-Match header); on POST only version 1 or none is accepted.
//     deleted: true is refused (use DELETE); broker is ignored. An expires_at
//     already past is refused (422), unless the record it replaces has expired
//     too, so that an expired record can still be edited. Any other member
//     is refused (400), as are duplicate member names, trailing data, invalid
//     UTF-8, nesting deeper than 64 and integers beyond 2^53 (which the signed
//     log could not carry exactly).
//   - PUT replaces the record, but for what the caller did not send and could
//     not have sent back: without visibility, a live record keeps its own (the
//     default would publish a private record to every centre, irreversibly);
//     personal body members (schema.PersonalFields) that a caller without the
//     pii scope got redacted, and did not send, are kept, so GET → edit → PUT
//     does not erase them. Sending one, even null, is a deliberate change. A
//     PUT that kept anything is written against the version it merged with;
//     without If-Match it merges again when a concurrent write overtook it.
//     One that found no record creates only, so a record another writer
//     creates meanwhile is merged with, not published, and not moved to
//     another catalogue. A PUT
//     does not move a live record to another catalogue (422 naming
//     catalogue): partners mirroring one catalogue's feed would never learn it
//     left; delete it first, and the old catalogue's feed carries the
//     tombstone.
//   - PUT answers 201 when it created the record (also over a tombstone) and 200
//     when it replaced one; DELETE answers 200 with the tombstone envelope, so the
//     caller learns the tombstone's version. Both accept If-Match as a version
//     number, quoted ETag ("3") or "*" (the record must exist, at whatever
//     version: a concurrent write does not make it fail); a stale one is a
//     412 and changes nothing, whose detail names the current version only
//     to a caller who may read the record. An If-Match on a record that does not exist is
//     a 412 for PUT, which without it would create the record, and a 404 for
//     DELETE, which without it would be a 404 anyway (RFC 9110 §13.2.1: a
//     server ignores preconditions when the request without them would not
//     succeed). POST refuses If-Match (400), as a batch item does. PUT also accepts If-None-Match: * (create the
//     record, or revive its tombstone, never replace: 412 when it is live),
//     which the state machine checks as it applies the write, so a record
//     another writer created after the caller looked is not overwritten; any
//     other If-None-Match, or one beside If-Match, is a 400. While a replica
//     of the centre has not announced a build that checks it (/healthz
//     features: if-absent), reviving a tombstone so is a 503 with Retry-After.
//   - A revived record (a PUT over a tombstone) is the same record's next
//     version: its version goes on from the tombstone's, and it keeps the
//     created_at of the id's first version, in GET, lists, the change feed
//     and the signed entry other centres apply (the origin computes it and
//     every centre keeps what the entry carries). The revival is what PUT's
//     201 and history's "create" (after a "delete" or "withdraw") say, at the
//     revived version's updated_at: read that, not created_at, for when a
//     record came back. (Why not restart created_at: every replica of the
//     origin computes and signs the entry, so it would need a group feature
//     gate, and records revived before would keep the old value anyway.)
//   - POST /v1/batch takes {"items": [{"method", "id", "if_match",
//     "if_none_match", "record"}]}: each item is what POST, PUT or DELETE on
//     /v1/records would do (id, if_match and if_none_match standing for the
//     URL's id and the If-Match and If-None-Match headers), and is
//     answered {"status", "record"} or {"status", "problem"} as that route
//     would answer it, in the order sent. The request is 200 whenever the
//     batch itself could be read, so clients must look at each item's status
//     (liandong_http_batch_items_total counts them). Items are applied
//     concurrently (what makes a batch cheaper than its requests: raft commits
//     them together), in no set order and not atomically, so a batch names
//     each record id once. The answer's Retry-After is the longest any
//     item's problem was given. An item's problem has instance /v1/batch#items/N,
//     and its field paths are the single route's (relative to the record, or
//     method, id, if_match). The body is checked as strict JSON as a whole,
//     so a duplicate member, lone surrogate or inexact integer anywhere in it
//     refuses the batch (400), and nesting counts from the batch (a record
//     inside it may nest 3 levels less than alone).
//   - A node serves at most max_writes write requests at once (its config;
//     1024 unless set; a batch counts as one): past that, a write is answered
//     429 (urn:liandong:problem:too-many-writes) with Retry-After: 1 before its
//     body is read, so nothing of it was done and it can be sent again as it
//     was (client.IsTooManyWrites). A request the caller may not make at all
//     is answered 401 or 403 first. liandong_http_writes_in_flight and
//     liandong_http_max_writes show how close a node runs to it, and
//     liandong_http_writes_shed_total counts the writes it refused so. The
//     bound is the leader's: a follower forwards writes to it and relays its
//     429, which the follower's liandong_http_requests_total counts but its
//     writes_shed_total does not.
//   - A record the caller may not read is answered 404 like an unknown one, so ids
//     of private records do not leak; lists, search, matchmaking and the change
//     feed leave such records out. The feed's tombstones follow the same rule (a
//     deleted record keeps its last visibility), except that a change that
//     narrows who may read a record (a shared record turned private; a public
//     one made federation-only) shows as a tombstone to every caller that could
//     read the version before it. Personal data is redacted unless the
//     Authorizer says otherwise.
//
// # Long polls, streams and shutdown
//
// Every change keeps its position, but one whose record a later change took out
// of the caller's reach (withdrawn, narrowed) is handed as a tombstone, without
// the body its origin took back, and one whose record was since deleted comes
// without personal data: a reader catching up from an older cursor gets no
// withdrawn text or deleted contacts; a reader at the head saw each change as
// it happened. A purged origin's changes come as tombstones.
//
// GET /v1/changes waits up to wait seconds (capped at Options.MaxWait) for the
// node's Changed channel. GET /v1/changes/stream sends the same changes as
// server-sent events ("change", id = the position cursor), an id-only event
// when it skips changes the caller may not see, and a heartbeat comment every
// Options.Heartbeat; a client resumes with Last-Event-ID. A stream opened with
// a token ends with an "error" event (a 401 problem) when the token expires
// (TokenVerifier.Expiry: exp plus the leeway) or, checked when the trust
// bundle changes, no longer verifies (a revocation): at the latest before the
// next change is sent, or at the next heartbeat of an idle stream. When the
// handler is served by a server from NewServer, Shutdown ends every waiting
// poll (with the cursor it had reached) and every stream at once, so a
// graceful stop waits for neither.
package api
