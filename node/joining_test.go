package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/auth"
)

// A replica being added, catching up from a snapshot whose configuration
// predates its addition, is not "removed".
func TestJoiningReplicaIsNotRemoved(t *testing.T) {
	key, err := auth.GenerateKey("tianjin-rec")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	open := func(i int) *Node {
		cfg := DefaultConfig("tianjin", filepath.Join(dir, fmt.Sprint("r", i)))
		cfg.ReplicaID = fmt.Sprintf("tianjin-%d", i)
		cfg.RaftAddr = loopbackAddr(t)
		cfg.Bootstrap = i == 1
		cfg.RecordKey = key
		cfg.TrailingLogs = 1
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	lead := open(1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := lead.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if _, err := lead.Create(ctx, supplyRecord(fmt.Sprint("r", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := lead.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	join := open(2)
	var removed, readyRemoved atomic.Bool
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if join.Removed() {
				removed.Store(true)
			}
			if errors.Is(join.Ready(), ErrRemoved) {
				readyRemoved.Store(true)
			}
		}
	}()
	if err := lead.raft.AddVoter("tianjin-2", raft.ServerAddress(join.cfg.RaftAddr), 0, 20*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	<-done
	if removed.Load() || readyRemoved.Load() {
		t.Fatalf("a replica being added was reported removed (Removed %v, Ready ErrRemoved %v)", removed.Load(), readyRemoved.Load())
	}
}
