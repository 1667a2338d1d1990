package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/node/store"
	"liandong/schema"
)

// TestPaginationUnderWrites pages through 250 records with limit 20 while another
// goroutine creates and updates records: every record that existed at the start
// is seen exactly once, in id order.
func TestPaginationUnderWrites(t *testing.T) {
	e := newEnv(t, false)
	const initial = 250
	ids := make([]string, initial)
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= initial {
					return
				}
				vis := []string{"federation", "public", "private"}[i%3]
				rec, err := e.node.Create(context.Background(), &schema.Record{Catalogue: "supply", Visibility: vis, Body: mustJSON(supplyBody(fmt.Sprintf("成果 %03d", i)))})
				if err != nil {
					errs <- err
					return
				}
				ids[i] = rec.ID
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// The writer: new records and updates of existing ones, until the reader is done.
	stop := make(chan struct{})
	writerDone := make(chan struct{})
	var writes atomic.Int64
	go func() {
		defer close(writerDone)
		ctx := context.Background()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var err error
			if i%2 == 0 {
				_, err = e.node.Create(ctx, &schema.Record{Catalogue: "need", Visibility: "federation", Body: mustJSON(needBody(fmt.Sprintf("新需求 %d", i)))})
			} else {
				id := ids[(i*37)%initial]
				_, err = e.node.Put(ctx, id, &schema.Record{Catalogue: "supply", Visibility: "federation", Body: mustJSON(supplyBody(fmt.Sprintf("更新 %d", i)))}, 0)
			}
			if err != nil {
				t.Errorf("background write: %v", err)
				return
			}
			writes.Add(1)
		}
	}()

	seen := map[string]int{}
	tok := e.token(t, "tianjin", auth.ScopeRead)
	cursor, last, pages := "", "", 0
	for {
		path := "/v1/records?limit=20"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := e.do(t, req{method: "GET", path: path, token: tok})
		wantStatus(t, r, http.StatusOK)
		var page listResponse
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Items) > 20 {
			t.Fatalf("page of %d", len(page.Items))
		}
		for _, it := range page.Items {
			if it.ID <= last {
				t.Fatalf("id %s after %s: out of order", it.ID, last)
			}
			last = it.ID
			seen[it.ID]++
		}
		pages++
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
		if pages > 1000 {
			t.Fatal("pagination does not end")
		}
		// A write between every two pages, whatever the machine's speed (a
		// fixed sleep let a loaded CI machine page faster than it wrote).
		before, deadline := writes.Load(), time.Now().Add(10*time.Second)
		for writes.Load() == before && time.Now().Before(deadline) {
			time.Sleep(2 * time.Millisecond)
		}
	}
	close(stop)
	<-writerDone
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("record %s seen %d times", id, seen[id])
		}
	}
	if writes.Load() < int64(pages-1) {
		t.Errorf("only %d writes during %d pages: the test did not interleave (a write took over 10 s)", writes.Load(), pages)
	}
	t.Logf("%d pages, %d records seen, %d concurrent writes", pages, len(seen), writes.Load())
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func (e *env) feed(t testing.TB, token, query string) (changesResponse, time.Duration) {
	t.Helper()
	start := time.Now()
	r := e.do(t, req{method: "GET", path: "/v1/changes" + query, token: token})
	wantStatus(t, r, http.StatusOK)
	var feed changesResponse
	if err := json.Unmarshal(r.body, &feed); err != nil {
		t.Fatal(err)
	}
	if feed.NextCursor == "" {
		t.Fatalf("no next_cursor: %s", r.body)
	}
	return feed, time.Since(start)
}

func TestChangesFeed(t *testing.T) {
	e := newEnv(t, false)
	tok := e.token(t, "tianjin", auth.ScopeRead)
	var created []string
	for i := 0; i < 5; i++ {
		created = append(created, e.create(t, "supply", "federation", supplyBody(fmt.Sprintf("成果 %d", i))).ID)
	}
	e.create(t, "need", "federation", needBody("需求"))

	// Paging the feed two at a time sees every change once, in order.
	var got []string
	since := "0"
	for i := 0; i < 10; i++ {
		feed, _ := e.feed(t, tok, "?catalogue=supply&limit=2&since="+since)
		for _, c := range feed.Changes {
			got = append(got, c.Record.ID)
			if c.Position == "" {
				t.Error("change without position")
			}
		}
		if len(feed.Changes) == 0 {
			break
		}
		since = feed.NextCursor
	}
	if fmt.Sprint(got) != fmt.Sprint(created) {
		t.Fatalf("feed %v, want %v", got, created)
	}
	// At the end, an immediate answer keeps the cursor.
	feed, _ := e.feed(t, tok, "?since="+since+"&catalogue=supply")
	if len(feed.Changes) != 0 {
		t.Fatalf("changes after the end: %+v", feed.Changes)
	}
}

