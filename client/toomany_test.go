package client

import (
	"context"
	"net/http"
	"testing"
	"time"

	"liandong/schema"
)

// TestTooManyWrites: a write refused unbegun (429 too-many-writes) reads as
// such, with the wait the node asked for; a 429 of another kind, or a 503,
// does not.
func TestTooManyWrites(t *testing.T) {
	for _, c := range []struct {
		name   string
		status int
		doc    string
		want   bool
	}{
		{"too many writes", 429, `{"type":"urn:liandong:problem:too-many-writes","title":"Too many writes","status":429}`, true},
		{"another 429", 429, `{"type":"urn:example:rate-limited","title":"Slow down","status":429}`, false},
		{"unavailable", 503, `{"type":"urn:liandong:problem:unavailable","title":"Service unavailable","status":503}`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := cannedClient(c.status, http.Header{"Content-Type": {"application/problem+json"}, "Retry-After": {"1"}}, []byte(c.doc))
			_, err := cl.Create(context.Background(), &schema.Record{Catalogue: "supply"})
			if err == nil {
				t.Fatal("no error")
			}
			if got := IsTooManyWrites(err); got != c.want {
				t.Errorf("IsTooManyWrites(%v) = %v, want %v", err, got, c.want)
			}
			if p, ok := err.(*Problem); !ok || p.RetryAfter != time.Second {
				t.Errorf("%v: RetryAfter not the answer's 1 s", err)
			}
		})
	}
}
