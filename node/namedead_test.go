package node

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/node/store"
)

// TestNewLeaderDoesNotHandToADeadVoter: the replica an earlier build holds at
// an IP dies the way a recreated pod does (its old IP black-holes: here a
// listener that accepts and never answers), and another replica now leads.
// Its peerHealth was cleared at election and the first failed heartbeat to a
// black hole takes raftTimeout (10 s): NameRaftAddresses must not take the
// dead voter for one that answers and hand it leadership, refusing writes
// meanwhile (review 103).
func TestNewLeaderDoesNotHandToADeadVoter(t *testing.T) {
	nodes := openReplicas(t, func(i int, cfg *Config) {
		firstByName(i, cfg)
		// The server's probe asks the replica's /healthz.
		cfg.ProbeReplica = func(ctx context.Context, r store.Replica) error {
			c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", strings.TrimPrefix(r.HTTP, "http://"))
			if err != nil {
				return err
			}
			return c.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := nodes[0]
	if err := first.RegisterSelf(ctx, store.Replica{RaftAddr: first.cfg.RaftAddr, HTTP: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	ip := strings.Replace(first.cfg.RaftAddr, "localhost", "127.0.0.1", 1)
	if err := first.raft.AddVoter(raft.ServerID(first.cfg.ReplicaID), raft.ServerAddress(ip), 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := first.raft.LeadershipTransferToServer(raft.ServerID(nodes[1].cfg.ReplicaID), raft.ServerAddress(nodes[1].cfg.RaftAddr)).Error(); err != nil {
		t.Fatal(err)
	}
	nl := leaderOf(t, nodes[1:], nil, 10*time.Second)
	if err := first.Close(); err != nil {
		t.Logf("close first: %v", err)
	}
	// The old IP black-holes: connections are taken and never answered.
	hole, err := net.Listen("tcp", ip)
	if err != nil {
		t.Fatal(err)
	}
	defer hole.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	// Writes while the leader tidies up.
	var refused, ok int
	stop := make(chan struct{})
	wdone := make(chan struct{})
	go func() {
		defer close(wdone)
		for i := 0; i < 400; i++ {
			select {
			case <-stop:
				return
			default:
			}
			wctx, c := context.WithTimeout(ctx, 3*time.Second)
			_, err := nl.Create(wctx, supplyRecord("during the rename"))
			c()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrNotLeader):
				refused++
			default:
				t.Logf("write: %v", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	start := time.Now()
	n, err := nl.NameRaftAddresses(ctx)
	took := time.Since(start)
	close(stop)
	<-wdone
	t.Logf("NameRaftAddresses on the new leader %s: renamed %d, err %v, took %v; writes meanwhile: %d ok, %d refused as not leader; still leader: %v",
		nl.cfg.ReplicaID, n, err, took, ok, refused, nl.IsLeader())
	if err != nil || refused > 0 || !nl.IsLeader() {
		t.Fatalf("NameRaftAddresses tried to hand leadership to a dead voter held at an IP: %v; %d writes refused", err, refused)
	}
}
