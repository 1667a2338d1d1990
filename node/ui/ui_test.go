package ui

import (
	"encoding/json"
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"liandong/auth"
	"liandong/client"
)

// TestListLanguagesAndVisibility: the list is in Chinese by default, in English
// with ?lang=en (remembered in a cookie), and shows anonymous visitors public
// records only while a token sees the federation's records too.
func TestListLanguagesAndVisibility(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	pub := e.create(w, "supply", "public", supplyBody("高镍三元正极材料连续化制备技术", 6))
	fed := e.create(w, "supply", "federation", supplyBody("钙钛矿叠层太阳能电池制备技术", 4))
	priv := e.create(w, "supply", "private", supplyBody("内部评估成果", 3))

	anon := e.get("/ui/", session("")...)
	anon.want(t, http.StatusOK, "目录检索", `id="anon-notice"`, pub.ID, "高镍三元正极材料连续化制备技术", "新材料", "天津")
	anon.wantNot(t, fed.ID, priv.ID, "王老师")
	if got := anon.Header.Get("Content-Security-Policy"); !strings.Contains(got, "script-src 'self'") {
		t.Fatalf("CSP %q", got)
	}

	signed := e.get("/ui/", session(w)...)
	signed.want(t, http.StatusOK, pub.ID, fed.ID, priv.ID, "staff-tianjin@tianjin", `id="nav-new"`)
	signed.wantNot(t, `id="anon-notice"`)

	// A reader of another centre: shared records, not the private one, no create button.
	other := e.get("/ui/", session(e.token("hebei", auth.ScopeRead))...)
	other.want(t, http.StatusOK, fed.ID)
	other.wantNot(t, priv.ID, `id="nav-new"`)

	en := e.get("/ui/?lang=en", session("")...)
	en.want(t, http.StatusOK, "Catalogues", "New materials", `lang="en"`)
	c := en.cookie(langCookie)
	if c == nil || c.Value != "en" || c.Path != Prefix {
		t.Fatalf("language cookie %+v", c)
	}
	again := e.get("/ui/", append(session(""), c)...)
	again.want(t, http.StatusOK, "Catalogues")
	back := e.get("/ui/?lang=zh", append(session(""), c)...)
	back.want(t, http.StatusOK, "目录检索")
}

// TestSearchFiltersAndPaging: a Chinese query goes to the API's search, the
// filters to its parameters, and paging follows the API's cursor.
func TestSearchFiltersAndPaging(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite)
	for i := 0; i < 7; i++ {
		e.create(w, "supply", "federation", supplyBody("高镍三元正极材料 第"+string(rune('一'+i))+"批", 2+i))
	}
	e.create(w, "need", "federation", needBody("正极材料关键技术攻关需求"))
	s := session(w)

	// Page size 5: a next page link with the cursor, then the rest.
	p1 := e.get("/ui/?catalogue=supply", s...)
	p1.want(t, http.StatusOK, `id="next-page"`)
	if n := strings.Count(p1.html, `class="rec-link"`); n != 5 {
		t.Fatalf("first page shows %d records", n)
	}
	next := html.UnescapeString(between(p1.html, `<a href="`, `" id="next-page"`))
	p2 := e.get(next, s...)
	p2.want(t, http.StatusOK, `id="first-page"`)
	if n := strings.Count(p2.html, `class="rec-link"`); n != 2 {
		t.Fatalf("second page shows %d records", n)
	}

	q := e.get("/ui/?"+url.Values{"q": {"正极材料"}}.Encode(), s...)
	q.want(t, http.StatusOK, `id="total"`, "共 8 条匹配", `id="next-page"`)
	needs := e.get("/ui/?"+url.Values{"q": {"正极材料"}, "catalogue": {"need"}, "status": {"open"}}.Encode(), s...)
	needs.want(t, http.StatusOK, "正极材料关键技术攻关需求", "征集中")
	needs.wantNot(t, "第一批")

	// Maturity: TRL ≥ 7 keeps the items of TRL 7 and 8 only (the API does not
	// filter by it; the console reads a bounded number of pages).
	trl := e.get("/ui/?trl=7", s...)
	trl.want(t, http.StatusOK, "<td>TRL 7 · ", "<td>TRL 8 · ", `<option value="7" selected>`)
	trl.wantNot(t, "<td>TRL 6 · ", "正极材料关键技术攻关需求")

	// A bad filter is the API's 400, shown on the page.
	bad := e.get("/ui/?origin=Not+A+Centre", s...)
	bad.want(t, http.StatusOK, `id="list-error"`, "origin")
}

