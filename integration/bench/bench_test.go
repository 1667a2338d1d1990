package bench

import (
	"bytes"
	"context"
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
