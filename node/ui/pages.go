package ui

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"liandong/client"
	"liandong/schema"
)

// --- list and search ---

type listItem struct {
	Rec      *schema.Record
	Title    string
	Industry string
	Detail   string
	Matched  []string
}

type listData struct {
	Q, Catalogue, Industry, Origin, Status, TRL string
	Items                                       []listItem
	Next, First                                 string
	Total                                       int
	HasTotal                                    bool
	Scanned                                     int
	Error                                       string
	Catalogues, Industries, Origins             []formOption
	Statuses, TRLs                              []formOption
}

// summary is the part of a body lists show.
type summary struct {
	Title       string      `json:"title"`
	Name        string      `json:"name"`
	Industry    string      `json:"industry"`
	Fields      []string    `json:"fields"`
	TRL         json.Number `json:"trl"`
	Status      string      `json:"status"`
	Kind        string      `json:"kind"`
	Affiliation string      `json:"affiliation"`
	Enterprise  string      `json:"enterprise"`
	OwnerOrg    string      `json:"owner_org"`
}

func summarize(rec *schema.Record) summary {
	var s summary
	_ = json.Unmarshal(rec.Body, &s) // a body this build cannot read shows its id
	if rec.Catalogue == schema.CatalogueExpert && s.Name != "" {
		s.Title = s.Name
	}
	if s.Industry == "" && len(s.Fields) > 0 {
		s.Industry = s.Fields[0]
	}
	return s
}

func (p *page) item(rec *schema.Record) listItem {
	s := summarize(rec)
	it := listItem{Rec: rec, Title: s.Title}
	if it.Title == "" {
		it.Title = rec.ID
	}
	if s.Industry != "" {
		it.Industry = p.IndustryName(s.Industry)
	}
	var detail []string
	switch rec.Catalogue {
	case schema.CatalogueSupply:
		if s.TRL != "" {
			detail = append(detail, "TRL "+s.TRL.String())
		}
		if s.OwnerOrg != "" {
			detail = append(detail, s.OwnerOrg)
		}
	case schema.CatalogueNeed:
		st := s.Status
		if st == "" {
			st = schema.NeedOpen
		}
		detail = append(detail, p.Code("status", st))
		if s.Kind == schema.NeedKindChallenge {
			detail = append(detail, p.Code("kind", s.Kind))
		}
		if s.Enterprise != "" {
			detail = append(detail, s.Enterprise)
		}
	case schema.CatalogueExpert:
		if s.Affiliation != "" {
			detail = append(detail, s.Affiliation)
		}
	}
	it.Detail = strings.Join(detail, " · ")
	return it
}

// maxTRLScan bounds the API pages one list page reads when filtering by
// maturity, which the API does not filter: the page shows what it found there.
const maxTRLScan = 4