func between(s, start, end string) string {
	j := strings.Index(s, end)
	if j < 0 {
		return ""
	}
	i := strings.LastIndex(s[:j], start)
	if i < 0 {
		return ""
	}
	return s[i+len(start) : j]
}

// TestSignInAndOut: a pasted token the API accepts becomes a session cookie
// (HttpOnly, SameSite=Strict, no expiry) and the CSRF cookie is kept; a
// refused token does not; signing out clears it.
func TestSignInAndOut(t *testing.T) {
	e := newEnv(t)
	tok := e.token("tianjin", auth.ScopeRead)

	form := e.get("/ui/signin")
	form.want(t, http.StatusOK, `name="_csrf"`, `id="token"`)
	csrf := form.cookie(csrfCookie)
	if csrf == nil || !csrf.HttpOnly || csrf.SameSite != http.SameSiteStrictMode || csrf.MaxAge != 0 || csrf.Path != Prefix {
		t.Fatalf("CSRF cookie %+v", csrf)
	}
	if !strings.Contains(form.html, `value="`+csrf.Value+`"`) {
		t.Fatal("the form does not carry the cookie's CSRF token")
	}

	refused := e.post("/ui/signin", url.Values{"token": {"not-a-token"}, csrfField: {csrf.Value}}, csrf)
	refused.want(t, http.StatusUnauthorized, `id="signin-error"`, "令牌被拒绝")
	if refused.cookie(sessionCookie) != nil {
		t.Fatal("a refused token was kept")
	}

	ok := e.post("/ui/signin", url.Values{"token": {"Bearer " + tok + "\n"}, csrfField: {csrf.Value}}, csrf)
	if ok.StatusCode != http.StatusSeeOther || ok.Header.Get("Location") != Prefix {
		t.Fatalf("sign-in: %d %s", ok.StatusCode, ok.Header.Get("Location"))
	}
	sess := ok.cookie(sessionCookie)
	if sess == nil || sess.Value != tok || !sess.HttpOnly || sess.SameSite != http.SameSiteStrictMode ||
		sess.MaxAge != 0 || !sess.Expires.IsZero() || sess.Path != Prefix {
		t.Fatalf("session cookie %+v", sess)
	}
	// The CSRF token is kept, so a form open in another tab can still be saved.
	if c := ok.cookie(csrfCookie); c != nil {
		t.Fatalf("the CSRF cookie was replaced at sign-in: %+v", c)
	}
	home := e.get("/ui/", sess, csrf, ok.cookie(flashCookie))
	home.want(t, http.StatusOK, "已登录。", "staff-tianjin@tianjin", `id="signout"`)

	out := e.post("/ui/signout", url.Values{csrfField: {csrf.Value}}, sess, csrf)
	if out.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", out.StatusCode)
	}
	if c := out.cookie(sessionCookie); c == nil || c.MaxAge >= 0 {
		t.Fatalf("sign-out left the session cookie: %+v", c)
	}

	// A token that stops working (here: garbage in the cookie) signs the user out.
	stale := e.get("/ui/federation", session("garbage.token.here")...)
	stale.want(t, http.StatusUnauthorized, "登录已失效")
	if c := stale.cookie(sessionCookie); c == nil || c.MaxAge >= 0 {
		t.Fatalf("the stale session was not cleared: %+v", c)
	}
}

// TestFormsRefuseCSRF: a POST without the session's CSRF token, with another
// token, or from another origin is refused before anything is written.
func TestFormsRefuseCSRF(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	form := url.Values{"catalogue": {"supply"}, "body.title": {"跨站提交"}, "body.summary": {"x"}, "body.industry": {"other"}}

	missing := e.do(http.MethodPost, "/ui/new", form, session(w), nil)
	missing.want(t, http.StatusForbidden, "表单已过期或来源不明")
	wrong := url.Values{csrfField: {"ffffffffffffffffffffffffffffffffffffffffffffffff"}}
	for k, v := range form {
		wrong[k] = v
	}
	e.do(http.MethodPost, "/ui/new", wrong, session(w), nil).want(t, http.StatusForbidden)
	noCookie := e.post("/ui/new", form, &http.Cookie{Name: sessionCookie, Value: w})
	noCookie.want(t, http.StatusForbidden)
	cross := url.Values{csrfField: {testCSRF}}
	for k, v := range form {
		cross[k] = v
	}
	e.do(http.MethodPost, "/ui/new", cross, session(w), map[string]string{"Sec-Fetch-Site": "cross-site"}).want(t, http.StatusForbidden)
	e.do(http.MethodPost, "/ui/signin", url.Values{"token": {w}, csrfField: {testCSRF}}, session(""), map[string]string{"Origin": "https://evil.example"}).want(t, http.StatusForbidden)

	list := e.get("/ui/?"+url.Values{"q": {"跨站提交"}}.Encode(), session(w)...)
	list.wantNot(t, "跨站提交</a>")
	// The same form with the token is accepted.
	if ok := e.post("/ui/new", form, session(w)...); ok.StatusCode != http.StatusSeeOther {
		t.Fatalf("a proper form: %d\n%s", ok.StatusCode, ok.html)
	}
}

