//go:build failpoints

package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"liandong/auth"
	"liandong/schema"
)

// Crash points: run with
//
//	go test -race -tags failpoints -run 'TestCrashPoints' ./node/
//
// Each case runs this test binary again as a child process (TestCrashChild) that
// writes under load with one failpoint armed to exit the process, as a kill
// would, at that point. The parent then checks the files the crash left with
// bbolt's own consistency check, reopens the node in-process and requires every
// write the child saw acknowledged, nothing applied twice (the centre's log is one
// unbroken signed chain, and every record's versions in it run 1, 2, 3 … without a
// repeat), and the state file's walk clean.

const (
	crashDirEnv    = "LIANDONG_CRASH_DIR"
	crashWritesEnv = "LIANDONG_CRASH_WRITES"
	crashSnapEnv   = "LIANDONG_CRASH_SNAPSHOTS"
	crashStoreEnv  = "LIANDONG_CRASH_LOG_STORE"
)

func crashConfig(dir string, key *auth.KeyPair, snapshots bool, logStore string) Config {
	cfg := DefaultConfig("tianjin", dir)
	cfg.RecordKey = key
	cfg.LogStore = logStore
	if snapshots {
		cfg.SnapshotInterval = 20 * time.Millisecond
		cfg.SnapshotThreshold = 32
		cfg.TrailingLogs = 16
	}
	return cfg
}

// TestCrashChild is the child process of TestCrashPoints; alone it skips. It
// prints "ack ID VERSION" for every write acknowledged to it, and exits without
// closing the node (a crash) unless a failpoint ended it earlier.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("the child process of TestCrashPoints")
	}
	key, err := auth.LoadKey(filepath.Join(dir, "record.key"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	n, err := Open(crashConfig(dir, key, os.Getenv(crashSnapEnv) == "1", os.Getenv(crashStoreEnv)))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(4)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(5)
	}
	writes, _ := strconv.Atoi(os.Getenv(crashWritesEnv))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < writes/4 && ctx.Err() == nil; i++ {
				id := fmt.Sprintf("tianjin:w%d-%d", w, i%16)
				rec, err := n.Put(ctx, id, supplyRecord(id), 0)
				if err != nil {
					continue
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %s %d\n", rec.ID, rec.Version)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	fmt.Fprintln(os.Stdout, "done")
	os.Exit(0) // without Close: the parent sees an unclean stop
}

// runCrashChild runs TestCrashChild on dir with the failpoints armed and returns
// the acknowledged versions, its exit code and its output.
func runCrashChild(t *testing.T, dir, failpoints string, writes int, snapshots bool, logStore string) (map[string]uint64, int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	snap := "0"
	if snapshots {
		snap = "1"
	}
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir, crashWritesEnv+"="+strconv.Itoa(writes),
		crashSnapEnv+"="+snap, crashStoreEnv+"="+logStore, failpointsEnv+"="+failpoints)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run child: %v", err)
	}
	acked := map[string]uint64{}
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "ack" {
			v, _ := strconv.ParseUint(f[2], 10, 64)
			acked[f[1]] = max(acked[f[1]], v)
		}
	}
	return acked, code, stdout.String() + stderr.String()
}

// bboltCheck runs bbolt's own consistency check (tx.Check) on a copy of path.
func bboltCheck(t *testing.T, path string) {
	t.Helper()
	src, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	cp := filepath.Join(t.TempDir(), filepath.Base(path))
	dst, err := os.Create(cp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	dst.Close()
	db, err := bbolt.Open(cp, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt check %s: open: %v", path, err)
	}
	defer db.Close()
	if err := db.View(func(tx *bbolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}); err != nil {
		t.Fatalf("bbolt check %s: %v", path, err)
	}
}

// verifyAfterCrash checks the files a crash left, reopens the node and checks
// that nothing acknowledged is missing and nothing was applied twice.
func verifyAfterCrash(t *testing.T, dir string, key *auth.KeyPair, acked map[string]uint64, logStore string) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(dir, "state.db")); err == nil {
		bboltCheck(t, filepath.Join(dir, "state.db"))
	}
	if logStore != LogStoreWAL {
		bboltCheck(t, filepath.Join(dir, "raft", boltLogFile))
	}

	n, err := Open(crashConfig(dir, key, false, logStore))
	if err != nil {
		t.Fatalf("reopen after the crash: %v", err)
	}
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	// A barrier commits the new term's first entry, so everything raft holds is applied.
	if err := n.raft.Barrier(30 * time.Second).Error(); err != nil {
		t.Fatalf("barrier after reopen: %v", err)
	}
	for id, v := range acked {
		rec, err := n.Get(ctx, id)
		if err != nil {
			t.Fatalf("acknowledged %s v%d lost: %v", id, v, err)
		}
		if rec.Version < v {
			t.Fatalf("acknowledged %s v%d, found v%d", id, v, rec.Version)
		}
	}
	checkLogOnce(t, n)
	if err := n.Store().Check(); err != nil {
		t.Fatalf("state file walk: %v", err)
	}
}

