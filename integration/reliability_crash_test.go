package integration

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"go.etcd.io/bbolt"

	"liandong/auth"
	"liandong/node/store"
	"liandong/schema"
)

// killCyclesEnv sets the cycles of TestReliabilityKillCycles (default 10; the
// issue's figure is 50, recorded in RELIABILITY.md).
const killCyclesEnv = "LIANDONG_KILL_CYCLES"

// TestReliabilityKillCycles: a single-replica centre (the real binary) under
// write load from 8 clients is killed with SIGKILL at a random moment, cycle
// after cycle on the same data directory. After every kill bbolt's own check
// is clean on copies of the state file and raft's log; after every restart every
// acknowledged write is readable at (at least) its acknowledged version. At the
// end, after a clean stop, the centre's log is one unbroken signed chain in
// which every record's versions run 1, 2, 3 … and end at its stored version:
// nothing was lost and nothing applied twice. It runs on both kinds of raft
// log: bbolt (the default) and raft-wal.
func TestReliabilityKillCycles(t *testing.T) {
	if testing.Short() {
		t.Skip("starts real processes")
	}
	for _, logStore := range []string{"wal", "bolt"} {
		t.Run(logStore, func(t *testing.T) { killCycles(t, logStore) })
	}
}

func killCycles(t *testing.T, logStore string) {
	cycles := 10
	if v := os.Getenv(killCyclesEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("%s=%q: want a positive number", killCyclesEnv, v)
		}
		cycles = n
	}
	data := t.TempDir()
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	args := []string{"serve", "--dev", "--data", data, "--http", fmt.Sprintf("127.0.0.1:%d", port), "--centre", "tianjin", "--log-level", "warn"}
	env := []string{"LIANDONG_RAFT_LOG_STORE=" + logStore}
	rng := rand.New(rand.NewPCG(50, uint64(cycles)))

	acked := map[string]uint64{}
	var mu sync.Mutex
	writes := 0
	start := time.Now()
	for cycle := 0; cycle < cycles; cycle++ {
		p := startProcWith(t, binary, env, args...)
		waitReady(t, p, url, 60*time.Second)
		c, err := newClient(url, filepath.Join(data, "admin.token"))
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		checkAcked(t, context.Background(), fmt.Sprintf("cycle %d", cycle), c, acked)
		mu.Unlock()

		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		for w := 0; w < 8; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ctx.Err() == nil && i < 100000; i++ {
					id := fmt.Sprintf("tianjin:k%d-%d", w, (i+cycle)%24)
					var got envelope
					if _, err := c.do(ctx, http.MethodPut, "/v1/records/"+id, map[string]any{
						"catalogue": "supply", "visibility": "federation", "body": supplyBody(id),
					}, &got); err != nil {
						if ctx.Err() != nil {
							return // killed
						}
						continue
					}
					mu.Lock()
					acked[id] = max(acked[id], got.Version)
					writes++
					mu.Unlock()
				}
			}()
		}
		// Kill at a random moment of the load: some writes in flight, some
		// batches half applied, now and then a snapshot under way.
		time.Sleep(time.Duration(200+rng.IntN(900)) * time.Millisecond)
		p.kill()
		cancel()
		wg.Wait()

		relBoltCheck(t, filepath.Join(data, "state.db"))
		relRaftLogCheck(t, data)
		if testing.Verbose() || cycle == cycles-1 {
			mu.Lock()
			t.Logf("cycle %d: %d writes acknowledged so far over %d records (%v)", cycle, writes, len(acked), time.Since(start).Round(time.Millisecond))
			mu.Unlock()
		}
	}

	p := startProcWith(t, binary, env, args...)
	waitReady(t, p, url, 60*time.Second)
	c, err := newClient(url, filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	checkAcked(t, context.Background(), "final", c, acked)
	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	relBoltCheck(t, filepath.Join(data, "state.db"))
	relCheckLogOnce(t, data, "tianjin")
	if held := filepath.Join(data, "raft", map[string]string{"wal": "wal", "bolt": "log.db"}[logStore]); !exists(held) {
		t.Fatalf("raft.log_store %s: no %s", logStore, held)
	}
	t.Logf("%d kill cycles, %d acknowledged writes, all present, bbolt check clean after every kill, log applied once (%v)",
		cycles, writes, time.Since(start).Round(time.Second))
}

