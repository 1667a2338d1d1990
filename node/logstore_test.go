package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
)

// openWithLogStore returns a record key and a function that opens a node in
// dir with raft.log_store kind, signing with it.
func openWithLogStore(t *testing.T) (*auth.KeyPair, func(dir, kind string) (*Node, error)) {
	t.Helper()
	key, err := auth.GenerateKey("tianjin-rec")
	if err != nil {
		t.Fatal(err)
	}
	return key, func(dir, kind string) (*Node, error) {
		cfg := DefaultConfig("tianjin", dir)
		cfg.RecordKey, cfg.LogStore = key, kind
		return Open(cfg)
	}
}

func TestLogStoreKinds(t *testing.T) {
	key, open := openWithLogStore(t)
	for _, kind := range []string{LogStoreBolt, LogStoreWAL} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			n, err := open(dir, kind)
			if err != nil {
				t.Fatal(err)
			}
			if err := n.WaitLeader(ctx); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for i := range 20 {
				rec, err := n.Create(ctx, supplyRecord("锂电池 "+string(rune('a'+i))))
				if err != nil {
					t.Fatal(err)
				}
				ids = append(ids, rec.ID)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			kept, other := filepath.Join(dir, "raft", boltLogFile), filepath.Join(dir, "raft", walLogDir)
			if kind == LogStoreWAL {
				kept, other = other, kept
			}
			if held, _ := holdsLog(kept); !held {
				t.Fatalf("no %s log at %s", kind, kept)
			}
			if held, _ := holdsLog(other); held {
				t.Fatalf("a log of the other kind at %s", other)
			}

			// The log of the other kind is refused, not started empty.
			otherKind := map[string]string{LogStoreBolt: LogStoreWAL, LogStoreWAL: LogStoreBolt}[kind]
			if _, err := open(dir, otherKind); !errors.Is(err, ErrLogStoreMismatch) || errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "raft.log_store: "+kind) {
				t.Fatalf("opening a %s directory as %s: %v", kind, otherKind, err)
			}

			n, err = open(dir, kind)
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if err := n.WaitLeader(ctx); err != nil {
				t.Fatal(err)
			}
			checkServesAfterRestart(ctx, t, n, ids)
		})
	}
	cfg := DefaultConfig("tianjin", t.TempDir())
	cfg.RecordKey, cfg.LogStore = key, "leveldb"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `"leveldb"`) {
		t.Fatalf("Validate with an unknown log store: %v", err)
	}
	for _, size := range []int{-1, 1000, 2 << 30} {
		cfg := DefaultConfig("tianjin", t.TempDir())
		cfg.RecordKey, cfg.WALSegmentSize = key, size
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "wal_segment_size") {
			t.Fatalf("Validate with a WAL segment of %d bytes: %v", size, err)
		}
	}
}

// TestLogStoreDefaultKind: with raft.log_store unset, a new data directory gets
// bbolt and an existing one keeps the kind it holds, with its entries; a
// directory holding both kinds is refused, since either may be the one the
// replica acknowledged from.
func TestLogStoreDefaultKind(t *testing.T) {
	_, open := openWithLogStore(t)
	// kindReported is the kind liandong_raft_log_store_info names.
	kindReported := func(t *testing.T, n *Node) string {
		mfs, err := n.cfg.Registerer.(prometheus.Gatherer).Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "liandong_raft_log_store_info" && len(mf.GetMetric()) == 1 {
				for _, l := range mf.GetMetric()[0].GetLabel() {
					if l.GetName() == "kind" && mf.GetMetric()[0].GetGauge().GetValue() == 1 {
						return l.GetValue()
					}
				}
			}
		}
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, created := range []string{"", LogStoreBolt, LogStoreWAL} {
		want := created
		if want == "" {
			want = LogStoreBolt
		}
		t.Run("created as "+want, func(t *testing.T) {
			dir := t.TempDir()
			n, err := open(dir, created)
			if err != nil {
				t.Fatal(err)
			}
			if n.logStoreKind != want {
				n.Close()
				t.Fatalf("a new data directory with raft.log_store %q got a %s log", created, n.logStoreKind)
			}
			if err := n.WaitLeader(ctx); err != nil {
				t.Fatal(err)
			}
			rec, err := n.Create(ctx, supplyRecord("默认日志"))
			if err != nil {
				t.Fatal(err)
			}
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			n, err = open(dir, "")
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if n.logStoreKind != want {
				t.Fatalf("a %s data directory reopened with raft.log_store unset got a %s log", want, n.logStoreKind)
			}
			if got := kindReported(t, n); got != want {
				t.Fatalf("liandong_raft_log_store_info names kind %q, want %q", got, want)
			}
			if err := n.WaitLeader(ctx); err != nil {
				t.Fatal(err)
			}
			if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
				t.Fatal(err)
			}
			if _, err := n.Get(ctx, rec.ID); err != nil {
				t.Fatalf("%s after reopening with raft.log_store unset: %v", rec.ID, err)
			}
		})
	}
	t.Run("both kinds", func(t *testing.T) {
		dir := t.TempDir()
		n, err := open(dir, LogStoreBolt)
		if err != nil {
			t.Fatal(err)
		}
		n.Close()
		// Put a WAL's file beside the bolt log.
		wal := filepath.Join(dir, "raft", walLogDir)
		if err := os.MkdirAll(wal, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(wal, walMetaFile), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"", LogStoreBolt, LogStoreWAL} {
			_, err := open(dir, kind)
			if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "both") {
				t.Fatalf("raft.log_store %q with both kinds of log: %v", kind, err)
			}
		}
	})
}

