package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// Write creates records of size bytes through the API at each client count.
func Write(ctx context.Context, api *API, clients []int, d time.Duration, size int) []Result {
	var out []Result
	var seq atomic.Int64
	requests := NewCreateRequests(size)
	for _, c := range clients {
		r := Load(ctx, "write", c, d, 1<<30, func(ctx context.Context, _, _ int) error {
			return api.Do(ctx, "POST", "/v1/records", requests.JSON(int(seq.Add(1))), nil)
		})
		r.Note = fmt.Sprintf("%d-byte records", size)
		out = append(out, r)
	}
	return out
}

// WriteBatch creates records of size bytes through POST /v1/batch, batch of
// them a request, at each client count. Ops, ops/s and CPU per op count
// records; latencies are requests'.
func WriteBatch(ctx context.Context, api *API, clients []int, d time.Duration, size, batch int) []Result {
	var out []Result
	var seq atomic.Int64
	requests := NewCreateRequests(size)
	created := []byte(`{"status":201,`)
	for _, c := range clients {
		r := Load(ctx, "write-batch", c, d, 1<<30, func(ctx context.Context, _, _ int) error {
			body := make([]byte, 0, batch*(size+64)+16)
			body = append(body, `{"items":[`...)
			for k := range batch {
				if k > 0 {
					body = append(body, ',')
				}
				body = append(body, `{"method":"POST","record":`...)
				body = append(append(body, requests.JSON(int(seq.Add(1)))...), '}')
			}
			body = append(body, "]}"...)
			var answer []byte
			if err := api.Do(ctx, "POST", "/v1/batch", body, &answer); err != nil {
				return err
			}
			// The answer's records are the requests' bodies: counting the
			// items' statuses is enough, and cheaper than decoding them on
			// the node's cores.
			if n := bytes.Count(answer, created); n != batch {
				return fmt.Errorf("batch of %d: %d created: %.300s", batch, n, answer)
			}
			return nil
		})
		r.Ops *= batch
		r.PerSec *= float64(batch)
		r.CPUPerOp /= time.Duration(batch)
		r.Note = fmt.Sprintf("%d-byte records, %d a request; ops are records, latencies requests'", size, batch)
		out = append(out, r)
	}
	return out
}

// Preload creates n records with clients writers and returns their ids.
func Preload(ctx context.Context, api *API, n, clients, size int) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				var rec struct {
					ID string `json:"id"`
				}
				if err := api.Do(ctx, "POST", "/v1/records", RecordJSON(i, size), &rec); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				ids[i] = rec.ID
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("preload: %w", firstErr)
	}
	return ids, ctx.Err()
}

// GetByID reads random records by id.
func GetByID(ctx context.Context, api *API, ids []string, clients int, d time.Duration) Result {
	r := Load(ctx, "get-by-id", clients, d, 1<<30, func(ctx context.Context, c, i int) error {
		id := ids[(c*7919+i*104729)%len(ids)]
		return api.Do(ctx, "GET", "/v1/records/"+url.PathEscape(id), nil, nil)
	})
	r.Note = fmt.Sprintf("%d records", len(ids))
	return r
}

// ListPages reads list pages of 50 with a filter, following cursors from random
// starting points.
func ListPages(ctx context.Context, api *API, clients int, d time.Duration, records int) Result {
	r := Load(ctx, "list-page", clients, d, 1<<30, func(ctx context.Context, c, i int) error {
		var page struct {
			NextCursor string `json:"next_cursor"`
		}
		return api.Do(ctx, "GET", "/v1/records?catalogue=supply&industry=new-materials&limit=50", nil, &page)
	})
	r.Note = fmt.Sprintf("limit 50, %d records", records)
	return r
}

