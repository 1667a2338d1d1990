package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCreateRequestsAreRecordJSONs holds the templates to the requests they
// stand for, across the digit counts where the padding changes.
func TestCreateRequestsAreRecordJSONs(t *testing.T) {
	for _, size := range []int{64, 256, 1024, 4096} {
		c := NewCreateRequests(size)
		for _, i := range []int{0, 1, 9, 10, 99, 100, 12345, 999999, 1000000, 1 << 40, 1<<63 - 1} {
			if got, want := c.JSON(i), RecordJSON(i, size); !bytes.Equal(got, want) {
				t.Fatalf("size %d, record %d:\n got %s\nwant %s", size, i, got, want)
			}
		}
	}
}

// TestLoadLetsOpsUnderWayFinish checks that the deadline stops new
// operations but does not cancel those under way: every operation started
// is counted, none sees its context cancelled, and Load returns soon after
// the deadline; one still stuck loadGrace past it is cancelled, uncounted.
func TestLoadLetsOpsUnderWayFinish(t *testing.T) {
	var started, cancelled atomic.Int64
	const d, opTime = 100 * time.Millisecond, 30 * time.Millisecond
	begin := time.Now()
	r := Load(context.Background(), "test", 4, d, 1<<30, func(ctx context.Context, _, _ int) error {
		started.Add(1)
		select {
		case <-ctx.Done():
			cancelled.Add(1)
			return ctx.Err()
		case <-time.After(opTime):
			return nil
		}
	})
	took := time.Since(begin)
	if n := cancelled.Load(); n != 0 {
		t.Fatalf("%d operations under way at the deadline were cancelled", n)
	}
	if n := started.Load(); int64(r.Ops) != n || r.Errors != 0 || n < 4 {
		t.Fatalf("%d ops counted and %d errors of %d started by 4 clients; want every one counted", r.Ops, r.Errors, n)
	}
	if took > d+loadGrace {
		t.Fatalf("Load took %v for a %v run of %v ops", took, d, opTime)
	}

	// An operation stuck past the grace is cancelled and not counted.
	begin = time.Now()
	r = Load(context.Background(), "test", 2, d, 1<<30, func(ctx context.Context, _, _ int) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if took := time.Since(begin); r.Ops != 0 || r.Errors != 0 || took < d+loadGrace || took > d+loadGrace+5*time.Second {
		t.Fatalf("stuck operations: %d ops, %d errors, Load took %v; want none counted, cut at %v", r.Ops, r.Errors, took, d+loadGrace)
	}

	// A run stopped from outside ends its ops at once and counts none of the cut ones.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	r = Load(ctx, "test", 4, time.Minute, 1<<30, func(ctx context.Context, _, _ int) error {
		<-ctx.Done()
		return ctx.Err()
	})
	if r.Ops != 0 || r.Errors != 0 {
		t.Fatalf("a stopped run counted %d ops and %d errors", r.Ops, r.Errors)
	}
}

// TestLoadMeasuresCPUPerOp tells an operation that computes from one that
// waits by the CPU each took, whatever the machine's load, and shows it in
// the row.
func TestLoadMeasuresCPUPerOp(t *testing.T) {
	if processCPU() == 0 {
		t.Skip("no process CPU time on this system")
	}
	block := make([]byte, 4<<20)
	busy := Load(context.Background(), "busy", 2, 200*time.Millisecond, 1<<30, func(context.Context, int, int) error {
		sha256.Sum256(block) // a fixed amount of work, a few ms of CPU
		return nil
	})
	// Whatever else the process does (the collector, the race detector)
	// shares its CPU time out over the operations, so the sleepers are
	// several; each still takes longer than a hash, so time per operation
	// would not tell the two apart the way CPU does.
	idle := Load(context.Background(), "idle", 4, 200*time.Millisecond, 1<<30, func(context.Context, int, int) error {
		time.Sleep(5 * time.Millisecond)
		return nil
	})
	if busy.CPUPerOp < 200*time.Microsecond || idle.CPUPerOp*10 > busy.CPUPerOp {
		t.Fatalf("CPU per op: hashing 4 MB %v, sleeping 5 ms %v; want the first above 200µs and ten times the second", busy.CPUPerOp, idle.CPUPerOp)
	}
	t.Logf("CPU per op: hashing 4 MB %v, sleeping 5 ms %v", busy.CPUPerOp, idle.CPUPerOp)
	if row := busy.Row(); !strings.Contains(row, round(busy.CPUPerOp)+" CPU/op") {
		t.Fatalf("row %q does not show the CPU per op", row)
	}
}