func (s *Server) listPage(w http.ResponseWriter, r *http.Request, p *page) error {
	q := r.URL.Query()
	d := &listData{
		Q: strings.TrimSpace(q.Get("q")), Catalogue: q.Get("catalogue"), Industry: q.Get("industry"),
		Origin: q.Get("origin"), Status: q.Get("status"), TRL: q.Get("trl"),
	}
	p.Nav, p.Title = "records", p.T("nav.records")
	minTRL := 0
	if n, err := strconv.Atoi(d.TRL); err == nil && n >= 1 && n <= 9 {
		minTRL = n
	} else {
		d.TRL = ""
	}
	d.Catalogues = p.options(codes("cat.", schema.Catalogues), d.Catalogue)
	d.Industries = p.options(industryOptions(), d.Industry)
	d.Statuses = p.options(codes("status.", schema.NeedStatuses), d.Status)
	var origins []option
	for _, id := range p.centreIDs() {
		origins = append(origins, option{id, "centre:" + id})
	}
	d.Origins = p.options(origins, d.Origin)
	for i := 1; i <= 9; i++ {
		d.TRLs = append(d.TRLs, formOption{Value: strconv.Itoa(i), Label: "TRL " + strconv.Itoa(i), Selected: strconv.Itoa(i) == d.TRL})
	}

	api := url.Values{}
	for k, v := range map[string]string{"q": d.Q, "catalogue": d.Catalogue, "industry": d.Industry, "origin": d.Origin, "status": d.Status} {
		if v != "" {
			api.Set(k, v)
		}
	}
	if minTRL > 0 && d.Catalogue == "" {
		api.Set("catalogue", schema.CatalogueSupply) // only supply items have a maturity
	}
	cursor := q.Get("cursor")
	limit := s.pageSize
	pages := 1
	if minTRL > 0 {
		limit, pages = 50, maxTRLScan
	}
	api.Set("limit", strconv.Itoa(limit))
	next := ""
	for i := 0; i < pages; i++ {
		if cursor != "" {
			api.Set("cursor", cursor)
		}
		var pg client.Page
		if _, err := s.call(r.Context(), p.token, apiRequest{method: http.MethodGet, path: "/v1/records", query: api}, &pg); err != nil {
			if pr := asProblem(err); pr != nil && pr.Status == http.StatusBadRequest {
				d.Error = problemText(err)
				break
			}
			return err
		}
		matched := map[string][]string{}
		for _, h := range pg.Hits {
			matched[h.ID] = h.Matched
		}
		if d.Q != "" {
			d.Total, d.HasTotal = pg.Total, true
		}
		for _, rec := range pg.Items {
			d.Scanned++
			if minTRL > 0 {
				if n, err := summarize(rec).TRL.Int64(); err != nil || n < int64(minTRL) {
					continue
				}
			}
			it := p.item(rec)
			it.Matched = matched[rec.ID]
			d.Items = append(d.Items, it)
		}
		next, cursor = pg.NextCursor, pg.NextCursor
		if next == "" || len(d.Items) >= s.pageSize {
			break
		}
	}
	if minTRL == 0 {
		d.Scanned = 0
	}
	self := url.Values{}
	for k, v := range map[string]string{"q": d.Q, "catalogue": d.Catalogue, "industry": d.Industry, "origin": d.Origin, "status": d.Status, "trl": d.TRL} {
		if v != "" {
			self.Set(k, v)
		}
	}
	if q.Get("cursor") != "" {
		d.First = Prefix + "?" + self.Encode()
	}
	if next != "" {
		self.Set("cursor", next)
		d.Next = Prefix + "?" + self.Encode()
	}
	s.render(w, http.StatusOK, "list", p, d)
	return nil
}

// options marks the selected value among opts.
func (p *page) options(opts []option, selected string) []formOption {
	out := make([]formOption, 0, len(opts))
	for _, o := range opts {
		label := o.label
		if id, ok := strings.CutPrefix(label, "centre:"); ok {
			label = p.CentreName(id)
		} else {
			label = p.optionLabel(label)
		}
		out = append(out, formOption{Value: o.value, Label: label, Selected: o.value == selected})
	}
	return out
}

// centreIDs lists the federation's centres: the bundle's members, or the four
// centres when there is no bundle.
func (p *page) centreIDs() []string {
	var ids []string
	if b := p.s.bundle(); b != nil {
		for _, m := range b.Members {
			if m.Removed == nil {
				ids = append(ids, m.ID)
			}
		}
	}
	if len(ids) == 0 {
		ids = []string{"hq", "tianjin", "hebei", "xiongan"}
	}
	return ids
}

// --- one record ---

type kv struct {
	Label string
	Value string
	Lines []string // several values, one a line
}

type histItem struct {
	Seq            uint64    `json:"seq"`
	Version        uint64    `json:"version"`
	Time           time.Time `json:"time"`
	Op             string    `json:"op"`
	Visibility     string    `json:"visibility"`
	KeyID          string    `json:"kid"`
	Hash           string    `json:"hash"`
	Verified       string    `json:"verified"`
	SignatureCheck string    `json:"signature_check"`
}

type matchRow struct {
	Item    client.MatchItem
	Title   string
	Origin  string
	Reasons []string
}

type matchList struct {
	Catalogue string
	Rows      []matchRow
}

type recordData struct {
	Rec         *schema.Record
	Title       string
	Fields      []kv
	Other       []kv
	Contact     []kv
	ContactNote string
	History     []histItem
	HistoryErr  string
	MatchTitle  string
	Matches     []matchList
	MatchErr    string
	CanEdit     bool
}

// getRecord reads a record; consistent reads it through the raft leader (a
// follower forwards the read), so a replica that has not yet applied a write
// just made through it answers what was written.
func (s *Server) getRecord(r *http.Request, p *page, id string, consistent bool) (*schema.Record, error) {
	var rec schema.Record
	req := apiRequest{method: http.MethodGet, path: recordPath(id)}
	if consistent {
		req.query = url.Values{"consistent": {"true"}}
	}
	if _, err := s.call(r.Context(), p.token, req, &rec); err != nil {
		return nil, err
	}
	return &rec, nil
}

