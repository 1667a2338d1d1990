package exchange_test

import (
	"testing"
	"time"

	"liandong/sync/exchange"
)

// TestPushingAnnouncesLess: with push on, an origin committing every few
// milliseconds announces at most once per PushingAnnounceDebounce (and at the
// leading edge), while its pushes still deliver every entry; with push off,
// gossip is the fast path and announces at AnnounceDebounce.
func TestPushingAnnouncesLess(t *testing.T) {
	const slow = 200 * time.Millisecond
	for _, push := range []bool{true, false} {
		name := map[bool]string{true: "push", false: "no-push"}[push]
		t.Run(name, func(t *testing.T) {
			checkLeaks(t)
			fed := newFed(t, "hq", "tianjin")
			mutate := func(c *exchange.Config) {
				c.DisablePush = !push
				c.PushingAnnounceDebounce = slow
				c.AntiEntropyInterval = time.Hour
			}
			hq := startExchange(t, fed, "hq", nil, mutate)
			tj := startExchange(t, fed, "tianjin", nil, mutate)
			connect(t, hq, tj)
			ahq := fed.Author("hq")

			sent := func() float64 {
				return metricValue(t, hq.reg, "liandong_sync_announcements_total", "direction", "sent")
			}
			// Wait out the announcements of connecting, so that the count below
			// starts at a quiet moment.
			time.Sleep(2 * slow)
			before, start := sent(), time.Now()
			const commits = 60
			for range commits {
				write(t, hq.node, ahq, 1)
				time.Sleep(10 * time.Millisecond)
			}
			elapsed := time.Since(start)
			waitFor(t, 10*time.Second, "hq's entries at tianjin", func() bool { return tj.node.Len("hq") == commits })
			got := sent() - before
			// One at the leading edge, one per debounce after it, and one
			// for the last debounce still running when the count is read.
			bound := float64(elapsed/slow) + 2
			if push && got > bound {
				t.Fatalf("pushing, hq announced %v times in %v of commits; want at most %v (one per %v)", got, elapsed, bound, slow)
			}
			if !push && got <= bound {
				t.Fatalf("without push, hq announced only %v times for %d commits in %v; gossip is then the fast path and should announce at AnnounceDebounce", got, commits, elapsed)
			}
			t.Logf("%s: %v announcements for %d commits in %v", name, got, commits, elapsed.Round(time.Millisecond))
		})
	}
}

// TestPushingRelayAnnounces: with push on, a member cut off from an origin
// still learns its entries promptly, through the announcements of a relay
// that the origin pushed to, with anti-entropy out of the way.
func TestPushingRelayAnnounces(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin", "hebei")
	hq, tj, _ := cutTriangle(t, fed, func(c *exchange.Config) {
		c.AntiEntropyInterval = time.Hour
		c.PushingAnnounceDebounce = 200 * time.Millisecond
	})
	ahq := fed.Author("hq")
	// Gossip drops what is published before its mesh forms; a later commit
	// announces again. The first entries may reach tianjin by the heads
	// exchange of connecting instead, so wait for an announcement too: until
	// one arrives, the rounds below would wait on anti-entropy.
	n := 0
	waitFor(t, 15*time.Second, "hq's entries at tianjin through hebei's announcements", func() bool {
		write(t, hq.node, ahq, 1)
		n++
		time.Sleep(100 * time.Millisecond)
		return tj.node.Len("hq") == n && metricValue(t, tj.reg, "liandong_sync_announcements_total", "direction", "received") > 0
	})
	for range 3 {
		write(t, hq.node, ahq, 5)
		n += 5
		waitFor(t, 5*time.Second, "hq's next entries at tianjin through hebei", func() bool { return tj.node.Len("hq") == n })
	}
}
