package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// TestConsistentReads: a Client with Consistent asks every record read to
// go through the leader, and keeps the read's own parameters; one without
// it asks for nothing of the kind.
func TestConsistentReads(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.URL.RequestURI())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/v1/records" {
			fmt.Fprint(w, `{"items":[]}`)
			return
		}
		fmt.Fprint(w, `{"id":"tianjin:a","version":1}`)
	}))
	defer srv.Close()
	ctx := context.Background()
	for _, consistent := range []bool{true, false} {
		seen = nil
		c := New(srv.URL, "")
		c.Consistent = consistent
		if _, err := c.Get(ctx, "tianjin:a"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetMany(ctx, []string{"tianjin:a", "tianjin:b"}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Search(ctx, "锂电池", ListOptions{Catalogue: "supply"}); err != nil {
			t.Fatal(err)
		}
		want := []string{"/v1/records/tianjin:a", "/v1/records?ids=tianjin%3Aa%2Ctianjin%3Ab", "/v1/records?catalogue=supply&q=%E9%94%82%E7%94%B5%E6%B1%A0"}
		if consistent {
			want = []string{"/v1/records/tianjin:a?consistent=true", "/v1/records?consistent=true&ids=tianjin%3Aa%2Ctianjin%3Ab",
				"/v1/records?catalogue=supply&consistent=true&q=%E9%94%82%E7%94%B5%E6%B1%A0"}
		}
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Errorf("consistent %v: asked\n%v\nwant\n%v", consistent, seen, want)
		}
	}
}
