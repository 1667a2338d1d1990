package integration

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"liandong/schema"
	"liandong/schema/sample"
)

// TestConsoleInBrowser drives the web console of real nodes in headless
// Chromium: sign in by pasting a token, search the catalogues in Chinese, open a
// record replicated from another centre (its signed history and matchmaking),
// create a record and see the API's validation error next to the field, fix it
// and save, see a record written at another centre appear, read the federation
// page, and switch to English. Screenshots of the main pages are saved in
// $LIANDONG_ARTEFACTS (or a temporary directory) and their paths logged.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes and a browser")
	}
	chromiumPath(t) // skip (or fail under CI=true) before starting anything
	f := newFederation(t, fedOptions{})
	const tj, hb = 1, 2 // the console under test is Tianjin's; Hebei writes too

	// Sample catalogues at Tianjin and Hebei.
	f.seedSamples(tj, sample.Records("tianjin", 6, 7))
	hebeiSamples := sample.Records("hebei", 6, 11)
	hebeiEnvs := f.seedSamples(hb, hebeiSamples)
	// A shared supply item of Hebei to search for, in Chinese.
	var target envelope
	var targetTitle string
	for i, r := range hebeiSamples {
		if r.Catalogue == schema.CatalogueSupply && r.Visibility != schema.VisibilityPrivate {
			var body struct {
				Title string `json:"title"`
			}
			json.Unmarshal(r.Body, &body)
			target, targetTitle = hebeiEnvs[i], body.Title
			break
		}
	}
	if target.ID == "" {
		t.Fatal("no shared supply item among Hebei's samples")
	}
	f.waitRecord(tj, target.ID, 1, false, converge)

	b := startBrowser(t)
	base := f.urls[tj] + "/ui/"

	// Anonymous: the public catalogue, a notice, and a sign-in link.
	b.do("open the console", 60*time.Second, chromedp.Navigate(base), chromedp.WaitVisible(chromedp.ID("anon-notice")))
	if got := b.text("#nav-records"); got != "目录检索" {
		t.Fatalf("default language: nav says %q, want 目录检索", got)
	}

	// Sign in by pasting Tianjin's admin token.
	b.do("sign in", 60*time.Second,
		chromedp.Click(chromedp.ID("signin-link")),
		chromedp.WaitVisible(chromedp.ID("token")),
		chromedp.SetValue(chromedp.ID("token"), f.clients[tj].token),
		chromedp.Click(chromedp.ID("signin-submit")),
		chromedp.WaitVisible(chromedp.ID("who")),
	)
	if who := b.text("#who"); !strings.Contains(who, "it-admin@tianjin") {
		t.Fatalf("signed in as %q", who)
	}
	if cookieless := evalIn[string](b, "document.cookie"); strings.Contains(cookieless, "ld_session") {
		t.Fatalf("the session cookie is readable from JavaScript: %q", cookieless)
	}

	// Search in Chinese (typed key by key) for Hebei's supply item.
	b.do("search", 60*time.Second,
		chromedp.Navigate(base),
		chromedp.WaitVisible(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), targetTitle),
		chromedp.Click(chromedp.ID("search-submit")),
		chromedp.WaitVisible(chromedp.ID("total")),
	)
	row := fmt.Sprintf(`#results tr[data-id=%s]`, jsString(target.ID))
	if got := b.text(row + " .rec-link"); got != targetTitle {
		t.Fatalf("search for %q: the result row shows %q", targetTitle, got)
	}
	if got := b.text(row + " td:nth-child(3)"); got != "河北" {
		t.Fatalf("origin column %q, want 河北", got)
	}
	b.screenshot("list")

	// Filters: Hebei's supply items at a maturity of at least 1 still list it.
	b.do("filter", 60*time.Second,
		chromedp.Navigate(base+"?"+url.Values{"origin": {"hebei"}, "catalogue": {"supply"}, "trl": {"1"}}.Encode()),
		chromedp.WaitVisible(chromedp.CSS(row)),
	)

	// Open the record: fields, origin, the signed history (verified at receipt,
	// since Hebei signed it) and its matchmaking results.
	b.do("open the record", 60*time.Second,
		chromedp.Click(chromedp.CSS(row+" .rec-link")),
		chromedp.WaitVisible(chromedp.ID("record-title")),
		chromedp.WaitVisible(chromedp.CSS("#history tr[data-version='1']")),
		chromedp.WaitVisible(chromedp.ID("matches")),
	)
	if got := b.text("#record-title"); got != targetTitle {
		t.Fatalf("record page title %q", got)
	}
	if got := b.text("#record-origin"); !strings.Contains(got, "hebei") {
		t.Fatalf("record origin %q", got)
	}
	if got := b.text("#history tr[data-version='1'] .verified"); !strings.Contains(got, "接收时已验证") || !strings.Contains(got, "现在复核有效") {
		t.Fatalf("history signature column %q", got)
	}
	if got := b.text("#contact-note"); !strings.Contains(got, "河北") {
		t.Fatalf("contact note %q: personal data stays at Hebei", got)
	}
	b.screenshot("record")

	// Create a supply item with an out-of-range maturity: the API's error shows
	// next to the field, the typed values are kept.
	newTitle := fmt.Sprintf("超导带材连续化制备技术 %d", time.Now().UnixNano()%100000)
	b.do("fill the form", 60*time.Second,
		chromedp.Navigate(base+"new?catalogue=supply"),
		chromedp.WaitVisible(chromedp.ID("record-form")),
		chromedp.SendKeys(chromedp.CSS(`[name="body.title"]`), newTitle),
		chromedp.SendKeys(chromedp.CSS(`[name="body.summary"]`), "第二代高温超导带材的连续化制备工艺，已完成百米级验证。"),
		chromedp.SetValue(chromedp.CSS(`[name="body.industry"]`), "new-materials"),
		chromedp.SendKeys(chromedp.CSS(`[name="body.keywords"]`), "超导，带材"),
		chromedp.SendKeys(chromedp.CSS(`[name="body.trl"]`), "12"),
		chromedp.SendKeys(chromedp.CSS(`[name="body.contact.phone"]`), "022-12345678"),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.CSS(`.field[data-field="body.trl"] .field-error`)),
	)
	if got := b.text(`.field[data-field="body.trl"] .field-error`); !strings.Contains(got, "过大") || !strings.Contains(got, "9") {
		t.Fatalf("error next to the maturity field: %q", got)
	}
	if got := evalIn[string](b, `document.querySelector('[name="body.title"]').value`); got != newTitle {
		t.Fatalf("the title typed was not kept: %q", got)
	}
	b.screenshot("create-form-error")

	// Fix it and save: the record page of the new record, version 1, signed here.
	b.do("fix and save", 60*time.Second,
		chromedp.SetValue(chromedp.CSS(`[name="body.trl"]`), "6"),
		chromedp.Click(chromedp.ID("save")),
		chromedp.WaitVisible(chromedp.ID("flash")),
		chromedp.WaitVisible(chromedp.ID("record-title")),
	)
	if got := b.text("#record-title"); got != newTitle {
		t.Fatalf("saved record title %q, want %q", got, newTitle)
	}
	if got := b.text("#history tr[data-version='1'] .verified"); !strings.Contains(got, "本节点签名") {
		t.Fatalf("own record's history: %q", got)
	}
	if got := b.text("#contact"); !strings.Contains(got, "022-12345678") {
		t.Fatalf("the admin token (pii) does not see the contact at the origin: %q", got)
	}

	// A record written at Hebei appears in Tianjin's console.
	lateTitle := fmt.Sprintf("河北新发布：固废资源化利用技术 %d", time.Now().UnixNano()%100000)
	late := f.create(hb, "supply", "federation", map[string]any{
		"title": lateTitle, "summary": "钢渣与尾矿的资源化综合利用", "industry": "green-petrochemicals", "keywords": []string{"固废", "资源化"}, "trl": 5,
	})
	b.pollPage("record written at Hebei", base+"?"+url.Values{"q": {lateTitle}}.Encode(),
		fmt.Sprintf(`document.querySelector(%s) !== null`, jsString(fmt.Sprintf(`#results tr[data-id="%s"]`, late.ID))), converge+20*time.Second)

	// The federation page: three peers connected, Tianjin's raft leader, the bundle.
	b.pollPage("three connected peers", base+"federation",
		`document.querySelectorAll('#peers .peer-state.ok').length === 3`, converge+20*time.Second)
	if got := b.text("#raft-state"); !strings.Contains(got, "Leader") {
		t.Fatalf("raft state %q", got)
	}
	if got := b.text("#bundle-version"); got != "1" {
		t.Fatalf("bundle version %q", got)
	}
	b.screenshot("federation")

	// English, remembered in a cookie.
	b.do("switch to English", 60*time.Second, chromedp.Click(chromedp.ID("lang-switch")), chromedp.WaitReady(chromedp.CSS(`html[lang="en"] #peers`)))
	if got := b.text("#nav-records"); got != "Catalogues" {
		t.Fatalf("after the switch nav says %q", got)
	}
	b.do("open the list in English", 60*time.Second, chromedp.Navigate(base), chromedp.WaitVisible(chromedp.ID("q")))
	if got := b.text("#search-submit"); got != "Search" {
		t.Fatalf("the language was not remembered: %q", got)
	}

	// Sign out: back to anonymous.
	b.do("sign out", 60*time.Second, chromedp.Click(chromedp.ID("signout")), chromedp.WaitVisible(chromedp.ID("signin-link")))

	if errs := b.consoleErrors(); len(errs) > 0 {
		t.Fatalf("the pages logged errors:\n%s", strings.Join(errs, "\n"))
	}
}
