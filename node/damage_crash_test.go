package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"

	"liandong/auth"
	"liandong/schema"
)

// damagedDir returns a data directory of a cleanly stopped single replica with
// 100 records written 150 times, a snapshot and 10 writes after it, and the
// state's digest. tweak, if not nil, changes the configuration first.
func damagedDir(t *testing.T, tweak func(*Config)) (string, *auth.KeyPair, schema.Hash) {
	t.Helper()
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNodeWith(t, dir, key, tweak)
	ctx := context.Background()
	for i := 0; i < 150; i++ {
		if _, err := n.Put(ctx, fmt.Sprintf("tianjin:r%d", i%100), supplyRecord(fmt.Sprint("成果", i)), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := n.Create(ctx, supplyRecord(fmt.Sprint("快照后", i))); err != nil {
			t.Fatal(err)
		}
	}
	digest, err := n.Store().Digest()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, key, digest
}

// bucketRootOffset returns the file offset of the root page of a top-level
// bucket of the bbolt file at path, and the page size.
func bucketRootOffset(t *testing.T, path, bucket string) (int64, int64) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var root uint64
	db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket([]byte(bucket)); b != nil {
			root = uint64(b.Root())
		}
		return nil
	})
	if root == 0 {
		t.Fatalf("bucket %s of %s is missing or inline", bucket, path)
	}
	ps := int64(db.Info().PageSize)
	return int64(root) * ps, ps
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b [1]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x5a
	if _, err := f.WriteAt(b[:], off); err != nil {
		t.Fatal(err)
	}
}

// truncateHalf cuts path to half of what it holds: bbolt grows a file in
// sparse 16 MB steps once its map is reserved (store.MmapReserve), and cutting
// half of the zeros beyond its last page would damage nothing.
func truncateHalf(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	used := len(bytes.TrimRight(data, "\x00"))
	if err := os.Truncate(path, int64(used/2)); err != nil {
		t.Fatal(err)
	}
}

func newestSnapshot(t *testing.T, dir string) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "raft", "snapshots", "*", "state.bin"))
	if len(m) == 0 {
		t.Fatal("no snapshot")
	}
	return filepath.Dir(m[len(m)-1])
}