// TestFilteredFeedEmptyAnswerIsNotTheEnd pins what README and the document
// tell partners: an answer may hold no changes yet move next_cursor on (its
// filter passed over a bounded stretch of the feed), so a reader polls again at
// once and is caught up only when next_cursor comes back equal to since.
func TestFilteredFeedEmptyAnswerIsNotTheEnd(t *testing.T) {
	e := newEnv(t, false)
	tok := e.token(t, "tianjin", auth.ScopeRead)
	for i := 0; i < 70; i++ { // more than one answer reads with limit=1
		e.create(t, "need", "federation", needBody(fmt.Sprintf("需求 %d", i)))
	}
	want := e.create(t, "supply", "federation", supplyBody("成果")).ID

	first, _ := e.feed(t, tok, "?catalogue=supply&limit=1&since=0")
	if len(first.Changes) != 0 || first.NextCursor == "0" || first.NextCursor == "" {
		t.Fatalf("first answer %+v: want no changes and a cursor moved on", first)
	}
	var got []string
	since, caughtUp := "0", false
	for i := 0; i < 10 && !caughtUp; i++ {
		feed, _ := e.feed(t, tok, "?catalogue=supply&limit=1&since="+since)
		for _, c := range feed.Changes {
			got = append(got, c.Record.ID)
		}
		caughtUp = len(feed.Changes) == 0 && feed.NextCursor == since
		since = feed.NextCursor
	}
	if !caughtUp || fmt.Sprint(got) != fmt.Sprint([]string{want}) {
		t.Fatalf("caught up %v with %v, want [%s]", caughtUp, got, want)
	}
}

func TestLongPoll(t *testing.T) {
	e := newEnv(t, false)
	tok := e.token(t, "tianjin", auth.ScopeRead)
	e.create(t, "supply", "federation", supplyBody("起点"))
	head, _ := e.feed(t, tok, "")

	t.Run("times out after wait", func(t *testing.T) {
		feed, took := e.feed(t, tok, "?wait=0.3&since="+head.NextCursor)
		if len(feed.Changes) != 0 || feed.NextCursor != head.NextCursor {
			t.Fatalf("%+v", feed)
		}
		if took < 300*time.Millisecond || took > 3*time.Second {
			t.Fatalf("answered after %v, want about 0.3 s", took)
		}
	})

	t.Run("wakes on a write", func(t *testing.T) {
		done := make(chan struct{})
		var feed changesResponse
		var took time.Duration
		go func() {
			defer close(done)
			feed, took = e.feed(t, tok, "?wait=10&since="+head.NextCursor)
		}()
		time.Sleep(200 * time.Millisecond)
		rec := e.create(t, "need", "federation", needBody("新需求"))
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("long poll did not return after a write")
		}
		if len(feed.Changes) != 1 || feed.Changes[0].Record.ID != rec.ID {
			t.Fatalf("%+v", feed)
		}
		if took > 3*time.Second {
			t.Fatalf("answered after %v", took)
		}
	})

	t.Run("filtered writes do not end the wait", func(t *testing.T) {
		head, _ := e.feed(t, tok, "")
		done := make(chan changesResponse, 1)
		go func() {
			feed, _ := e.feed(t, "", "?wait=1&since="+head.NextCursor) // anonymous: public only
			done <- feed
		}()
		time.Sleep(100 * time.Millisecond)
		e.create(t, "supply", "federation", supplyBody("非公开"))
		pub := e.create(t, "supply", "public", supplyBody("公开"))
		select {
		case feed := <-done:
			if len(feed.Changes) != 1 || feed.Changes[0].Record.ID != pub.ID {
				t.Fatalf("%+v", feed)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no answer")
		}
	})

	t.Run("wait is capped", func(t *testing.T) {
		e := newEnv(t, false, func(_ *node.Config, o *Options) { o.MaxWait = 200 * time.Millisecond })
		_, took := e.feed(t, e.token(t, "tianjin", auth.ScopeRead), "?wait=3600")
		if took > 3*time.Second {
			t.Fatalf("wait not capped: %v", took)
		}
	})
}

