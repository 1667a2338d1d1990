package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

// Service is what the API needs of a node. *node.Node satisfies it.
type Service interface {
	Centre() string
	Create(ctx context.Context, rec *schema.Record) (*schema.Record, error)
	Put(ctx context.Context, id string, rec *schema.Record, ifMatch uint64) (*schema.Record, error)
	// PutIfAbsent creates record id, or revives it over its tombstone, in one
	// step; a live record makes it fail with store.ErrExists.
	PutIfAbsent(ctx context.Context, id string, rec *schema.Record) (*schema.Record, error)
	Delete(ctx context.Context, id string, ifMatch uint64) (*schema.Record, error)
	Get(ctx context.Context, id string) (*schema.Record, error)
	List(ctx context.Context, q store.Query) ([]*schema.Record, string, error)
	Changes(ctx context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error)
	Changed() <-chan struct{}
	Ready() error
	Bundle() *auth.Bundle
}

// Options configure the handler. Only Service is required.
type Options struct {
	Service Service
	// Verifier checks bearer tokens; by default one that reads Service.Bundle and
	// takes the audience from the bundle's federation id.
	Verifier *auth.TokenVerifier
	// Authorizer decides per request and record; by default this centre's, with
	// anonymous reads of public records allowed. Its Centre must be Service.Centre().
	Authorizer *auth.Authorizer
	// Registerer receives the HTTP metrics; nil keeps them in a private registry.
	Registerer prometheus.Registerer
	// Gatherer is served at /metrics; when nil and Registerer is also a Gatherer
	// (a *prometheus.Registry), that is served; otherwise /metrics is 404.
	Gatherer prometheus.Gatherer
	// Federation produces the body of GET /v1/federation; nil makes it 404.
	Federation func(ctx context.Context) (any, error)
	Logger     *slog.Logger
	// MaxBodyBytes bounds request bodies (DefaultMaxBodyBytes if 0).
	MaxBodyBytes int64
	// MaxWait caps the long-poll wait of GET /v1/changes (DefaultMaxWait if 0).
	MaxWait time.Duration
	// Heartbeat is the comment interval of idle change streams (DefaultHeartbeat if 0).
	Heartbeat time.Duration
	// Forward carries the requests a follower forwards to its leader;
	// nil is http.DefaultTransport. (The failpoints build cuts it while the
	// replica is isolated from its raft group.)
	Forward http.RoundTripper
	// ForwardTimeout bounds a forwarded request, from sending it to the
	// leader's last byte (the leader's writes take up to the node's
	// ApplyTimeout). Past the server's WriteTimeout (MaxWait plus 15 s,
	// NewServer) the answer could no longer reach the caller, so 0 means
	// that. Without a bound, a leader whose API accepts the connection and
	// never answers (a one-way cut, a wedged process) held the request, a
	// goroutine and a connection for as long as the caller waited. A change
	// stream relayed from the leader is bounded by the leader's silence
	// instead (its heartbeats, every Heartbeat, keep it open).
	ForwardTimeout time.Duration
	// Now is the clock that decides which records have expired (time.Now if
	// nil): lists and search take an open need past its expires_at as closed,
	// matchmaking leaves such records out, and writes refuse to set an
	// expiry already past.
	Now func() time.Time
	// MaxWrites bounds the writes (record creates, updates and deletes, and
	// batches, each counted once) this node serves at once; past it a write
	// is answered 429 with Retry-After, before its body is read. 0 means
	// DefaultMaxWrites; a negative value, no bound.
	MaxWrites int
}

// Defaults and limits.
const (
	DefaultMaxBodyBytes = 1 << 20
	DefaultMaxWait      = 60 * time.Second
	DefaultLimit        = 50
	MaxLimit            = 500
	// DefaultMaxWrites is Options.MaxWrites's default: well above what a
	// leader commits in the time a client waits (raft's apply queue holds
	// 256 proposals), well below what would hold a GiB of bodies.
	DefaultMaxWrites = 1024
	// writesRetryAfter is the Retry-After of a write refused for want of a
	// slot: a slot frees as soon as one write commits.
	writesRetryAfter = 1
)

