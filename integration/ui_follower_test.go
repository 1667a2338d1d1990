package integration

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
)

// TestConsoleSaveAtFollowerShowsRecord: staff whose browser reaches a follower
// replica (behind a load balancer any replica serves the console) create a
// record in the console; the save is forwarded to the leader, and the record
// page the console redirects to shows the record just saved, although the
// follower may not have applied the write yet (the page reads through the
// leader after a save), and so does its edit form.
func TestConsoleSaveAtFollowerShowsRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	g := newCentreGroup(t, 3)
	lead := g.leader(-1)
	fol := (lead + 1) % 3
	tokb, err := os.ReadFile(g.cfgs[fol].Path("admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(string(tokb))
	const csrf = "0123456789abcdef0123456789abcdef0123456789abcdef"
	cli := &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(method, path string, form url.Values) (*http.Response, string) {
		var body io.Reader
		if form != nil {
			body = strings.NewReader(form.Encode())
		}
		r, _ := http.NewRequest(method, g.urls[fol]+path, body)
		if form != nil {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		r.AddCookie(&http.Cookie{Name: "ld_session", Value: tok})
		r.AddCookie(&http.Cookie{Name: "ld_csrf", Value: csrf})
		res, err := cli.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	stale := 0
	const n = 10
	for i := 0; i < n; i++ {
		title := "从副本保存的成果 " + string(rune('A'+i))
		res, page := do(http.MethodPost, "/ui/new", url.Values{"_csrf": {csrf}, "catalogue": {"supply"}, "body.title": {title},
			"body.summary": {"简介"}, "body.industry": {"new-materials"}, "visibility": {"federation"}})
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("save: %d\n%s", res.StatusCode, page)
		}
		loc := res.Header.Get("Location")
		after, page := do(http.MethodGet, loc, nil)
		if after.StatusCode != http.StatusOK || !strings.Contains(page, title) {
			stale++
			j := strings.Index(page, `id="error-message"`)
			t.Logf("save %d: %s answers %d: %s", i, loc, after.StatusCode, page[max(j, 0):min(len(page), max(j, 0)+200)])
			continue
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatal(err)
		}
		if edit, page := do(http.MethodGet, u.Path+"/edit", nil); edit.StatusCode != http.StatusOK || !strings.Contains(page, title) {
			stale++
			t.Logf("save %d: its edit form answers %d", i, edit.StatusCode)
		}
	}
	if stale > 0 {
		t.Fatalf("%d of %d records just saved at a follower were not shown on the page the save redirected to or on their edit form", stale, n)
	}
}
