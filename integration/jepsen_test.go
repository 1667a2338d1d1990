package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A Jepsen-style test of one centre's three replicas: clients write a few keys
// through every replica (PUT, PUT If-Match, PUT If-None-Match: *, DELETE) and
// read them (locally and ?consistent=true) while a nemesis isolates and kills
// replicas; a checker then holds the history against what the API promises.
//
// JEPSEN_SEEDS=1,2,3 picks the seeds (default 1), JEPSEN_SECONDS the length of
// each run (default 20).

type jop struct {
	worker     int
	kind       string // put cas create del delcas cread read
	key        string
	node       int
	ifMatch    uint64
	start, end time.Duration
	status     int
	err        error
	version    uint64
	tag        string // the title written, or the title read; "<deleted>" for a tombstone
	sent       string // the title this write sent
}

func (o *jop) String() string {
	e := ""
	if o.err != nil {
		e = " err=" + o.err.Error()
	}
	return fmt.Sprintf("[w%d %s %s @r%d ifm=%d %.3fs→%.3fs status=%d v=%d tag=%q sent=%q%s]",
		o.worker, o.kind, o.key, o.node+1, o.ifMatch, o.start.Seconds(), o.end.Seconds(), o.status, o.version, o.tag, o.sent, e)
}

func (o *jop) ok() bool { return o.err == nil && o.status >= 200 && o.status < 300 }

const deletedTag = "<deleted>"

var jDeletedAt = regexp.MustCompile(`deleted at version (\d+)`)

var jepsenHTTP = &http.Client{Timeout: 6 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}