// TestShutdownEndsLongPolls checks that NewServer's Shutdown answers waiting polls
// at once instead of waiting them out.
func TestShutdownEndsLongPolls(t *testing.T) {
	e := newEnv(t, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(ln.Addr().String(), e.h)
	go srv.Serve(ln)
	base := "http://" + ln.Addr().String()
	tok := e.token(t, "tianjin", auth.ScopeRead)

	got := make(chan *resp, 1)
	go func() { got <- doHTTP(t, e.cli, base, req{method: "GET", path: "/v1/changes?wait=30", token: tok}) }()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-got:
		wantStatus(t, r, http.StatusOK)
	case <-time.After(5 * time.Second):
		t.Fatal("poll not answered")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("shutdown took %v", took)
	}
}

// TestFeedTellsPartnersOfWithdrawals: at the origin, a shared record turned
// private shows in another centre's partner's feed as a tombstone (no body), so
// their mirror drops it; a record private from the start never shows at all.
func TestFeedTellsPartnersOfWithdrawals(t *testing.T) {
	e := newEnv(t, false)
	shared := e.create(t, "supply", "federation", supplyBody("先共享后撤回"))
	never := e.create(t, "supply", "private", supplyBody("一直内部"))
	r := e.do(t, req{method: "PUT", path: "/v1/records/" + shared.ID, token: e.writer(t), body: envelope("supply", "private", supplyBody("先共享后撤回"))})
	wantStatus(t, r, http.StatusOK)

	partner := e.token(t, "hebei", auth.ScopeRead)
	feed, _ := e.feed(t, partner, "?limit=100")
	var last *schema.Record
	for _, c := range feed.Changes {
		if c.Record.ID == never.ID {
			t.Fatalf("a record private from the start reached another centre's partner: %+v", c.Record)
		}
		if c.Record.ID == shared.ID {
			last = c.Record
		}
	}
	if last == nil || !last.Deleted || last.Version != 2 || string(last.Body) != "{}" {
		t.Fatalf("partner's feed ends %s with %+v, want a bodiless tombstone at version 2", shared.ID, last)
	}
	// The origin's own reader sees the private version itself.
	own, _ := e.feed(t, e.writer(t), "?limit=100")
	for _, c := range own.Changes {
		if c.Record.ID == shared.ID && c.Record.Version == 2 && c.Record.Deleted {
			t.Fatal("the origin's own reader got a tombstone for a live private record")
		}
	}
}

// feedHas reports what the caller's feed says of id: nothing, or its last change.
func (e *env) feedHas(t *testing.T, token, id string) *schema.Record {
	t.Helper()
	feed, _ := e.feed(t, token, "?limit=500")
	var last *schema.Record
	for _, c := range feed.Changes {
		if c.Record.ID == id {
			last = c.Record
		}
	}
	return last
}

