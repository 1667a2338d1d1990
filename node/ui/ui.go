// Package ui is the web console of a node, served at /ui/ for centre staff:
// browse and search the three catalogues of every centre, read a record with
// its signed version history and its matchmaking results, create and edit the
// centre's own records, and look at the federation's state. Pages are rendered
// on the server (html/template) in Chinese, or in English with ?lang=en; the
// templates, style sheet and the little JavaScript there is are embedded in
// the binary (no CDN).
//
// The console decides nothing itself. Every page is built from requests to the
// node's own API handler, served in-process with the signed-in user's bearer
// token (or none), so what a user may read, which fields are redacted and which
// records are valid are exactly what the API says to a partner system. Signing
// in stores the pasted token in a session cookie (HttpOnly, SameSite=Strict, no
// expiry: it ends with the browser session). Forms carry a per-session CSRF
// token checked against a second SameSite=Strict cookie, and cross-origin
// POSTs are refused by http.CrossOriginProtection.
package ui

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"liandong/auth"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the console is served.
const Prefix = "/ui/"

// Options configure the console.
type Options struct {
	// API is the node's API handler (node/api.New); every request goes through it.
	API http.Handler
	// Centre is this node's centre id.
	Centre string
	// Bundle returns the current trust bundle, for the names of the centres; may be nil.
	Bundle func() *auth.Bundle
	// PageSize is the number of records on a list page (20 if 0; at most 50).
	PageSize int
	Logger   *slog.Logger
	// Now is the clock (time.Now if nil).
	Now func() time.Time
}

// Server is the console's http.Handler.
type Server struct {
	api      http.Handler
	centre   string
	bundle   func() *auth.Bundle
	pageSize int
	log      *slog.Logger
	now      func() time.Time
	pages    map[string]*template.Template
	mux      *http.ServeMux
	handler  http.Handler
}

// New returns the console.
func New(opts Options) (*Server, error) {
	if opts.API == nil {
		return nil, errors.New("ui: no API handler")
	}
	if opts.Centre == "" {
		return nil, errors.New("ui: no centre")
	}
	s := &Server{api: opts.API, centre: opts.Centre, bundle: opts.Bundle, pageSize: opts.PageSize, log: opts.Logger, now: opts.Now}
	if s.pageSize <= 0 {
		s.pageSize = 20
	}
	s.pageSize = min(s.pageSize, 50)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.bundle == nil {
		s.bundle = func() *auth.Bundle { return nil }
	}
	var err error
	if s.pages, err = parseTemplates(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	m := http.NewServeMux()
	m.HandleFunc("GET /ui/{$}", s.page(s.listPage))
	m.HandleFunc("GET /ui/records/{id}", s.page(s.recordPage))
	m.HandleFunc("GET /ui/records/{id}/edit", s.page(s.editPage))
	m.HandleFunc("POST /ui/records/{id}/edit", s.formPost(s.editSubmit))
	m.HandleFunc("GET /ui/new", s.page(s.newPage))
	m.HandleFunc("POST /ui/new", s.formPost(s.newSubmit))
	m.HandleFunc("GET /ui/federation", s.page(s.federationPage))
	m.HandleFunc("GET /ui/signin", s.page(s.signinPage))
	m.HandleFunc("POST /ui/signin", s.page(s.signinSubmit))
	m.HandleFunc("POST /ui/signout", s.page(s.signoutSubmit))
	m.Handle("GET /ui/static/", http.StripPrefix("/ui/static/", staticHandler(http.FileServerFS(static))))
	m.HandleFunc("/ui/", s.page(func(w http.ResponseWriter, r *http.Request, p *page) error {
		return errNotFound
	}))
	s.mux = m
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.page(func(w http.ResponseWriter, r *http.Request, p *page) error { return errCSRF })(w, r)
	}))
	s.handler = cop.Handler(m)
	return s, nil
}

// Mount serves the console under /ui/ (and redirects /ui to it) and every other
// path with next, the API.
func Mount(console, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, Prefix):
			console.ServeHTTP(w, r)
		case r.URL.Path == "/ui" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// ServeHTTP serves the console.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	s.handler.ServeHTTP(w, r)
}

func staticHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=300")
		next.ServeHTTP(w, r)
	})
}

// Cookies of the console. All are scoped to /ui/, HttpOnly and SameSite=Strict.
const (
	sessionCookie = "ld_session" // the bearer token; no expiry: ends with the browser session
	csrfCookie    = "ld_csrf"    // the per-session CSRF token forms must repeat
	flashCookie   = "ld_flash"   // a one-time notice after a redirect
	csrfField     = "_csrf"
)

func secure(r *http.Request) bool {
	return r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: Prefix, MaxAge: maxAge,
		HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteStrictMode,
	})
}

func clearCookie(w http.ResponseWriter, r *http.Request, name string) { setCookie(w, r, name, "", -1) }

