package api

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
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