// handler is the http.Handler New returns.
type handler struct {
	svc        Service
	centre     string
	verifier   *auth.TokenVerifier
	authz      *auth.Authorizer
	federation func(ctx context.Context) (any, error)
	log        *slog.Logger
	maxBody    int64
	maxWait    time.Duration
	heartbeat  time.Duration
	forward    http.RoundTripper // nil: http.DefaultTransport
	forwardFor time.Duration     // Options.ForwardTimeout, default applied
	now        func() time.Time
	metrics    *httpMetrics
	mux        *http.ServeMux

	// shutdown is closed by NewServer's Shutdown hook to end long polls.
	shutdown     chan struct{}
	shutdownOnce sync.Once

	// batchSlots bounds the writes of all batches under way at once, so that
	// a few large batches do not queue thousands of proposals in raft.
	batchSlots chan struct{}
	// writeSlots bounds the write requests under way at once
	// (Options.MaxWrites); nil, no bound.
	writeSlots chan struct{}
}

// New returns the HTTP handler of a node.
func New(opts Options) (http.Handler, error) {
	if opts.Service == nil {
		return nil, errors.New("api: no service")
	}
	h := &handler{
		svc:        opts.Service,
		centre:     opts.Service.Centre(),
		verifier:   opts.Verifier,
		authz:      opts.Authorizer,
		federation: opts.Federation,
		log:        opts.Logger,
		maxBody:    opts.MaxBodyBytes,
		maxWait:    opts.MaxWait,
		heartbeat:  opts.Heartbeat,
		forward:    opts.Forward,
		forwardFor: opts.ForwardTimeout,
		now:        opts.Now,
		mux:        http.NewServeMux(),
		shutdown:   make(chan struct{}),
		batchSlots: make(chan struct{}, maxBatchWrites),
	}
	if !schema.ValidCentreID(h.centre) {
		return nil, fmt.Errorf("api: service centre %q is not a centre id", h.centre)
	}
	if h.now == nil {
		h.now = time.Now
	}
	switch {
	case opts.MaxWrites == 0:
		h.writeSlots = make(chan struct{}, DefaultMaxWrites)
	case opts.MaxWrites > 0:
		h.writeSlots = make(chan struct{}, opts.MaxWrites)
	}
	if h.verifier == nil {
		h.verifier = &auth.TokenVerifier{Bundle: opts.Service.Bundle}
	}
	if h.authz == nil {
		h.authz = &auth.Authorizer{Centre: h.centre, AllowAnonymous: true}
	} else if h.authz.Centre != h.centre {
		return nil, fmt.Errorf("api: authorizer is for centre %q, the service is %q", h.authz.Centre, h.centre)
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.maxBody <= 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.maxWait <= 0 {
		h.maxWait = DefaultMaxWait
	}
	if h.forwardFor <= 0 {
		h.forwardFor = writeTimeout(h.maxWait)
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	gatherer := opts.Gatherer
	if gatherer == nil && opts.Registerer != nil {
		gatherer, _ = opts.Registerer.(prometheus.Gatherer)
	}
	routes := h.routes(gatherer)
	var err error
	if h.metrics, err = newHTTPMetrics(reg, routes); err != nil {
		return nil, err
	}
	h.metrics.maxWrites.Set(float64(cap(h.writeSlots)))
	for _, rt := range routes {
		h.mux.HandleFunc(rt.pattern, rt.handler)
	}
	return h, nil
}

// route is one ServeMux pattern with its handler and the status codes its
// liandong_http_requests_total series start at, at zero, before its first
// request: ok, what it answers when it succeeds (its
// liandong_http_request_duration_seconds series start with those), and fail,
// the server failures it can answer. Client errors (4xx) are left to appear
// when they happen: every route can answer most of them, too many series for
// what no alert counts.
type route struct {
	pattern  string
	handler  http.HandlerFunc
	ok, fail []int
}

// Server failures by kind of route: any /v1 route fails with 500 (a panic, an
// answer cut short, an unexpected error) and 503 (the node or its store not
// serving, the leader unreachable: toProblem); a write also with 507 (a full
// disk).
var (
	codesOK      = []int{http.StatusOK}
	codesCreated = []int{http.StatusCreated}
	failRead     = []int{http.StatusInternalServerError, http.StatusServiceUnavailable}
	failWrite    = []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusInsufficientStorage}
	// failLimited are the codes of a write under limitWrites: 429 is no
	// failure of the server's, but LiandongWritesShed counts it from 0.
	failLimited = []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusInsufficientStorage, http.StatusTooManyRequests}
)

