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
// operations but does not cancel those under way: each is counted, none
// sees its context cancelled, and Load returns soon after the deadline.
func TestLoadLetsOpsUnderWayFinish(t *testing.T) {
	var cancelled atomic.Int64
	const d, opTime = 100 * time.Millisecond, 30 * time.Millisecond
	start := time.Now()
	r := Load(context.Background(), "test", 4, d, 1<<30, func(ctx context.Context, _, _ int) error {
		select {
		case <-ctx.Done():
			cancelled.Add(1)
			return ctx.Err()
		case <-time.After(opTime):
			return nil
		}
	})
	took := time.Since(start)
	if n := cancelled.Load(); n != 0 {
		t.Fatalf("%d operations under way at the deadline were cancelled", n)
	}
	// Each client starts ops until the deadline and finishes the last: at
	// least d/opTime ops each, whole.
	if min := 4 * int(d/opTime); r.Ops < min || r.Errors != 0 {
		t.Fatalf("%d ops, %d errors; want at least %d ops and no errors", r.Ops, r.Errors, min)
	}
	if took > d+opTime+2*time.Second {
		t.Fatalf("Load took %v for a %v run of %v ops", took, d, opTime)
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
