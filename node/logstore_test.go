package node

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/auth"
)

func TestLogStoreKinds(t *testing.T) {
	key, err := auth.GenerateKey("tianjin-rec")
	if err != nil {
		t.Fatal(err)
	}
	open := func(dir, kind string) (*Node, error) {
		cfg := DefaultConfig("tianjin", dir)
		cfg.RecordKey, cfg.LogStore = key, kind
		return Open(cfg)
	}
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
			if _, err := open(dir, otherKind); !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), "raft.log_store: "+kind) {
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
			if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
				t.Fatal(err)
			}
			for _, id := range ids {
				if _, err := n.Get(ctx, id); err != nil {
					t.Fatalf("%s after a restart: %v", id, err)
				}
			}
			if _, err := n.Create(ctx, supplyRecord("重启后")); err != nil {
				t.Fatalf("write after a restart: %v", err)
			}
		})
	}
	cfg := DefaultConfig("tianjin", t.TempDir())
	cfg.RecordKey, cfg.LogStore = key, "leveldb"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), `"leveldb"`) {
		t.Fatalf("Validate with an unknown log store: %v", err)
	}
}

// TestFailpointWrapperKeepsMonotonic: the wrapper a failpoints build puts
// around raft's log store still tells raft that raft-wal refuses gaps.
func TestFailpointWrapperKeepsMonotonic(t *testing.T) {
	s, err := openLogStore(t.TempDir(), LogStoreWAL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if m, ok := withFailpointsLogStore(s).(raft.MonotonicLogStore); !ok || !m.IsMonotonic() {
		t.Fatalf("the wrapped WAL is not a monotonic log store (%T)", withFailpointsLogStore(s))
	}
}
