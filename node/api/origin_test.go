package api

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node/store"
	"liandong/schema"
)

// TestUnknownOriginIsRefused: an origin= filter naming no centre this node
// knows (a partner's typo, tianjn) was answered as a filter that matched
// nothing: an empty list, an empty search, a feed and a stream that never
// carried a change. Every route that takes origin now answers 400 naming the
// parameter and the centres the node knows; a known centre with no records
// (hebei here) is still an empty 200.
func TestUnknownOriginIsRefused(t *testing.T) {
	e := newEnv(t, false)
	rec := e.create(t, "supply", "federation", supplyBody("钙钛矿"))
	tok := e.token(t, "tianjin", auth.ScopeRead)
	for _, path := range []string{
		"/v1/records?origin=tianjn",
		"/v1/records?origin=tianjn&q=%E9%92%99%E9%92%9B%E7%9F%BF", // q=钙钛矿: the search
		"/v1/records?origin=tianjn&q=%E9%92%99%E9%92%9B%E7%9F%BF&sort=id",
		"/v1/changes?origin=tianjn&since=0",
		"/v1/changes?origin=tianjn&since=0&wait=1",
		"/v1/changes/stream?origin=tianjn",
	} {
		r := e.do(t, req{method: "GET", path: path, token: tok})
		wantStatus(t, r, http.StatusBadRequest)
		p := r.problem(t)
		if p.Type != ProblemTypePrefix+"bad-parameter" || len(p.Errors) != 1 || p.Errors[0].Path != "origin" || p.Errors[0].Rule != schema.RuleEnum {
			t.Fatalf("%s: %s", path, r.body)
		}
		for _, want := range []string{`"tianjn"`, "hebei", "tianjin"} {
			if !strings.Contains(p.Errors[0].Message, want) {
				t.Errorf("%s: message %q does not name %s", path, p.Errors[0].Message, want)
			}
		}
	}
	// Known centres: the node's own, with its record; another member, with none.
	for path, want := range map[string]int{
		"/v1/records?origin=tianjin":                               1,
		"/v1/records?origin=tianjin&q=%E9%92%99%E9%92%9B%E7%9F%BF": 1,
		"/v1/records?origin=hebei":                                 0,
		"/v1/records?origin=hebei&q=%E9%92%99%E9%92%9B%E7%9F%BF":   0,
	} {
		r := e.do(t, req{method: "GET", path: path, token: tok})
		wantStatus(t, r, http.StatusOK)
		if n := strings.Count(string(r.body), `{"id":"`+rec.ID+`","catalogue"`); n != want {
			t.Errorf("%s: %d mentions of %s, want %d: %s", path, n, rec.ID, want, r.body)
		}
	}
	for _, origin := range []string{"tianjin", "hebei"} {
		feed, _ := e.feed(t, tok, "?since=0&origin="+origin)
		if want := map[string]int{"tianjin": 1, "hebei": 0}[origin]; len(feed.Changes) != want {
			t.Errorf("feed origin=%s: %d changes, want %d", origin, len(feed.Changes), want)
		}
	}
	s := openStream(t, e.srv.URL, "/v1/changes/stream?origin=tianjin", tok, nil)
	if ev := s.nextChange(t, 10*time.Second); !strings.Contains(ev.data, rec.ID) {
		t.Fatalf("stream origin=tianjin: %s", ev.data)
	}

	// The store's answer for a centre the bundle might stop listing: its
	// records, a tombstone included, keep its filter valid; a prefix of an
	// id's centre is no centre.
	r := e.do(t, req{method: "DELETE", path: "/v1/records/" + rec.ID, token: e.writer(t)})
	wantStatus(t, r, http.StatusOK)
	for origin, want := range map[string]bool{"tianjin": true, "tianji": false, "hebei": false} {
		if held, err := e.node.HoldsOrigin(origin); err != nil || held != want {
			t.Errorf("HoldsOrigin(%s) = %v, %v; want %v", origin, held, err, want)
		}
	}
}

// originHoldingService is a fakeService whose state holds records of the centres
// in held.
type originHoldingService struct {
	*fakeService
	held map[string]bool
}

func (h *originHoldingService) HoldsOrigin(origin string) (bool, error) { return h.held[origin], nil }

// TestRemovedOrHeldOriginStaysAFilter: a centre that left the federation (the
// bundle marks it removed) and one whose records this node holds, though no
// bundle lists it (purged, its records tombstones), stay valid filters; the
// message of a refusal marks the removed centre so.
func TestRemovedOrHeldOriginStaysAFilter(t *testing.T) {
	svc := &fakeService{}
	hs := &originHoldingService{fakeService: svc, held: map[string]bool{"oldcentre": true}}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = hs })
	b := *svc.bundle
	b.Members = append([]auth.Member(nil), b.Members...)
	removed := time.Now().Add(-time.Hour)
	b.Members[1].Removed = &removed // hebei left
	svc.bundle = &b
	svc.list = func(context.Context, store.Query) ([]*schema.Record, string, error) { return nil, "", nil }
	tok := e.token(t, "tianjin", auth.ScopeRead)
	for _, origin := range []string{"hebei", "oldcentre", "tianjin"} {
		for _, path := range []string{"/v1/records?origin=" + origin, "/v1/changes?since=0&origin=" + origin} {
			wantStatus(t, e.do(t, req{method: "GET", path: path, token: tok}), http.StatusOK)
		}
	}
	r := e.do(t, req{method: "GET", path: "/v1/changes?origin=xiongan", token: tok})
	wantStatus(t, r, http.StatusBadRequest)
	if p := r.problem(t); len(p.Errors) != 1 || !strings.Contains(p.Errors[0].Message, "hebei (removed)") {
		t.Fatalf("%s", r.body)
	}
}
