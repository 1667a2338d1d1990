package exchange_test

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/prometheus/client_golang/prometheus"

	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
)

// startExchangeWith starts an exchange for centre with a given libp2p identity
// (a second replica of a centre).
func startExchangeWith(t *testing.T, fed *exchangetest.Federation, centre string, id crypto.PrivKey, node *exchangetest.Node) *peerNode {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, id, reg)
	x, err := exchange.New(context.Background(), cfg, node)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("exchange %s did not stop", centre)
		}
	})
	return &peerNode{name: centre, node: node, x: x, reg: reg}
}

// TestReplicasOfOneCentreDoNotPunishEachOther: two replicas of one centre are
// connected like any members; the leader's pushes of its own log must not reach
// the follower as a fault (the follower has the log through raft).
func TestReplicasOfOneCentreDoNotPunishEachOther(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "tianjin", "hebei")
	second, err := fed.Members["tianjin"].AddIdentity()
	if err != nil {
		t.Fatal(err)
	}
	if err := fed.Rebuild(); err != nil {
		t.Fatal(err)
	}
	leader := startExchange(t, fed, "tianjin", nil, nil)
	followerNode := exchangetest.NewNode("tianjin", fed.Bundle)
	followerNode.SetCanApply(false)
	follower := startExchangeWith(t, fed, "tianjin", second, followerNode)
	hebei := startExchange(t, fed, "hebei", nil, nil)
	connect(t, leader, follower)
	connect(t, leader, hebei)
	connect(t, follower, hebei)
	write(t, leader.node, fed.Author("tianjin"), 20)
	waitFor(t, 10*time.Second, "hebei has tianjin's log", func() bool { return hebei.node.Len("tianjin") == 20 })
	time.Sleep(300 * time.Millisecond)
	if v := metricValue(t, follower.reg, "liandong_sync_peer_faults_total", "reason", "own-origin"); v != 0 {
		t.Fatalf("follower counted %v own-origin faults from its own leader", v)
	}
}

// TestPushesDoNotWaitForTheAnnouncementDebounce: with announcements coalesced
// over a long window and anti-entropy out of reach, every commit still reaches
// a connected peer at once, by push; only gossip waits for the window.
func TestPushesDoNotWaitForTheAnnouncementDebounce(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "tianjin", "hebei")
	slowAnnounce := func(c *exchange.Config) {
		c.AnnounceDebounce = 5 * time.Second
		c.PushingAnnounceDebounce = 5 * time.Second
		c.AntiEntropyInterval = time.Minute
		c.DisableGossip = true
	}
	tj := startExchange(t, fed, "tianjin", nil, slowAnnounce)
	hb := startExchange(t, fed, "hebei", nil, slowAnnounce)
	connect(t, tj, hb)
	waitFor(t, 5*time.Second, "the first heads exchange", func() bool { return peerStatus(tj, "hebei").HeadsAt != nil })
	author := fed.Author("tianjin")
	for i := 1; i <= 5; i++ {
		write(t, tj.node, author, 1) // commits; the node calls Notify
		start := time.Now()
		waitFor(t, 2*time.Second, "the commit pushed", func() bool { return hb.node.Len("tianjin") == i })
		t.Logf("commit %d arrived after %v", i, time.Since(start).Round(time.Millisecond))
	}
}