// TestLoadCountsAllocations holds the allocation figures to what each
// operation allocates: 64 KB in 16 objects of 4 KB, and nothing.
func TestLoadCountsAllocations(t *testing.T) {
	var sink [][]byte
	var mu sync.Mutex
	allocating := Load(context.Background(), "allocating", 2, 100*time.Millisecond, 2000, func(context.Context, int, int) error {
		bufs := make([][]byte, 16)
		for i := range bufs {
			bufs[i] = make([]byte, 4096)
		}
		mu.Lock()
		sink = bufs // kept past the call, so the compiler cannot place them on the stack
		mu.Unlock()
		return nil
	})
	_ = sink
	if allocating.Ops == 0 {
		t.Fatal("no operations ran")
	}
	// The load generator's own slices add a little; the operation's 17
	// objects (16 buffers and their slice) and 64 KB dominate.
	if allocating.AllocsPerOp < 17 || allocating.AllocsPerOp > 25 || allocating.BytesPerOp < 64<<10 || allocating.BytesPerOp > 72<<10 {
		t.Fatalf("allocating op: %.1f allocs/op, %.0f B/op; want 17-25 and 64-72 KiB", allocating.AllocsPerOp, allocating.BytesPerOp)
	}
	if row := allocating.Row(); allocating.CPUPerOp > 0 && !strings.Contains(row, " allocs/op, ") {
		t.Fatalf("row %q does not show the allocations per op", row)
	}
}

func TestHTTPFloorAnswersWritesLoad(t *testing.T) {
	rs, err := HTTPFloor(context.Background(), []int{1, 4}, 200*time.Millisecond, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 2 {
		t.Fatalf("%d rows for two client counts", len(rs))
	}
	for i, r := range rs {
		if r.Scenario != FloorScenario || r.Clients != []int{1, 4}[i] {
			t.Errorf("row %d is %s at %d clients", i, r.Scenario, r.Clients)
		}
		// Write counts a request the floor refused as an error: none means
		// every create request was read whole and answered 201.
		if r.Ops == 0 || r.Errors != 0 {
			t.Errorf("%s at %d clients: %d ops, %d errors", r.Scenario, r.Clients, r.Ops, r.Errors)
		}
	}
}

func TestFloorHandlerAnswersAsACreate(t *testing.T) {
	h := floorHandler()
	req := NewCreateRequests(1024).JSON(7)
	cases := []struct {
		name, method, path, auth string
		status                   int
	}{
		{"create", "POST", "/v1/records", "Bearer x", http.StatusCreated},
		{"no token", "POST", "/v1/records", "", http.StatusBadRequest},
		{"a read", "GET", "/v1/records", "Bearer x", http.StatusBadRequest},
		{"another path", "POST", "/v1/other", "Bearer x", http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(c.method, c.path, bytes.NewReader(req))
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d", w.Code, c.status)
			}
			if c.status != http.StatusCreated {
				return
			}
			var answer map[string]json.RawMessage
			if err := json.Unmarshal(w.Body.Bytes(), &answer); err != nil || !bytes.Equal(answer["request"], req) {
				t.Errorf("answered %.80s (%v): not a record holding the %d-byte request", w.Body.Bytes(), err, len(req))
			}
			for _, k := range []string{"Content-Type", "ETag", "Location"} {
				if w.Header().Get(k) == "" {
					t.Errorf("no %s header: a create sets it", k)
				}
			}
		})
	}
}

// TestWriteBatchCountsRecords: a batch run counts records, not requests,
// and a batch with any item not created is an error.
func TestWriteBatchCountsRecords(t *testing.T) {
	var requests, items atomic.Int64
	refuse := atomic.Bool{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Items []json.RawMessage }
		if r.URL.Path != "/v1/batch" || json.NewDecoder(r.Body).Decode(&b) != nil {
			http.Error(w, "not a batch", http.StatusBadRequest)
			return
		}
		requests.Add(1)
		items.Add(int64(len(b.Items)))
		parts := make([]string, len(b.Items))
		for i := range parts {
			parts[i] = `{"status":201,"record":{}}`
		}
		if refuse.Load() {
			parts[0] = `{"status":422,"problem":{}}`
		}
		fmt.Fprintf(w, `{"items":[%s]}`, strings.Join(parts, ","))
	}))
	defer srv.Close()
	api := NewAPI(srv.URL, "", 2)
	rs := WriteBatch(context.Background(), api, []int{2}, 200*time.Millisecond, 512, 7)
	r := rs[0]
	if r.Scenario != "write-batch" || r.Errors != 0 || r.Ops == 0 || int64(r.Ops) != items.Load() || items.Load() != 7*requests.Load() {
		t.Fatalf("%+v after %d requests of %d items", r, requests.Load(), items.Load())
	}
	refuse.Store(true)
	r = WriteBatch(context.Background(), api, []int{1}, 100*time.Millisecond, 512, 7)[0]
	if r.Ops != 0 || r.Errors == 0 {
		t.Fatalf("batches with a refused item counted: %+v", r)
	}
}
