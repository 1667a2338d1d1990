//go:build failpoints

package node

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node/store"
)

// Purges killed part-way: run with
//
//	go test -race -tags failpoints -run 'TestPurgeKilled' ./node/
//
// (the tag only because it shares TestCrashPoints' helpers). A child process
// purges an origin of 10,000 records, whole or in chunks, and the parent
// kills it (SIGKILL) a while after the child says it started. Wherever the
// kill lands, the reopened node holds a consistent state: a whole purge is
// there entirely or not at all (one transaction; raft applies it again at
// the restart if its log entry was written), chunks are there up to the last
// committed, and the leader's ResumePurges finishes them; the feed holds one
// tombstone per purged record, none twice.

const (
	purgeCrashDirEnv   = "LIANDONG_PURGE_CRASH_DIR"
	purgeCrashChunkEnv = "LIANDONG_PURGE_CRASH_CHUNK"
)

// TestPurgeCrashChild is TestPurgeKilled's child; alone it skips.
func TestPurgeCrashChild(t *testing.T) {
	dir := os.Getenv(purgeCrashDirEnv)
	if dir == "" {
		t.Skip("the child process of TestPurgeKilled")
	}
	fail := func(code int, err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(code)
	}
	cfg, err := purgeCrashConfig(dir)
	if err != nil {
		fail(3, err)
	}
	n, err := Open(cfg)
	if err != nil {
		fail(4, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		fail(5, err)
	}
	limit, _ := strconv.Atoi(os.Getenv(purgeCrashChunkEnv))
	fmt.Println("purging")
	for more := true; more; {
		res, err := n.propose(ctx, &store.Command{Purge: &store.PurgeCommand{Origin: "hebei", Limit: limit}})
		if err != nil {
			fail(6, err)
		}
		more = res.More
	}
	fmt.Println("purged")
	os.Exit(0) // without Close: an unclean stop
}

// purgeCrashConfig is the node of dir, with the record key the parent saved
// there.
func purgeCrashConfig(dir string) (Config, error) {
	cfg := DefaultConfig("tianjin", dir)
	var err error
	cfg.RecordKey, err = auth.LoadKey(filepath.Join(dir, "record.key"))
	return cfg, err
}

// openPurgeNode opens the node of cfg and waits until it leads.
func openPurgeNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		n.Close()
		t.Fatal(err)
	}
	return n
}

func TestPurgeKilled(t *testing.T) {
	const records = 10_000
	// One fill for every case, each killing its child in a copy: the fill
	// through raft, under the race detector, was most of the test's time.
	fed, _ := purgeFederation(t)
	filled := t.TempDir()
	if err := auth.SaveKey(filepath.Join(filled, "record.key"), fed.Members["tianjin"].RecordKey); err != nil {
		t.Fatal(err)
	}
	cfg, err := purgeCrashConfig(filled)
	if err != nil {
		t.Fatal(err)
	}
	n := openPurgeNode(t, cfg)
	fillOrigin(t, n, fed, "hebei", records)
	before, err := n.st.LastPosition()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		chunk int
		after time.Duration
	}{
		{"whole/early", 0, 50 * time.Millisecond},
		{"whole/late", 0, 250 * time.Millisecond},
		{"chunks/early", PurgeChunk, 50 * time.Millisecond},
		{"chunks/late", PurgeChunk, 250 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, filled)
			cfg, err := purgeCrashConfig(dir)
			if err != nil {
				t.Fatal(err)
			}

			finished := killPurgeChild(t, dir, tc.chunk, tc.after)
			bboltCheck(t, filepath.Join(dir, "state.db"))
			// What the state file held at the kill, before raft replays its log.
			st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{Centre: "tianjin"})
			if err != nil {
				t.Fatal(err)
			}
			purgedAtKill, err := st.Purged("hebei")
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}

			n := openPurgeNode(t, cfg)
			defer n.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// Raft applies what its log holds once this leader commits.
			if err := n.raft.Barrier(30 * time.Second).Error(); err != nil {
				t.Fatal(err)
			}
			live := storedLive(t, n, "hebei")
			purged, err := n.st.Purged("hebei")
			if err != nil {
				t.Fatal(err)
			}
			if served := liveOf(t, n, "hebei", records); purged && served != 0 || !purged && served != live {
				t.Fatalf("Get serves %d records of hebei, %d held live, marked purged %v", served, live, purged)
			}
			left, err := n.st.UnfinishedPurges()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("killed %v after the start (child finished: %v; state file marked purged at the kill: %v): %d of %d records held live (no tombstone yet) after raft's replay, marked purged %v", tc.after, finished, purgedAtKill, live, records, purged)
			switch {
			case finished && live != 0:
				t.Fatalf("the child saw the purge applied, and %d records are live", live)
			case !purged && live != records:
				t.Fatalf("not marked purged, and %d of %d records live", live, records)
			case tc.chunk == 0 && live != 0 && live != records:
				t.Fatalf("a whole purge left %d of %d records live: it is one transaction", live, records)
			case purged && live > 0 && (len(left) != 1 || left[0] != "hebei"):
				t.Fatalf("%d records live in a purged origin, and unfinished purges %v", live, left)
			}
			if purged && live > 0 {
				if _, err := n.ResumePurges(ctx, records/PurgeChunk); err != nil {
					t.Fatal(err)
				}
				if live := storedLive(t, n, "hebei"); live != 0 {
					t.Fatalf("%d records live after the resumed purge", live)
				}
			}
			// One tombstone per purged record in the feed, none twice.
			changes, _, err := n.st.Changes(before, 2*records, nil)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			for _, c := range changes {
				if seen[c.Record.ID] || !c.Record.Deleted {
					t.Fatalf("feed position %d: %s (deleted %v) twice or live", c.Position, c.Record.ID, c.Record.Deleted)
				}
				seen[c.Record.ID] = true
			}
			if want := records - storedLive(t, n, "hebei"); len(seen) != want {
				t.Fatalf("the feed holds %d tombstones since the fill, want %d", len(seen), want)
			}
		})
	}
}

// killPurgeChild runs TestPurgeCrashChild on dir and kills it after the
// given time from its "purging"; it reports whether the child said the purge
// was applied first.
func killPurgeChild(t *testing.T, dir string, chunk int, after time.Duration) (finished bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestPurgeCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), purgeCrashDirEnv+"="+dir, purgeCrashChunkEnv+"="+strconv.Itoa(chunk))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	lines := make(chan string, 16)
	go func() {
		defer close(lines)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var kill <-chan time.Time
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				lines = nil
				continue
			}
			switch l {
			case "purging":
				kill = time.After(after)
			case "purged":
				finished = true
			}
			continue
		case <-kill:
		case <-ctx.Done():
			t.Fatal("the child neither started purging nor ended in time")
		}
		break
	}
	cmd.Process.Kill() // SIGKILL: no deferred function, no Close
	err = cmd.Wait()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("child: %v", err)
	}
	return finished
}