// TestFeedTombstonesOnlyForWhoCouldSee: the tombstone of a deleted record
// goes only to callers that could read a record of its last visibility, so a
// record private from the start never shows outside its origin's readers,
// not even deleted; withdrawals go to everyone who could see a shared
// version: any member's reader, and anonymous callers when a version was
// public.
func TestFeedTombstonesOnlyForWhoCouldSee(t *testing.T) {
	e := newEnv(t, false)
	w := e.writer(t)
	callers := map[string]string{"anonymous": "", "hebei partner": e.token(t, "hebei", auth.ScopeRead), "tianjin reader": e.token(t, "tianjin", auth.ScopeRead)}
	change := func(rec *schema.Record, visibility string) {
		t.Helper()
		r := e.do(t, req{method: "PUT", path: "/v1/records/" + rec.ID, token: w, body: envelope(rec.Catalogue, visibility, supplyBody("改变"))})
		wantStatus(t, r, http.StatusOK)
	}
	del := func(rec *schema.Record) {
		t.Helper()
		wantStatus(t, e.do(t, req{method: "DELETE", path: "/v1/records/" + rec.ID, token: w}), http.StatusOK)
	}

	private := e.create(t, "supply", "private", supplyBody("内部评估项目"))
	del(private)
	federation := e.create(t, "supply", "federation", supplyBody("联盟内共享后删除"))
	del(federation)
	withdrawnFed := e.create(t, "supply", "federation", supplyBody("联盟内共享后撤回"))
	change(withdrawnFed, "private")
	withdrawnPub := e.create(t, "supply", "public", supplyBody("公开后撤回"))
	change(withdrawnPub, "private")
	oncepublic := e.create(t, "supply", "public", supplyBody("公开、联盟、撤回"))
	change(oncepublic, "federation")
	change(oncepublic, "private")
	withdrawnThenDeleted := e.create(t, "supply", "federation", supplyBody("撤回后删除"))
	change(withdrawnThenDeleted, "private")
	del(withdrawnThenDeleted)

	for _, c := range []struct {
		name string
		rec  *schema.Record
		sees map[string]bool
	}{
		{"private, deleted", private, map[string]bool{"tianjin reader": true}},
		{"federation, deleted", federation, map[string]bool{"hebei partner": true, "tianjin reader": true}},
		{"federation, withdrawn", withdrawnFed, map[string]bool{"hebei partner": true, "tianjin reader": true}},
		{"public, withdrawn", withdrawnPub, map[string]bool{"anonymous": true, "hebei partner": true, "tianjin reader": true}},
		{"public, federation, withdrawn", oncepublic, map[string]bool{"anonymous": true, "hebei partner": true, "tianjin reader": true}},
		{"federation, withdrawn, deleted", withdrawnThenDeleted, map[string]bool{"hebei partner": true, "tianjin reader": true}},
	} {
		for who, tok := range callers {
			got := e.feedHas(t, tok, c.rec.ID)
			if (got != nil) != c.sees[who] {
				t.Errorf("%s: %s's feed ends with %+v, want it shown: %v", c.name, who, got, c.sees[who])
			}
			if got != nil && who != "tianjin reader" && (!got.Deleted || string(got.Body) != "{}") {
				t.Errorf("%s: %s gets %+v, want a bodiless tombstone", c.name, who, got)
			}
		}
	}
	// A public record made federation-only leaves anonymous callers: they get
	// a tombstone, while members go on reading it.
	narrowed := e.create(t, "supply", "public", supplyBody("公开后仅限联盟"))
	change(narrowed, "federation")
	if got := e.feedHas(t, "", narrowed.ID); got == nil || !got.Deleted || string(got.Body) != "{}" || got.Version != 2 {
		t.Errorf("anonymous feed ends %s with %+v, want a tombstone of version 2", narrowed.ID, got)
	}
	if got := e.feedHas(t, callers["hebei partner"], narrowed.ID); got == nil || got.Deleted || got.Version != 2 {
		t.Errorf("hebei's feed ends %s with %+v, want the record at version 2", narrowed.ID, got)
	}

	// The withdrawal told those who could see the record; the later deletion
	// of a private record is its origin's business.
	if got := e.feedHas(t, callers["hebei partner"], withdrawnThenDeleted.ID); got == nil || got.Version != 2 {
		t.Errorf("hebei's feed ends %s with %+v, want the withdrawal (version 2), not the deletion", withdrawnThenDeleted.ID, got)
	}

	// The stream carries what the feed does.
	s := openStream(t, e.srv.URL, "/v1/changes/stream", "", nil)
	last := e.create(t, "supply", "public", supplyBody("流的终点"))
	for {
		ev := s.nextChange(t, 5*time.Second)
		for _, hidden := range []*schema.Record{private, federation, withdrawnFed, withdrawnThenDeleted} {
			if strings.Contains(ev.data, hidden.ID) {
				t.Fatalf("anonymous stream carries %s: %s", hidden.ID, ev.data)
			}
		}
		if strings.Contains(ev.data, last.ID) {
			break
		}
	}
}