func newCSRF() string {
	var b [24]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// user is the signed-in token's holder as its claims say. The claims are read
// (not verified) only to label the page and offer the right buttons, and only
// after the API has accepted the token; the API checks the token on every request.
type user struct {
	Centre, Subject string
	Scopes          []string
	ExpiresAt       time.Time
	// Home: the token was issued by this node's centre.
	Home bool
}

func (u *user) has(scope string) bool {
	for _, s := range u.Scopes {
		if s == scope {
			return true
		}
	}
	return false
}

// CanWrite says whether to offer creating and editing.
func (u *user) CanWrite() bool { return u != nil && u.Home && (u.has("write") || u.has("admin")) }

// PII says whether the token sees personal data of this centre's records.
func (u *user) PII() bool { return u != nil && u.Home && (u.has("pii") || u.has("admin")) }

// ScopeList joins the scopes for display.
func (u *user) ScopeList() string { return strings.Join(u.Scopes, " ") }

// Errors a handler returns to get the standard error page.
var (
	errNotFound = errors.New("not found")
	errCSRF     = errors.New("csrf")
)

// handlerFunc serves one page; returning an error renders the error page.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p *page) error

// page wraps a handler: language, session, CSRF check on POST, errors.
func (s *Server) page(fn handlerFunc) http.HandlerFunc { return s.wrap(fn, false) }

// formPost wraps the handler of a record form's submission like page, except
// that a submission failing the CSRF check (the CSRF cookie changed since the
// form was opened, as after signing in or out in another tab) still reaches
// fn, with page.CSRFRefused set, for it to show the form again with what was
// typed instead of losing it. Nothing may be written for such a submission.
// A cross-origin submission never gets here (http.CrossOriginProtection).
func (s *Server) formPost(fn handlerFunc) http.HandlerFunc { return s.wrap(fn, true) }

func (s *Server) wrap(fn handlerFunc, keepForm bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		l, fromParam := lang(r)
		if fromParam {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: l, Path: Prefix, MaxAge: 365 * 24 * 3600,
				HttpOnly: true, Secure: secure(r), SameSite: http.SameSiteLaxMode})
		}
		w.Header().Set("Cache-Control", "no-store")
		p := &page{s: s, Lang: l, Centre: s.centre, URL: r.URL}
		if c, err := r.Cookie(csrfCookie); err == nil && len(c.Value) == 48 {
			p.CSRF = c.Value
		} else {
			p.CSRF = newCSRF()
			setCookie(w, r, csrfCookie, p.CSRF, 0)
		}
		if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
			p.token = c.Value
			p.User = claimsOf(c.Value, s.centre)
		}
		if c, err := r.Cookie(flashCookie); err == nil && c.Value != "" {
			p.Flash = tr(l, "flash."+c.Value)
			if _, ok := messages["flash."+c.Value]; !ok {
				p.Flash = ""
			}
			clearCookie(w, r, flashCookie)
		}
		var err error
		if r.Method == http.MethodPost && !s.csrfOK(w, r) {
			err = errCSRF
			if keepForm && r.PostForm != nil {
				p.CSRFRefused = true
				err = fn(w, r, p)
			}
		} else {
			err = fn(w, r, p)
		}
		if err != nil {
			s.fail(w, r, p, err)
		}
	}
}

// csrfOK reads the form and checks its CSRF token against the cookie. A form
// that cannot be read leaves r.PostForm nil.
func (s *Server) csrfOK(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	if err := r.ParseForm(); err != nil {
		r.PostForm = nil
		return false
	}
	c, err := r.Cookie(csrfCookie)
	if err != nil || len(c.Value) != 48 {
		return false
	}
	got := r.PostForm.Get(csrfField)
	return subtle.ConstantTimeCompare([]byte(got), []byte(c.Value)) == 1
}

// fail renders the error page for err.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, p *page, err error) {
	status := http.StatusInternalServerError
	msg := ""
	switch {
	case errors.Is(err, errNotFound):
		status, msg = http.StatusNotFound, p.T("err.notfound")
	case errors.Is(err, errCSRF):
		status, msg = http.StatusForbidden, p.T("err.csrf")
	default:
		if pr := asProblem(err); pr != nil {
			status = pr.Status
			switch pr.Status {
			case http.StatusUnauthorized:
				switch {
				case p.token != "":
					// The token stopped working (expired, revoked): sign out.
					s.signOut(w, r, p)
					msg = p.T("signin.expired")
				case r.URL.Path == Prefix+"federation":
					msg = p.T("fed.needscope")
				default:
					msg = p.T("err.signin")
				}
			case http.StatusForbidden:
				msg = fmt.Sprintf(p.T("err.forbidden"), problemText(err))
			default:
				msg = fmt.Sprintf(p.T("err.api"), problemText(err))
			}
		} else {
			s.log.Error("console page failed", "path", r.URL.Path, "err", err)
			msg = fmt.Sprintf(p.T("err.api"), err.Error())
		}
	}
	p.Title = p.T("err.title")
	s.render(w, status, "error", p, errorData{Message: msg, Status: status})
}

// signOut forgets a session whose token stopped working (expired, revoked).
func (s *Server) signOut(w http.ResponseWriter, r *http.Request, p *page) {
	if p.token != "" {
		clearCookie(w, r, sessionCookie)
		p.token, p.User = "", nil
	}
}

type errorData struct {
	Message string
	Status  int
}
