package node

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"liandong/auth"
	"liandong/node/search"
	"liandong/node/store"
	"liandong/schema"
)

func mustOpenNode(t *testing.T, dir string, key *auth.KeyPair) *Node {
	t.Helper()
	return mustOpenNodeWith(t, dir, key, nil)
}

// mustOpenNodeWith is mustOpenNode with the config changed by tweak first.
func mustOpenNodeWith(t *testing.T, dir string, key *auth.KeyPair, tweak func(*Config)) *Node {
	t.Helper()
	cfg := DefaultConfig("tianjin", dir)
	cfg.RecordKey = key
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func supplyRecord(title string) *schema.Record {
	body, _ := json.Marshal(map[string]any{"title": title, "summary": "摘要", "industry": "new-energy", "trl": 5})
	return &schema.Record{Catalogue: "supply", Visibility: "federation", Body: body}
}

func TestWritesSurviveRestartWithoutReapplying(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, dir, key)
	ctx := context.Background()
	var ids []string
	for i := 0; i < 20; i++ {
		rec, err := n.Create(ctx, supplyRecord(fmt.Sprint("成果", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	if _, err := n.Put(ctx, ids[0], supplyRecord("更新"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Put(ctx, ids[0], supplyRecord("过期"), 1); !errors.Is(err, store.ErrVersionConflict) {
		t.Fatalf("stale If-Match: %v", err)
	}
	if _, err := n.Create(ctx, &schema.Record{Catalogue: "supply", Visibility: "federation", Body: json.RawMessage(`{"title":""}`)}); !errors.Is(err, schema.ErrInvalid) {
		t.Fatalf("invalid record: %v", err)
	}
	if _, err := n.Put(ctx, "hebei:x", supplyRecord("x"), 0); !errors.Is(err, store.ErrNotOrigin) {
		t.Fatalf("foreign id: %v", err)
	}
	before, _ := n.Store().Digest()
	head, _ := n.Store().Head("tianjin")
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = mustOpenNode(t, dir, key)
	defer n.Close()
	// Raft replays its log into the state machine after the restart; every entry
	// is at or below the applied index and must change nothing. A barrier
	// returns once everything before it is applied, the replay included (raft's
	// AppliedIndex moves when a batch is handed to the state machine, before
	// it is applied). mustOpenNode waited for leadership.
	if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatalf("barrier after the restart: %v", err)
	}
	after, _ := n.Store().Digest()
	if before != after {
		t.Fatal("restart changed the state: something was applied twice")
	}
	if h, _ := n.Store().Head("tianjin"); h != head {
		t.Fatalf("head %+v after restart, want %+v", h, head)
	}
	rec, err := n.Get(ctx, ids[0])
	if err != nil || rec.Version != 2 {
		t.Fatalf("get after restart: %+v %v", rec, err)
	}
	// The epoch stays; new writes continue the chain.
	if _, err := n.Create(ctx, supplyRecord("新")); err != nil {
		t.Fatal(err)
	}
	entries, _ := n.Store().ReadRange("tianjin", 1, 100)
	if len(entries) != 22 {
		t.Fatalf("%d log entries", len(entries))
	}
	if err := auth.VerifyChain(singleKey{key}, schema.Head{Origin: "tianjin"}, entries, auth.VerifyEverySignature); err != nil {
		t.Fatal(err)
	}
}

type singleKey struct{ k *auth.KeyPair }

func (s singleKey) RecordKey(_, kid string, _ time.Time) (ed25519.PublicKey, error) {
	if kid != s.k.ID {
		return nil, auth.ErrUnknownKey
	}
	return s.k.Public, nil
}

func TestStateFileBehindSnapshotIsRestored(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, dir, key)
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		if _, err := n.Create(ctx, supplyRecord(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := n.Create(ctx, supplyRecord(fmt.Sprint("after", i))); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := n.Store().Digest()
	n.Close()

	// Lose the state file: the snapshot plus raft's log rebuild it.
	if err := os.Remove(filepath.Join(dir, "state.db")); err != nil {
		t.Fatal(err)
	}
	n = mustOpenNode(t, dir, key)
	defer n.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := n.Store().Digest()
		if got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("state not rebuilt from snapshot and log")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTornStateFileIsRebuilt: after an unclean stop a state file that fails
// bbolt's check is moved aside and rebuilt from raft's snapshot and log.
func TestTornStateFileIsRebuilt(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, dir, key)
	ctx := context.Background()
	for i := 0; i < 40; i++ {
		if _, err := n.Create(ctx, supplyRecord(fmt.Sprint("成果", i))); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := n.Store().Digest()
	n.Close()
	// Simulate a power cut: no clean marker, and garbage over a data page.
	os.Remove(filepath.Join(dir, cleanMarker))
	f, err := os.OpenFile(filepath.Join(dir, "state.db"), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	var hdr [28]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		t.Fatal(err)
	}
	// Data pages only, past both meta pages: the page walk must find it.
	ps := int64(binary.LittleEndian.Uint32(hdr[24:]))
	garbage := make([]byte, ps)
	for i := range garbage {
		garbage[i] = byte(i * 7)
	}
	for off := 3 * ps; off < fi.Size(); off += ps {
		f.WriteAt(garbage, off)
	}
	f.Close()

	n = mustOpenNode(t, dir, key)
	defer n.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if got, _ := n.Store().Digest(); got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("state not rebuilt after a torn file")
		}
		time.Sleep(20 * time.Millisecond)
	}
	torn, _ := filepath.Glob(filepath.Join(dir, "state.db.torn-*"))
	if len(torn) != 1 {
		t.Fatalf("torn file not kept aside: %v", torn)
	}
}

func TestReplicaURLMustBeABareOrigin(t *testing.T) {
	for raw, ok := range map[string]bool{
		"http://10.0.2.11:8702":           true,
		"https://tianjin-2.example:8702/": true,
		"ftp://10.0.2.11:8702":            false,
		"http://user:pw@10.0.2.11:8702":   false,
		"http://10.0.2.11:8702/steal":     false,
		"http://10.0.2.11:8702/?x=1":      false,
		"10.0.2.11:8702":                  false,
		"http://":                         false,
	} {
		err := checkReplicaURL(raw)
		if (err == nil) != ok || err != nil && !errors.Is(err, ErrBadReplica) {
			t.Errorf("%q: %v", raw, err)
		}
	}
}

// TestFilePageSizes: the state file and a bbolt raft log are made with
// store.PageSize pages (fewer page writes for their appends); the search index,
// which rewrites scattered blocks, with the OS's.
func TestFilePageSizes(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNodeWith(t, dir, key, func(c *Config) { c.LogStore = LogStoreBolt })
	n.Close()
	for _, c := range []struct {
		file string
		want int
	}{
		{"state.db", store.PageSize},
		{filepath.Join("raft", boltLogFile), store.PageSize},
		{searchFile, os.Getpagesize()},
	} {
		b := make([]byte, 28)
		f, err := os.Open(filepath.Join(dir, c.file))
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.ReadAt(b, 0)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		if got := int(binary.LittleEndian.Uint32(b[24:])); got != c.want {
			t.Errorf("%s has %d-byte pages, want %d", c.file, got, c.want)
		}
	}
}

// After the machine (not just the process) went down with the state file open,
// the file's unsynced pages may be lost in any order, leaving pages that pass
// every check under an applied index that says nothing needs replaying. The
// node rebuilds the file (and the search index) from raft's snapshot and log
// when the boot changed; after a crash of the process alone it keeps it.
func TestStateRebuiltAfterTheMachineRestarted(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	open := func(boot string) *Node {
		t.Helper()
		return mustOpenNodeWith(t, dir, key, func(c *Config) { c.BootID = func() string { return boot } })
	}
	ctx := context.Background()
	n := open("boot-1")
	var lost string
	for i := 0; i < 30; i++ {
		r, err := n.Create(ctx, supplyRecord(fmt.Sprint("钙钛矿电池 ", i)))
		if err != nil {
			t.Fatal(err)
		}
		lost = r.ID
	}
	want, _ := n.Store().Digest()
	n.Close()

	// What a lost page looks like: a record gone from a file that is
	// otherwise whole and says it applied everything.
	loseRecord := func() {
		t.Helper()
		db, err := bbolt.Open(filepath.Join(dir, "state.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("records")).Delete([]byte(lost)) }); err != nil {
			t.Fatal(err)
		}
		db.Close()
		os.Remove(filepath.Join(dir, cleanMarker)) // the stop was unclean
	}
	aside := func() []string {
		m, _ := filepath.Glob(filepath.Join(dir, "state.db.unsynced-*"))
		return m
	}

	// The process crashed, the machine did not: the file is kept as it is
	// (the lost record stays lost: only the page cache could lose it, and
	// it did not).
	loseRecord()
	n = open("boot-1")
	if _, err := n.Get(ctx, lost); !errors.Is(err, store.ErrNotFound) || len(aside()) != 0 {
		t.Fatalf("same boot: the file was rebuilt (%v, %v)", err, aside())
	}
	n.Close()

	// The machine restarted: the file is rebuilt from raft.
	loseRecord()
	n = open("boot-2")
	defer n.Close()
	if len(aside()) != 1 {
		t.Fatalf("unsynced file not kept aside: %v", aside())
	}
	// Raft replays its log after it starts; wait for it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if got, _ := n.Store().Digest(); got == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rebuilt state differs from the state before the restart")
		}
	}
	if _, err := n.Get(ctx, lost); err != nil {
		t.Fatalf("the lost record after the rebuild: %v", err)
	}
	if p, err := n.Search(ctx, search.Query{Text: "钙钛矿", Limit: 100}); err != nil || p.Total != 30 {
		t.Fatalf("search after the rebuild: %v, %v", p, err)
	}
}

// A failed Open gives back the metric names it registered, so that the
// operator's fix can be tried again in the same process and registry.
func TestFailedOpenReleasesItsMetrics(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	cfg := DefaultConfig("tianjin", dir)
	cfg.RecordKey, cfg.LogStore = key, LogStoreBolt
	cfg.Registerer = prometheus.NewRegistry()
	// A raft log of the other kind is refused (openLogStore), late in Open.
	wal := filepath.Join(dir, "raft", walLogDir)
	if err := os.MkdirAll(wal, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(wal, "00000000000000000001-0000000000000001.wal"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(cfg); !errors.Is(err, ErrLogStoreMismatch) {
		t.Fatalf("open beside a wal log: %v, want ErrLogStoreMismatch", err)
	}
	if err := os.RemoveAll(wal); err != nil {
		t.Fatal(err)
	}
	n, err := Open(cfg)
	if err != nil {
		t.Fatalf("open again in the same registry: %v", err)
	}
	n.Close()
}

// A failed Open closes the raft transport it opened: the port is free for the
// next try. (raft refuses a snapshot interval under 5 ms, after the transport
// listens.)
func TestFailedOpenReleasesTheRaftPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	key, _ := auth.GenerateKey("tianjin-rec")
	cfg := DefaultConfig("tianjin", t.TempDir())
	cfg.RecordKey = key
	cfg.RaftAddr = addr
	cfg.SnapshotInterval = time.Millisecond
	if n, err := Open(cfg); err == nil {
		n.Close()
		t.Fatal("raft accepted a 1 ms snapshot interval; the test needs another way to fail after the transport")
	}
	l, err = net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the raft port is still held after the failed Open: %v", err)
	}
	l.Close()
}
