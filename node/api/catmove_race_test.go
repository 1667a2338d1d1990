package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/schema"
)

// TestConcurrentCreatesDoNotMoveCatalogue: two PUTs creating the same new id
// in different catalogues, at once. One may create it; the other must then be
// refused as a catalogue move (422), as it would be a moment later, or it
// replaces it in the same catalogue. Both succeeding means the record moved
// catalogues without a tombstone: a partner mirroring the first catalogue's
// feed keeps the record for ever.
func TestConcurrentCreatesDoNotMoveCatalogue(t *testing.T) {
	e := newEnv(t, false)
	tok := e.writer(t)
	for i := range 30 {
		id := fmt.Sprintf("tianjin:race-%d", i)
		codes := make([]int, 2)
		var wg sync.WaitGroup
		for j, cat := range []string{"supply", "need"} {
			body := supplyBody("竞争")
			if cat == "need" {
				body = needBody("竞争")
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.do(t, req{method: "PUT", path: "/v1/records/" + id, token: tok, body: envelope(cat, "federation", body)})
				codes[j] = r.StatusCode
			}()
		}
		wg.Wait()
		if codes[0] < 300 && codes[1] < 300 {
			// Both went through: what does a supply mirror see?
			var feed changesResponse
			feed, _ = e.feed(t, tok, "?catalogue=supply")
			for _, c := range feed.Changes {
				if c.Record.ID == id {
					t.Logf("supply feed: %s v%d deleted=%v", c.Record.ID, c.Record.Version, c.Record.Deleted)
				}
			}
			r := e.do(t, req{method: "GET", path: "/v1/records/" + id, token: tok})
			wantStatus(t, r, http.StatusOK)
			rec := r.record(t)
			t.Fatalf("attempt %d: both creates answered %v: %s is now a %s record at version %d, moved without a tombstone", i, codes, id, rec.Catalogue, rec.Version)
		}
	}
}

// holdingService is a node whose first Put of id waits, after the handler has
// read the record and decided the write, until release is closed: the
// window review 108 found, between a PUT's read and its proposal, held open.
type holdingService struct {
	*node.Node
	id       string
	held     chan struct{} // closed when the Put of id is waiting
	release  chan struct{}
	holdOnce sync.Once
}

func (s *holdingService) Put(ctx context.Context, id string, rec *schema.Record, ifMatch uint64) (*schema.Record, error) {
	if id == s.id {
		s.holdOnce.Do(func() {
			close(s.held)
			select {
			case <-s.release:
			case <-ctx.Done():
			}
		})
	}
	return s.Node.Put(ctx, id, rec, ifMatch)
}

// holdingServer serves e's node a second time, through a holdingService of id.
func (e *env) holdingServer(t *testing.T, id string) (*holdingService, string) {
	t.Helper()
	svc := &holdingService{Node: e.node, id: id, held: make(chan struct{}), release: make(chan struct{})}
	h, err := New(Options{
		Service:    svc,
		Verifier:   &auth.TokenVerifier{Federation: testFederation, Bundle: e.node.Bundle},
		Authorizer: &auth.Authorizer{Centre: "tianjin", AllowAnonymous: true},
		Logger:     testLogger(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-svc.release:
		default:
			close(svc.release)
		}
	})
	return svc, srv.URL
}

// TestPutOverRecreatedRecordKeepsCatalogue (review 108): a PUT without
// If-Match reads a live supply record and decides to replace it; before its
// write is applied the record is deleted and its id created again as a need
// record. The PUT must then be refused as the catalogue move it has become
// (422), as it would be had it read the need record, and the need record
// stay: written over it, the record would leave the need catalogue without a
// tombstone in the need feed, and a partner mirroring needs keep it for ever.
// The single route and a batch item take the same path (handler.put).
func TestPutOverRecreatedRecordKeepsCatalogue(t *testing.T) {
	for _, via := range []string{"put", "batch"} {
		t.Run(via, func(t *testing.T) {
			e := newEnv(t, false)
			tok := e.writer(t)
			id := "tianjin:recreated-" + via
			r := e.do(t, req{method: "PUT", path: "/v1/records/" + id, token: tok, body: envelope("supply", "federation", supplyBody("原成果"))})
			wantStatus(t, r, http.StatusCreated)

			svc, url := e.holdingServer(t, id)
			update := envelope("supply", "federation", supplyBody("改过的成果"))
			type answer struct {
				status int
				body   []byte
			}
			done := make(chan answer, 1)
			go func() {
				// t.Fatal is for the test's goroutine: doHTTP's failures
				// come back as a 0 status.
				rq := req{method: "PUT", path: "/v1/records/" + id, token: tok, body: update}
				if via == "batch" {
					rq = req{method: "POST", path: "/v1/batch", token: tok, body: map[string]any{"items": []map[string]any{
						{"method": "PUT", "id": id, "record": update}}}}
				}
				js, _ := json.Marshal(rq.body)
				hr, _ := http.NewRequest(rq.method, url+rq.path, bytes.NewReader(js))
				hr.Header.Set("Content-Type", "application/json")
				hr.Header.Set("Authorization", "Bearer "+tok)
				res, err := e.cli.Do(hr)
				if err != nil {
					done <- answer{body: []byte(err.Error())}
					return
				}
				defer res.Body.Close()
				body, _ := io.ReadAll(res.Body)
				done <- answer{res.StatusCode, body}
			}()
			select {
			case <-svc.held:
			case a := <-done:
				t.Fatalf("the held PUT answered %d before it reached its write: %s", a.status, a.body)
			case <-time.After(20 * time.Second):
				t.Fatal("the PUT never reached its write")
			}

			r = e.do(t, req{method: "DELETE", path: "/v1/records/" + id, token: tok})
			wantStatus(t, r, http.StatusOK)
			r = e.do(t, req{method: "PUT", path: "/v1/records/" + id, token: tok, body: envelope("need", "federation", needBody("新需求"))})
			wantStatus(t, r, http.StatusCreated)
			need := r.record(t)
			close(svc.release)

			a := <-done
			status := a.status
			var p Problem
			if via == "batch" && status == http.StatusOK {
				var out struct {
					Items []batchResult `json:"items"`
				}
				if err := json.Unmarshal(a.body, &out); err != nil || len(out.Items) != 1 {
					t.Fatalf("batch answer %s: %v", a.body, err)
				}
				status = out.Items[0].Status
				if out.Items[0].Problem != nil {
					p = *out.Items[0].Problem
				}
			} else {
				json.Unmarshal(a.body, &p)
			}
			r = e.do(t, req{method: "GET", path: "/v1/records/" + id, token: tok})
			wantStatus(t, r, http.StatusOK)
			got := r.record(t)
			if got.Catalogue != "need" || got.Version != need.Version {
				t.Fatalf("the held PUT answered %d and %s is now a %s record at version %d (the need record was version %d): it left the need catalogue without a tombstone",
					status, id, got.Catalogue, got.Version, need.Version)
			}
			// Decided again on the need record, the refusal is the one a
			// PUT reading it gets (catalogueMove's), not the state
			// machine's own.
			if status != http.StatusUnprocessableEntity || len(p.Errors) != 1 || p.Errors[0].Path != "catalogue" ||
				!strings.Contains(p.Errors[0].Message, "partners mirroring need") {
				t.Fatalf("the held PUT answered %d %+v, want 422 on catalogue (a move refused, decided again)", status, p)
			}
		})
	}
}