// notFound renders the page of a record that does not exist or may not be seen.
func (s *Server) notFound(w http.ResponseWriter, p *page, id string) {
	msg := p.Tf("rec.notfound", id)
	if p.token == "" {
		msg = p.Tf("rec.notfound.anon", id)
	}
	p.Title = p.T("err.title")
	s.render(w, http.StatusNotFound, "error", p, errorData{Message: msg, Status: http.StatusNotFound})
}

func (s *Server) recordPage(w http.ResponseWriter, r *http.Request, p *page) error {
	id := r.PathValue("id")
	p.Nav = "records"
	// Just saved (savedMark): the save may have gone through this replica to
	// the leader before this replica applied it, so read through the leader.
	saved := r.URL.Query().Get(savedMark) != ""
	rec, err := s.getRecord(r, p, id, saved)
	if pr := asProblem(err); saved && err != nil && (pr == nil || pr.Status >= 500) {
		rec, err = s.getRecord(r, p, id, false) // no leader now: what this replica has
	}
	if pr := asProblem(err); pr != nil && (pr.Status == http.StatusNotFound || pr.Status == http.StatusBadRequest) {
		s.notFound(w, p, id)
		return nil
	}
	if err != nil {
		return err
	}
	d := &recordData{Rec: rec, Title: p.item(rec).Title}
	p.Title = d.Title
	d.CanEdit = p.User.CanWrite() && rec.Origin == s.centre && !rec.Deleted
	s.describe(p, rec, d)

	var hist struct {
		Items []histItem `json:"items"`
	}
	if _, err := s.call(r.Context(), p.token, apiRequest{method: http.MethodGet, path: recordPath(id) + "/history", query: url.Values{"limit": {"20"}}}, &hist); err != nil {
		d.HistoryErr = problemText(err)
	}
	d.History = hist.Items

	if rec.Catalogue == schema.CatalogueNeed || rec.Catalogue == schema.CatalogueSupply {
		d.MatchTitle = p.T("match.title." + rec.Catalogue)
		var res client.MatchResult
		if _, err := s.call(r.Context(), p.token, apiRequest{method: http.MethodGet, path: "/v1/match/" + url.PathEscape(id), query: url.Values{"limit": {"5"}}}, &res); err != nil {
			d.MatchErr = p.Tf("match.unavailable", problemText(err))
		}
		order := []string{schema.CatalogueSupply, schema.CatalogueExpert}
		if rec.Catalogue == schema.CatalogueSupply {
			order = []string{schema.CatalogueNeed, schema.CatalogueExpert}
		}
		for _, c := range order {
			ml := matchList{Catalogue: c}
			for _, it := range res.Matches[c] {
				row := matchRow{Item: it, Title: it.ID, Origin: ""}
				if it.Record != nil {
					row.Title, row.Origin = p.item(it.Record).Title, it.Record.Origin
				}
				for _, rs := range it.Reasons {
					row.Reasons = append(row.Reasons, p.reason(rs))
				}
				ml.Rows = append(ml.Rows, row)
			}
			if res.Matches != nil {
				d.Matches = append(d.Matches, ml)
			}
		}
	}
	s.render(w, http.StatusOK, "record", p, d)
	return nil
}

func (p *page) reason(rs client.Reason) string {
	out := p.Code("reason", rs.Kind)
	switch {
	case rs.Kind == "industry":
		// The label says it all.
	case len(rs.Terms) > 0:
		out += p.T("colon") + strings.Join(rs.Terms, "、")
	case rs.Detail != "":
		out += p.T("colon") + rs.Detail
	}
	return out
}