// TestDamagedFilesRefusedAtStart: a flipped byte or a truncation in the state
// file, raft's log or a snapshot is found when the replica starts, after a clean
// stop, and the replica refuses to start (so it cannot lead) with an error naming
// the file and what to do; the process never panics or faults. A damaged state
// file, moved aside as the message says, is rebuilt with nothing lost.
func TestDamagedFilesRefusedAtStart(t *testing.T) {
	type damage struct {
		name   string
		file   func(dir string) string // the file the message must name
		damage func(t *testing.T, dir string)
		repair func(t *testing.T, dir string) // what the message says, when a single replica can do it
	}
	state := func(dir string) string { return filepath.Join(dir, "state.db") }
	logDB := func(dir string) string { return filepath.Join(dir, "raft", "log.db") }
	walDir := func(dir string) string { return filepath.Join(dir, "raft", "wal") }
	walMeta := func(dir string) string { return filepath.Join(walDir(dir), walMetaFile) }
	// The WAL's segments, oldest first: all but the last are sealed (they end
	// with an index of their frames); the last is the one being appended to.
	segments := func(t *testing.T, dir string) []string {
		m, _ := filepath.Glob(filepath.Join(walDir(dir), "*.wal"))
		if len(m) < 3 {
			t.Fatalf("want at least two sealed segments and the tail, have %v", m)
		}
		sort.Strings(m)
		return m
	}
	// A segment cut to its first frames, or with the length of a frame in its
	// middle garbled (the frame header's bytes 4-7, after the type byte and
	// three reserved bytes; the file's header is 32 bytes).
	cutSegment := func(which func([]string) string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) { truncateHalf(t, which(segments(t, dir))) }
	}
	garbleFrame := func(which func([]string) string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) { flipByte(t, which(segments(t, dir)), 32+5) }
	}
	firstSealed := func(s []string) string { return s[0] }
	tail := func(s []string) string { return s[len(s)-1] }
	moveStateAside := func(t *testing.T, dir string) {
		if err := os.Rename(state(dir), state(dir)+".damaged"); err != nil {
			t.Fatal(err)
		}
	}
	// Offsets in a bucket's root page: its page id, its flags, its element
	// count, the high byte of its first element's position, and a key byte.
	headerFlip := func(file func(string) string, bucket string, at int64) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			off, _ := bucketRootOffset(t, file(dir), bucket)
			flipByte(t, file(dir), off+at)
		}
	}
	cases := []damage{
		{"state: page id flipped", state, headerFlip(state, "records", 0), moveStateAside},
		{"state: page flags flipped", state, headerFlip(state, "records", 8), moveStateAside},
		{"state: element count flipped", state, headerFlip(state, "records", 11), moveStateAside},
		{"state: element position flipped", state, headerFlip(state, "records", 16+4+2), moveStateAside},
		{"state: truncated", state, func(t *testing.T, dir string) { truncateHalf(t, state(dir)) }, moveStateAside},
		{"raft log: page id flipped", logDB, headerFlip(logDB, "logs", 0), nil},
		{"raft log: element position flipped", logDB, headerFlip(logDB, "logs", 16+4+2), nil},
		{"raft log: truncated", logDB, func(t *testing.T, dir string) { truncateHalf(t, logDB(dir)) }, nil},
		{"raft WAL: sealed segment cut short", walDir, cutSegment(firstSealed), nil},
		{"raft WAL: sealed segment frame garbled", walDir, garbleFrame(firstSealed), nil},
		{"raft WAL: tail segment cut short", walDir, cutSegment(tail), nil},
		{"raft WAL: tail segment frame garbled", walDir, garbleFrame(tail), nil},
		{"raft WAL: segment missing", walDir, func(t *testing.T, dir string) {
			if err := os.Remove(segments(t, dir)[1]); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"raft WAL: metadata truncated", walMeta, func(t *testing.T, dir string) { truncateHalf(t, walMeta(dir)) }, nil},
		// raft-wal would write new metadata and, at the next start, delete the
		// segments it lists no more; an empty file makes it panic.
		{"raft WAL: metadata missing", walMeta, func(t *testing.T, dir string) {
			if err := os.Remove(walMeta(dir)); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"raft WAL: metadata empty", walMeta, func(t *testing.T, dir string) {
			if err := os.Truncate(walMeta(dir), 0); err != nil {
				t.Fatal(err)
			}
		}, nil},
		{"snapshot: byte flipped", func(dir string) string { return filepath.Join(newestSnapshot(t, dir), "state.bin") },
			func(t *testing.T, dir string) {
				p := filepath.Join(newestSnapshot(t, dir), "state.bin")
				fi, _ := os.Stat(p)
				flipByte(t, p, fi.Size()/2)
			}, nil},
		{"snapshot: truncated", func(dir string) string { return filepath.Join(newestSnapshot(t, dir), "state.bin") },
			func(t *testing.T, dir string) { truncateHalf(t, filepath.Join(newestSnapshot(t, dir), "state.bin")) }, nil},
		{"snapshot: metadata garbled", func(dir string) string { return filepath.Join(newestSnapshot(t, dir), "meta.json") },
			func(t *testing.T, dir string) { flipByte(t, filepath.Join(newestSnapshot(t, dir), "meta.json"), 0) }, nil},
	}
	boltTemplate, key, digest := damagedDir(t, func(c *Config) { c.LogStore = LogStoreBolt })
	// Small segments, so that the log spans several.
	walTemplate, walKey, walDigest := damagedDir(t, func(c *Config) { c.LogStore, c.WALSegmentSize = LogStoreWAL, 16<<10 })
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			template, key, digest := boltTemplate, key, digest
			if strings.HasPrefix(tc.name, "raft WAL") {
				template, key, digest = walTemplate, walKey, walDigest
			}
			dir := copyDir(t, template)
			file := tc.file(dir)
			tc.damage(t, dir)
			cfg := DefaultConfig("tianjin", dir)
			cfg.RecordKey = key
			n, err := Open(cfg)
			if err == nil {
				n.Close()
				t.Fatal("a replica with a damaged file started")
			}
			msg := err.Error()
			if !errors.Is(err, ErrDamaged) || !strings.Contains(msg, file) || !strings.Contains(msg, "will not start") || !strings.Contains(msg, "move") {
				t.Fatalf("the error does not say which file (%s) and what to do: %v", file, err)
			}
			t.Log(msg)
			if tc.repair == nil {
				return
			}
			tc.repair(t, dir)
			n = mustOpenNode(t, dir, key)
			defer n.Close()
			if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
				t.Fatal(err)
			}
			if got, _ := n.Store().Digest(); got != digest {
				t.Fatal("the state rebuilt after the repair differs from the state before the damage")
			}
		})
	}
}