// TestValidationErrorsNextToFields: the API's field errors (problem+json paths)
// show at the controls they name, in Chinese with the API's message, and the
// values typed are kept; fixed, the record is saved.
func TestValidationErrorsNextToFields(t *testing.T) {
	e := newEnv(t)
	s := session(e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII))
	form := url.Values{
		"catalogue": {"supply"}, "body.title": {""}, "body.summary": {"第二代高温超导带材"}, "body.industry": {"new-materials"},
		"body.keywords": {"超导，带材、 涂层"}, "body.trl": {"１２"}, "body.ip": {"patent ZL202110345678.9 revoked"},
		"body.contact.email": {"not-an-email"}, "visibility": {"federation"},
	}
	bad := e.post("/ui/new", form, s...)
	bad.want(t, http.StatusUnprocessableEntity, "第二代高温超导带材", "超导，带材、 涂层")
	if f := bad.field(t, "body.title"); !strings.Contains(f, "field-error") || !strings.Contains(f, "必填") {
		t.Fatalf("title field:\n%s", f)
	}
	if f := bad.field(t, "body.trl"); !strings.Contains(f, "过大") || !strings.Contains(f, "at most 9") || !strings.Contains(f, `value="１２"`) {
		t.Fatalf("trl field:\n%s", f)
	}
	if f := bad.field(t, "body.ip"); !strings.Contains(f, "field-error") {
		t.Fatalf("ip field:\n%s", f)
	}
	if f := bad.field(t, "body.contact.email"); !strings.Contains(f, "field-error") {
		t.Fatalf("email field:\n%s", f)
	}
	if f := bad.field(t, "body.summary"); strings.Contains(f, "field-error") {
		t.Fatalf("summary marked:\n%s", f)
	}

	// An expiry that is no date is the API's error on its control.
	exp := url.Values{"catalogue": {"supply"}, "body.title": {"x"}, "body.summary": {"x"}, "body.industry": {"other"}, "expires_at": {"2027-02-30"}}
	if f := e.post("/ui/new", exp, s...).field(t, "expires_at"); !strings.Contains(f, "field-error") || !strings.Contains(f, "RFC 3339") {
		t.Fatalf("expiry field:\n%s", f)
	}

	// Fixed: saved and shown, with the contact at the origin for a pii token.
	form.Set("body.title", "超导带材连续化制备技术")
	form.Set("body.trl", "6")
	form.Set("body.ip", "patent ZL202110345678.9 granted")
	form.Set("body.contact.email", "wang@example.edu.cn")
	form.Set("expires_at", "2027-06-30")
	ok := e.post("/ui/new", form, s...)
	if ok.StatusCode != http.StatusSeeOther || !strings.HasPrefix(ok.Header.Get("Location"), "/ui/records/tianjin:") {
		t.Fatalf("save: %d %s\n%s", ok.StatusCode, ok.Header.Get("Location"), ok.html)
	}
	loc, _ := url.Parse(ok.Header.Get("Location"))
	id := strings.TrimPrefix(loc.Path, "/ui/records/")
	rec := e.get(ok.Header.Get("Location"), append(s, ok.cookie(flashCookie))...)
	rec.want(t, http.StatusOK, "记录已保存", "超导带材连续化制备技术", "超导、带材、涂层", "TRL 1–9", "wang@example.edu.cn", "2027-06-30 23:59", "本节点签名")

	// The API holds what the form meant: numbers as numbers, lists as arrays.
	var got struct {
		Body struct {
			TRL      int                       `json:"trl"`
			Keywords []string                  `json:"keywords"`
			IP       []struct{ Status string } `json:"ip"`
			Contact  map[string]string         `json:"contact"`
		} `json:"body"`
	}
	r := e.srv.URL + "/v1/records/" + url.PathEscape(id)
	req, _ := http.NewRequest(http.MethodGet, r, nil)
	req.Header.Set("Authorization", "Bearer "+e.token("tianjin", auth.ScopeRead, auth.ScopePII))
	res, err := e.cli.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	if got.Body.TRL != 6 || strings.Join(got.Body.Keywords, "|") != "超导|带材|涂层" || len(got.Body.IP) != 1 || got.Body.IP[0].Status != "granted" || got.Body.Contact["email"] != "wang@example.edu.cn" {
		t.Fatalf("stored body: %+v", got.Body)
	}
}