// routes are the API's routes, those the mux serves and those the metrics
// start with; GET /metrics when there is a gatherer to serve.
func (h *handler) routes(gatherer prometheus.Gatherer) []route {
	rs := []route{
		{"GET /v1/records", h.readMaybeConsistent(h.v1(h.listRecords)), codesOK, failRead},
		{"POST /v1/records", h.toLeader(h.v1(h.noParams(auth.ActionWrite, h.limitWrites(h.createRecord)))), codesCreated, failLimited},
		{"GET /v1/records/{id}", h.readMaybeConsistent(h.v1(h.getRecord)), codesOK, failRead},
		{"GET /v1/records/{id}/history", h.v1(h.history), codesOK, failRead},
		{"PUT /v1/records/{id}", h.toLeader(h.v1(h.noParams(auth.ActionWrite, h.limitWrites(h.putRecord)))), []int{http.StatusOK, http.StatusCreated}, failLimited},
		{"DELETE /v1/records/{id}", h.toLeader(h.v1(h.noParams(auth.ActionWrite, h.limitWrites(h.deleteRecord)))), codesOK, failLimited},
		{"POST /v1/batch", h.toLeader(h.v1(h.noParams(auth.ActionWrite, h.limitWrites(h.batch)))), codesOK, failLimited},
		{"GET /v1/admin/replicas", h.v1(h.noParams(auth.ActionAdmin, h.listReplicas)), codesOK, failRead},
		{"POST /v1/admin/replicas", h.toLeader(h.v1(h.noParams(auth.ActionAdmin, h.addReplica))), codesOK, failWrite},
		{"DELETE /v1/admin/replicas/{id}", h.toLeader(h.v1(h.noParams(auth.ActionAdmin, h.removeReplica))), codesOK, failWrite},
		{"GET /v1/bundle", h.v1(h.getBundle), codesOK, failRead},
		{"POST /v1/admin/bundle", h.toLeader(h.v1(h.noParams(auth.ActionAdmin, h.publishBundle))), codesOK, failWrite},
		{"GET /v1/audit", h.v1(h.auditLog), codesOK, failRead},
		{"POST /v1/admin/purge/{origin}", h.toLeader(h.v1(h.noParams(auth.ActionAdmin, h.purgeOrigin))), codesOK, failWrite},
		{backupRoute, h.v1(h.noParams(auth.ActionAdmin, h.backup)), codesOK, failRead},
		{"GET /v1/changes", h.v1(h.changes), codesOK, failRead},
		{changesStreamRoute, h.v1(h.changesStream), codesOK, failRead},
		{"GET /v1/schema/{catalogue}", h.v1(h.noParams(auth.ActionRead, h.jsonSchema)), codesOK, failRead},
		{"GET /v1/openapi.json", h.v1(h.openAPI), codesOK, failRead},
		{"GET /v1/match/{id}", h.v1(h.match), codesOK, failRead},
	}
	if h.federation != nil {
		rs = append(rs, route{"GET /v1/federation", h.v1(h.noParams(auth.ActionRead, h.federationState)), codesOK, failRead})
	}
	rs = append(rs,
		route{"GET /healthz", h.plain(h.healthz), codesOK, nil},
		// Not ready is 503, counted like any other.
		route{"GET /readyz", h.plain(h.readyz), codesOK, []int{http.StatusServiceUnavailable}},
		route{"GET /.well-known/jwks.json", h.plain(h.jwks), codesOK, nil},
	)
	if gatherer != nil {
		prom := promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
			ErrorLog:      promLogger{h.log},
			ErrorHandling: promhttp.ContinueOnError,
		})
		rs = append(rs, route{"GET /metrics", h.plain(func(w http.ResponseWriter, r *http.Request) error {
			prom.ServeHTTP(w, r)
			return nil
		}), codesOK, nil})
	}
	return rs
}

