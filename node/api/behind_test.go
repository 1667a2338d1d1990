package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"liandong/node"
	"liandong/node/search"
	"liandong/schema"
)

// behindService is the node with its search index reported that many changes
// behind, as search.Index reports it past QueryCatchUp during a catch-up.
type behindService struct {
	*node.Node
	behind uint64
}

func (b behindService) Search(ctx context.Context, q search.Query) (*search.Page, error) {
	p, err := b.Node.Search(ctx, q)
	if p != nil {
		p.Behind = b.behind
	}
	return p, err
}

func (b behindService) Match(ctx context.Context, src *schema.Record, opts search.MatchOptions) (*search.MatchResult, error) {
	m, err := b.Node.Match(ctx, src, opts)
	if m != nil {
		m.Behind = b.behind
	}
	return m, err
}

// TestIndexBehindHeader: search and match answers carry Liandong-Index-Behind
// when the index had not taken in every change, and only then.
func TestIndexBehindHeader(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	rec := e.create(t, "supply", "federation", supplyBody("高镍三元正极材料连续化制备技术"))
	e.create(t, "need", "federation", needBody("高镍正极材料量产工艺"))
	for _, behind := range []uint64{0, 2345} {
		h, err := New(Options{Service: behindService{e.node, behind}, Verifier: e.h.(*handler).verifier,
			Authorizer: e.h.(*handler).authz, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		want := ""
		if behind > 0 {
			want = "2345"
		}
		for _, path := range []string{"/v1/records?q=" + url.QueryEscape("正极"), "/v1/match/" + url.PathEscape(rec.ID)} {
			r := doHTTP(t, srv.Client(), srv.URL, req{method: "GET", path: path, token: w})
			wantStatus(t, r, http.StatusOK)
			if got := r.Header.Get(IndexBehindHeader); got != want {
				t.Errorf("behind %d, GET %s: %s = %q, want %q", behind, path, IndexBehindHeader, got, want)
			}
		}
	}
}