// describe lays out a record's body: the catalogue's fields in the form's
// order, the contact block, then members this build does not know.
func (s *Server) describe(p *page, rec *schema.Record, d *recordData) {
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(rec.Body))
	dec.UseNumber()
	if dec.Decode(&body) != nil {
		body = nil
	}
	shown := map[string]bool{}
	for _, sec := range formSpecs[rec.Catalogue] {
		for _, f := range sec.fields {
			top, _, _ := strings.Cut(strings.TrimPrefix(f.name, "body."), ".")
			shown[top] = true
			val, ok := lookup(body, strings.TrimPrefix(f.name, "body."))
			if !ok || val == nil {
				continue
			}
			item := kv{Label: p.T(f.label)}
			switch f.kind {
			case kSelect, kChecks:
				vals := formText(fieldSpec{kind: kChecks}, val)
				if _, isArr := val.([]any); !isArr {
					vals = formText(fieldSpec{kind: kText}, val)
				}
				var labels []string
				for _, v := range vals {
					label := v
					for _, o := range f.options {
						if o.value == v {
							label = p.optionLabel(o.label)
						}
					}
					labels = append(labels, label)
				}
				item.Value = strings.Join(labels, "、")
			case kBool:
				if b, _ := val.(bool); b {
					item.Value = p.T("yes")
				} else {
					item.Value = p.T("no")
				}
			case kIP:
				if arr, ok := val.([]any); ok {
					for _, x := range arr {
						o, _ := x.(map[string]any)
						line := fmt.Sprint(o["type"])
						if n, ok := o["number"].(string); ok && n != "" {
							line += " " + n
						}
						if st, ok := o["status"].(string); ok && st != "" {
							line += "（" + p.Code("ip", st) + "）"
						}
						item.Lines = append(item.Lines, line)
					}
				}
			case kLines:
				if arr, ok := val.([]any); ok {
					for _, x := range arr {
						item.Lines = append(item.Lines, formText(fieldSpec{kind: kText}, x)[0])
					}
				} else {
					item.Value = formText(fieldSpec{kind: kText}, val)[0]
				}
			case kList:
				if arr, ok := val.([]any); ok {
					words := make([]string, 0, len(arr))
					for _, x := range arr {
						words = append(words, textOf(x))
					}
					item.Value = strings.Join(words, "、")
				} else {
					item.Value = textOf(val)
				}
			default:
				item.Value = formText(f, val)[0]
			}
			if strings.HasPrefix(f.name, "body.contact.") {
				d.Contact = append(d.Contact, item)
			} else {
				d.Fields = append(d.Fields, item)
			}
		}
	}
	for _, sec := range formSpecs[rec.Catalogue] {
		// Personal data the form has no control for, shown so that staff
		// know it is there (clearing the section's controls erases it).
		if top, ok := personalGroup(sec); ok {
			d.Contact = append(d.Contact, unshownMembers(sec, body[top])...)
		}
	}
	keys := make([]string, 0, len(body))
	for k := range body {
		if !shown[k] {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		js, _ := marshal(body[k])
		d.Other = append(d.Other, kv{Label: k, Value: string(js)})
	}
	if len(d.Contact) == 0 && !rec.Deleted {
		switch {
		case rec.Origin != s.centre:
			broker := rec.Broker
			if broker == "" {
				broker = rec.Origin
			}
			d.ContactNote = p.Tf("rec.contact.none", p.CentreName(broker))
		case !p.User.PII():
			d.ContactNote = p.T("rec.contact.scope")
		}
	}
}

// --- create and edit ---

type formData struct {
	Catalogue    string
	Catalogues   []formOption
	Action       string
	Record       *schema.Record // when editing
	Sections     []formSection
	Envelope     []formField
	General      []string
	Warning      string
	SignInNeeded bool
	ListFormat   string // see listFormat
	// Refused says why a submission was not saved and is shown again as it
	// was typed (a sign-in that stopped working, a stale CSRF token); with
	// RefusedSignIn it offers a sign-in in another tab.
	Refused       string
	RefusedSignIn bool
}

func (s *Server) formPage(w http.ResponseWriter, status int, p *page, d *formData, v formValues, errs map[string][]string) {
	sections := formSpecs[d.Catalogue]
	d.Sections = renderForm(p, sections, v, errs)
	if d.Record != nil {
		unshownPersonal(p, sections, d.Record.Body, d.Sections)
	}
	d.Envelope = nil
	for _, f := range envelopeFields {
		d.Envelope = append(d.Envelope, renderField(p, f, v, errs))
	}
	d.Catalogues = p.options(codes("cat.", schema.Catalogues), d.Catalogue)
	d.ListFormat = v.get(listFormat)
	if p.User == nil {
		d.SignInNeeded = true
	}
	p.Nav = "new"
	if d.Record == nil && p.URL.Query().Get("catalogue") != d.Catalogue {
		// After a POST: the language switch's target names the catalogue.
		u := *p.URL
		q := u.Query()
		q.Set("catalogue", d.Catalogue)
		u.RawQuery = q.Encode()
		p.URL = &u
	}
	if d.Record != nil {
		p.Nav = "records"
		p.Title = p.Tf("form.edit", p.item(d.Record).Title)
	} else {
		p.Title = p.Tf("form.new", p.CatName(d.Catalogue))
	}
	s.render(w, status, "form", p, d)
}

