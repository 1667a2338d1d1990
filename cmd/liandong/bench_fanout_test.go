package main

import (
	"context"
	"flag"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFanoutGrowth runs the fanout scenario small and checks how the
// anti-entropy cost grows: not with the number of records, and at most
// linearly in the number of centres per node and round. In the steady state a
// heads exchange carries digests only (wire.Heads), so it costs the same
// whatever the number of centres and records, and a node's round is one such
// exchange per peer. It also checks the codec transport against real
// exchanges over libp2p: both must count the same bytes per exchange, or the
// codec no longer builds what the exchange sends.
func TestFanoutGrowth(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 4 libp2p hosts")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var rs []fanoutResult
	collect := func(r fanoutResult) { rs = append(rs, r) }
	if err := runFanout(ctx, fanoutOptions{Transport: "codec", Centres: []int{4, 8}, Records: []int{10, 1000}, Rounds: 2}, collect); err != nil {
		t.Fatal(err)
	}
	if err := runFanout(ctx, fanoutOptions{Transport: "libp2p", Centres: []int{4}, Records: []int{10, 1000}, Rounds: 2,
		Interval: 300 * time.Millisecond}, collect); err != nil {
		t.Fatal(err)
	}
	if len(rs) != 6 {
		t.Fatalf("got %d results, want 6", len(rs))
	}
	var b strings.Builder
	b.WriteString(fanoutHeader + "\n")
	for _, r := range rs {
		b.WriteString(r.row() + "\n")
	}
	t.Log("\n" + b.String())

	type key struct {
		transport        string
		centres, records int
	}
	by := map[key]fanoutResult{}
	for _, r := range rs {
		by[key{r.Transport, r.Centres, r.Records}] = r
		if r.PullFrames != 0 || r.Reads != 0 {
			t.Errorf("%s, %d centres, %d records: %v pull frames and %d node reads in the steady state, want none",
				r.Transport, r.Centres, r.Records, r.PullFrames, r.Reads)
		}
		if want := float64(2 * (r.Centres - 1)); math.Abs(r.MessagesPerRound-want) > 0.1*want {
			t.Errorf("%s, %d centres: %.1f messages per node and round, want %v (a request to and an answer for each peer)",
				r.Transport, r.Centres, r.MessagesPerRound, want)
		}
	}
	for _, rec := range []int{10, 1000} {
		codec, real := by[key{"codec", 4, rec}], by[key{"libp2p", 4, rec}]
		// Within 5 %: on a loaded machine the libp2p exchanges have carried
		// 151 and 162 bytes against the codec's 154, each time over a
		// window that caught a fraction of a round more (2.4 rounds for 2):
		// timing, not content. Such a run is measured once more; a change
		// of what a heads message holds is off in every run.
		off := func(r fanoutResult) bool { return math.Abs(r.BytesPerExchange/codec.BytesPerExchange-1) > 0.05 }
		if off(real) {
			t.Logf("%d records: libp2p exchanges carried %.0f bytes per exchange over %.1f rounds against the codec's %.0f; measuring again",
				rec, real.BytesPerExchange, real.Rounds, codec.BytesPerExchange)
			if err := runFanout(ctx, fanoutOptions{Transport: "libp2p", Centres: []int{4}, Records: []int{rec}, Rounds: 2,
				Interval: 300 * time.Millisecond}, func(r fanoutResult) { real = r }); err != nil {
				t.Fatal(err)
			}
		}
		if off(real) {
			t.Errorf("%d records: libp2p exchanges carry %.0f bytes per exchange, the codec counts %.0f: the codec no longer builds what the exchange sends",
				rec, real.BytesPerExchange, codec.BytesPerExchange)
		}
	}
	for _, n := range []int{4, 8} {
		few, many := by[key{"codec", n, 10}], by[key{"codec", n, 1000}]
		if g := many.BytesPerRound / few.BytesPerRound; g < 0.99 || g > 1.01 {
			t.Errorf("%d centres: bytes per node and round ×%.3f from 10 to 1,000 records per origin, want ×1", n, g)
		}
	}
	for _, rec := range []int{10, 1000} {
		small, big := by[key{"codec", 4, rec}], by[key{"codec", 8, rec}]
		if g := big.BytesPerExchange / small.BytesPerExchange; g < 0.99 || g > 1.01 {
			t.Errorf("%d records: bytes per exchange ×%.2f from 4 to 8 centres, want ×1 (digests only)", rec, g)
		}
		// Per node and round: one exchange per peer, ×7/3 from 4 to 8 centres.
		g := big.BytesPerRound / small.BytesPerRound
		if g > 7.0/3*1.01 {
			t.Errorf("%d records: bytes per node and round ×%.2f from 4 to 8 centres, more than linear in peers (×%.2f)", rec, g, 7.0/3)
		}
		t.Logf("%d records: bytes per node and round ×%.2f from 4 to 8 centres (exponent %.2f in peers)", rec, g, math.Log(g)/math.Log(7.0/3))
	}
}

// TestFanoutCPUProfile: --cpuprofile with fanout writes a profile of the run
// (it was once silently ignored there).
func TestFanoutCPUProfile(t *testing.T) {
	if f := flag.Lookup("test.cpuprofile"); f != nil && f.Value.String() != "" {
		t.Skip("the test binary is being profiled: a second CPU profile cannot start")
	}
	path := filepath.Join(t.TempDir(), "cpu.prof")
	code, out := runCLI(t, time.Minute, "bench", "fanout", "--centres", "4", "--fanout-records", "10", "--rounds", "1", "--cpuprofile", path)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() == 0 {
		t.Fatal("empty profile")
	}
}