// TestFeedShowsRemoteWithdrawals: another origin's withdrawal reaches this
// node as a private tombstone (the signed log carries no private records),
// and is shown to every member's reader as the withdrawal it is; a private
// tombstone of this centre's own is not.
func TestFeedShowsRemoteWithdrawals(t *testing.T) {
	now := time.Now().UTC()
	tomb := func(id string) *schema.Record {
		origin, _, _ := schema.SplitID(id)
		return &schema.Record{ID: id, Catalogue: "supply", Origin: origin, Version: 3, Visibility: "private", Schema: 1,
			CreatedAt: now, UpdatedAt: now, Deleted: true, Body: json.RawMessage("{}")}
	}
	remote, own := tomb("hebei:01WITHDRAWN"), tomb("tianjin:01PRIVATE")
	svc := &fakeService{changes: func(_ context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
		var out []store.Change
		for i, r := range []*schema.Record{remote, own} {
			if pos := uint64(i + 1); pos > since && (match == nil || match(&store.Change{Position: pos, Record: r})) {
				out = append(out, store.Change{Position: pos, Record: r})
			}
		}
		return out, 2, nil
	}}
	e := newFakeEnv(t, svc)
	for _, c := range []struct {
		who, token string
		want       []string
	}{
		{"hebei partner", e.token(t, "hebei", auth.ScopeRead), []string{remote.ID}},
		{"tianjin reader", e.token(t, "tianjin", auth.ScopeRead), []string{remote.ID, own.ID}},
	} {
		r := e.do(t, req{method: "GET", path: "/v1/changes", token: c.token})
		wantStatus(t, r, http.StatusOK)
		var feed changesResponse
		if err := json.Unmarshal(r.body, &feed); err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, ch := range feed.Changes {
			ids = append(ids, ch.Record.ID)
		}
		if !slices.Equal(ids, c.want) {
			t.Errorf("%s's feed: %v, want %v", c.who, ids, c.want)
		}
	}
}