// copyDir copies a data directory (regular files and directories) to a new one.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// TestCrashLeftoversRemoved: half-written snapshot directories and a half-copied
// restore, which raft and the store never read, are removed at the next start.
func TestCrashLeftoversRemoved(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, dir, key)
	if _, err := n.Create(context.Background(), supplyRecord("成果")); err != nil {
		t.Fatal(err)
	}
	n.Close()
	tmp := filepath.Join(dir, "raft", "snapshots", "3-999-1234.tmp")
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(tmp, "state.bin"), make([]byte, 1<<16), 0o600)
	os.WriteFile(filepath.Join(dir, "state.db.restore"), make([]byte, 1<<16), 0o600)
	n = mustOpenNode(t, dir, key)
	defer n.Close()
	for _, p := range []string{tmp, filepath.Join(dir, "state.db.restore")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left in place", p)
		}
	}
}

// TestSnapshotAheadOfItsNameCoversTheState: raft names a snapshot after the
// index applied when it was asked for, but the state file is copied later,
// while raft applies on, so the copy can hold more. A follower that installed
// such a snapshot (its log emptied) and restarts before its leader's next
// entries reach that far has applied more than its log and the snapshot's name
// say; it must start. A state file ahead of what the snapshot holds too is a
// lost log, and is refused.
func TestSnapshotAheadOfItsNameCoversTheState(t *testing.T) {
	key, _ := auth.GenerateKey("tianjin-rec")
	src := t.TempDir()
	n := mustOpenNode(t, src, key)
	ctx := context.Background()
	var early []byte
	for i := range 20 {
		if _, err := n.Create(ctx, supplyRecord(fmt.Sprint("快照命名", i))); err != nil {
			t.Fatal(err)
		}
		if i == 9 {
			var buf bytes.Buffer
			if err := n.Store().WriteSnapshot(&buf); err != nil {
				t.Fatal(err)
			}
			early = buf.Bytes()
		}
	}
	applied, _, _ := n.Store().AppliedIndex()
	var final bytes.Buffer
	if err := n.Store().WriteSnapshot(&final); err != nil {
		t.Fatal(err)
	}
	n.Close()

	// A follower's data directory: the state file at applied, raft's log
	// empty, and one snapshot named label holding content.
	follower := func(t *testing.T, label uint64, content []byte) string {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "state.db"), final.Bytes(), 0o600); err != nil {
			t.Fatal(err)
		}
		snaps, err := raft.NewFileSnapshotStoreWithLogger(filepath.Join(dir, "raft"), 2, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		conf := raft.Configuration{Servers: []raft.Server{{ID: "tianjin-1", Address: "tianjin-1", Suffrage: raft.Voter}}}
		_, tr := raft.NewInmemTransport("tianjin-1")
		sink, err := snaps.Create(raft.SnapshotVersionMax, label, 2, conf, 1, tr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sink.Write(content); err != nil {
			t.Fatal(err)
		}
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	open := func(dir string) (*Node, error) {
		cfg := DefaultConfig("tianjin", dir)
		cfg.RecordKey = key
		return Open(cfg)
	}

	// Named five entries back, holding everything the state file has.
	n, err := open(follower(t, applied-5, final.Bytes()))
	if err != nil {
		t.Fatalf("a replica whose snapshot holds its state, under an older name, refused to start: %v", err)
	}
	n.Close()

	// Holding only the first ten writes: entries are missing.
	_, err = open(follower(t, applied-5, early))
	if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "ends at entry 0") {
		t.Fatalf("a state file ahead of both its log and its snapshot: %v, want ErrDamaged", err)
	}
}
