package node

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"liandong/node/store"
)

// TestWriteTimeNeverStepsBack: with the leader's clock stepped back (by less
// than maxWriteTimeFloor), a new
// version's updated_at is not before the version it replaces (nor its
// created_at), another record's write is not before the last write, and a
// partner listing with updated_since at the newest time it had seen finds the
// update.
func TestWriteTimeNeverStepsBack(t *testing.T) {
	f := newTrustFixture(t)
	var offset atomic.Int64
	dir := t.TempDir()
	open := func() *Node {
		return f.openWith(t, dir, func(cfg *Config) {
			cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		})
	}
	n := open()
	defer func() { n.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v1, err := n.Create(ctx, supplyRecord("第一版"))
	if err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(-2 * time.Minute))
	v2, err := n.Put(ctx, v1.ID, supplyRecord("第二版"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if v2.UpdatedAt.Before(v1.UpdatedAt) || v2.UpdatedAt.Before(v2.CreatedAt) {
		t.Fatalf("version 2 updated_at %s, before version 1's %s or its created_at %s",
			v2.UpdatedAt.Format(time.RFC3339Nano), v1.UpdatedAt.Format(time.RFC3339Nano), v2.CreatedAt.Format(time.RFC3339Nano))
	}
	other, err := n.Create(ctx, supplyRecord("另一条"))
	if err != nil {
		t.Fatal(err)
	}
	if other.UpdatedAt.Before(v2.UpdatedAt) {
		t.Fatalf("a later write's updated_at %s is before the last write's %s", other.UpdatedAt.Format(time.RFC3339Nano), v2.UpdatedAt.Format(time.RFC3339Nano))
	}
	recs, _, err := n.List(ctx, store.Query{UpdatedSince: v1.UpdatedAt, Limit: 10})
	if err != nil || len(recs) != 2 {
		t.Fatalf("updated_since=<version 1's updated_at>: %d records (%v), want version 2 and the other record", len(recs), err)
	}
	// A delete and a revival over the tombstone keep going forward too.
	gone, err := n.Delete(ctx, v1.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(-4 * time.Minute))
	again, err := n.PutIfAbsent(ctx, v1.ID, supplyRecord("第三版"))
	if err != nil {
		t.Fatal(err)
	}
	if again.UpdatedAt.Before(gone.UpdatedAt) {
		t.Fatalf("revived at %s, before its deletion at %s", again.UpdatedAt.Format(time.RFC3339Nano), gone.UpdatedAt.Format(time.RFC3339Nano))
	}
	// After a restart (or a new leader), with the clock further back, the
	// record's own last version is the floor.
	n.Close()
	n = open()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	offset.Store(int64(-3 * time.Minute))
	v4, err := n.Put(ctx, v1.ID, supplyRecord("第四版"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if v4.UpdatedAt.Before(again.UpdatedAt) {
		t.Fatalf("after a restart, version %d updated_at %s, before version %d's %s", v4.Version, v4.UpdatedAt.Format(time.RFC3339Nano),
			again.Version, again.UpdatedAt.Format(time.RFC3339Nano))
	}
	// A version dated far ahead (a clock that ran wild) is not followed:
	// later writes take the clock again.
	offset.Store(int64(time.Hour))
	wild, err := n.Put(ctx, v1.ID, supplyRecord("第五版"), 0)
	if err != nil {
		t.Fatal(err)
	}
	offset.Store(0)
	v6, err := n.Put(ctx, v1.ID, supplyRecord("第六版"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !v6.UpdatedAt.Before(wild.UpdatedAt.Add(-50 * time.Minute)) {
		t.Fatalf("after a write dated an hour ahead (%s), the next is dated %s: want the clock", wild.UpdatedAt.Format(time.RFC3339), v6.UpdatedAt.Format(time.RFC3339))
	}
}