// relBoltCheck runs bbolt's consistency check (tx.Check, as `bbolt check` does)
// on a copy of the file at path, so the copy can be opened whatever holds the
// original.
func relBoltCheck(t *testing.T, path string) {
	t.Helper()
	cp := relCopy(t, path)
	// bbolt's check faults the process on some damage; our own page check turns
	// that into an error first.
	if err := store.CheckBoltFile(cp); err != nil {
		t.Fatalf("check %s: %v", path, err)
	}
	db, err := bbolt.Open(cp, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt check %s: open: %v", path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatalf("bbolt check %s: %v", path, err)
	}
}

// relRaftLogCheck checks a copy of a stopped replica's raft log, whichever
// kind it is: bbolt's check on log.db; for raft-wal, bbolt's check on its
// metadata file and every entry read back from a copy of its segments.
func relRaftLogCheck(t *testing.T, dataDir string) {
	t.Helper()
	boltLog := filepath.Join(dataDir, "raft", "log.db")
	if _, err := os.Stat(boltLog); err == nil {
		relBoltCheck(t, boltLog)
		return
	}
	walDir := filepath.Join(dataDir, "raft", "wal")
	relBoltCheck(t, filepath.Join(walDir, "wal-meta.db"))
	files, err := os.ReadDir(walDir)
	if err != nil {
		t.Fatal(err)
	}
	cp := t.TempDir()
	for _, f := range files {
		if err := os.Rename(relCopy(t, filepath.Join(walDir, f.Name())), filepath.Join(cp, f.Name())); err != nil {
			t.Fatal(err)
		}
	}
	w, err := raftwal.Open(cp)
	if err != nil {
		t.Fatalf("open a copy of raft's WAL %s: %v", walDir, err)
	}
	defer w.Close()
	first, _ := w.FirstIndex()
	last, _ := w.LastIndex()
	if first == 0 {
		t.Fatalf("raft's WAL %s is empty", walDir)
	}
	var l raft.Log
	for i := first; i <= last; i++ {
		if err := w.GetLog(i, &l); err != nil || l.Index != i {
			t.Fatalf("raft's WAL %s, entry %d of %d-%d: %v (read as %d)", walDir, i, first, last, err, l.Index)
		}
	}
}

func relCopy(t *testing.T, path string) string {
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
	defer dst.Close()
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	return cp
}

// relCheckLogOnce opens a copy of a stopped node's state file and requires the
// origin's log to be one unbroken chain from seq 1, signed by the centre's
// record key, in which every record's versions run 1, 2, 3 … and end at its
// stored version.
func relCheckLogOnce(t *testing.T, dataDir, origin string) {
	t.Helper()
	key, err := auth.LoadKey(filepath.Join(dataDir, "keys", "record.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(relCopy(t, filepath.Join(dataDir, "state.db")), store.Options{Centre: origin})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	head, err := st.Head(origin)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := st.ReadRange(origin, 1, int(head.Seq)+10)
	if err != nil {
		t.Fatal(err)
	}
	if uint64(len(entries)) != head.Seq {
		t.Fatalf("log of %s holds %d entries, its head says %d", origin, len(entries), head.Seq)
	}
	if err := auth.VerifyChain(relKey{key}, schema.Head{Origin: origin}, entries, auth.VerifyEverySignature); err != nil {
		t.Fatalf("log of %s: %v", origin, err)
	}
	last := map[string]uint64{}
	for _, e := range entries {
		id := e.Record.ID
		if e.Record.Version != last[id]+1 {
			t.Fatalf("log of %s, seq %d: %s at v%d after v%d: applied twice or skipped", origin, e.Seq, id, e.Record.Version, last[id])
		}
		last[id] = e.Record.Version
	}
	for id, v := range last {
		rec, err := st.Get(id)
		if err != nil || rec.Version != v {
			t.Fatalf("%s stored at v%d (%v); its log ends at v%d", id, rec.Version, err, v)
		}
	}
	t.Logf("log of %s: %d entries over %d records, one chain, each version once", origin, len(entries), len(last))
}

// relKey resolves one centre's record key for auth.VerifyChain.
type relKey struct{ k *auth.KeyPair }

func (r relKey) RecordKey(_, kid string, _ time.Time) (ed25519.PublicKey, error) {
	if kid != r.k.ID {
		return nil, auth.ErrUnknownKey
	}
	return r.k.Public, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