func catalogueOf(s string) string {
	if _, ok := formSpecs[s]; ok {
		return s
	}
	return schema.CatalogueSupply
}

func (s *Server) newPage(w http.ResponseWriter, r *http.Request, p *page) error {
	d := &formData{Catalogue: catalogueOf(r.URL.Query().Get("catalogue")), Action: Prefix + "new"}
	v := formValues{"visibility": {schema.VisibilityFederation}}
	if d.Catalogue == schema.CatalogueNeed {
		v["body.budget.currency"] = []string{"CNY"}
	}
	s.formPage(w, http.StatusOK, p, d, v, nil)
	return nil
}

// envelope builds the submission of a form; stored is the record's expiry on
// an edit (nil for none or a new record).
func envelope(catalogue string, v formValues, body json.RawMessage, stored *time.Time) map[string]any {
	env := map[string]any{"catalogue": catalogue, "body": body}
	if vis := v.get("visibility"); vis != "" {
		env["visibility"] = vis
	}
	if stored != nil && normalizeDigits(v.get("expires_at")) == stored.In(chinaTime).Format(time.DateOnly) {
		// The date shown for the stored expiry, left as it was: the expiry
		// stays as it was (it need not be the end of that day in China).
		env["expires_at"] = stored.Format(time.RFC3339Nano)
	} else if exp, ok := expiresAt(v.get("expires_at")); ok {
		env["expires_at"] = exp
	}
	return env
}

// relangField marks a record form posted by its page's language switch (the
// link to the form in the other language, ?lang=, which app.js turns into a
// post of the form to that URL): the form is shown again in that language with
// what was typed, and nothing is saved. Without JavaScript the link opens the
// form (of the same catalogue) afresh.
const relangField = "_relang"

// savedMark is the query parameter of the redirect after a save, which makes
// the record page read the record through the leader.
const savedMark = "saved"

// submitted handles the API's answer to a form: on success a redirect to the
// record, on a refusal the form again with the errors next to the fields.
func (s *Server) submitted(w http.ResponseWriter, r *http.Request, p *page, d *formData, v formValues, rec *schema.Record, err error) error {
	if err == nil {
		redirect(w, r, Prefix+"records/"+url.PathEscape(rec.ID)+"?"+savedMark+"=1", "saved")
		return nil
	}
	pr := asProblem(err)
	if pr == nil {
		return err
	}
	if pr.Status == http.StatusUnauthorized {
		s.signOut(w, r, p)
		return s.refusedForm(w, p, d, v, http.StatusUnauthorized)
	}
	errs, general := fieldErrors(p.Lang, formSpecs[d.Catalogue], pr.Errors)
	switch {
	case pr.Status == http.StatusPreconditionFailed:
		cur := uint64(0)
		if d.Record != nil {
			if now, err := s.getRecord(r, p, d.Record.ID, true); err == nil {
				cur = now.Version
			}
		}
		general = append(general, p.Tf("form.conflict", cur))
	case len(pr.Errors) == 0:
		general = append(general, problemText(err))
	}
	d.General = general
	status := pr.Status
	if status < 400 {
		status = http.StatusUnprocessableEntity
	}
	s.formPage(w, status, p, d, v, errs)
	return nil
}

// refusedForm shows a submitted form again, as it was typed, that was not
// saved because the sign-in (status 401) or the CSRF check (403) failed; the
// page carries the current CSRF token, so saving again works once signed in.
func (s *Server) refusedForm(w http.ResponseWriter, p *page, d *formData, v formValues, status int) error {
	if status == http.StatusUnauthorized {
		d.Refused, d.RefusedSignIn = p.T("form.signin.save"), true
	} else {
		d.Refused = p.T("form.csrf")
	}
	s.formPage(w, status, p, d, v, nil)
	return nil
}

