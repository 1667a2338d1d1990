package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"liandong/integration/chaos"
)

// The chaos workload: clients at every centre create, update (If-Match), delete
// and read records of their own centre through the API, and read the other
// centres' records. Every call to the origin goes into a history with its call
// and return times for porcupine; a call whose outcome the client cannot know
// (timeout, cut connection, a 5xx) is kept as an operation that may or may not
// have happened.

// chaosResult is one HTTP exchange as the workload sees it.
type chaosResult struct {
	status int
	detail string
	env    envelope
	title  string
	body   map[string]json.RawMessage
	err    error
}

// chaosHTTP makes the workload's requests: a short timeout, so a paused process
// costs a client a few seconds, not the rest of the run.
var chaosHTTP = &http.Client{
	Timeout:   6 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 30 * time.Second},
}

func chaosCall(ctx context.Context, c *client, method, path string, ifMatch uint64, body any) chaosResult {
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			return chaosResult{err: err}
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return chaosResult{err: err}
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch != 0 {
		req.Header.Set("If-Match", strconv.Quote(strconv.FormatUint(ifMatch, 10)))
	}
	resp, err := chaosHTTP.Do(req)
	if err != nil {
		return chaosResult{err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return chaosResult{status: resp.StatusCode, err: err}
	}
	out := chaosResult{status: resp.StatusCode}
	if resp.StatusCode >= 300 {
		var p struct {
			Detail string `json:"detail"`
		}
		json.Unmarshal(data, &p)
		out.detail = p.Detail
		if out.detail == "" {
			out.detail = string(data)
		}
		return out
	}
	if err := json.Unmarshal(data, &out.env); err != nil {
		out.err = fmt.Errorf("decode %s %s: %w", method, path, err)
		return out
	}
	json.Unmarshal(out.env.Body, &out.body)
	if t, ok := out.body["title"]; ok {
		json.Unmarshal(t, &out.title)
	}
	return out
}

// notSent reports an error that means the request never reached a server: the
// connection was refused. Such a call certainly had no effect.
func notSent(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }

var deletedAt = regexp.MustCompile(`deleted at version (\d+)`)

// outcome turns a result into the model's output, and a complaint when the answer
// is one the API should never give to this call.
func outcome(kind chaos.OpKind, r chaosResult) (chaos.Output, string) {
	switch {
	case r.err != nil:
		return chaos.Output{Status: chaos.Unknown}, ""
	case r.status >= 200 && r.status < 300:
		out := chaos.Output{Status: chaos.OK, Version: r.env.Version}
		if kind == chaos.Read {
			out.Tag = r.title
		}
		return out, ""
	case r.status == http.StatusPreconditionFailed && kind != chaos.Read:
		return chaos.Output{Status: chaos.Precondition}, ""
	case r.status == http.StatusNotFound && kind == chaos.Delete:
		return chaos.Output{Status: chaos.NotFound}, ""
	case r.status == http.StatusNotFound && kind == chaos.Read:
		if m := deletedAt.FindStringSubmatch(r.detail); m != nil {
			v, _ := strconv.ParseUint(m[1], 10, 64)
			return chaos.Output{Status: chaos.Deleted, Version: v}, ""
		}
		return chaos.Output{Status: chaos.NotFound}, ""
	case r.status >= 500 || r.status == 499:
		return chaos.Output{Status: chaos.Unknown}, ""
	}
	return chaos.Output{Status: chaos.Unknown}, fmt.Sprintf("%s answered %d: %s", kind, r.status, r.detail)
}

// chaosWorkload is the clients of one schedule and what they recorded.
type chaosWorkload struct {
	start   time.Time
	centres []string
	nodes   map[string][]*chaosNode // centre → its replicas

	mu      sync.Mutex
	ops     []chaos.Op
	keys    map[string][]string // centre → record ids its clients work on
	acked   map[string]map[uint64]string
	anomaly []string    // answers the API should never give
	leaks   []string    // private data seen outside its origin
	local   []localRead // reads without ?consistent=true, judged at the end
	remote  int         // reads of other centres' records
	refused int         // calls refused at connect: certainly not applied
	creates int         // POST creates acknowledged
}

func newChaosWorkload(start time.Time, centres []string, nodes map[string][]*chaosNode) *chaosWorkload {
	w := &chaosWorkload{start: start, centres: centres, nodes: nodes, keys: map[string][]string{}, acked: map[string]map[uint64]string{}}
	for _, c := range centres {
		for k := 0; k < 5; k++ {
			w.keys[c] = append(w.keys[c], fmt.Sprintf("%s:k%d", c, k))
		}
	}
	return w
}

func (w *chaosWorkload) now() int64 { return int64(time.Since(w.start)) }

func (w *chaosWorkload) record(op chaos.Op, complaint string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ops = append(w.ops, op)
	if complaint != "" && len(w.anomaly) < 20 {
		w.anomaly = append(w.anomaly, fmt.Sprintf("%s: %s", op.In.Key, complaint))
	}
	if op.In.Kind != chaos.Read && op.Out.Status == chaos.OK {
		if w.acked[op.In.Key] == nil {
			w.acked[op.In.Key] = map[uint64]string{}
		}
		tag := op.In.Tag
		if op.In.Kind == chaos.Delete {
			tag = "(deleted)"
		}
		w.acked[op.In.Key][op.Out.Version] = tag
	}
}

func (w *chaosWorkload) pickKey(r *rand.Rand, centre string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	ks := w.keys[centre]
	return ks[r.IntN(len(ks))]
}

// run is one client at centre until ctx ends.
func (w *chaosWorkload) run(ctx context.Context, id int, centre string, seed uint64) {
	r := rand.New(rand.NewPCG(seed, uint64(id)))
	known := map[string]uint64{} // last version this client saw per record (0: absent or deleted)
	targets := w.nodes[centre]
	for n := 0; ctx.Err() == nil; n++ {
		node := targets[r.IntN(len(targets))]
		c := node.client
		tag := fmt.Sprintf("c%d-%d", id, n)
		vis := "federation"
		switch p := r.IntN(100); {
		case p < 25:
			vis = "public"
		case p < 40:
			vis = "private"
		}
		body := map[string]any{"catalogue": "supply", "visibility": vis, "body": supplyBody(tag)}
		key := w.pickKey(r, centre)
		var in chaos.Input
		var res chaosResult
		_, knows := known[key]
		call := w.now()
		switch p := r.IntN(100); {
		case p < 5:
			w.readLocal(ctx, node, key)
			pause(ctx, r)
			continue
		case p < 35 || !knows && p < 80:
			// A client that does not know a record's version reads it first.
			in = chaos.Input{Key: key, Kind: chaos.Read}
			res = chaosCall(ctx, c, http.MethodGet, "/v1/records/"+key+"?consistent=true", 0, nil)
		case p < 62:
			in = chaos.Input{Key: key, Kind: chaos.Put, IfMatch: known[key], Tag: tag}
			res = chaosCall(ctx, c, http.MethodPut, "/v1/records/"+key, in.IfMatch, body)
		case p < 70:
			in = chaos.Input{Key: key, Kind: chaos.Put, Tag: tag}
			res = chaosCall(ctx, c, http.MethodPut, "/v1/records/"+key, 0, body)
		case p < 80:
			in = chaos.Input{Key: key, Kind: chaos.Delete, IfMatch: known[key]}
			res = chaosCall(ctx, c, http.MethodDelete, "/v1/records/"+key, in.IfMatch, nil)
		case p < 84:
			w.create(ctx, id, c, tag, body)
			pause(ctx, r)
			continue
		default:
			w.readRemote(ctx, r, c, centre)
			pause(ctx, r)
			continue
		}
		ret := w.now()
		if res.err != nil && notSent(res.err) {
			w.mu.Lock()
			w.refused++
			w.mu.Unlock()
			backoff(ctx)
			continue
		}
		out, complaint := outcome(in.Kind, res)
		if ctx.Err() != nil && out.Status == chaos.Unknown && in.Kind == chaos.Read {
			return
		}
		w.record(chaos.Op{Client: id, In: in, Out: out, Call: call, Return: ret}, complaint)
		switch {
		case out.Status == chaos.OK && (in.Kind == chaos.Read || in.Kind == chaos.Put):
			known[key] = out.Version
		case out.Status == chaos.OK, out.Status == chaos.Deleted, out.Status == chaos.NotFound:
			known[key] = 0
		case out.Status == chaos.Precondition:
			delete(known, key) // learn the version at the next read
		}
		if out.Status == chaos.Unknown {
			backoff(ctx)
		} else {
			pause(ctx, r)
		}
	}
}

// create POSTs a new record; an acknowledged one joins the records the centre's
// clients work on, with its create as the first operation of its history.
func (w *chaosWorkload) create(ctx context.Context, id int, c *client, tag string, body map[string]any) {
	call := w.now()
	res := chaosCall(ctx, c, http.MethodPost, "/v1/records", 0, body)
	ret := w.now()
	if res.err != nil || res.status != http.StatusCreated {
		if res.err == nil && res.status < 500 && res.status != 499 {
			w.mu.Lock()
			w.anomaly = append(w.anomaly, fmt.Sprintf("POST /v1/records answered %d: %s", res.status, res.detail))
			w.mu.Unlock()
		}
		return // an unknown create has no id to follow
	}
	key := res.env.ID
	w.record(chaos.Op{Client: id, In: chaos.Input{Key: key, Kind: chaos.Put, Tag: tag}, Out: chaos.Output{Status: chaos.OK, Version: res.env.Version}, Call: call, Return: ret}, "")
	w.mu.Lock()
	w.creates++
	if origin := res.env.Origin; len(w.keys[origin]) < 10 {
		w.keys[origin] = append(w.keys[origin], key)
	}
	w.mu.Unlock()
}

// localRead is a read served from one replica's own state (no ?consistent=true):
// it may be stale, but what it shows must have been written.
type localRead struct {
	node, key string
	out       chaos.Output
}

// readLocal reads a record of the centre at one replica without a barrier.
func (w *chaosWorkload) readLocal(ctx context.Context, n *chaosNode, key string) {
	res := chaosCall(ctx, n.client, http.MethodGet, "/v1/records/"+key, 0, nil)
	out, _ := outcome(chaos.Read, res)
	if out.Status == chaos.Unknown {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.local = append(w.local, localRead{node: n.name, key: key, out: out})
}

// readRemote reads another centre's record at this centre: it must never show a
// private record or personal data, and what it shows must have been written.
func (w *chaosWorkload) readRemote(ctx context.Context, r *rand.Rand, c *client, centre string) {
	other := w.centres[r.IntN(len(w.centres))]
	if other == centre {
		return
	}
	key := w.pickKey(r, other)
	res := chaosCall(ctx, c, http.MethodGet, "/v1/records/"+key, 0, nil)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.remote++
	if res.err == nil && res.status == http.StatusOK {
		if leak := remoteLeak(centre, res.env, res.body); leak != "" {
			w.leaks = append(w.leaks, leak)
		}
	}
	if out, _ := outcome(chaos.Read, res); out.Status != chaos.Unknown {
		w.local = append(w.local, localRead{node: centre, key: key, out: out})
	}
}

// remoteLeak describes personal data or a private record of another origin
// served at centre, or returns "".
func remoteLeak(centre string, env envelope, body map[string]json.RawMessage) string {
	switch {
	case env.Origin == centre:
		return ""
	case env.Visibility == "private" && !env.Deleted:
		return fmt.Sprintf("%s serves %s's private record %s v%d", centre, env.Origin, env.ID, env.Version)
	case body["contact"] != nil:
		return fmt.Sprintf("%s serves %s's record %s v%d with its contact block", centre, env.Origin, env.ID, env.Version)
	case env.Broker != env.Origin:
		return fmt.Sprintf("%s serves %s's record %s v%d with broker %q", centre, env.Origin, env.ID, env.Version, env.Broker)
	}
	return ""
}

func pause(ctx context.Context, r *rand.Rand) {
	sleepCtx(ctx, time.Duration(10+r.IntN(30))*time.Millisecond)
}

func backoff(ctx context.Context) { sleepCtx(ctx, 150*time.Millisecond) }

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
