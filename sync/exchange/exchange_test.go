package exchange_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"liandong/auth"
	"liandong/schema"
	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

func TestTwoExchanges(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin")
	hq := startExchange(t, fed, "hq", nil, nil)
	tj := startExchange(t, fed, "tianjin", nil, func(c *exchange.Config) {
		c.ListenAddrs = exchange.DefaultConfig().ListenAddrs // TCP and QUIC
	})
	connect(t, hq, tj)
	ahq, atj := fed.Author("hq"), fed.Author("tianjin")
	for range 20 {
		write(t, hq.node, ahq, 1)
		write(t, tj.node, atj, 1)
	}
	waitFor(t, 10*time.Second, "both logs everywhere", func() bool {
		return hq.node.Len("tianjin") == 20 && tj.node.Len("hq") == 20
	})
	if got, want := exchangetest.Digest(tj.node.Log("hq")), exchangetest.Digest(hq.node.Log("hq")); got != want {
		t.Fatalf("tianjin's copy of hq %s, want %s", got, want)
	}
	// The exchange counts an apply after the node holds the entries, so
	// the counters may lag the log read above: wait for them.
	waitMetric(t, 5*time.Second, tj.reg, 20, "liandong_sync_entries_applied_total", "origin", "hq")
	waitMetric(t, 5*time.Second, tj.reg, 20, "liandong_replication_delay_seconds", "origin", "hq")
	waitFor(t, 5*time.Second, "lag gauges at zero", func() bool {
		return metricValue(t, tj.reg, "liandong_sync_peers_connected") == 1 &&
			metricValue(t, tj.reg, "liandong_sync_local_head_seq", "origin", "hq") == 20 &&
			metricValue(t, tj.reg, "liandong_sync_lag_entries", "origin", "hq") == 0
	})
	// A peer reads as stalled after StallAfter (1 s here) without an answer,
	// which a loaded machine can reach between heartbeats; and LastContact
	// is set by the first answer to a request of tianjin's, which need not
	// have come when hq's push delivered everything. So wait for the status
	// rather than read it once.
	peersOK := func(st exchange.FederationStatus) bool {
		return len(st.Peers) == 1 && st.Peers[0].Connected && st.Peers[0].Member == "hq" && !st.Peers[0].Stalled && st.Peers[0].LastContact != nil
	}
	originsOK := func(st exchange.FederationStatus) bool {
		return len(st.Origins) == 2 && st.Origins[0].Origin == "hq" && st.Origins[0].Local.Seq == 20 && st.Origins[0].LagEntries == 0
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		st := tj.x.Status()
		if peersOK(st) && originsOK(st) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status after 5s: peers %+v, origins %+v", st.Peers, st.Origins)
		}
	}
	if problems, err := testutil.GatherAndLint(tj.reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %+v", err, problems)
	}
}

// TestFourExchangesConverge writes at four origins at once and checks every log
// reaches every node, by each mechanism alone.
func TestFourExchangesConverge(t *testing.T) {
	modes := []struct {
		name   string
		mutate func(*exchange.Config)
	}{
		{"push+gossip+anti-entropy", nil},
		{"push-only", func(c *exchange.Config) {
			c.DisableGossip = true
			c.AntiEntropyInterval = time.Hour
		}},
		{"gossip-only", func(c *exchange.Config) {
			c.DisablePush = true
			c.AntiEntropyInterval = time.Hour
		}},
		{"anti-entropy-only", func(c *exchange.Config) {
			c.DisablePush = true
			c.DisableGossip = true
			c.AntiEntropyInterval = 100 * time.Millisecond
		}},
	}
	centres := []string{"hq", "tianjin", "hebei", "xiongan"}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			checkLeaks(t)
			fed := newFed(t, centres...)
			var ps []*peerNode
			for _, c := range centres {
				ps = append(ps, startExchange(t, fed, c, nil, mode.mutate))
			}
			for i := range ps {
				for j := i + 1; j < len(ps); j++ {
					connect(t, ps[i], ps[j])
				}
			}
			const rounds, per = 5, 10
			authors := map[string]*exchangetest.Author{}
			for _, c := range centres {
				authors[c] = fed.Author(c)
			}
			for range rounds {
				for _, p := range ps {
					write(t, p.node, authors[p.name], per)
				}
				time.Sleep(20 * time.Millisecond)
			}
			lastNudge := time.Now()
			waitFor(t, 15*time.Second, "all logs everywhere", func() bool {
				// Gossip drops announcements published before the mesh has formed
				// (DESIGN.md: never rely on it alone); a later commit announces
				// again, which is what a nudge stands for.
				if mode.name == "gossip-only" && time.Since(lastNudge) > time.Second {
					for _, p := range ps {
						p.x.Notify()
					}
					lastNudge = time.Now()
				}
				for _, p := range ps {
					for _, c := range centres {
						if p.node.Len(c) != rounds*per {
							return false
						}
					}
				}
				return true
			})
			for _, p := range ps {
				for _, c := range centres {
					if got, want := exchangetest.Digest(p.node.Log(c)), exchangetest.Digest(ps[0].node.Log(c)); got != want && p != ps[0] {
						if c == p.name {
							continue
						}
						t.Errorf("%s holds %s as %s, want %s", p.name, c, got, want)
					}
				}
			}
			pushes := metricValue(t, ps[0].reg, "liandong_sync_frames_received_total", "type", "push")
			announced := metricValue(t, ps[0].reg, "liandong_sync_announcements_total", "direction", "received")
			switch mode.name {
			case "push-only":
				if pushes == 0 || announced != 0 {
					t.Errorf("push-only: %v pushes, %v announcements received", pushes, announced)
				}
			case "gossip-only":
				if pushes != 0 || announced == 0 {
					t.Errorf("gossip-only: %v pushes, %v announcements received", pushes, announced)
				}
			case "anti-entropy-only":
				if pushes != 0 || announced != 0 {
					t.Errorf("anti-entropy-only: %v pushes, %v announcements received", pushes, announced)
				}
			}
		})
	}
}

