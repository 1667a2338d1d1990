package client

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestProblemStatusIsTheAnswers: a problem document whose status member
// differs from the answer's (a proxy's page, a confused server) is read with
// the answer's status, for a whole answer and for a batch item alike: a 503
// that says 404 must not read as IsNotFound (the record gone), nor a 404 that
// says 503 as worth retrying. What the document said stays in the detail.
func TestProblemStatusIsTheAnswers(t *testing.T) {
	for _, c := range []struct {
		name     string
		status   int
		doc      string
		notFound bool
	}{
		{"503 saying 404", 503, `{"type":"urn:liandong:problem:not-found","title":"Not found","status":404,"detail":"no record tianjin:a"}`, false},
		{"404 saying 503", 404, `{"type":"urn:liandong:problem:unavailable","title":"Unavailable","status":503}`, true},
		{"404 saying 404", 404, `{"type":"urn:liandong:problem:not-found","title":"Not found","status":404,"detail":"no record tianjin:a"}`, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			check := func(how string, p *Problem) {
				t.Helper()
				if p.Status != c.status || IsNotFound(p) != c.notFound {
					t.Errorf("%s: %+v; want status %d, not found %v", how, p, c.status, c.notFound)
				}
				if !strings.Contains(p.Error(), "tianjin:a") && strings.Contains(c.doc, "tianjin:a") {
					t.Errorf("%s: %q lost the document's detail", how, p.Error())
				}
			}
			client := cannedClient(c.status, http.Header{"Content-Type": {"application/problem+json"}, "Retry-After": {"2"}}, []byte(c.doc))
			_, err := client.Get(context.Background(), "tianjin:a")
			p, ok := err.(*Problem)
			if !ok {
				t.Fatalf("Get: %v, not a *Problem", err)
			}
			check("answer", p)

			batch := cannedClient(http.StatusOK, http.Header{"Content-Type": {"application/json"}, "Retry-After": {"2"}},
				[]byte(`{"items":[{"status":`+strconv.Itoa(c.status)+`,"problem":`+c.doc+`}]}`))
			got, err := batch.Batch(context.Background(), []Write{{Method: http.MethodDelete, ID: "tianjin:a"}})
			if err != nil {
				t.Fatal(err)
			}
			bp, ok := got[0].Err.(*Problem)
			if !ok || got[0].Status != c.status {
				t.Fatalf("batch item: %+v; want status %d and a *Problem", got[0], c.status)
			}
			check("batch item", bp)
		})
	}
}
