package integration

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// TestReliabilityDamagedReplica: in a centre of three replicas, a follower's
// state file and then its raft log are damaged while it is stopped. Each time
// the replica refuses to start (it exits; it cannot lead) with a message naming
// the file and what to do, while the two healthy replicas take writes. Repaired
// as the message says, it rejoins and holds every acknowledged write.
func TestReliabilityDamagedReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	// raft's log as a bbolt file, which the damage below is written for; a
	// damaged raft-wal log is node's TestDamagedFilesRefusedAtStart.
	g := newCentreGroupWith(t, 3, groupOptions{logStore: "bolt"})
	ctx := context.Background()
	leader := g.leader(-1)
	f := 1 // a follower that joins through replica 0, never the bootstrapper
	if leader == 1 {
		f = 2
	}
	var mu sync.Mutex
	acked := map[string]uint64{}
	write := func(prefix string, n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("tianjin:%s-%d", prefix, i%20)
			var got envelope
			if _, err := g.clients[leader].do(ctx, http.MethodPut, "/v1/records/"+id, map[string]any{
				"catalogue": "supply", "visibility": "federation", "body": supplyBody(id),
			}, &got); err != nil {
				t.Fatalf("write %s: %v", id, err)
			}
			mu.Lock()
			acked[id] = max(acked[id], got.Version)
			mu.Unlock()
		}
	}
	write("before", 60)

	for _, tc := range []struct {
		file   string // relative to the replica's data directory
		bucket string
		repair []string // what the message says to move aside
	}{
		{"state.db", "records", []string{"state.db"}},
		{"raft/log.db", "logs", []string{"raft", "state.db", "search.db"}},
	} {
		dataDir := g.cfgs[f].DataDir
		path := filepath.Join(dataDir, tc.file)
		// The follower holds everything so far. (Raft's applied index counts what
		// it handed to the state machine, not what the state file holds: compare heads.)
		waitFor(t, 30*time.Second, func() bool { return sameHeads(ctx, g.clients[leader], g.clients[f]) })
		if err := g.procs[f].stop(); err != nil {
			t.Fatal(err)
		}
		write("while-stopped-"+tc.bucket, 40)
		relFlipPageID(t, path, tc.bucket)

		g.start(f)
		p := g.procs[f]
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			t.Fatalf("%s damaged: the replica did not refuse to start within 60 s:\n%s", tc.file, p.output)
		}
		out := p.output.String()
		if code := p.cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(out, path) || !strings.Contains(out, "will not start") || !strings.Contains(out, "aside") {
			t.Fatalf("%s damaged: exit code %d, and the output does not name the file and what to do:\n%s", tc.file, p.cmd.ProcessState.ExitCode(), out)
		}
		t.Logf("%s damaged: refused to start: %s", tc.file, firstLineWith(out, path))
		write("while-refused-"+tc.bucket, 40) // the healthy two go on

		for _, name := range tc.repair {
			if err := os.Rename(filepath.Join(dataDir, name), filepath.Join(dataDir, name+".damaged")); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		g.start(f)
		waitReady(t, g.procs[f], g.urls[f], 60*time.Second)
		waitFor(t, 60*time.Second, func() bool { return sameHeads(ctx, g.clients[leader], g.clients[f]) })
		mu.Lock()
		checkAcked(t, ctx, "repaired "+g.ids[f], g.clients[f], acked)
		mu.Unlock()
	}
	for i := range g.procs {
		mu.Lock()
		checkAcked(t, ctx, g.ids[i], g.clients[i], acked)
		mu.Unlock()
	}
}

// relFlipPageID flips a byte of the page id of a top-level bucket's root page in
// the bbolt file at path.
func relFlipPageID(t *testing.T, path, bucket string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var root uint64
	db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket([]byte(bucket)); b != nil {
			root = uint64(b.Root())
		}
		return nil
	})
	pageSize := int64(db.Info().PageSize)
	db.Close()
	if root == 0 {
		t.Fatalf("bucket %s of %s is missing or inline", bucket, path)
	}
	fh, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	var b [1]byte
	off := int64(root) * pageSize
	fh.ReadAt(b[:], off)
	b[0] ^= 0x5a
	if _, err := fh.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

func firstLineWith(out, s string) string {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, s) {
			return line
		}
	}
	return ""
}

// sameHeads reports whether two replicas' state files hold the same log heads.
func sameHeads(ctx context.Context, a, b *client) bool {
	_, ha, err1 := fedStatus(ctx, a)
	_, hb, err2 := fedStatus(ctx, b)
	if err1 != nil || err2 != nil || len(ha) == 0 || len(ha) != len(hb) {
		return false
	}
	for k, v := range ha {
		if hb[k] != v {
			return false
		}
	}
	return true
}