// TestRelay cuts the hq–hebei link: each still gets the other's log through tianjin.
func TestRelay(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin", "hebei")
	hq := startExchange(t, fed, "hq", nil, nil)
	tj := startExchange(t, fed, "tianjin", nil, nil)
	hb := startExchange(t, fed, "hebei", nil, nil)
	hq.x.SetRefuse(func(p peer.ID) bool { return p == hb.x.ID() })
	hb.x.SetRefuse(func(p peer.ID) bool { return p == hq.x.ID() })
	connect(t, hq, tj)
	connect(t, tj, hb)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := hq.x.Connect(ctx, peer.AddrInfo{ID: hb.x.ID(), Addrs: hb.x.Addrs()}); !errors.Is(err, exchange.ErrNotAllowed) {
		t.Fatalf("connect across the cut link: %v, want ErrNotAllowed", err)
	}
	ahq, ahb := fed.Author("hq"), fed.Author("hebei")
	write(t, hq.node, ahq, 30)
	write(t, hb.node, ahb, 30)
	waitFor(t, 10*time.Second, "hq's log at hebei and hebei's at hq", func() bool {
		return hb.node.Len("hq") == 30 && hq.node.Len("hebei") == 30
	})
	for _, p := range hq.x.Status().Peers {
		if p.PeerID == hb.x.ID().String() && p.Connected {
			t.Fatalf("hq is connected to hebei despite the cut")
		}
	}
	if got, want := exchangetest.Digest(hb.node.Log("hq")), exchangetest.Digest(hq.node.Log("hq")); got != want {
		t.Fatalf("hebei holds hq as %s, want %s", got, want)
	}
}

// TestStrangerRefused: a host the bundle does not list cannot open a stream.
func TestStrangerRefused(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq")
	hq := startExchange(t, fed, "hq", nil, nil)
	write(t, hq.node, fed.Author("hq"), 3)
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.Connect(ctx, peer.AddrInfo{ID: hq.x.ID(), Addrs: hq.x.Addrs()}) // may report success
	if s, err := h.NewStream(ctx, hq.x.ID(), wire.ProtocolID); err == nil {
		s.Reset()
		t.Fatal("a stranger opened a sync stream")
	}
	for _, p := range hq.x.Status().Peers {
		if p.PeerID == h.ID().String() {
			t.Fatalf("stranger listed in status: %+v", p)
		}
	}
	if v := metricValue(t, hq.reg, "liandong_sync_peers_connected"); v != 0 {
		t.Fatalf("peers connected = %v", v)
	}
	// And the exchange will not dial it.
	if err := hq.x.Connect(ctx, peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); !errors.Is(err, exchange.ErrNotAllowed) {
		t.Fatalf("dial a stranger: %v, want ErrNotAllowed", err)
	}
}

// TestRemovedMemberCutOff: a bundle update that removes a member closes its
// connections.
func TestRemovedMemberCutOff(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin")
	hq := startExchange(t, fed, "hq", nil, nil)
	tj := startExchange(t, fed, "tianjin", nil, nil)
	connect(t, hq, tj)
	waitFor(t, 5*time.Second, "connected", func() bool {
		return metricValue(t, hq.reg, "liandong_sync_peers_connected") == 1
	})
	nb := *fed.Bundle
	nb.Version++
	nb.Members = append([]exchangetestMember(nil), fed.Bundle.Members...)
	now := time.Now()
	for i := range nb.Members {
		if nb.Members[i].ID == "tianjin" {
			nb.Members[i].Removed = &now
		}
	}
	hq.node.SetBundle(&nb)
	waitFor(t, 5*time.Second, "tianjin cut off", func() bool {
		for _, p := range hq.x.Status().Peers {
			if p.Member == "tianjin" && p.Connected {
				return false
			}
		}
		return true
	})
	write(t, hq.node, fed.Author("hq"), 5)
	time.Sleep(300 * time.Millisecond)
	if n := tj.node.Len("hq"); n != 0 {
		t.Fatalf("removed member got %d entries", n)
	}
}