// TestRecordPageRedactsPersonalData: the record page shows what the API
// answers: contact details only to this centre's pii tokens; anonymous visitors
// see public records only; the history and matches are shown.
func TestRecordPageRedactsPersonalData(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	sup := e.create(w, "supply", "federation", supplyBody("高镍三元正极材料连续化制备技术", 6))
	pub := e.create(w, "supply", "public", supplyBody("碳纤维复合材料低成本成型工艺", 5))
	e.create(w, "need", "federation", needBody("正极材料关键技术攻关需求"))

	full := e.get("/ui/records/"+sup.ID, session(w)...)
	full.want(t, http.StatusOK, `id="contact"`, "王老师", "022-27400000", "PII", `id="edit"`,
		"正极材料关键技术攻关需求", `id="matches"`, "本节点签名", "现在复核有效", "ZL202110000001.1（已授权）")

	reader := e.get("/ui/records/"+sup.ID, session(e.token("tianjin", auth.ScopeRead))...)
	reader.want(t, http.StatusOK, `id="contact-note"`, "pii")
	reader.wantNot(t, "王老师", "022-27400000", `id="edit"`)

	// Another centre's token, even with pii, gets no personal data of Tianjin's records.
	foreign := e.get("/ui/records/"+sup.ID, session(e.token("hebei", auth.ScopeRead, auth.ScopePII))...)
	foreign.want(t, http.StatusOK, "高镍三元正极材料连续化制备技术")
	foreign.wantNot(t, "王老师", `id="edit"`)

	anon := e.get("/ui/records/"+sup.ID, session("")...)
	anon.want(t, http.StatusNotFound, "找不到公开记录")
	anon.wantNot(t, "高镍三元正极材料连续化制备技术")
	anonPub := e.get("/ui/records/"+pub.ID, session("")...)
	anonPub.want(t, http.StatusOK, "碳纤维复合材料低成本成型工艺")
	anonPub.wantNot(t, "王老师")

	e.get("/ui/records/not-an-id", session(w)...).want(t, http.StatusNotFound)
	e.get("/ui/nowhere", session(w)...).want(t, http.StatusNotFound, "页面不存在")
}

// TestEditKeepsValuesAndDetectsConflicts: the edit form is filled from the
// record; saving sends If-Match with the version opened, so an edit made in
// between is reported instead of overwritten; without pii editing is refused
// because the contact the token cannot see would be lost.
func TestEditKeepsValuesAndDetectsConflicts(t *testing.T) {
	e := newEnv(t)
	w := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII)
	rec := e.create(w, "need", "federation", needBody("风电齿轮箱轴承寿命预测"))
	s := session(w)

	form := e.get("/ui/records/"+rec.ID+"/edit", s...)
	form.want(t, http.StatusOK, `value="风电齿轮箱轴承寿命预测"`, `name="version" value="1"`, "李经理")
	if f := form.field(t, "body.status"); !strings.Contains(f, `value="open" selected`) {
		t.Fatalf("status not selected:\n%s", f)
	}

	edit := url.Values{"version": {"1"}, "body.title": {"风电齿轮箱轴承寿命预测（修订）"}, "body.description": {"需求描述"},
		"body.industry": {"high-end-equipment"}, "body.enterprise": {"天津某装备公司"}, "body.kind": {"need"}, "body.status": {"matched"},
		"body.contact.person": {"李经理"}, "visibility": {"federation"}}
	saved := e.post("/ui/records/"+rec.ID+"/edit", edit, s...)
	if saved.StatusCode != http.StatusSeeOther {
		t.Fatalf("edit: %d\n%s", saved.StatusCode, saved.html)
	}
	after := e.get("/ui/records/"+rec.ID, s...)
	after.want(t, http.StatusOK, "风电齿轮箱轴承寿命预测（修订）", `id="record-version">2<`, "已对接")

	// The same form again (version 1) is stale now.
	stale := e.post("/ui/records/"+rec.ID+"/edit", edit, s...)
	stale.want(t, http.StatusPreconditionFailed, "第 2 版")

	// Without pii: refused by the console, nothing written.
	np := session(e.token("tianjin", auth.ScopeRead, auth.ScopeWrite))
	e.get("/ui/records/"+rec.ID+"/edit", np...).want(t, http.StatusOK, `id="form-warning"`)
	edit.Set("version", "2")
	e.post("/ui/records/"+rec.ID+"/edit", edit, np...).want(t, http.StatusForbidden, "pii")

	// Another centre's token cannot write here: the API's 403, shown on the form.
	hb := session(e.token("hebei", auth.ScopeRead, auth.ScopeWrite, auth.ScopePII))
	e.post("/ui/new", url.Values{"catalogue": {"need"}, "body.title": {"外地"}}, hb...).want(t, http.StatusForbidden, `id="form-errors"`)
	// Anonymous: the API's 401 on a form is a sign-in prompt.
	e.get("/ui/new", session("")...).want(t, http.StatusOK, `id="signin-needed"`)
}