// NewServer returns an http.Server for h with timeouts suited to the API: long
// enough to write a long poll (the handler's MaxWait plus 15 s, 75 s by default),
// short enough that idle and slow clients do not pile up. When h came from New,
// Shutdown also ends waiting long polls.
func NewServer(addr string, h http.Handler) *http.Server {
	var maxWait time.Duration
	if a, ok := h.(*handler); ok {
		maxWait = a.maxWait
	}
	srv := &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      writeTimeout(maxWait),
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	if a, ok := h.(*handler); ok {
		srv.RegisterOnShutdown(a.stopPolls)
	}
	return srv
}

// writeTimeout is the WriteTimeout of NewServer's server for a handler whose
// long polls wait up to maxWait (never less than DefaultMaxWait's).
func writeTimeout(maxWait time.Duration) time.Duration {
	return max(maxWait, DefaultMaxWait) + 15*time.Second
}

// stopPolls ends every long poll, now and from now on.
func (h *handler) stopPolls() {
	h.shutdownOnce.Do(func() { close(h.shutdown) })
}

// reqInfo travels in the request context so the outer layer can log and count
// what the inner handlers decided.
type reqInfo struct {
	id        string
	matched   bool // one of our routes handled the request
	principal *auth.Principal
	err       error // the error behind a problem answer, for the log
}

type ctxKey struct{}

func info(r *http.Request) *reqInfo {
	if ri, ok := r.Context().Value(ctxKey{}).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{}
}

// errAnswerCut is the log's error for an answer cut short with
// http.ErrAbortHandler when the handler said no more.
var errAnswerCut = errors.New("answer cut short")

// ServeHTTP counts, logs and recovers around the router.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	h.metrics.inFlight.Inc()
	defer h.metrics.inFlight.Dec()

	ri := &reqInfo{id: requestID(r)}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, ri))
	rw := &responseWriter{ResponseWriter: w, ri: ri, h: h, r: r}
	rw.Header().Set("X-Request-Id", ri.id)

	abort := false
	func() {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				// The answer was cut short on purpose (a streamed answer
				// failing part-way, a forwarded one the leader cut): counted
				// and logged below, and the connection cut after.
				abort = true
				if ri.err == nil {
					ri.err = errAnswerCut
				}
				return
			}
			h.log.Error("http handler panicked", "method", r.Method, "path", r.URL.Path,
				"request_id", ri.id, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			ri.err = fmt.Errorf("panic: %v", v)
			if rw.wroteHeader {
				// Part of an answer is out: break the connection rather than let a
				// truncated body pass for a complete one.
				abort = true
				return
			}
			h.writeProblem(rw, r, internalProblem(ri.id))
		}()
		h.mux.ServeHTTP(rw, r)
	}()
	if !rw.wroteHeader && !abort {
		rw.WriteHeader(http.StatusOK)
	}

	route := routeLabel(r.Pattern, ri.matched)
	method := methodLabel(r.Method)
	took := time.Since(start)
	status := rw.status
	if abort {
		// The status line said otherwise, but the client got no whole
		// answer: a server failure, for the metrics and the log.
		status = http.StatusInternalServerError
	}
	h.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	h.metrics.duration.WithLabelValues(route, method, strconv.Itoa(status)).Observe(took.Seconds())

	level, msg := slog.LevelDebug, "http request"
	switch {
	case status >= 500 && status != http.StatusServiceUnavailable:
		level, msg = slog.LevelError, "http request failed"
	case status == http.StatusServiceUnavailable && ri.err != nil:
		// Readiness probes answer 503 without an error: they would flood the log.
		level, msg = slog.LevelWarn, "http request unavailable"
	}
	// The attributes are built only for a line the log keeps: most requests
	// log at debug, which a node runs without, and building them was a
	// dozen allocations a request.
	if ctx := context.Background(); h.log.Enabled(ctx, level) {
		attrs := []any{"method", r.Method, "route", route, "path", r.URL.Path, "status", status,
			"bytes", rw.bytes, "took", took, "request_id", ri.id, "principal", ri.principal.String()}
		if abort {
			attrs = append(attrs, "cut_short", true)
		}
		if level > slog.LevelDebug || ri.err != nil {
			attrs = append(attrs, "err", ri.err)
		}
		h.log.Log(ctx, level, msg, attrs...)
	}
	if abort {
		panic(http.ErrAbortHandler)
	}
}