func (s *Server) newSubmit(w http.ResponseWriter, r *http.Request, p *page) error {
	v := formFromRequest(r.PostForm)
	d := &formData{Catalogue: catalogueOf(r.PostForm.Get("catalogue")), Action: Prefix + "new"}
	if r.PostForm.Get(relangField) != "" {
		s.formPage(w, http.StatusOK, p, d, v, nil)
		return nil
	}
	if p.CSRFRefused {
		return s.refusedForm(w, p, d, v, http.StatusForbidden)
	}
	body, err := buildBody(formSpecs[d.Catalogue], v, nil)
	if err != nil {
		return err
	}
	var rec schema.Record
	_, err = s.call(r.Context(), p.token, apiRequest{method: http.MethodPost, path: "/v1/records", body: envelope(d.Catalogue, v, body, nil)}, &rec)
	return s.submitted(w, r, p, d, v, &rec, err)
}

// editForm reads the record of the path's id for its edit form. ok is false
// when the page is done: a not-found page was written (err nil), or err.
func (s *Server) editForm(w http.ResponseWriter, r *http.Request, p *page) (d *formData, ok bool, err error) {
	id := r.PathValue("id")
	// Through the leader: the form must start from the latest version (this
	// replica may lag, or not yet have applied a save just made through it).
	rec, err := s.getRecord(r, p, id, true)
	if pr := asProblem(err); err != nil && (pr == nil || pr.Status >= 500) {
		// No leader now (an election, a partition): what this replica has,
		// so that the form opens and a save shows what was typed again with
		// the API's answer. If-Match refuses a save from a stale version.
		rec, err = s.getRecord(r, p, id, false)
	}
	if pr := asProblem(err); pr != nil && (pr.Status == http.StatusNotFound || pr.Status == http.StatusBadRequest) {
		s.notFound(w, p, id)
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if _, known := formSpecs[rec.Catalogue]; !known {
		return nil, false, errNotFound
	}
	return &formData{Catalogue: rec.Catalogue, Action: Prefix + "records/" + url.PathEscape(id) + "/edit", Record: rec}, true, nil
}

func (s *Server) editPage(w http.ResponseWriter, r *http.Request, p *page) error {
	d, ok, err := s.editForm(w, r, p)
	if !ok {
		return err
	}
	rec := d.Record
	if !p.User.PII() {
		d.Warning = p.T("form.pii.needed")
	}
	s.formPage(w, http.StatusOK, p, d, valuesOf(formSpecs[rec.Catalogue], rec), nil)
	return nil
}

// editAsSubmitted is the edit form of a submission shown again without being
// saved (refused before the record could be read, or switching language): the
// record as this token may read it, for the title, or what the form said of
// it, with the version the form was opened at.
func (s *Server) editAsSubmitted(r *http.Request, p *page, id string, version uint64) *formData {
	rec := &schema.Record{ID: id, Catalogue: catalogueOf(r.PostForm.Get("catalogue")), Version: version}
	if p.token != "" {
		if cur, err := s.getRecord(r, p, id, false); err == nil {
			if _, known := formSpecs[cur.Catalogue]; known {
				rec = cur.Clone()
				rec.Version = version
			}
		}
	}
	return &formData{Catalogue: rec.Catalogue, Action: Prefix + "records/" + url.PathEscape(id) + "/edit", Record: rec}
}

func (s *Server) editSubmit(w http.ResponseWriter, r *http.Request, p *page) error {
	id := r.PathValue("id")
	v := formFromRequest(r.PostForm)
	version, _ := strconv.ParseUint(r.PostForm.Get("version"), 10, 64)
	if r.PostForm.Get(relangField) != "" {
		d := s.editAsSubmitted(r, p, id, version)
		if !p.User.PII() {
			d.Warning = p.T("form.pii.needed")
		}
		s.formPage(w, http.StatusOK, p, d, v, nil)
		return nil
	}
	if p.CSRFRefused {
		return s.refusedForm(w, p, s.editAsSubmitted(r, p, id, version), v, http.StatusForbidden)
	}
	// The current body is the base, so members the form does not show survive.
	d, ok, err := s.editForm(w, r, p)
	if pr := asProblem(err); pr != nil && pr.Status == http.StatusUnauthorized {
		s.signOut(w, r, p)
		return s.refusedForm(w, p, s.editAsSubmitted(r, p, id, version), v, http.StatusUnauthorized)
	}
	if !ok {
		return err
	}
	cur := d.Record
	if version == 0 {
		version = cur.Version
	}
	d.Record = cur.Clone()
	d.Record.Version = version
	if !p.User.PII() {
		// Without pii the body read here lacks the personal data, and a PUT
		// replaces the whole body: saving would erase them.
		d.Warning = p.T("form.pii.needed")
		d.General = []string{p.T("form.pii.needed")}
		s.formPage(w, http.StatusForbidden, p, d, v, nil)
		return nil
	}
	body, err := buildBody(formSpecs[cur.Catalogue], v, cur.Body)
	if err != nil {
		return err
	}
	// The body is merged onto cur, which a fallback to this replica's own
	// copy may have read older than the form: the precondition names the
	// older of the two, so a save built on a version the record has left is
	// refused (412) rather than undoing what came since.
	ifMatch := min(version, cur.Version)
	var rec schema.Record
	_, err = s.call(r.Context(), p.token, apiRequest{
		method: http.MethodPut, path: recordPath(id), body: envelope(cur.Catalogue, v, body, cur.ExpiresAt),
		header: http.Header{"If-Match": {strconv.FormatUint(ifMatch, 10)}},
	}, &rec)
	return s.submitted(w, r, p, d, v, &rec, err)
}

// --- federation ---

type fedDoc struct {
	Centre  string `json:"centre"`
	PeerID  string `json:"peer_id"`
	Replica struct {
		ReplicaID    string   `json:"replica_id"`
		State        string   `json:"state"`
		Leader       string   `json:"leader"`
		Term         uint64   `json:"term"`
		CommitIndex  uint64   `json:"commit_index"`
		AppliedIndex uint64   `json:"applied_index"`
		Voters       []string `json:"voters"`
	} `json:"replica"`
	Bundle struct {
		Federation string    `json:"federation"`
		Version    uint64    `json:"version"`
		ExpiresAt  time.Time `json:"expires_at"`
	} `json:"bundle"`
	Members []struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		NameZH  string `json:"name_zh"`
		Removed bool   `json:"removed"`
	} `json:"members"`
	Sync struct {
		Addrs []string `json:"addrs"`
		Peers []struct {
			PeerID      string     `json:"peer_id"`
			Member      string     `json:"member"`
			Connected   bool       `json:"connected"`
			Stalled     bool       `json:"stalled"`
			LastContact *time.Time `json:"last_contact"`
			RTTSeconds  float64    `json:"rtt_seconds"`
			LastError   string     `json:"last_error"`
		} `json:"peers"`
		Origins []struct {
			Origin     string  `json:"origin"`
			Local      headSeq `json:"local"`
			Best       headSeq `json:"best"`
			LagEntries uint64  `json:"lag_entries"`
			LagSeconds float64 `json:"lag_seconds"`
			Pulling    bool    `json:"pulling"`
		} `json:"origins"`
	} `json:"sync"`
}

