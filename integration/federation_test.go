package integration

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	lclient "liandong/client"
)

const converge = 20 * time.Second

// TestFederationReplicates: a record written at each centre is readable at the
// three others; updates and deletes follow; private records and personal data
// stay at their origin.
func TestFederationReplicates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes")
	}
	f := newFederation(t, fedOptions{})
	ctx := context.Background()

	shared := make([]envelope, len(centreIDs))
	for i, id := range centreIDs {
		shared[i] = f.create(i, "supply", "federation", supplyBody("成果 of "+id))
	}
	private := f.create(1, "supply", "private", supplyBody("内部成果"))
	for i := range centreIDs {
		for j := range centreIDs {
			if i == j {
				continue
			}
			got := f.waitRecord(j, shared[i].ID, 1, false, converge)
			if got.Origin != centreIDs[i] || got.Broker != centreIDs[i] {
				t.Fatalf("%s sees %s with origin %q broker %q", centreIDs[j], shared[i].ID, got.Origin, got.Broker)
			}
			// Personal data never leaves the origin, not even for an admin token with pii.
			if bytes.Contains(got.Body, []byte("contact")) || bytes.Contains(got.Body, []byte("王老师")) {
				t.Fatalf("%s holds personal data of %s: %s", centreIDs[j], shared[i].ID, got.Body)
			}
		}
	}
	// At the origin, the pii admin token sees the contact block.
	var own envelope
	if _, err := f.clients[0].do(ctx, http.MethodGet, "/v1/records/"+shared[0].ID, nil, &own); err != nil || !bytes.Contains(own.Body, []byte("王老师")) {
		t.Fatalf("origin lost its contact block: %s %v", own.Body, err)
	}

	// Update at the origin; everyone sees version 2.
	var upd envelope
	if _, err := f.clients[2].do(ctx, http.MethodPut, "/v1/records/"+shared[2].ID, map[string]any{
		"catalogue": "supply", "visibility": "public", "body": supplyBody("更新后的成果"),
	}, &upd); err != nil || upd.Version != 2 {
		t.Fatalf("update: %+v %v", upd, err)
	}
	for j := range centreIDs {
		if got := f.waitRecord(j, shared[2].ID, 2, false, converge); !bytes.Contains(got.Body, []byte("更新后的成果")) {
			t.Fatalf("%s: update not applied: %s", centreIDs[j], got.Body)
		}
	}
	// Delete at the origin; everyone answers 404.
	if _, err := f.clients[3].do(ctx, http.MethodDelete, "/v1/records/"+shared[3].ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	for j := range centreIDs {
		f.waitRecord(j, shared[3].ID, 0, true, converge)
	}

	// Withdraw Tianjin's record (turn it private): Hebei stops serving it, and a
	// partner mirroring Hebei's change feed is told, by a tombstone.
	if _, err := f.clients[1].do(ctx, http.MethodPut, "/v1/records/"+shared[1].ID, map[string]any{
		"catalogue": "supply", "visibility": "private", "body": supplyBody("撤回"),
	}, nil); err != nil {
		t.Fatal(err)
	}
	f.waitRecord(2, shared[1].ID, 0, true, converge)
	var lastSeen *envelope
	for cursor, page := "", 0; page < 50; page++ {
		var feed struct {
			Changes []struct {
				Record envelope `json:"record"`
			} `json:"changes"`
			NextCursor string `json:"next_cursor"`
		}
		path := "/v1/changes?limit=500"
		if cursor != "" {
			path += "&since=" + cursor
		}
		if _, err := f.clients[2].do(ctx, http.MethodGet, path, nil, &feed); err != nil {
			t.Fatal(err)
		}
		if len(feed.Changes) == 0 {
			break
		}
		for _, c := range feed.Changes {
			if c.Record.ID == shared[1].ID {
				r := c.Record
				lastSeen = &r
			}
		}
		cursor = feed.NextCursor
	}
	if lastSeen == nil || !lastSeen.Deleted || lastSeen.Version != 2 || string(lastSeen.Body) != "{}" {
		t.Fatalf("hebei's feed ends %s with %+v, want a tombstone at version 2", shared[1].ID, lastSeen)
	}

	heads := f.waitConverged(converge)
	if len(heads) != 4 {
		t.Fatalf("heads %v: want one per centre", heads)
	}

	// A partner of Hebei, through the Go client, finds Headquarters' record by a
	// Chinese full-text query: replicated records are indexed too.
	pc := lclient.New(f.urls[2], f.clients[2].token)
	page, err := pc.Search(ctx, "成果 hq", lclient.ListOptions{Catalogue: "supply", Origin: "hq"})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range page.Items {
		found = found || r.ID == shared[0].ID
	}
	if !found {
		t.Fatalf("search at hebei did not find %s: %+v", shared[0].ID, page)
	}
	// The private record is in nobody else's store.
	for j := range centreIDs {
		if j == 1 {
			continue
		}
		code, _ := f.clients[j].do(ctx, http.MethodGet, "/v1/records/"+private.ID, nil, nil)
		if code != http.StatusNotFound {
			t.Fatalf("%s answers %d for tianjin's private record", centreIDs[j], code)
		}
	}
}

