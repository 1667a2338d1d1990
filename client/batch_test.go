package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"liandong/schema"
)

// TestBatch: Batch sends each write as the node's items want them and
// turns each answer into a record or a *Problem, in order.
func TestBatch(t *testing.T) {
	var sent []map[string]any
	answer := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/batch" || r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "unexpected", http.StatusTeapot)
			return
		}
		var b struct{ Items []map[string]any }
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			t.Errorf("request: %v", err)
		}
		sent = b.Items
		if strings.HasPrefix(answer, "problem ") {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, strings.TrimPrefix(answer, "problem "))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "3")
		fmt.Fprint(w, answer)
	}))
	defer srv.Close()
	c := New(srv.URL, "tok")
	rec := &schema.Record{ID: "tianjin:ignored", Catalogue: "supply", Body: json.RawMessage(`{"title":"t"}`)}
	writes := []Write{
		{Method: http.MethodPost, Record: rec},
		{Method: http.MethodPut, ID: "tianjin:a", IfMatch: 3, Record: rec},
		{Method: http.MethodDelete, ID: "tianjin:b"},
	}

	answer = `{"items":[{"status":201,"record":{"id":"tianjin:new","version":1}},` +
		`{"status":412,"problem":{"type":"urn:liandong:problem:precondition-failed","title":"Precondition failed","status":412,"detail":"at version 4"}},` +
		`{"status":200,"record":{"id":"tianjin:b","version":2,"deleted":true}}]}`
	got, err := c.Batch(context.Background(), writes)
	if err != nil {
		t.Fatal(err)
	}
	if len(sent) != 3 || sent[0]["method"] != "POST" || sent[0]["id"] != nil || sent[0]["record"].(map[string]any)["id"] != nil ||
		sent[1]["id"] != "tianjin:a" || sent[1]["if_match"] != 3.0 || sent[1]["record"].(map[string]any)["id"] != "tianjin:a" ||
		sent[2]["record"] != nil || sent[2]["if_match"] != nil {
		t.Fatalf("sent %v", sent)
	}
	var p *Problem
	switch {
	case got[0].Status != 201 || got[0].Err != nil || got[0].Record.ID != "tianjin:new":
		t.Fatalf("item 0: %+v", got[0])
	case got[1].Status != 412 || got[1].Record != nil || !errors.As(got[1].Err, &p) || p.Kind() != "precondition-failed" || p.Detail != "at version 4" || p.RetryAfter != 0:
		t.Fatalf("item 1: %+v", got[1])
	case got[2].Status != 200 || got[2].Err != nil || !got[2].Record.Deleted:
		t.Fatalf("item 2: %+v", got[2])
	}

	answer = `{"items":[{"status":503,"problem":{"type":"urn:liandong:problem:unavailable","title":"Service unavailable","status":503}},{"status":201,"record":{"id":"tianjin:new","version":1}},{"status":201,"record":{"id":"tianjin:n2","version":1}}]}`
	got, err = c.Batch(context.Background(), writes)
	if err != nil || !errors.As(got[0].Err, &p) || p.Status != 503 || p.RetryAfter != 3*time.Second {
		t.Fatalf("503 item: %+v, %v", got[0], err)
	}

	answer = `{"items":[{"status":201,"record":{"id":"tianjin:new","version":1}}]}`
	if _, err := c.Batch(context.Background(), writes); err == nil || !strings.Contains(err.Error(), "1 results for 3 writes") {
		t.Fatalf("short answer: %v", err)
	}
	answer = `problem {"type":"urn:liandong:problem:forbidden","title":"Forbidden","status":403}`
	if _, err := c.Batch(context.Background(), writes); !errors.As(err, &p) || p.Status != 403 {
		t.Fatalf("refused batch: %v", err)
	}
}

// TestGetMany: the ids go in one request, and the answer comes back by id.
func TestGetMany(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/records" || r.URL.Query().Get("ids") != "tianjin:a,tianjin:b,tianjin:c" {
			http.Error(w, "unexpected "+r.URL.String(), http.StatusTeapot)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"items":[{"id":"tianjin:c","version":3},{"id":"tianjin:a","version":1}]}`)
	}))
	defer srv.Close()
	c := New(srv.URL, "")
	got, err := c.GetMany(context.Background(), []string{"tianjin:a", "tianjin:b", "tianjin:c"})
	if err != nil || len(got) != 2 || got["tianjin:a"].Version != 1 || got["tianjin:c"].Version != 3 || got["tianjin:b"] != nil {
		t.Fatalf("%v, %v", got, err)
	}
}

// TestGetManySplits: ids go at most MaxBatch a request, and fewer when
// long, so that no request line nears the node's 64 KB header limit.
func TestGetManySplits(t *testing.T) {
	var requests, most, longest int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ids := strings.Split(r.URL.Query().Get("ids"), ",")
		requests++
		most = max(most, len(ids))
		longest = max(longest, len(r.URL.RawQuery))
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"items":[{"id":%q,"version":1}]}`, ids[0])
	}))
	defer srv.Close()
	c := New(srv.URL, "")
	short := make([]string, MaxBatch*2+1)
	for i := range short {
		short[i] = fmt.Sprintf("tianjin:s-%d", i)
	}
	got, err := c.GetMany(context.Background(), short)
	if err != nil || requests != 3 || most != MaxBatch || len(got) != 3 {
		t.Fatalf("%d short ids: %d requests of at most %d, %d records, %v", len(short), requests, most, len(got), err)
	}
	requests, most = 0, 0
	long := make([]string, MaxBatch)
	for i := range long {
		long[i] = fmt.Sprintf("tianjin:%0128d", i)
	}
	if _, err := c.GetMany(context.Background(), long); err != nil || requests < 5 || longest > 20<<10 {
		t.Fatalf("%d ids of 136 bytes: %d requests, longest query %d bytes, %v", len(long), requests, longest, err)
	}
}