// TestFeedCursorsCarryTheFeedEpoch: once the feed is named, its cursors carry
// the name; a cursor of another life of the feed (the centre rebuilt its state
// from its peers and counts positions anew) is refused with 410 feed-reset, on
// the poll and on the stream, rather than silently skipping changes. Cursors
// without a name (older builds) are taken; a replica that has not applied the
// name yet asks the caller to retry.
func TestFeedCursorsCarryTheFeedEpoch(t *testing.T) {
	now := time.Now().UTC()
	recs := []*schema.Record{
		{ID: "tianjin:a", Catalogue: "supply", Origin: "tianjin", Version: 1, Visibility: "public", Schema: 1, CreatedAt: now, UpdatedAt: now, Body: json.RawMessage(`{"title":"一"}`)},
		{ID: "tianjin:b", Catalogue: "supply", Origin: "tianjin", Version: 1, Visibility: "public", Schema: 1, CreatedAt: now, UpdatedAt: now, Body: json.RawMessage(`{"title":"二"}`)},
	}
	svc := &fakeService{feedEpoch: "0f3a9c2b11d4e5f6", changes: func(_ context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
		var out []store.Change
		for i, r := range recs {
			if pos := uint64(i + 1); pos > since {
				out = append(out, store.Change{Position: pos, Record: r})
			}
		}
		return out, max(since, 2), nil
	}}
	e := newFakeEnv(t, svc)
	tok := e.token(t, "tianjin", auth.ScopeRead)

	r := e.do(t, req{method: "GET", path: "/v1/changes", token: tok})
	wantStatus(t, r, http.StatusOK)
	var page struct {
		Changes    []struct{ Position string } `json:"changes"`
		NextCursor string                      `json:"next_cursor"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil || len(page.Changes) != 2 {
		t.Fatalf("page %s: %v", r.body, err)
	}
	for _, c := range []string{page.Changes[0].Position, page.NextCursor} {
		if _, epoch, err := decodePosition(c); err != nil || epoch != svc.feedEpoch {
			t.Fatalf("cursor %s carries epoch %q (%v), want %q", c, epoch, err, svc.feedEpoch)
		}
	}

	cases := []struct {
		name, cursor, local string
		status              int
		kind                string
	}{
		{"the same life", page.Changes[0].Position, svc.feedEpoch, http.StatusOK, ""},
		{"an older build's cursor", encodePosition(1, ""), svc.feedEpoch, http.StatusOK, ""},
		{"another life", encodePosition(1, "77aa"), svc.feedEpoch, http.StatusGone, "feed-reset"},
		{"not named here yet", page.NextCursor, "", http.StatusServiceUnavailable, "unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			svc.feedEpoch = c.local
			defer func() { svc.feedEpoch = "0f3a9c2b11d4e5f6" }()
			r := e.do(t, req{method: "GET", path: "/v1/changes?since=" + c.cursor, token: tok})
			wantStatus(t, r, c.status)
			if c.kind != "" {
				if p := r.problem(t); p.Type != ProblemTypePrefix+c.kind {
					t.Fatalf("problem %+v, want %s", p, c.kind)
				}
				s := e.do(t, req{method: "GET", path: "/v1/changes/stream", token: tok, header: map[string]string{"Last-Event-ID": c.cursor}})
				wantStatus(t, s, c.status)
				if p := s.problem(t); p.Type != ProblemTypePrefix+c.kind {
					t.Fatalf("stream problem %+v, want %s", p, c.kind)
				}
			}
		})
	}
	// The stream's event ids carry the name too (opened last: its handler
	// reads the name while it runs).
	ev := openStream(t, e.srv.URL, "/v1/changes/stream", tok, nil).nextChange(t, 10*time.Second)
	if _, epoch, err := decodePosition(ev.id); err != nil || epoch != svc.feedEpoch {
		t.Fatalf("stream event id %s carries epoch %q (%v), want %q", ev.id, epoch, err, svc.feedEpoch)
	}
}

// replicaAt is a replica of a centre whose feed holds positions up to its
// fakeService's feedHead; lead says whether it leads.
type replicaAt struct {
	*fakeService
	lead     bool
	barriers int
	leader   string // the leader's API, when this replica follows
}

func (r *replicaAt) IsLeader() bool                                  { return r.lead }
func (r *replicaAt) LeaderHTTP() string                              { return r.leader }
func (r *replicaAt) Barrier(context.Context) error                   { r.barriers++; return nil }
func (r *replicaAt) Replicas() ([]node.ReplicaInfo, error)           { return nil, nil }
func (r *replicaAt) AddReplica(context.Context, store.Replica) error { return nil }
func (r *replicaAt) RemoveReplica(context.Context, string) error     { return nil }

// TestPlainCursorPastTheHead: a cursor without a feed name past the feed's
// newest position cannot be of this feed once the leader has applied all that
// is committed: 410 feed-reset there (on the poll and the stream); a follower,
// which may be behind and cannot tell, sends it to the leader
// (TestFollowerSendsPlainCursorPastItsHeadToTheLeader), and answers 503
// (retry) to one already forwarded; a cursor within the feed is taken.
func TestPlainCursorPastTheHead(t *testing.T) {
	svc := &fakeService{feedHead: 40, changes: func(_ context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
		return nil, since, nil
	}}
	rep := &replicaAt{fakeService: svc, lead: true}
	e := newFakeEnv(t, svc, func(o *Options) { o.Service = rep })
	tok := e.token(t, "tianjin", auth.ScopeRead)
	for _, c := range []struct {
		name   string
		since  uint64
		lead   bool
		status int
	}{
		{"within the feed", 40, true, http.StatusOK},
		{"past it, at the leader", 41, true, http.StatusGone},
		{"past it, forwarded to a follower", 41, false, http.StatusServiceUnavailable},
	} {
		rep.lead = c.lead
		r := e.do(t, req{method: "GET", path: "/v1/changes?since=" + encodePosition(c.since, ""), token: tok, header: map[string]string{ForwardedHeader: "tianjin"}})
		wantStatus(t, r, c.status)
		if c.status == http.StatusGone {
			if p := r.problem(t); p.Type != ProblemTypePrefix+"feed-reset" {
				t.Fatalf("%s: %+v", c.name, p)
			}
			s := e.do(t, req{method: "GET", path: "/v1/changes/stream", token: tok, header: map[string]string{"Last-Event-ID": encodePosition(c.since, "")}})
			wantStatus(t, s, http.StatusGone)
		}
	}
	if rep.barriers != 2 {
		t.Fatalf("%d barriers, want one for each question the leader answered past its head", rep.barriers)
	}
}

// TestCursorOfAnotherNodesFeed: a partner that moves its saved cursor to
// another centre's node (whose feed counts its own positions) gets the 410
// feed-reset, read from 0 and reconcile, with a detail that names that case
// too, not only "this centre's feed was rebuilt", which would send it (and the
// operators it asks) looking for a rebuild that never happened.
func TestCursorOfAnotherNodesFeed(t *testing.T) {
	a, b := newEnv(t, false), newEnv(t, false)
	a.create(t, "supply", "federation", supplyBody("成果"))
	feed, _ := a.feed(t, a.token(t, "tianjin", auth.ScopeRead), "?since=0")
	for _, path := range []string{"/v1/changes?since=" + feed.NextCursor, "/v1/changes/stream?since=" + feed.NextCursor} {
		r := b.do(t, req{method: "GET", path: path, token: b.token(t, "tianjin", auth.ScopeRead)})
		wantStatus(t, r, http.StatusGone)
		p := r.problem(t)
		if p.Type != ProblemTypePrefix+"feed-reset" || !strings.Contains(p.Detail, "another centre's node") || !strings.Contains(p.Detail, "since=0") {
			t.Errorf("%s: %s %q", path, p.Type, p.Detail)
		}
	}
}
