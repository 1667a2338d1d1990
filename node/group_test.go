package node

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/auth"
)

// loopbackAddr returns a 127.0.0.1 address with a port that was free a moment ago.
func loopbackAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// openReplicas opens three replicas of tianjin on loopback raft transports,
// tweak (if not nil) adjusting each one's config, and waits until all three
// are voters.
func openReplicas(t *testing.T, tweak func(i int, cfg *Config)) []*Node {
	t.Helper()
	return openReplicasAs(t, tweak, true)
}

// openReplicasAs is openReplicas with the second and third replicas added as
// voters, or as nonvoters when voters is false.
func openReplicasAs(t *testing.T, tweak func(i int, cfg *Config), voters bool) []*Node {
	t.Helper()
	key, err := auth.GenerateKey("tianjin-rec")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var nodes []*Node
	for i := range 3 {
		cfg := DefaultConfig("tianjin", filepath.Join(dir, fmt.Sprint("r", i+1)))
		cfg.ReplicaID = fmt.Sprintf("tianjin-%d", i+1)
		cfg.RaftAddr = loopbackAddr(t)
		cfg.Bootstrap = i == 0
		cfg.RecordKey = key
		if tweak != nil {
			tweak(i, &cfg)
		}
		n, err := Open(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes = append(nodes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := nodes[0].WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		add := nodes[0].raft.AddVoter
		if !voters {
			add = nodes[0].raft.AddNonvoter
		}
		if err := add(raft.ServerID(n.cfg.ReplicaID), raft.ServerAddress(n.cfg.RaftAddr), 0, 10*time.Second).Error(); err != nil {
			t.Fatalf("add %s (voter %v): %v", n.cfg.ReplicaID, voters, err)
		}
	}
	return nodes
}

// leaderOf waits up to within for one of nodes, other than skip, to lead.
func leaderOf(t *testing.T, nodes []*Node, skip *Node, within time.Duration) *Node {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, n := range nodes {
			if n != skip && n.IsLeader() {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no leader (other than the isolated replica) within %v", within)
	return nil
}
