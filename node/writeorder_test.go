package node

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"liandong/schema"
)

// TestConcurrentUpdatesDatedInOrder: eight writers updating one record; each
// version is dated no earlier than the version it replaced. Writes dated
// before they were handed to raft could enter its log in another order.
func TestConcurrentUpdatesDatedInOrder(t *testing.T) {
	f := newTrustFixture(t)
	n := f.openWith(t, t.TempDir(), nil)
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first, err := n.Create(ctx, supplyRecord("第一版"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []*schema.Record
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 40 {
				r, err := n.Put(ctx, first.ID, supplyRecord(fmt.Sprint("版 ", w, " ", i)), 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, r)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(got, func(i, j int) bool { return got[i].Version < got[j].Version })
	back := 0
	for i := 1; i < len(got); i++ {
		if got[i].UpdatedAt.Before(got[i-1].UpdatedAt) {
			if back == 0 {
				t.Errorf("version %d updated_at %s is before version %d's %s", got[i].Version, got[i].UpdatedAt.Format(time.RFC3339Nano),
					got[i-1].Version, got[i-1].UpdatedAt.Format(time.RFC3339Nano))
			}
			back++
		}
	}
	if back > 0 {
		t.Errorf("%d of %d versions dated before the version they replaced", back, len(got))
	}
}

// The same across records: in the order writes took effect (the change feed),
// a write dated before one that took effect earlier is missed by a partner
// that lists with updated_since at the newest time it had seen.