// headSeq is the part of a log head the page shows.
type headSeq struct {
	Seq uint64 `json:"seq"`
}

type peerRow struct {
	Member, PeerID, State, StateClass, LastContact, Ago, RTT, LastError string
}

type originRow struct {
	Origin      string
	Local, Best uint64
	Lag         string
	LagClass    string
	Pulling     bool
}

type fedData struct {
	Doc        fedDoc
	BundleSoon bool
	Peers      []peerRow
	Origins    []originRow
	Replicas   []client.Replica
	Refresh    bool
}

func (s *Server) federationPage(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Nav, p.Title = "federation", p.T("fed.title")
	d := &fedData{Refresh: r.URL.Query().Get("refresh") == "1"}
	if _, err := s.call(r.Context(), p.token, apiRequest{method: http.MethodGet, path: "/v1/federation"}, &d.Doc); err != nil {
		return err
	}
	now := s.now()
	d.BundleSoon = !d.Doc.Bundle.ExpiresAt.IsZero() && d.Doc.Bundle.ExpiresAt.Sub(now) < 7*24*time.Hour
	for _, pe := range d.Doc.Sync.Peers {
		row := peerRow{Member: pe.Member, PeerID: pe.PeerID, LastError: pe.LastError}
		switch {
		case pe.Connected && pe.Stalled:
			row.State, row.StateClass = p.T("fed.stalled"), "warn"
		case pe.Connected:
			row.State, row.StateClass = p.T("fed.connected"), "ok"
		default:
			row.State, row.StateClass = p.T("fed.disconnected"), "bad"
		}
		if pe.LastContact != nil {
			row.LastContact = p.Time(*pe.LastContact)
			row.Ago = ago(p.Lang, now.Sub(*pe.LastContact))
		} else {
			row.LastContact = p.T("fed.never")
		}
		if pe.RTTSeconds > 0 {
			row.RTT = strconv.FormatFloat(pe.RTTSeconds*1000, 'f', 1, 64) + " ms"
		}
		d.Peers = append(d.Peers, row)
	}
	for _, o := range d.Doc.Sync.Origins {
		row := originRow{Origin: o.Origin, Local: o.Local.Seq, Best: o.Best.Seq, Pulling: o.Pulling, Lag: p.T("fed.caughtup"), LagClass: "ok"}
		if o.LagEntries > 0 {
			row.Lag = p.Tf("fed.lag.entries", o.LagEntries) + " / " + strconv.FormatFloat(o.LagSeconds, 'f', 1, 64) + " s"
			row.LagClass = "warn"
		}
		d.Origins = append(d.Origins, row)
	}
	if p.User != nil && p.User.Home && p.User.has("admin") {
		var reps struct {
			Replicas []client.Replica `json:"replicas"`
		}
		if _, err := s.call(r.Context(), p.token, apiRequest{method: http.MethodGet, path: "/v1/admin/replicas"}, &reps); err == nil {
			d.Replicas = reps.Replicas
		}
	}
	s.render(w, http.StatusOK, "federation", p, d)
	return nil
}