// checkLogOnce requires the centre's log to be one unbroken signed chain from
// seq 1 with every record's versions in it running 1, 2, 3 …, and every record's
// stored version to be its last logged one: nothing applied twice, nothing lost.
func checkLogOnce(t *testing.T, n *Node) {
	t.Helper()
	head, err := n.Store().Head("tianjin")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := n.Store().ReadRange("tianjin", 1, int(head.Seq)+10)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(entries)) != head.Seq {
		t.Fatalf("log holds %d entries, head says %d", len(entries), head.Seq)
	}
	if err := auth.VerifyChain(singleKey{n.cfg.RecordKey}, schema.Head{Origin: "tianjin"}, entries, auth.VerifyEverySignature); err != nil {
		t.Fatalf("log chain: %v", err)
	}
	last := map[string]uint64{}
	for _, e := range entries {
		id := e.Record.ID
		if e.Record.Version != last[id]+1 {
			t.Fatalf("entry %d: %s at v%d after v%d: applied twice or skipped", e.Seq, id, e.Record.Version, last[id])
		}
		last[id] = e.Record.Version
	}
	for id, v := range last {
		rec, err := n.Store().Get(id)
		if err != nil || rec.Version != v {
			t.Fatalf("%s stored at v%d (%v), its log ends at v%d", id, rec.Version, err, v)
		}
	}
}

func newCrashDir(t *testing.T) (string, *auth.KeyPair) {
	t.Helper()
	dir := t.TempDir()
	key, err := auth.GenerateKey("tianjin-rec")
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.SaveKey(filepath.Join(dir, "record.key"), key); err != nil {
		t.Fatal(err)
	}
	return dir, key
}

func TestCrashPoints(t *testing.T) {
	cases := []struct {
		point     string
		nth       int
		snapshots bool
		logStore  string
	}{
		{FailpointRaftLogBeforeWrite, 30, false, LogStoreBolt},
		{FailpointRaftLogAfterWrite, 30, false, LogStoreBolt},
		{FailpointStateAfterCommit, 30, false, LogStoreBolt},
		{FailpointSnapshotPersist, 1, true, LogStoreBolt},
		{FailpointRaftLogBeforeWrite, 30, false, LogStoreWAL},
		{FailpointRaftLogAfterWrite, 30, false, LogStoreWAL},
		{FailpointStateAfterCommit, 30, false, LogStoreWAL},
		{FailpointSnapshotPersist, 1, true, LogStoreWAL},
	}
	for _, tc := range cases {
		t.Run(tc.point+"/"+tc.logStore, func(t *testing.T) {
			dir, key := newCrashDir(t)
			acked := map[string]uint64{}
			// Two lives: the second crash hits a node that recovered from the first.
			for life := 1; life <= 2; life++ {
				got, code, out := runCrashChild(t, dir, fmt.Sprintf("%s=exit@%d", tc.point, tc.nth), 400, tc.snapshots, tc.logStore)
				if code != FailpointExitCode {
					t.Fatalf("life %d: child exit code %d, want %d (failpoint not reached?); output:\n%s", life, code, FailpointExitCode, tail(out))
				}
				if len(got) == 0 && tc.point != FailpointSnapshotPersist {
					t.Fatalf("life %d: nothing acknowledged before the crash; output:\n%s", life, tail(out))
				}
				for id, v := range got {
					acked[id] = max(acked[id], v)
				}
				verifyAfterCrash(t, dir, key, acked, tc.logStore)
				var writes uint64
				for _, v := range acked {
					writes += v
				}
				t.Logf("life %d: crashed with %d records acknowledged in this life; %d versions of %d records acknowledged in all, all present", life, len(got), writes, len(acked))
			}
			if left, _ := filepath.Glob(filepath.Join(dir, "raft", "snapshots", "*.tmp")); len(left) > 0 {
				t.Errorf("half-written snapshots left after the restart: %v", left)
			}
		})
	}

	t.Run(FailpointSnapshotRestore, func(t *testing.T) {
		dir, key := newCrashDir(t)
		acked, code, out := runCrashChild(t, dir, "", 400, true, LogStoreBolt)
		if code != 0 || len(acked) == 0 {
			t.Fatalf("first life: exit code %d, %d acknowledged; output:\n%s", code, len(acked), tail(out))
		}
		snaps, _ := filepath.Glob(filepath.Join(dir, "raft", "snapshots", "*", "state.bin"))
		if len(snaps) == 0 {
			t.Fatal("no snapshot taken")
		}
		// The state file is lost: the next start restores the newest snapshot
		// into it, and crashes half way through.
		if err := os.Remove(filepath.Join(dir, "state.db")); err != nil {
			t.Fatal(err)
		}
		_, code, out = runCrashChild(t, dir, FailpointSnapshotRestore+"=exit", 0, true, LogStoreBolt)
		if code != FailpointExitCode {
			t.Fatalf("restore life: exit code %d, want %d; output:\n%s", code, FailpointExitCode, tail(out))
		}
		// The half-copied snapshot stays in state.db.restore; state.db is the empty
		// file the crashed start created, so the next start restores again.
		if _, err := os.Stat(filepath.Join(dir, "state.db.restore")); err != nil {
			t.Fatalf("no half-restored copy beside the state file: %v", err)
		}
		verifyAfterCrash(t, dir, key, acked, LogStoreBolt)
	})
}