// TestFederationPage shows the API's federation document: raft role, bundle,
// peers connected, stalled or not, and the lag per origin.
func TestFederationPage(t *testing.T) {
	e := newEnv(t)
	admin := e.token("tianjin", auth.ScopeAdmin)
	p := e.get("/ui/federation", session(admin)...)
	p.want(t, http.StatusOK, "联邦状态", "Leader", "tianjin-1", `id="bundle-version">3<`, "停滞", "未连接", "dial backoff",
		"4.2 ms", "3 条", "拉取中")
	en := e.get("/ui/federation?lang=en", session(admin)...)
	en.want(t, http.StatusOK, "Federation", "stalled", "disconnected", "3 entries")
}

// TestFormHelpers covers the conversions of typed values and the mapping of
// API error paths to controls.
func TestFormHelpers(t *testing.T) {
	body, err := buildBody(formSpecs["need"], formValues{
		"body.title": {" 标题 "}, "body.budget.min": {"５０万"}, "body.budget.max": {"2,000,000"}, "body.budget.currency": {"CNY"},
		"body.challenge.targets": {"目标一\n\n目标二"}, "body.keywords": {"甲，乙、丙;丁"},
	}, json.RawMessage(`{"title":"旧","future_field":{"a":1},"contact":{"person":"王"},"status":"open"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(body, &got)
	want := `{"budget":{"currency":"CNY","max":2000000,"min":"５０万"},"challenge":{"targets":["目标一","目标二"]},"future_field":{"a":1},"keywords":["甲","乙","丙","丁"],"title":"标题"}`
	if string(body) != want {
		t.Fatalf("body\n got %s\nwant %s", body, want)
	}

	byField, general := fieldErrors(langZH, formSpecs["need"], []client.FieldError{
		{Path: "body.title", Rule: "required", Message: "is required"},
		{Path: "body.keywords[2]", Rule: "max_length", Message: "too long"},
		{Path: "body.challenge.targets[0]", Rule: "required", Message: "must not be empty"},
		{Path: "body.challenge", Rule: "required", Message: "required when kind is challenge"},
		{Path: "body.budget", Rule: "range", Message: "min exceeds max"},
		{Path: "body.budget.min", Rule: "min", Message: "must be at least 0"},
		{Path: "body.unknown.deep", Rule: "forbidden", Message: "unknown"},
		{Path: "catalogue", Rule: "enum", Message: "want supply"},
		{Path: "", Rule: "syntax", Message: "bad JSON"},
	})
	for field, msg := range map[string]string{
		"body.title": "必填：is required", "body.keywords": "过长：too long", "body.challenge.targets": "必填：must not be empty",
		"body.challenge": "必填：required when kind is challenge", "body.budget": "范围不正确：min exceeds max", "body.budget.min": "过小：must be at least 0",
	} {
		if len(byField[field]) != 1 || byField[field][0] != msg {
			t.Errorf("%s: %q, want %q", field, byField[field], msg)
		}
	}
	if len(general) != 3 || !strings.Contains(strings.Join(general, "|"), "catalogue: 取值无效：want supply") {
		t.Errorf("general: %q", general)
	}

	if s, ok := expiresAt("2027-06-30"); !ok || s != "2027-06-30T23:59:59+08:00" {
		t.Errorf("expires_at %q", s)
	}
	if s, ok := expiresAt("明年"); !ok || s != "明年" {
		t.Errorf("expires_at of junk %q", s)
	}
	if _, ok := expiresAt(" "); ok {
		t.Error("empty expiry sent")
	}
}