// ago says how long ago d was, briefly.
func ago(l string, d time.Duration) string {
	d = max(d, 0).Round(time.Second)
	if l == langEN {
		return d.String() + " ago"
	}
	return d.String() + " 前"
}

// --- sign-in ---

type signinData struct {
	Error string
}

func (s *Server) signinPage(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Nav, p.Title = "signin", p.T("signin.title")
	s.render(w, http.StatusOK, "signin", p, &signinData{})
	return nil
}

// maxTokenCookie keeps the session cookie within what browsers store.
const maxTokenCookie = 3800

func (s *Server) signinSubmit(w http.ResponseWriter, r *http.Request, p *page) error {
	p.Nav, p.Title = "signin", p.T("signin.title")
	tok := strings.TrimSpace(r.PostForm.Get("token"))
	tok = strings.TrimSpace(strings.TrimPrefix(tok, "Bearer "))
	if tok == "" {
		s.render(w, http.StatusUnprocessableEntity, "signin", p, &signinData{Error: p.T("signin.empty")})
		return nil
	}
	if len(tok) > maxTokenCookie {
		s.render(w, http.StatusUnprocessableEntity, "signin", p, &signinData{Error: p.Tf("signin.refused", "too long")})
		return nil
	}
	// The API authenticates: a token it answers with a success is one it
	// accepts. While this replica replays its raft log or catches up with its
	// leader the API answers 503 before looking at any token: that says
	// nothing of the token, so there is no sign-in, and no refusal either.
	// A 403 comes only after the token was verified: one without the read
	// scope (write only, say) is a valid token for the pages it may use.
	_, err := s.call(r.Context(), tok, apiRequest{method: http.MethodGet, path: "/v1/records", query: url.Values{"limit": {"1"}}}, nil)
	if pr := asProblem(err); pr != nil && pr.Status != http.StatusForbidden {
		switch {
		case pr.Status == http.StatusServiceUnavailable:
			s.render(w, http.StatusServiceUnavailable, "signin", p, &signinData{Error: p.T("signin.notready")})
		case pr.Status >= 500:
			s.render(w, http.StatusBadGateway, "signin", p, &signinData{Error: p.Tf("signin.unchecked", problemText(err))})
		default:
			s.render(w, http.StatusUnauthorized, "signin", p, &signinData{Error: p.Tf("signin.refused", problemText(err))})
		}
		return nil
	} else if err != nil && pr == nil {
		return err
	}
	setCookie(w, r, sessionCookie, tok, 0)
	// The CSRF cookie is kept (it passed the check): a form still open in
	// another tab, whose save was refused because the session had expired,
	// can be saved once signed in here.
	redirect(w, r, Prefix, "signedin")
	return nil
}

func (s *Server) signoutSubmit(w http.ResponseWriter, r *http.Request, p *page) error {
	clearCookie(w, r, sessionCookie)
	setCookie(w, r, csrfCookie, newCSRF(), 0)
	redirect(w, r, Prefix, "signedout")
	return nil
}
