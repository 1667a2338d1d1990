package ui

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"liandong/schema"
)

// page is what every template gets: the language, the user, the CSRF token and
// the page's own Data. Its methods translate and format.
type page struct {
	s      *Server
	token  string
	Lang   string
	Title  string
	Centre string
	User   *user
	CSRF   string
	Flash  string
	Nav    string
	URL    *url.URL
	Data   any
	// CSRFRefused: the submission failed the CSRF check (see Server.formPost).
	CSRFRefused bool
}

// T translates a message key.
func (p *page) T(key string) string { return tr(p.Lang, key) }

// Tf translates a message key and formats it with args.
func (p *page) Tf(key string, args ...any) string { return fmt.Sprintf(tr(p.Lang, key), args...) }

// LangURL is the current page in language l.
func (p *page) LangURL(l string) string {
	q := p.URL.Query()
	q.Set("lang", l)
	return p.URL.Path + "?" + q.Encode()
}

// OtherLang is the language the switch offers.
func (p *page) OtherLang() string {
	if p.Lang == langEN {
		return langZH
	}
	return langEN
}

// CentreName is a short name of a centre.
func (p *page) CentreName(id string) string {
	if n, ok := centreShort[id]; ok {
		if p.Lang == langEN {
			return n[1]
		}
		return n[0]
	}
	if b := p.s.bundle(); b != nil {
		if m, ok := b.Member(id); ok {
			if p.Lang == langZH && m.NameZH != "" {
				return m.NameZH
			}
			if m.Name != "" {
				return m.Name
			}
		}
	}
	return id
}

// CatName names a catalogue.
func (p *page) CatName(c string) string {
	if _, ok := messages["cat."+c]; ok {
		return p.T("cat." + c)
	}
	return c
}

// IndustryName names an industry code.
func (p *page) IndustryName(code string) string { return industryName(p.Lang, code) }

// Code names a code of a kind (vis, status, kind, mode, role, ip, op, ver), or
// returns it as it is.
func (p *page) Code(kind, code string) string {
	if _, ok := messages[kind+"."+code]; ok {
		return p.T(kind + "." + code)
	}
	return code
}

func (p *page) optionLabel(label string) string {
	if code, ok := strings.CutPrefix(label, "industry:"); ok {
		return p.IndustryName(code)
	}
	return p.T(label)
}

// Time formats t in China time.
func (p *page) Time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(chinaTime).Format("2006-01-02 15:04")
}

// Date formats t as a date in China time.
func (p *page) Date(t *time.Time) string {
	if t == nil || t.IsZero() {
		return ""
	}
	return t.In(chinaTime).Format(time.DateOnly)
}

// Expired reports whether rec has expired.
func (p *page) Expired(rec *schema.Record) bool { return rec != nil && rec.Expired(p.s.now()) }

var funcs = template.FuncMap{
	"short": func(s string, n int) string {
		if len(s) <= n {
			return s
		}
		return s[:n] + "…"
	},
	"pct": func(f float64) string { return strconv.FormatFloat(f*100, 'f', 0, 64) + "%" },
	"num": func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) },
	"join": func(ss []string, sep string) string {
		return strings.Join(ss, sep)
	},
	"deref": func(t *time.Time) time.Time {
		if t == nil {
			return time.Time{}
		}
		return *t
	},
}

var pageNames = []string{"list", "record", "form", "federation", "signin", "error"}

func parseTemplates() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: templates of %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// render writes page name with status.
func (s *Server) render(w http.ResponseWriter, status int, name string, p *page, data any) {
	p.Data = data
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render console page", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// redirect answers a form with 303 See Other to path, with an optional one-time notice.
func redirect(w http.ResponseWriter, r *http.Request, path, flash string) {
	if flash != "" {
		setCookie(w, r, flashCookie, flash, 60)
	}
	http.Redirect(w, r, path, http.StatusSeeOther)
}

// claimsOf reads the claims of a token to label the page (see user). It does
// not verify anything.
func claimsOf(token, centre string) *user {
	u := &user{}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return u
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return u
	}
	var c struct {
		Iss   string `json:"iss"`
		Sub   string `json:"sub"`
		Scope string `json:"scope"`
		Exp   int64  `json:"exp"`
	}
	if json.Unmarshal(raw, &c) != nil {
		return u
	}
	u.Centre, u.Subject, u.Scopes = c.Iss, c.Sub, strings.Fields(c.Scope)
	if c.Exp > 0 {
		u.ExpiresAt = time.Unix(c.Exp, 0)
	}
	u.Home = c.Iss == centre
	return u
}