func jcall(ctx context.Context, base, token, method, path string, hdr map[string]string, body any, o *jop) {
	var rd io.Reader
	if body != nil {
		js, _ := json.Marshal(body)
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		o.err = err
		return
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := jepsenHTTP.Do(req)
	if err != nil {
		o.err = err
		return
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	o.status = resp.StatusCode
	if err != nil {
		o.err = err
		return
	}
	if resp.StatusCode >= 300 {
		if resp.StatusCode == 404 {
			if m := jDeletedAt.FindSubmatch(data); m != nil {
				o.version, _ = strconv.ParseUint(string(m[1]), 10, 64)
				o.tag = deletedTag
			}
		}
		o.tag += " " + strings.TrimSpace(string(data))
		return
	}
	var env struct {
		Version uint64 `json:"version"`
		Deleted bool   `json:"deleted"`
		Body    struct {
			Title string `json:"title"`
		} `json:"body"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		o.err = fmt.Errorf("decode: %w: %s", err, data)
		return
	}
	o.version = env.Version
	o.tag = env.Body.Title
	if env.Deleted {
		o.tag = deletedTag
	}
}

type jepsenRun struct {
	g      *centreGroup
	token  string
	start  time.Time
	mu     sync.Mutex
	ops    []*jop
	events []string
}

func (j *jepsenRun) now() time.Duration { return time.Since(j.start) }

func (j *jepsenRun) event(format string, args ...any) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.events = append(j.events, fmt.Sprintf("%.3fs ", j.now().Seconds())+fmt.Sprintf(format, args...))
}

func (j *jepsenRun) setIsolated(i int, on bool) {
	data := []byte("{}")
	if on {
		data = []byte(`{"raft_isolate": true}`)
	}
	path := j.g.faultsFile(i)
	os.WriteFile(path+".tmp", data, 0o600)
	os.Rename(path+".tmp", path)
	time.Sleep(250 * time.Millisecond) // polled every 100 ms
}

func (j *jepsenRun) worker(ctx context.Context, id int, seed uint64, keys []string) {
	r := rand.New(rand.NewPCG(seed, uint64(id)))
	seen := map[string]uint64{}
	for n := 0; ctx.Err() == nil && n < 10000; n++ {
		key := keys[r.IntN(len(keys))]
		node := r.IntN(3)
		base := j.g.urls[node]
		o := &jop{worker: id, key: key, node: node}
		path := "/v1/records/" + url.PathEscape(key)
		title := fmt.Sprintf("w%d-%d", id, n)
		rec := map[string]any{"catalogue": "supply", "visibility": "federation", "body": supplyBody(title)}
		var hdr map[string]string
		method, body := http.MethodGet, any(nil)
		switch p := r.IntN(100); {
		case p < 20:
			o.kind, method, body = "put", http.MethodPut, rec
		case p < 40:
			o.kind, method, body = "cas", http.MethodPut, rec
			o.ifMatch = seen[key]
			if o.ifMatch == 0 || r.IntN(4) == 0 {
				o.ifMatch = seen[key] + uint64(r.IntN(3))
			}
			if o.ifMatch == 0 {
				o.ifMatch = 1
			}
			hdr = map[string]string{"If-Match": strconv.Quote(strconv.FormatUint(o.ifMatch, 10))}
		case p < 48:
			o.kind, method, body = "create", http.MethodPut, rec
			hdr = map[string]string{"If-None-Match": "*"}
		case p < 52:
			o.kind, method = "del", http.MethodDelete
		case p < 56:
			o.kind, method = "delcas", http.MethodDelete
			o.ifMatch = max(seen[key], 1)
			hdr = map[string]string{"If-Match": strconv.FormatUint(o.ifMatch, 10)}
		case p < 85:
			o.kind = "cread"
			path += "?consistent=true"
		default:
			o.kind = "read"
		}
		if body != nil {
			o.sent = title
		}
		o.start = j.now()
		jcall(ctx, base, j.token, method, path, hdr, body, o)
		o.end = j.now()
		if ctx.Err() != nil && o.err != nil {
			o.err = fmt.Errorf("cancelled: %w", o.err)
		}
		if o.ok() || o.tag != "" && strings.HasPrefix(o.tag, deletedTag) {
			seen[key] = max(seen[key], o.version)
		}
		j.mu.Lock()
		j.ops = append(j.ops, o)
		j.mu.Unlock()
		time.Sleep(time.Duration(r.IntN(30)) * time.Millisecond)
	}
}

func (j *jepsenRun) nemesis(ctx context.Context, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 999))
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	for n := 0; n < 100; n++ {
		if !sleep(time.Duration(500+r.IntN(1500)) * time.Millisecond) {
			return
		}
		i := r.IntN(3)
		if r.IntN(2) == 0 {
			// prefer the leader
			if l := j.leaderIdx(); l >= 0 {
				i = l
			}
		}
		switch r.IntN(5) {
		case 3:
			j.event("pause r%d", i+1)
			syscall.Kill(j.g.procs[i].cmd.Process.Pid, syscall.SIGSTOP)
			sleep(time.Duration(1000+r.IntN(3000)) * time.Millisecond)
			syscall.Kill(j.g.procs[i].cmd.Process.Pid, syscall.SIGCONT)
			j.event("resume r%d", i+1)
		case 4:
			j.event("kill all")
			for k := range 3 {
				j.g.procs[k].kill()
			}
			sleep(time.Duration(200+r.IntN(1000)) * time.Millisecond)
			for k := range 3 {
				j.g.start(k)
			}
			for k := range 3 {
				waitReady(j.g.t, j.g.procs[k], j.g.urls[k], 60*time.Second)
			}
			j.event("all ready")
		case 0, 1:
			j.event("isolate r%d", i+1)
			j.setIsolated(i, true)
			sleep(time.Duration(1000+r.IntN(3000)) * time.Millisecond)
			j.setIsolated(i, false)
			j.event("heal r%d", i+1)
		case 2:
			j.event("kill r%d", i+1)
			j.g.procs[i].kill()
			sleep(time.Duration(500+r.IntN(2000)) * time.Millisecond)
			j.g.start(i)
			j.event("restart r%d", i+1)
			waitReady(j.g.t, j.g.procs[i], j.g.urls[i], 60*time.Second)
			j.event("ready r%d", i+1)
		}
	}
}

func (j *jepsenRun) leaderIdx() int {
	for i := range j.g.urls {
		list, err := j.g.replicas(i)
		if err != nil {
			continue
		}
		for _, r := range list {
			if r.Leader {
				for k := range j.g.urls {
					if j.g.urls[k] == r.HTTP {
						return k
					}
				}
			}
		}
	}
	return -1
}

type jver struct {
	version uint64
	tag     string
}

// feed reads replica i's whole change feed: per key, the versions in order.
func (j *jepsenRun) feed(t *testing.T, i int) map[string][]jver {
	out := map[string][]jver{}
	since := ""
	for range 1000 {
		var doc struct {
			Changes []struct {
				Record struct {
					ID      string `json:"id"`
					Version uint64 `json:"version"`
					Deleted bool   `json:"deleted"`
					Body    struct {
						Title string `json:"title"`
					} `json:"body"`
				} `json:"record"`
			} `json:"changes"`
			NextCursor string `json:"next_cursor"`
		}
		if _, err := j.g.clients[i].do(context.Background(), http.MethodGet, "/v1/changes?limit=500&since="+url.QueryEscape(since), nil, &doc); err != nil {
			t.Fatalf("feed of r%d: %v", i+1, err)
		}
		if len(doc.Changes) == 0 {
			return out
		}
		for _, c := range doc.Changes {
			tag := c.Record.Body.Title
			if c.Record.Deleted {
				tag = deletedTag
			}
			out[c.Record.ID] = append(out[c.Record.ID], jver{c.Record.Version, tag})
		}
		since = doc.NextCursor
	}
	t.Fatal("feed too long")
	return nil
}

func (j *jepsenRun) check(t *testing.T, final map[string][]jver) []string {
	var bad []string
	// Observations: version → tag, from every answer that showed a version.
	obs := map[string]map[uint64]string{}
	seenBy := map[string]map[uint64]*jop{}
	note := func(key string, v uint64, tag string, o *jop) {
		if obs[key] == nil {
			obs[key], seenBy[key] = map[uint64]string{}, map[uint64]*jop{}
		}
		if prev, ok := obs[key][v]; ok && prev != tag {
			bad = append(bad, fmt.Sprintf("%s version %d seen as %q by %v and as %q by %v", key, v, prev, seenBy[key][v], tag, o))
			return
		}
		obs[key][v], seenBy[key][v] = tag, o
	}
	for key, vs := range final {
		for _, v := range vs {
			note(key, v.version, v.tag, nil)
		}
	}
	for _, o := range j.ops {
		switch {
		case o.ok():
			note(o.key, o.version, o.tag, o)
		case o.status == 404 && strings.HasPrefix(o.tag, deletedTag) && o.version > 0:
			note(o.key, o.version, deletedTag, o)
		}
	}
	for _, o := range j.ops {
		if !o.ok() {
			continue
		}
		switch o.kind {
		case "put", "cas", "create":
			if o.tag != o.sent {
				bad = append(bad, fmt.Sprintf("write acknowledged with another title: %v", o))
			}
		case "del", "delcas":
			if o.tag != deletedTag {
				bad = append(bad, fmt.Sprintf("delete acknowledged without a tombstone: %v", o))
			}
		}
		if (o.kind == "cas" || o.kind == "delcas") && o.version != o.ifMatch+1 {
			bad = append(bad, fmt.Sprintf("If-Match %d succeeded at version %d: %v", o.ifMatch, o.version, o))
		}
		if o.kind == "create" && o.version > 1 {
			if prev, ok := obs[o.key][o.version-1]; ok && prev != deletedTag {
				bad = append(bad, fmt.Sprintf("If-None-Match: * succeeded over live version %d (%q): %v", o.version-1, prev, o))
			}
		}
		switch o.kind {
		case "put", "cas", "create", "del", "delcas":
			// Every acknowledged write is in the final history, as written.
			found := false
			for _, v := range final[o.key] {
				if v.version == o.version {
					found = true
					if v.tag != o.tag {
						bad = append(bad, fmt.Sprintf("acknowledged write is %q in the final history: %v", v.tag, o))
					}
				}
			}
			if !found {
				bad = append(bad, fmt.Sprintf("acknowledged write missing from the final history: %v", o))
			}
		}
	}
	// Consistent reads: at least the newest version any answer completed
	// before the read began had shown.
	for _, r := range j.ops {
		if r.kind != "cread" || !(r.ok() || r.status == 404) {
			continue
		}
		if r.status == 404 && !strings.HasPrefix(r.tag, deletedTag) {
			r.version = 0 // never created
		}
		if r.status == 404 && r.version == 0 && !strings.Contains(r.tag, "not-found") {
			continue
		}
		var newest *jop
		for _, o := range j.ops {
			if o.end >= r.start || o.key != r.key || o.version <= r.version {
				continue
			}
			if !(o.ok() || o.status == 404 && strings.HasPrefix(o.tag, deletedTag)) {
				continue
			}
			if newest == nil || o.version > newest.version {
				newest = o
			}
		}
		if newest != nil {
			bad = append(bad, fmt.Sprintf("stale consistent read: %v, but %v completed before it began", r, newest))
		}
	}
	// A refusal that is only right against an older state: If-Match v (or a
	// DELETE) refused while the record was at v, live, for the whole call:
	// v was shown by an answer completed before the call began, and v+1 was
	// written by an op that began after the call ended (or never).
	writer := map[string]map[string]*jop{} // key → tag → the op that sent it
	for _, o := range j.ops {
		if o.sent != "" {
			if writer[o.key] == nil {
				writer[o.key] = map[string]*jop{}
			}
			writer[o.key][o.sent] = o
		}
	}
	for _, c := range j.ops {
		if c.err != nil || !(c.status == 412 && (c.kind == "cas" || c.kind == "delcas") || c.status == 404 && c.kind == "del") {
			continue
		}
		var shown *jop
		for _, o := range j.ops {
			if o.key == c.key && o.end < c.start && (o.ok() || o.status == 404 && strings.HasPrefix(o.tag, deletedTag)) && (shown == nil || o.version > shown.version) {
				shown = o
			}
		}
		if shown == nil || strings.HasPrefix(shown.tag, deletedTag) || c.kind != "del" && shown.version != c.ifMatch {
			continue
		}
		vs := final[c.key]
		if uint64(len(vs)) > shown.version {
			next := vs[shown.version] // version shown.version+1
			w := writer[c.key][next.tag]
			if next.tag == deletedTag || w == nil || w.start <= c.end {
				continue // deletes are not tagged: be conservative
			}
			bad = append(bad, fmt.Sprintf("refused against an older state: %v; %v showed version %d before it began, and version %d was written by %v, begun after it ended", c, shown, shown.version, next.version, w))
		} else {
			bad = append(bad, fmt.Sprintf("refused against an older state: %v; %v showed version %d before it began, the last version", c, shown, shown.version))
		}
	}
	// Versions of each key are 1..N without gaps.
	for key, vs := range final {
		for i, v := range vs {
			if v.version != uint64(i+1) {
				bad = append(bad, fmt.Sprintf("%s: final history has version %d at position %d: %v", key, v.version, i+1, vs))
				break
			}
		}
	}
	return bad
}

func jepsenSeeds() []uint64 {
	s := os.Getenv("JEPSEN_SEEDS")
	if s == "" {
		return []uint64{1}
	}
	var out []uint64
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err == nil {
			out = append(out, n)
		}
	}
	return out
}

func TestJepsenReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	secs := 20
	if s, err := strconv.Atoi(os.Getenv("JEPSEN_SECONDS")); err == nil && s > 0 && s <= 120 {
		secs = s
	}
	for _, seed := range jepsenSeeds() {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) { runJepsen(t, seed, time.Duration(secs)*time.Second) })
	}
}

func runJepsen(t *testing.T, seed uint64, length time.Duration) {
	opts := groupOptions{faults: true}
	if os.Getenv("JEPSEN_SNAP") != "" {
		opts.snapshotInterval, opts.snapshotThreshold, opts.trailingLogs = 500*time.Millisecond, 40, 10
	}
	g := newCentreGroupWith(t, 3, opts)
	j := &jepsenRun{g: g, token: g.clients[0].token, start: time.Now()}
	keys := []string{}
	for k := range 3 {
		keys = append(keys, fmt.Sprintf("tianjin:jk-%d-%d", seed, k))
	}
	ctx, cancel := context.WithTimeout(context.Background(), length)
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() { defer wg.Done(); j.worker(ctx, w, seed, keys) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); j.nemesis(ctx, seed) }()
	wg.Wait()
	cancel()
	// Heal: every replica up and connected.
	for i := range 3 {
		j.setIsolated(i, false)
		select {
		case <-g.procs[i].done:
			g.start(i)
		default:
		}
		waitReady(t, g.procs[i], g.urls[i], 60*time.Second)
	}
	j.event("healed")
	// Quiesce: a consistent read at the leader, then wait for every feed to agree.
	var feeds []map[string][]jver
	for attempt := range 60 {
		feeds = feeds[:0]
		for i := range 3 {
			feeds = append(feeds, j.feed(t, i))
		}
		same := true
		for i := 1; i < 3; i++ {
			if fmt.Sprint(sortedFeed(feeds[i])) != fmt.Sprint(sortedFeed(feeds[0])) {
				same = false
			}
		}
		if same {
			break
		}
		if attempt == 59 {
			for i := range 3 {
				t.Errorf("r%d feed: %v", i+1, sortedFeed(feeds[i]))
			}
			t.Error("replicas disagree after healing")
		}
		time.Sleep(500 * time.Millisecond)
	}
	final := map[string][]jver{}
	for _, k := range keys {
		final[k] = feeds[0][k]
	}
	bad := j.check(t, final)
	for _, k := range keys {
		t.Logf("final %s: %d versions, last %v", k, len(final[k]), final[k][max(len(final[k])-1, 0):])
	}
	okw, unk := 0, 0
	for _, o := range j.ops {
		if o.ok() {
			okw++
		} else if o.err != nil || o.status >= 500 {
			unk++
		}
	}
	t.Logf("seed %d: %d ops, %d ok, %d unknown/5xx; events: %s", seed, len(j.ops), okw, unk, strings.Join(j.events, "; "))
	if len(bad) > 0 {
		sort.Strings(bad)
		for _, b := range bad {
			t.Error(b)
		}
		for _, k := range keys {
			t.Logf("final %s: %v", k, final[k])
		}
		if os.Getenv("JEPSEN_DUMP") != "" {
			for _, o := range j.ops {
				t.Log(o)
			}
		}
	}
}

func sortedFeed(f map[string][]jver) []string {
	var out []string
	for k, vs := range f {
		out = append(out, fmt.Sprint(k, vs))
	}
	sort.Strings(out)
	return out
}