// FsyncBaseline measures the disk under the same load shape without liandong: one
// writer committing one 1 KB insert per bbolt transaction (an fsync each).
func FsyncBaseline(ctx context.Context, dir string, d time.Duration) (Result, error) {
	db, err := bbolt.Open(filepath.Join(dir, "baseline.db"), 0o600, &bbolt.Options{NoFreelistSync: true})
	if err != nil {
		return Result{}, err
	}
	defer db.Close()
	val := make([]byte, 1024)
	for i := range val {
		val[i] = byte(rand.IntN(256))
	}
	var mu sync.Mutex // bbolt serialises writers; one client shows the fsync rate itself
	r := Load(ctx, "bbolt-commit", 1, d, 1<<30, func(_ context.Context, _, i int) error {
		mu.Lock()
		defer mu.Unlock()
		return db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists([]byte("b"))
			if err != nil {
				return err
			}
			return b.Put([]byte(fmt.Sprintf("%016d", i)), val)
		})
	})
	r.Note = "raw bbolt: one 1 KB insert per fsynced transaction"
	return r, nil
}

// SearchPages runs full-text searches (first page of 20, by relevance) of the
// given queries in turn.
func SearchPages(ctx context.Context, api *API, scenario string, queries []string, clients int, d time.Duration, records int) Result {
	r := Load(ctx, scenario, clients, d, 1<<30, func(ctx context.Context, c, i int) error {
		q := queries[(c+i)%len(queries)]
		return api.Do(ctx, "GET", "/v1/records?limit=20&q="+url.QueryEscape(q), nil, nil)
	})
	r.Note = fmt.Sprintf("q=%s, limit 20, %d records", strings.Join(queries, "|"), records)
	return r
}

// FloorScenario names HTTPFloor's rows.
const FloorScenario = "http-floor"

// HTTPFloor runs Write's load, the same requests from the same client, against
// a server on loopback that does nothing but HTTP: it reads each create
// request and answers 201 with it, with the headers a create sets, inside the
// members a stored record adds (floorAnswerPrefix), so the answer is the size
// of a node's. Its rate is the most any HTTP API could reach on these cores
// with this load generator, and its CPU per operation the part of a write's
// that no change to the node can take away.
func HTTPFloor(ctx context.Context, clients []int, d time.Duration, size int) ([]Result, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("http floor: %w", err)
	}
	srv := floorServer()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		srv.Close()
		<-served
	}()
	api := NewAPI("http://"+ln.Addr().String(), "floor", 256)
	defer api.HTTP.CloseIdleConnections()
	rs := Write(ctx, api, clients, d, size)
	for i := range rs {
		rs[i].Scenario = FloorScenario
		rs[i].Note = fmt.Sprintf("%d-byte requests read and answered, no node: the HTTP stack and the load generator alone", size)
	}
	return rs, nil
}

// floorServer serves floorHandler with the limits node/api.NewServer gives a
// node's server. This package cannot import node/api (node/search's
// benchmarks import this package); TestFloorServerHasTheNodesLimits keeps the
// two alike.
func floorServer() *http.Server {
	return &http.Server{Handler: floorHandler(), ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 75 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}
}

// floorAnswerPrefix is what a node's create answer holds besides the
// request's members: the record's id, origin, version, schema and times.
const floorAnswerPrefix = `{"id":"tianjin:01JNQ8ZK3M5T2V7W9X1Y4Z6A8B","origin":"tianjin","version":1,"schema":1,` +
	`"created_at":"2026-11-28T06:00:00.123456789Z","updated_at":"2026-11-28T06:00:00.123456789Z","request":`

// floorHandler answers a create as a node does, less the node: the request
// read whole (as the node's readBody does, bounded), a 201 with the headers
// a create sets and the request's bytes inside a record's other members.
func floorHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/records" || r.Header.Get("Authorization") == "" {
			http.Error(w, "the floor answers POST /v1/records with a bearer token only", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("ETag", `"1"`)
		h.Set("Location", "/v1/records/tianjin:01JNQ8ZK3M5T2V7W9X1Y4Z6A8B")
		w.WriteHeader(http.StatusCreated)
		answer := make([]byte, 0, len(floorAnswerPrefix)+len(body)+1)
		answer = append(append(append(answer, floorAnswerPrefix...), body...), '}')
		w.Write(answer)
	})
}
