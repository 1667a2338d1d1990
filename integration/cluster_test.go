package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"liandong/auth"
)

// Helpers shared by the replica tests: a federation whose centres run on one or
// more replicas, a writer that keeps score, and readers that fetch a replica's
// whole state (records, change feed, heads) through the API for comparison.

// groupSpec is one centre of a multiFederation.
type groupSpec struct {
	n    int
	opts groupOptions
}

// multiFederation is a federation of centres each on its own centreGroup: all
// replicas of a centre are listed as peers of that member in one bundle, and each
// replica runs its own libp2p host.
type multiFederation struct {
	t       *testing.T
	centres []string
	groups  map[string]*centreGroup
}

func newMultiFederation(t *testing.T, specs ...groupSpec) *multiFederation {
	t.Helper()
	root, err := auth.GenerateKey("root")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	dir := t.TempDir()
	f := &multiFederation{t: t, groups: map[string]*centreGroup{}}
	var members []auth.Member
	for _, s := range specs {
		g, m := provisionGroup(t, dir, s.n, root, now, s.opts)
		f.centres = append(f.centres, g.centre)
		f.groups[g.centre] = g
		members = append(members, m)
	}
	bundle := newTestBundle(root, now, members...)
	for _, c := range f.centres {
		f.groups[c].writeFiles(bundle, root, now)
	}
	// First replicas (bootstrap) at once, then the joiners.
	for _, c := range f.centres {
		f.groups[c].start(0)
	}
	for _, c := range f.centres {
		g := f.groups[c]
		waitReady(t, g.procs[0], g.urls[0], 30*time.Second)
	}
	for _, c := range f.centres {
		g := f.groups[c]
		for i := 1; i < len(g.cfgs); i++ {
			g.start(i)
		}
	}
	for _, c := range f.centres {
		g := f.groups[c]
		for i := 1; i < len(g.cfgs); i++ {
			waitReady(t, g.procs[i], g.urls[i], 30*time.Second)
		}
		g.waitVoters(len(g.cfgs), 30*time.Second)
	}
	return f
}

// replicaRef names one replica of a multiFederation.
type replicaRef struct {
	g *centreGroup
	i int
}

func (r replicaRef) String() string  { return r.g.ids[r.i] }
func (r replicaRef) client() *client { return r.g.clients[r.i] }

// all lists every replica of every centre.
func (f *multiFederation) all() []replicaRef {
	var out []replicaRef
	for _, c := range f.centres {
		for i := range f.groups[c].cfgs {
			out = append(out, replicaRef{f.groups[c], i})
		}
	}
	return out
}