// routeLabel is the ServeMux pattern without its method, never the raw path.
func routeLabel(pattern string, matched bool) string {
	if pattern == "" || !matched {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(pattern, " "); ok {
		return path
	}
	return pattern
}

func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete,
		http.MethodPatch, http.MethodOptions:
		return m
	}
	return "other"
}

// requestID keeps a well-formed X-Request-Id from a proxy, or makes one.
func requestID(r *http.Request) string {
	if id := r.Header.Get("X-Request-Id"); id != "" && len(id) <= 64 {
		ok := true
		for i := 0; i < len(id) && ok; i++ {
			c := id[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		}
		if ok {
			return id
		}
	}
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// responseWriter records the status and size, and turns the ServeMux's own plain
// text 404 and 405 answers into problem documents.
type responseWriter struct {
	http.ResponseWriter
	ri          *reqInfo
	h           *handler
	r           *http.Request
	status      int
	bytes       int64
	wroteHeader bool
	replaced    bool // a mux answer was replaced by a problem
	swallow     bool // the body the mux writes after a replaced header
}

func (w *responseWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if !w.ri.matched && !w.replaced && (code == http.StatusNotFound || code == http.StatusMethodNotAllowed) {
		// The ServeMux answered by itself: no route, or a route for another method.
		w.replaced = true
		hdr := w.Header()
		hdr.Del("Content-Type")
		hdr.Del("X-Content-Type-Options")
		var p *problem
		if code == http.StatusNotFound {
			p = newProblem(http.StatusNotFound, "not-found", "no such resource: "+w.r.URL.Path)
		} else {
			p = newProblem(http.StatusMethodNotAllowed, "method-not-allowed",
				fmt.Sprintf("%s is not allowed here; allowed: %s", w.r.Method, hdr.Get("Allow")))
		}
		w.h.writeProblem(w, w.r, p)
		w.swallow = true
		return
	}
	w.status, w.wroteHeader = code, true
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.swallow {
		return len(b), nil
	}
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
		if w.swallow {
			return len(b), nil
		}
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// v1Handler serves a /v1 route for an authenticated (or anonymous) principal. A
// returned error becomes a problem answer through the table in problem.go.
type v1Handler func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error

// noParams refuses query parameters on a route that takes none, as the routes
// that take some refuse the unknown ones: a write sent with ?if_match=3
// must not go through as one without a precondition. A caller the route's
// action is not for gets its 401/403 first, as from every route.
func (h *handler) noParams(action auth.Action, fn v1Handler) v1Handler {
	return func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
		if r.URL.RawQuery != "" {
			if _, err := parseQuery(r.URL.RawQuery); err != nil {
				if _, aerr := h.authorize(p, action, nil); aerr != nil {
					return aerr
				}
				return err
			}
		}
		return fn(w, r, p)
	}
}

// limitWrites runs fn while it holds one of the node's write slots, and
// refuses the write with 429 when none is free: a node that takes every write
// it is sent queues them in raft until each waits out its client, holding a
// goroutine and a body apiece, where a partner told at once to come back in a
// second loses nothing (the write was not begun). The caller must be allowed
// to write at all before it may take a slot, so that requests refused anyway
// (no token, a reader's token) neither wait for one nor are told 429, and
// the slot is taken before the body is read, which it bounds.
func (h *handler) limitWrites(fn v1Handler) v1Handler {
	if h.writeSlots == nil {
		return fn
	}
	return func(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
		if _, err := h.authorize(p, auth.ActionWrite, nil); err != nil {
			return err
		}
		select {
		case h.writeSlots <- struct{}{}:
		default:
			h.metrics.writesShed.Inc()
			return tooManyWrites(cap(h.writeSlots))
		}
		h.metrics.writesInFlight.Inc()
		defer func() {
			h.metrics.writesInFlight.Dec()
			<-h.writeSlots
		}()
		return fn(w, r, p)
	}
}

// v1 authenticates the caller before fn: no Authorization header means the
// anonymous principal; a header that is not a valid bearer token is a 401, never
// a fallback to anonymous.
func (h *handler) v1(fn v1Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ri := info(r)
		ri.matched = true
		w.Header().Add("Vary", "Authorization")
		w.Header().Set("Cache-Control", "no-store")
		var p *auth.Principal
		err := h.caughtUp()
		if err == nil {
			p, err = h.authenticate(r)
			if err != nil && h.tokenForLeader(err) && r.Pattern == backupRoute {
				// The leader judges it, where the backup goes anyway: sent
				// there, not proxied (a large copy would be cut at the
				// forward bound; backupAtLeader).
				if err = backupAtLeader(w, r, h.svc.(Replicated)); err == nil {
					return
				}
			} else if err != nil && h.tokenForLeader(err) {
				// Not this follower's to refuse: the leader may hold the
				// bundle that lists the token's issuer or key.
				if err = h.leaderJudges(w, r, r.Pattern == changesStreamRoute, "this replica's trust bundle does not list the token's issuer or signing key, and may only be behind its centre's raft leader (a centre or key just added to the federation), which alone can tell; retry"); err == nil {
					return
				}
			} else if err != nil && unknownToBundle(err) {
				p, err = h.authenticateOnceApplied(r, err)
			}
		}
		if err == nil {
			ri.principal = p
			err = fn(w, r, p)
		}
		if err != nil {
			h.fail(w, r, err)
		}
	}
}

// changesStreamRoute is the change stream's route: forwarded, it is relayed
// as a stream (leaderJudges).
const changesStreamRoute = "GET /v1/changes/stream"

// tokenForLeader reports whether err, the refusal of a request's token, is
// one a follower cannot make for its leader: the issuer or signing key is one
// its trust bundle does not list. The bundle comes through raft, and a
// follower that has not applied the version listing a centre or key just
// added refused the token 401 (on a read, which it serves itself) while the
// leader and every caught-up replica took it, and the Go client's feed
// follower stops for good on a 401. Such a request goes to the leader, as
// refusedAtFollower lets a write go; a token wrong by any other measure (a
// bad signature from a key it knows, malformed, revoked) is refused here.
func (h *handler) tokenForLeader(err error) bool {
	if !unknownToBundle(err) {
		return false
	}
	rep, ok := h.svc.(Replicated)
	return ok && !rep.IsLeader()
}

// unknownToBundle reports whether err refused a token only for an issuer or
// signing key the trust bundle this replica has applied does not list.
func unknownToBundle(err error) bool {
	return errors.Is(err, auth.ErrTokenUnknownKey) || errors.Is(err, auth.ErrTokenIssuer)
}

// termApplier is the part of the node that waits until, as leader, it has
// applied its predecessors' log (node.Node.AwaitTermApplied).
type termApplier interface {
	AwaitTermApplied(ctx context.Context) error
}

// authenticateOnceApplied checks r's token again, at the leader, once it has
// applied its predecessors' log; refused is the refusal of the token by the
// bundle it held, for an unknown issuer or key. A leader just elected applies
// the entries of earlier terms only once its own first one commits (later
// with a slow disk or a backlog), the bundle listing a centre or key just
// added among them: it refused 401, for good to the Go client's feed
// follower, the token a follower sent it to judge (tokenForLeader), as the
// origin= and cursor checks would have without their barrier. The wait is
// one barrier a term, not one a request: a token of no member costs a leader
// that has applied its log nothing more. Until it has, the answer is 503
// (retry), not a verdict.
func (h *handler) authenticateOnceApplied(r *http.Request, refused error) (*auth.Principal, error) {
	ta, ok := h.svc.(termApplier)
	if !ok {
		return nil, refused
	}
	if err := ta.AwaitTermApplied(r.Context()); err != nil {
		switch {
		case errors.Is(err, node.ErrLogNeedsRestart):
			// Before ErrDiskFull, which it wraps: freeing space alone does
			// not cure it. Not toProblem's 507 either, for the reason below.
			return nil, unavailable("this replica leads its centre's raft group and cannot apply its predecessors' log, whose trust bundle may list the token's issuer or signing key, until its operators free space on its disk and restart it (its raft log could not start its next segment); retry", 60, err)
		case errors.Is(err, node.ErrDiskFull):
			// Applying waits for space the operators must free: not a
			// matter of a second, and the 507 of a write ("reads go on")
			// would mislead a read.
			return nil, unavailable("this replica leads its centre's raft group and cannot apply its predecessors' log, whose trust bundle may list the token's issuer or signing key, until space is freed on its disk (it is full); retry", 30, err)
		case errors.Is(err, context.Canceled):
			// The node words a request context's end as its ErrTimeout
			// wrapping ctx.Err(), which toProblem would answer first. The
			// cause tells who ended it: a stop's drain (node/server; it
			// wraps node.ErrShutdown) ends it while the client is still
			// there to read the answer, which must not be "the client
			// closed the request".
			if cause := context.Cause(r.Context()); cause != nil && !errors.Is(cause, context.Canceled) {
				if errors.Is(cause, node.ErrShutdown) {
					return nil, fmt.Errorf("wait for this leader's log before judging a token: %w", cause)
				}
				break // another end of the request's: the 503 below
			}
			// The client left: 499, not a 503 of the server's.
			return nil, fmt.Errorf("wait for this leader's log before judging a token: %w", context.Canceled)
		case errors.Is(err, node.ErrStateFailed), errors.Is(err, node.ErrShutdown),
			errors.Is(err, node.ErrNotLeader):
			// Answered as any request they end: at another replica, or later.
			return nil, err
		}
		return nil, unavailable("this replica leads its centre's raft group and has not applied its predecessors' log yet, whose trust bundle may list the token's issuer or signing key; retry", 1, err)
	}
	return h.authenticate(r)
}

// replayer is the part of the node that knows whether it has applied the raft
// log it held at start (node.Node.CaughtUp).
type replayer interface{ CaughtUp() error }

// caughtUp refuses every /v1 request, before its token is checked, while the
// node replays its raft log after a restart: its records are partial and its
// trust bundle may be one a later, not yet replayed, version revoked tokens
// from. Writes a follower forwards go to the leader before this.
func (h *handler) caughtUp() error {
	if rp, ok := h.svc.(replayer); ok {
		return rp.CaughtUp()
	}
	return nil
}

// plain serves an operational route without authentication.
func (h *handler) plain(fn func(w http.ResponseWriter, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		info(r).matched = true
		if err := fn(w, r); err != nil {
			h.fail(w, r, err)
		}
	}
}

const bearerChallenge = `Bearer realm="liandong"`

func (h *handler) authenticate(r *http.Request) (*auth.Principal, error) {
	vals := r.Header.Values("Authorization")
	if len(vals) == 0 {
		return auth.AnonymousPrincipal(), nil
	}
	bad := func(code, detail string, cause error) error {
		p := newProblem(http.StatusUnauthorized, "unauthorized", detail)
		p.header.Set("WWW-Authenticate", bearerChallenge+`, error="`+code+`"`)
		p.cause = cause
		return p
	}
	if len(vals) > 1 {
		return nil, bad("invalid_request", "send one Authorization header", nil)
	}
	token, ok := bearerToken(vals[0])
	if !ok {
		return nil, bad("invalid_request", "the Authorization header must be `Bearer <token>`", nil)
	}
	p, err := h.verifier.Verify(token)
	if err != nil {
		return nil, bad("invalid_token", "the bearer token was refused: "+err.Error(), err)
	}
	return p, nil
}

// bearerToken returns the token of an Authorization header of the form
// `Bearer <token>`.
func bearerToken(header string) (string, bool) {
	scheme, token, _ := strings.Cut(strings.TrimSpace(header), " ")
	token = strings.TrimSpace(token)
	return token, strings.EqualFold(scheme, "Bearer") && token != ""
}

// authorize turns a refusal into a 401 or 403 problem.
func (h *handler) authorize(p *auth.Principal, act auth.Action, rec *schema.Record) (auth.Decision, error) {
	d := h.authz.Authorize(p, act, rec)
	if d.Allow {
		return d, nil
	}
	status := d.Status
	if status != http.StatusUnauthorized {
		status = http.StatusForbidden
		if p == nil || p.Anonymous {
			status = http.StatusUnauthorized
		}
	}
	detail := d.Reason
	if detail == "" {
		detail = "not allowed"
	}
	if status == http.StatusUnauthorized {
		pr := newProblem(status, "unauthorized", detail)
		pr.header.Set("WWW-Authenticate", bearerChallenge)
		return d, pr
	}
	return d, newProblem(status, "forbidden", detail)
}

// promLogger adapts slog to promhttp's error log.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) { l.log.Warn("serve metrics", "err", fmt.Sprint(v...)) }