// TestFederationRelaysAroundCutLink: with the Tianjin–Hebei link cut, Hebei still
// receives Tianjin's records through headquarters or Xiong'an.
func TestFederationRelaysAroundCutLink(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes")
	}
	f := newFederation(t, fedOptions{block: map[string][]string{"tianjin": {"hebei"}, "hebei": {"tianjin"}}})
	rec := f.create(1, "need", "federation", map[string]any{
		"title": "风电齿轮箱轴承寿命预测", "description": "寻求合作", "industry": "high-end-equipment",
		"enterprise": "天津某装备公司", "status": "open", "kind": "need",
	})
	f.waitRecord(2, rec.ID, 1, false, converge)

	// And the link really is cut: Hebei has no connection to Tianjin.
	var doc struct {
		Sync struct {
			Peers []struct {
				Member    string `json:"member"`
				Connected bool   `json:"connected"`
			} `json:"peers"`
		} `json:"sync"`
	}
	if _, err := f.clients[2].do(context.Background(), http.MethodGet, "/v1/federation", nil, &doc); err != nil {
		t.Fatal(err)
	}
	for _, p := range doc.Sync.Peers {
		if p.Member == "tianjin" && p.Connected {
			t.Fatal("hebei is connected to tianjin although the link is cut")
		}
	}
	f.waitConverged(converge)
}

// TestFederationCatchUpAndConcurrentRestarts: Xiong'an is stopped while the others
// take 1,000 writes, then restarted: it catches up. Then all four write at once
// while two centres are killed and restarted; every acknowledged write is at every
// centre and all report the same heads.
func TestFederationCatchUpAndConcurrentRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four processes")
	}
	f := newFederation(t, fedOptions{})
	ctx := context.Background()

	if err := f.procs[3].stop(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]int{} // id → origin index
	write := func(ctx context.Context, i, n int) {
		for k := 0; k < n && ctx.Err() == nil; k++ {
			var env envelope
			if _, err := f.clients[i].do(ctx, http.MethodPost, "/v1/records", map[string]any{
				"catalogue": "supply", "visibility": "federation", "body": supplyBody(fmt.Sprintf("%s-%d", centreIDs[i], k)),
			}, &env); err != nil {
				continue // a centre being restarted refuses; only acknowledged writes count
			}
			mu.Lock()
			acked[env.ID] = i
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() { defer wg.Done(); write(ctx, i, 84) }()
		}
	}
	wg.Wait()
	if len(acked) < 1000 {
		t.Fatalf("only %d writes acknowledged", len(acked))
	}
	f.restart(3)
	f.waitConverged(60 * time.Second)

	// Concurrent writes at all four centres while tianjin and hebei restart.
	wctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	for i := range centreIDs {
		wg.Add(1)
		go func() { defer wg.Done(); write(wctx, i, 1<<20) }()
	}
	time.Sleep(time.Second)
	f.procs[1].kill()
	time.Sleep(500 * time.Millisecond)
	f.procs[2].kill()
	f.restart(1)
	f.restart(2)
	wg.Wait()
	cancel()
	f.waitConverged(60 * time.Second)

	// Every acknowledged write is readable at every centre.
	for id := range acked {
		for j := range centreIDs {
			code, err := f.clients[j].do(ctx, http.MethodGet, "/v1/records/"+id, nil, nil)
			if code != http.StatusOK {
				t.Fatalf("%s lacks acknowledged %s: %v", centreIDs[j], id, err)
			}
		}
	}
	t.Logf("%d acknowledged writes present at all four centres", len(acked))
}
