package store

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestPurgedSetUnderConcurrentReads: readers (Get, List, Changes, Purged) run
// throughout while purges are applied and snapshots restored, which replace
// the in-memory set of purged origins (run with -race: the set is swapped
// whole, never changed in place). A read begun after an apply or restore
// returned, in another goroutine, sees what that apply or restore left: a
// purge cut short serves the origin purged, a restore of a state from before
// it serves it live again. Nothing here depends on timing: the checks are
// ordered by channels, the background reads are bounded in count.
func TestPurgedSetUnderConcurrentReads(t *testing.T) {
	const origins, records, rounds = 6, 3, 3
	tk := mustKey(t, "tianjin")
	s := mustOpen(t, "tianjin", tk)
	a := &applier{t: t, s: s}
	names := make([]string, origins)
	for i := range names {
		names[i] = fmt.Sprintf("o%d", i)
		fillRemote(t, a, names[i], mustKey(t, names[i]), records)
	}
	var before bytes.Buffer
	if err := s.WriteSnapshot(&before); err != nil {
		t.Fatal(err)
	}
	lastLive := func(origin string) string { return fmt.Sprintf("%s:%012d", origin, records-1) }

	// Background readers, bounded in count, stopped when the test is done.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				o := names[(i+r)%origins]
				if _, err := s.Get(lastLive(o)); err != nil && !errors.Is(err, ErrDeleted) {
					t.Errorf("Get: %v", err)
					return
				}
				if _, _, err := s.List(Query{Origin: o, Limit: 10}); err != nil {
					t.Errorf("List: %v", err)
					return
				}
				if _, _, err := s.Changes(0, 20, nil); err != nil {
					t.Errorf("Changes: %v", err)
					return
				}
				if _, err := s.Purged(o); err != nil {
					t.Errorf("Purged: %v", err)
					return
				}
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	// check reads in a goroutine of its own, begun after the change returned.
	type ask struct {
		origin string
		purged bool
		what   string
	}
	asks, answers := make(chan ask), make(chan error)
	go func() {
		for q := range asks {
			rec, err := s.Get(lastLive(q.origin))
			items, _, lerr := s.List(Query{Origin: q.origin, Limit: 10})
			switch {
			case lerr != nil:
				answers <- lerr
			case q.purged && !(errors.Is(err, ErrDeleted) && string(rec.Body) == "{}" && len(items) == 0):
				answers <- fmt.Errorf("%s: %s served live (Get %v, List %d)", q.what, q.origin, err, len(items))
			case !q.purged && (err != nil || len(items) != records):
				answers <- fmt.Errorf("%s: %s served purged (Get %v, List %d)", q.what, q.origin, err, len(items))
			default:
				answers <- nil
			}
		}
	}()
	defer close(asks)
	check := func(q ask) {
		t.Helper()
		asks <- q
		if err := <-answers; err != nil {
			t.Fatal(err)
		}
	}

	for round := range rounds {
		for _, o := range names {
			if r := a.apply(&Command{Purge: &PurgeCommand{Origin: o, Limit: 1}})[0]; r.Err != nil || !r.More {
				t.Fatalf("round %d: first chunk of %s: %+v", round, o, r)
			}
			check(ask{o, true, fmt.Sprintf("round %d, after the first chunk", round)})
		}
		var after bytes.Buffer
		if err := s.WriteSnapshot(&after); err != nil {
			t.Fatal(err)
		}
		if err := s.Restore(bytes.NewReader(before.Bytes())); err != nil {
			t.Fatal(err)
		}
		for _, o := range names {
			check(ask{o, false, fmt.Sprintf("round %d, restored from before the purges", round)})
		}
		if err := s.Restore(bytes.NewReader(after.Bytes())); err != nil {
			t.Fatal(err)
		}
		for _, o := range names {
			check(ask{o, true, fmt.Sprintf("round %d, restored with the purges", round)})
		}
		// Back to the state before, for the next round's purges (the
		// applier's index goes on: Apply skips nothing above the file's).
		if err := s.Restore(bytes.NewReader(before.Bytes())); err != nil {
			t.Fatal(err)
		}
	}
}