func tail(s string) string {
	if len(s) > 4000 {
		return "…" + s[len(s)-4000:]
	}
	return s
}

// TestRaftLogDiskFull: raft's log refuses writes with ENOSPC (the failpoint
// stands in for a full disk under log.db). Writes answer ErrDiskFull (507 at the
// API) or, while raft re-elects after the failed write, not-leader; reads go on;
// nothing panics; when space returns writes succeed again without a restart and
// nothing acknowledged is lost or applied twice.
func TestRaftLogDiskFull(t *testing.T) {
	dir, key := newCrashDir(t)
	n := mustOpenNode(t, dir, key)
	defer n.Close()
	t.Cleanup(func() { armFailpoints("") })
	ctx := context.Background()
	acked := map[string]uint64{}
	for i := 0; i < 10; i++ {
		rec, err := n.Put(ctx, fmt.Sprintf("tianjin:d%d", i), supplyRecord(fmt.Sprint("成果", i)), 0)
		if err != nil {
			t.Fatal(err)
		}
		acked[rec.ID] = rec.Version
	}
	if err := armFailpoints(FailpointRaftLogBeforeWrite + "=enospc"); err != nil {
		t.Fatal(err)
	}
	full := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := n.Put(wctx, "tianjin:d0", supplyRecord("满"), 0)
		cancel()
		switch {
		case err == nil:
			t.Fatal("a write succeeded while raft's log cannot be written")
		case errors.Is(err, ErrDiskFull):
			full++
		case errors.Is(err, ErrNotLeader), errors.Is(err, ErrTimeout):
		default:
			t.Fatalf("write while raft's log is full: %v", err)
		}
		if _, err := n.Get(ctx, "tianjin:d1"); err != nil {
			t.Fatalf("read while raft's log is full: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if full == 0 {
		t.Fatal("no write was refused as disk full")
	}
	// The node knows it from raft's log store itself, as a follower must
	// (/healthz reports it to the leader).
	if err := n.DiskFull(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("DiskFull while raft's log cannot be written: %v", err)
	}
	armFailpoints("")
	deadline := time.Now().Add(20 * time.Second)
	for {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		rec, err := n.Put(wctx, "tianjin:d0", supplyRecord("又有空间"), 0)
		cancel()
		if err == nil {
			acked[rec.ID] = rec.Version
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("writes not accepted 20s after space returned: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := n.DiskFull(); err != nil {
		t.Fatalf("DiskFull after a write was stored: %v", err)
	}
	t.Logf("%d writes refused as disk full", full)
	for id, v := range acked {
		if rec, err := n.Get(ctx, id); err != nil || rec.Version < v {
			t.Fatalf("%s acknowledged v%d: %v", id, v, err)
		}
	}
	if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	checkLogOnce(t, n)
}