// TestFollowerServesButDoesNotApply: a replica that is not the leader pulls
// nothing, but serves; once leader it catches up.
func TestFollowerServesButDoesNotApply(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin")
	hq := startExchange(t, fed, "hq", nil, nil)
	tjNode := exchangetest.NewNode("tianjin", fed.Bundle)
	tjNode.SetCanApply(false)
	tj := startExchange(t, fed, "tianjin", tjNode, nil)
	connect(t, hq, tj)
	write(t, hq.node, fed.Author("hq"), 10)
	write(t, tj.node, fed.Author("tianjin"), 4) // a follower holds what raft gave it
	waitFor(t, 5*time.Second, "hq gets tianjin's entries from the follower", func() bool {
		return hq.node.Len("tianjin") == 4
	})
	time.Sleep(300 * time.Millisecond)
	if n, calls := tj.node.Len("hq"), tj.node.ApplyCalls(); n != 0 || calls != 0 {
		t.Fatalf("follower applied: %d entries in %d calls", n, calls)
	}
	waitFor(t, 5*time.Second, "hq sees tianjin 10 behind on hq's log", func() bool {
		return metricValue(t, hq.reg, "liandong_sync_peer_behind_entries", "member", "tianjin", "origin", "hq") == 10
	})
	tjNode.SetCanApply(true)
	waitFor(t, 5*time.Second, "new leader catches up", func() bool { return tj.node.Len("hq") == 10 })
}

// TestOtherEpochNotPulled: a peer holding another epoch of an origin's log is
// neither pulled from nor blamed.
func TestOtherEpochNotPulled(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin", "hebei")
	old := fed.Author("hebei")
	fresh := fed.Author("hebei")
	fresh.Epoch = "e2"
	hqNode := exchangetest.NewNode("hq", fed.Bundle)
	write(t, hqNode, old, 3)
	tjNode := exchangetest.NewNode("tianjin", fed.Bundle)
	write(t, tjNode, fresh, 8)
	hq := startExchange(t, fed, "hq", hqNode, nil)
	tj := startExchange(t, fed, "tianjin", tjNode, nil)
	connect(t, hq, tj)
	waitFor(t, 5*time.Second, "heads exchanged", func() bool {
		return len(peerStatus(hq, "tianjin").Heads) > 0 && len(peerStatus(tj, "hq").Heads) > 0
	})
	time.Sleep(500 * time.Millisecond) // two anti-entropy rounds
	if n := hqNode.Len("hebei"); n != 3 {
		t.Fatalf("hq's hebei log has %d entries, want its 3 of epoch e1", n)
	}
	if tjNode.Len("hebei") != 8 {
		t.Fatalf("tianjin's hebei log changed")
	}
	for _, p := range []*peerNode{hq, tj} {
		for _, r := range []string{"wrong-epoch", "protocol-violation", "malformed-frame"} {
			if v := metricValue(t, p.reg, "liandong_sync_peer_faults_total", "reason", r); v != 0 {
				t.Errorf("%s counted %v %s faults", p.name, v, r)
			}
		}
	}
}

// exchangetestMember keeps the test readable where bundles are edited.
type exchangetestMember = auth.Member

// TestLocalApplyFailure: when the local node fails to apply, the peer is not
// blamed, and the entries arrive once the node recovers.
func TestLocalApplyFailure(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin")
	tjNode := exchangetest.NewNode("tianjin", fed.Bundle)
	var failures atomic.Int32
	failures.Store(3)
	tjNode.ApplyHook = func(string, []*schema.Entry) error {
		if failures.Add(-1) >= 0 {
			return errors.New("disk full")
		}
		return nil
	}
	hq := startExchange(t, fed, "hq", nil, nil)
	tj := startExchange(t, fed, "tianjin", tjNode, nil)
	connect(t, hq, tj)
	write(t, hq.node, fed.Author("hq"), 10)
	waitFor(t, 10*time.Second, "entries after recovery", func() bool { return tjNode.Len("hq") == 10 })
	if ps := peerStatus(tj, "hq"); ps.BackedOffUntil != nil || !ps.Connected {
		t.Fatalf("hq blamed for tianjin's failure: %+v", ps)
	}
	if failures.Load() >= 0 {
		t.Fatalf("the hook did not fail as planned")
	}
}

// TestRunStoppedWhileStartingReturnsNil: Run with a context already done stops
// what it started and returns nil, as documented, rather than the error of the
// step the cancellation interrupted; the exchange cannot run again.
func TestRunStoppedWhileStartingReturnsNil(t *testing.T) {
	fed := newFed(t, "hq", "tianjin")
	cfg := testConfig(t, fed.Identity("hq"), prometheus.NewRegistry())
	x, err := exchange.New(context.Background(), cfg, exchangetest.NewNode("hq", fed.Bundle))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- x.Run(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run with a done context: %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run with a done context did not return within 10s")
	}
	if err := x.Run(context.Background()); !errors.Is(err, exchange.ErrRunning) && !errors.Is(err, exchange.ErrClosed) {
		t.Fatalf("Run again after it stopped: %v, want ErrRunning or ErrClosed", err)
	}
}