// replicaState is the "replica" part of GET /v1/federation.
type replicaState struct {
	ReplicaID    string   `json:"replica_id"`
	State        string   `json:"state"`
	Leader       string   `json:"leader"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	Voters       []string `json:"voters"`
}

// fedStatus reads a replica's raft status and its local heads (origin → "seq/hash").
func fedStatus(ctx context.Context, c *client) (replicaState, map[string]string, error) {
	var doc struct {
		Replica replicaState `json:"replica"`
		Sync    struct {
			Origins []struct {
				Origin string `json:"origin"`
				Local  *struct {
					Seq  uint64 `json:"seq"`
					Hash string `json:"hash"`
				} `json:"local"`
			} `json:"origins"`
		} `json:"sync"`
	}
	if _, err := c.do(ctx, http.MethodGet, "/v1/federation", nil, &doc); err != nil {
		return replicaState{}, nil, err
	}
	heads := map[string]string{}
	for _, o := range doc.Sync.Origins {
		if o.Local != nil && o.Local.Seq > 0 {
			heads[o.Origin] = fmt.Sprintf("%d/%s", o.Local.Seq, o.Local.Hash)
		}
	}
	return doc.Replica, heads, nil
}

// headSeq returns the seq of a "seq/hash" head.
func headSeq(h string) uint64 {
	var seq uint64
	fmt.Sscanf(h, "%d/", &seq)
	return seq
}

// feedChange is one change of a replica's feed, with the record as served.
type feedChange struct {
	Position string
	ID       string
	Origin   string
	Version  uint64
	Raw      string
}

// readFeed reads a replica's whole change feed.
func readFeed(ctx context.Context, c *client) ([]feedChange, error) {
	var out []feedChange
	since := ""
	for page := 0; page < 2000; page++ {
		var doc struct {
			Changes []struct {
				Position string          `json:"position"`
				Record   json.RawMessage `json:"record"`
			} `json:"changes"`
			NextCursor string `json:"next_cursor"`
		}
		path := "/v1/changes?limit=500"
		if since != "" {
			path += "&since=" + url.QueryEscape(since)
		}
		if _, err := c.do(ctx, http.MethodGet, path, nil, &doc); err != nil {
			return nil, err
		}
		for _, ch := range doc.Changes {
			var rec struct {
				ID      string `json:"id"`
				Origin  string `json:"origin"`
				Version uint64 `json:"version"`
			}
			if err := json.Unmarshal(ch.Record, &rec); err != nil {
				return nil, err
			}
			out = append(out, feedChange{ch.Position, rec.ID, rec.Origin, rec.Version, string(ch.Record)})
		}
		if len(doc.Changes) == 0 && (doc.NextCursor == since || doc.NextCursor == "") {
			return out, nil
		}
		since = doc.NextCursor
	}
	return nil, errors.New("change feed did not end within 2000 pages")
}

// listAll reads every record a replica lists, id → envelope as served.
func listAll(ctx context.Context, c *client) (map[string]string, error) {
	out := map[string]string{}
	cursor := ""
	for page := 0; page < 2000; page++ {
		var doc struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor string            `json:"next_cursor"`
		}
		path := "/v1/records?limit=500"
		if cursor != "" {
			path += "&cursor=" + url.QueryEscape(cursor)
		}
		if _, err := c.do(ctx, http.MethodGet, path, nil, &doc); err != nil {
			return nil, err
		}
		for _, it := range doc.Items {
			var rec struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(it, &rec); err != nil {
				return nil, err
			}
			out[rec.ID] = string(it)
		}
		if doc.NextCursor == "" {
			return out, nil
		}
		cursor = doc.NextCursor
	}
	return nil, errors.New("record list did not end within 2000 pages")
}

// compareState requires the replicas to hold the same records and the same change
// feed, position by position. It returns the feed length.
func compareState(t *testing.T, ctx context.Context, names []string, clients []*client) int {
	t.Helper()
	var firstRecs map[string]string
	var firstFeed []feedChange
	for k, c := range clients {
		recs, err := listAll(ctx, c)
		if err != nil {
			t.Fatalf("%s: list records: %v", names[k], err)
		}
		feed, err := readFeed(ctx, c)
		if err != nil {
			t.Fatalf("%s: change feed: %v", names[k], err)
		}
		if k == 0 {
			firstRecs, firstFeed = recs, feed
			continue
		}
		if len(recs) != len(firstRecs) {
			t.Fatalf("%s lists %d records, %s %d", names[k], len(recs), names[0], len(firstRecs))
		}
		for id, raw := range firstRecs {
			if recs[id] != raw {
				t.Fatalf("record %s differs:\n%s: %s\n%s: %s", id, names[0], raw, names[k], recs[id])
			}
		}
		if len(feed) != len(firstFeed) {
			t.Fatalf("%s has %d changes in its feed, %s %d", names[k], len(feed), names[0], len(firstFeed))
		}
		for j := range feed {
			if feed[j] != firstFeed[j] {
				t.Fatalf("change %d differs:\n%s: %+v\n%s: %+v", j, names[0], firstFeed[j], names[k], feed[j])
			}
		}
	}
	return len(firstFeed)
}

// checkAcked requires every acknowledged write to be readable at c with at least
// the acknowledged version.
func checkAcked(t *testing.T, ctx context.Context, name string, c *client, acked map[string]uint64) {
	t.Helper()
	for id, v := range acked {
		var env envelope
		if _, err := c.do(ctx, http.MethodGet, "/v1/records/"+id, nil, &env); err != nil || env.Version < v {
			t.Fatalf("%s: %s acknowledged at v%d, reads v%d (%v)", name, id, v, env.Version, err)
		}
	}
}

// checkFeedOnce requires, for every origin, each (id, version) at most once in
// the feed, as many changes as the origin's log head says, and each record's
// versions 1..n without a gap: every log entry was applied exactly once.
func checkFeedOnce(t *testing.T, name string, feed []feedChange, heads map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	perOrigin := map[string]uint64{}
	versions := map[string][]uint64{}
	for _, ch := range feed {
		key := fmt.Sprintf("%s@%d", ch.ID, ch.Version)
		if seen[key] {
			t.Fatalf("%s: change %s is in the feed twice", name, key)
		}
		seen[key] = true
		perOrigin[ch.Origin]++
		versions[ch.ID] = append(versions[ch.ID], ch.Version)
	}
	for origin, h := range heads {
		if got := perOrigin[origin]; got != headSeq(h) {
			t.Fatalf("%s: %d changes of %s in the feed, its log head is %s", name, got, origin, h)
		}
	}
	for origin := range perOrigin {
		if _, ok := heads[origin]; !ok {
			t.Fatalf("%s: changes of %s but no log head", name, origin)
		}
	}
	for id, vs := range versions {
		for j, v := range vs {
			if v != uint64(j+1) {
				t.Fatalf("%s: versions of %s in feed order: %v", name, id, vs)
			}
		}
	}
}

// writeLoad is a set of writers that keep score: acknowledged versions, failures
// by kind, and the longest stretch without a successful write.
type writeLoad struct {
	mu     sync.Mutex
	acked  map[string]uint64
	ok     int
	failed map[string]int // "503", "500", "transport" …
	errs   []string       // the first few failures that are not 503
	// transport counts failures without an HTTP answer by replica URL: expected
	// only from a process that was killed with the request in flight.
	transport map[string]int
	lastOK    time.Time
	maxGap    time.Duration
	gapAt     time.Time
}

func newWriteLoad() *writeLoad {
	return &writeLoad{acked: map[string]uint64{}, failed: map[string]int{}, transport: map[string]int{}, lastOK: time.Now()}
}

// put writes one record through c and records the outcome.
func (l *writeLoad) put(ctx context.Context, c *client, id string) error {
	var env envelope
	code, err := c.do(ctx, http.MethodPut, "/v1/records/"+id, map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody(id),
	}, &env)
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		l.ok++
		if env.Version > l.acked[id] {
			l.acked[id] = env.Version
		}
		if gap := now.Sub(l.lastOK); gap > l.maxGap {
			l.maxGap, l.gapAt = gap, now
		}
		l.lastOK = now
	case ctx.Err() != nil:
		// the writer is being stopped
	default:
		kind := "transport"
		if code != 0 {
			kind = fmt.Sprint(code)
		} else {
			l.transport[c.base]++
		}
		l.failed[kind]++
		if code != http.StatusServiceUnavailable && len(l.errs) < 8 {
			l.errs = append(l.errs, err.Error())
		}
	}
	return err
}

// run writes PUTs of name-<i mod keys> through pick(i) until ctx ends or max
// writes, pausing between writes and backing off after a failure.
func (l *writeLoad) run(ctx context.Context, name string, keys, max int, pause time.Duration, pick func(i int) *client) {
	for i := 0; i < max && ctx.Err() == nil; i++ {
		c := pick(i)
		if c == nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		err := l.put(ctx, c, fmt.Sprintf("%s-%d", name, i%keys))
		wait := pause
		if err != nil {
			wait = 50 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

func (l *writeLoad) snapshot() (acked map[string]uint64, ok int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	acked = make(map[string]uint64, len(l.acked))
	for k, v := range l.acked {
		acked[k] = v
	}
	return acked, l.ok
}

func (l *writeLoad) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	kinds := make([]string, 0, len(l.failed))
	for k, n := range l.failed {
		kinds = append(kinds, fmt.Sprintf("%s×%d", k, n))
	}
	sort.Strings(kinds)
	return fmt.Sprintf("%d writes acknowledged on %d records, failures [%s], longest stretch without an acknowledged write %v",
		l.ok, len(l.acked), strings.Join(kinds, " "), l.maxGap.Round(time.Millisecond))
}

// waitVoterIDs waits until each replica in at lists exactly want as voters in
// GET /v1/admin/replicas, every one with a recorded HTTP address, and one leader.
func (g *centreGroup) waitVoterIDs(within time.Duration, want []string, at ...int) {
	g.t.Helper()
	sort.Strings(want)
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		good := true
		for _, i := range at {
			list, err := g.replicas(i)
			if err != nil {
				good, last = false, fmt.Sprintf("%s: %v", g.ids[i], err)
				break
			}
			var ids []string
			leaders := 0
			for _, r := range list {
				if r.Suffrage != "Voter" || r.HTTP == "" {
					continue
				}
				ids = append(ids, r.ID)
				if r.Leader {
					leaders++
				}
			}
			sort.Strings(ids)
			if strings.Join(ids, ",") != strings.Join(want, ",") || leaders != 1 || len(list) != len(want) {
				good, last = false, fmt.Sprintf("%s lists %+v", g.ids[i], list)
				break
			}
		}
		if good {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.t.Fatalf("voters did not become %v within %v: %s", want, within, last)
}

// checkFailures fails t for every failed write other than a 503 or a request cut
// off by a process in killed.
func (l *writeLoad) checkFailures(t *testing.T, killed ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for kind, count := range l.failed {
		if kind != "503" && kind != "transport" {
			t.Errorf("%d writes failed with %s: %v", count, kind, l.errs)
		}
	}
	for base, count := range l.transport {
		expected := false
		for _, k := range killed {
			expected = expected || k == base
		}
		if !expected {
			t.Errorf("%d writes to %s got no answer: %v", count, base, l.errs)
		}
	}
}
