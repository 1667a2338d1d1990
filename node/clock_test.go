package node

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"liandong/auth"
	"liandong/schema"
)

// TestSkewedClockSignsEntries: the leader's clock (Config.Now) stamps every
// entry's signed_at and the record's times, and receivers judge an entry only by
// whether its key was valid at that signed_at. So an entry from an origin whose
// clock runs ahead is accepted (its signed_at is the origin's claim, and a
// receiver's own clock plays no part). An origin whose clock runs outside its
// keys' windows refuses writes (503) rather than sign entries every peer would
// refuse, on which its log would stop spreading.
func TestSkewedClockSignsEntries(t *testing.T) {
	f := newTrustFixture(t) // the record key is valid from an hour ago, without end
	var offset atomic.Int64
	n := f.openWith(t, t.TempDir(), func(cfg *Config) {
		cfg.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	write := func(skew time.Duration) (*schema.Record, *schema.Entry) {
		t.Helper()
		offset.Store(int64(skew))
		before := time.Now().Add(skew)
		rec, err := n.Create(ctx, supplyRecord("skewed"))
		if err != nil {
			t.Fatalf("write with the clock %v off: %v", skew, err)
		}
		head, _ := n.Store().Head("tianjin")
		es, err := n.Store().ReadRange("tianjin", head.Seq, 1)
		if err != nil || len(es) != 1 {
			t.Fatalf("read entry %d: %v", head.Seq, err)
		}
		e := es[0]
		if e.SignedAt.Before(before.Add(-time.Second)) || e.SignedAt.After(time.Now().Add(skew).Add(time.Second)) {
			t.Fatalf("signed_at %v with the clock %v off: not the leader's clock", e.SignedAt, skew)
		}
		if !rec.UpdatedAt.Equal(e.SignedAt) {
			t.Fatalf("updated_at %v, signed_at %v", rec.UpdatedAt, e.SignedAt)
		}
		return rec, e
	}

	// Ten minutes ahead: within the key's window, so any receiver accepts it.
	_, ahead := write(10 * time.Minute)
	if err := auth.VerifyEntry(f.v1, ahead); err != nil {
		t.Fatalf("an entry dated ten minutes ahead was refused: %v", err)
	}
	// Two seconds behind: the same.
	_, behind := write(-2 * time.Second)
	if err := auth.VerifyEntry(f.v1, behind); err != nil {
		t.Fatalf("an entry dated two seconds behind was refused: %v", err)
	}
	// Two hours behind: before the key's window opened. The leader holds no key
	// valid then and refuses the write: an entry signed now would be refused by
	// every peer, and every later one chains on it, so the log would stop
	// spreading here until a bundle covered it.
	offset.Store(int64(-2 * time.Hour))
	headBefore, _ := n.Store().Head("tianjin")
	if _, err := n.Create(ctx, supplyRecord("too early")); !errors.Is(err, ErrNoSigningKey) {
		t.Fatalf("a write two hours before the key's window: %v, want ErrNoSigningKey", err)
	}
	if h, _ := n.Store().Head("tianjin"); h != headBefore {
		t.Fatalf("a refused write moved the log from %d to %d", headBefore.Seq, h.Seq)
	}
	// Clock fixed: writes go on, chaining on the last good entry.
	_, later := write(0)
	if err := auth.VerifyChain(f.v1, schema.Head{Origin: "tianjin", Epoch: ahead.Epoch, Seq: behind.Seq, Hash: behind.Hash()},
		[]*schema.Entry{later}, auth.VerifyEverySignature); err != nil {
		t.Fatalf("the next write after the clock was fixed: %v", err)
	}
}