// TestFailpointWrapperKeepsMonotonic: the wrapper a failpoints build puts
// around raft's log store still tells raft that raft-wal refuses gaps.
func TestFailpointWrapperKeepsMonotonic(t *testing.T) {
	s, _, err := openLogStore(t.TempDir(), LogStoreWAL, walOptions{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m, ok := withFailpointsLogStore(s).(raft.MonotonicLogStore); !ok || !m.IsMonotonic() {
		t.Fatalf("the wrapped WAL is not a monotonic log store (%T)", withFailpointsLogStore(s))
	}
}

// TestLogStoreTailTruncationSurvivesRestart: raft deletes a log's newest
// entries when a new leader's log disagrees with a follower's (clearing log
// suffix), and the replica must open that log again after a restart.
// raft-wal v0.4.0 marked the tail segment sealed without its index block,
// and after the next open reading the log failed ("sealed segment has no
// index block", hashicorp/raft-wal#31, fixed in v0.4.1).
func TestLogStoreTailTruncationSurvivesRestart(t *testing.T) {
	for _, kind := range []string{LogStoreBolt, LogStoreWAL} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			s, _, err := openLogStore(dir, kind, walOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			logs := func(from, to, term uint64) []*raft.Log {
				var out []*raft.Log
				for i := from; i <= to; i++ {
					out = append(out, &raft.Log{Index: i, Term: term, Type: raft.LogCommand, Data: []byte{byte(i), byte(term)}})
				}
				return out
			}
			if err := s.StoreLogs(logs(1, 10, 1)); err != nil {
				t.Fatal(err)
			}
			if err := s.DeleteRange(8, 10); err != nil {
				t.Fatalf("delete the log's suffix: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s, _, err = openLogStore(dir, kind, walOptions{}, nil)
			if err != nil {
				t.Fatalf("reopen after a suffix truncation: %v", err)
			}
			defer s.Close()
			if last, err := s.LastIndex(); err != nil || last != 7 {
				t.Fatalf("last index after reopening: %d, %v; want 7", last, err)
			}
			var l raft.Log
			if err := s.GetLog(1, &l); err != nil || l.Index != 1 {
				t.Fatalf("first entry after reopening: %+v, %v", l, err)
			}
			// The new leader's entries take the deleted seqs.
			if err := s.StoreLogs(logs(8, 9, 2)); err != nil {
				t.Fatalf("append after the truncation: %v", err)
			}
			if err := s.GetLog(9, &l); err != nil || l.Term != 2 {
				t.Fatalf("entry 9 after appending: %+v, %v", l, err)
			}
		})
	}
}

// checkServesAfterRestart checks that a reopened node has applied its log
// (raft's barrier), holds every record in ids and takes a write.
func checkServesAfterRestart(ctx context.Context, t *testing.T, n *Node, ids []string) {
	t.Helper()
	if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if _, err := n.Get(ctx, id); err != nil {
			t.Fatalf("%s after a restart: %v", id, err)
		}
	}
	if _, err := n.Create(ctx, supplyRecord("重启后")); err != nil {
		t.Fatalf("a write after a restart: %v", err)
	}
}
