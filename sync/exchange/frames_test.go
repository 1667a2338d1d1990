package exchange_test

import (
	"bufio"
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"

	"liandong/schema"
	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// leastFrameBytes is the least MaxFrameBytes a node may be configured with:
// one entry of the largest size.
const leastFrameBytes = schema.MaxEntryBytes + schema.SignatureSize + wire.Overhead + 16

// TestRangeAnswersFitTheRequester: a node configured with smaller batches or
// frames than the peer it catches up from is answered within its own limits
// (it says them in its range requests), rather than cutting the peer off for
// frames it cannot take. Before version 3 of the protocol, a centre that
// lowered batch_size could sync with no peer that had not.
func TestRangeAnswersFitTheRequester(t *testing.T) {
	fed, log := catchupLog(t)
	log = log[:3000]
	for _, c := range []struct {
		name             string
		server, receiver func(*exchange.Config)
		// maxFrame is the most entries one frame the receiver got may
		// hold, as far as the frame count shows.
		maxFrame int
	}{
		{"smaller batches", nil, func(c *exchange.Config) {
			c.BatchSize, c.MaxRangeEntries = 100, 250
		}, 100},
		{"smaller frames", func(c *exchange.Config) {
			c.BatchSize, c.MaxRangeEntries, c.MaxFrameBytes = 5000, 5000, 16<<20
		}, func(c *exchange.Config) {
			// 3000 entries of about 1.2 KB are 3.6 MB: the server's one
			// frame, about 45 of this node's (80 KB).
			c.BatchSize, c.MaxRangeEntries, c.MaxFrameBytes = 5000, 5000, leastFrameBytes
		}, 1000},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkLeaks(t)
			hqNode := exchangetest.NewNode("hq", fed.Bundle)
			if err := hqNode.Append(log...); err != nil {
				t.Fatal(err)
			}
			hq := startExchange(t, fed, "hq", hqNode, c.server)
			tj := startExchange(t, fed, "tianjin", nil, func(cfg *exchange.Config) {
				if c.receiver != nil {
					c.receiver(cfg)
				}
				cfg.AntiEntropyInterval = time.Second
			})
			connect(t, tj, hq)
			waitFor(t, 30*time.Second, "catch-up", func() bool { return tj.node.Len("hq") == len(log) })
			if got, want := exchangetest.Digest(tj.node.Log("hq")), exchangetest.Digest(log); got != want {
				t.Fatalf("log %s, want %s", got, want)
			}
			if v := metricTotal(t, tj.reg, "liandong_sync_peer_faults_total"); v != 0 {
				t.Errorf("%v faults: the peer was cut off for frames this node asked for", v)
			}
			if frames := metricValue(t, tj.reg, "liandong_sync_frames_received_total", "type", "batch"); frames < float64(len(log)/c.maxFrame) {
				t.Errorf("%v batch frames for %d entries: frames of more than %d", frames, len(log), c.maxFrame)
			}
		})
	}
}

// TestRangeFromAVersion2Peer: a node still on version 2 of the protocol is
// asked for ranges without the frame limits (which it would refuse as
// trailing bytes), and its frames, of its own batch size, larger than this
// node's, are taken and applied in batches of this node's size.
func TestRangeFromAVersion2Peer(t *testing.T) {
	checkLeaks(t)
	fed, log := catchupLog(t)
	log = log[:3000]
	hz := startHarness(t, fed.Identity("hq"), &harness{federation: fed.ID, protocol: wire.ProtocolV2,
		claims: []schema.Head{{Origin: "hq", Epoch: log[0].Epoch, Seq: uint64(len(log)), Hash: log[len(log)-1].Hash()}},
		answer: func(w *bufio.Writer, req *wire.RangeReq) {
			// Frames of 1000 whatever the request, as a version 2 node
			// configured so frames them.
			from := int(req.FromSeq) - 1
			end := min(len(log), from+int(req.Limit))
			for from < end {
				n := min(1000, end-from)
				w.Write(wire.AppendFrame(nil, &wire.Batch{Origin: "hq", Entries: log[from : from+n], Done: from+n == end}))
				from += n
			}
		}})
	tjNode := exchangetest.NewNode("tianjin", fed.Bundle)
	tj := startExchange(t, fed, "tianjin", tjNode, func(c *exchange.Config) {
		c.BatchSize, c.MaxRangeEntries = 100, 2500
		c.AntiEntropyInterval = time.Second
	})
	hz.connect(t, tj.x.AddrInfo())
	waitFor(t, 30*time.Second, "catch-up from a version 2 peer", func() bool { return tjNode.Len("hq") == len(log) })
	if v := metricTotal(t, tj.reg, "liandong_sync_peer_faults_total"); v != 0 {
		t.Errorf("%v faults", v)
	}
	if calls := tjNode.ApplyCalls(); calls < int64(len(log)/100) {
		t.Errorf("%d apply calls for %d entries: batches larger than this node's 100", calls, len(log))
	}
	hz.mu.Lock()
	defer hz.mu.Unlock()
	if len(hz.rangeReqs) == 0 {
		t.Fatal("no range request reached the version 2 peer")
	}
	for _, r := range hz.rangeReqs {
		if r.MaxBatch != 0 || r.MaxFrameBytes != 0 {
			t.Fatalf("a version 2 peer was sent frame limits: %+v", r)
		}
		if r.Limit > 2500 {
			t.Fatalf("asked for %d entries, more than max_range_entries", r.Limit)
		}
	}
}

// TestPushFitsThePeersFrames: a push is sent unasked, so it keeps under the
// peer's frame limit: the least any node may have while the peer has not
// said its own, and the one its range requests said once it has. A burst
// pushed by a node with large frames then fits either way; once the limit
// is known, a push carries as much as it allows.
func TestPushFitsThePeersFrames(t *testing.T) {
	fed, log := catchupLog(t)
	log = log[:3000]
	for _, c := range []struct {
		name string
		said uint64 // the frame limit tianjin's range request says; 0: none
		// reconnect: tianjin reconnects after saying it (and may have
		// restarted with another limit)
		reconnect bool
		// the first push frame's size: at most limit, at least least
		limit, least int
	}{
		{"limit unknown", 0, false, leastFrameBytes, 1},
		{"least limit said", leastFrameBytes, false, leastFrameBytes, 1},
		{"larger limit said", 1 << 20, false, 1 << 20, 512 << 10},
		{"larger limit said, then reconnected", 1 << 20, true, leastFrameBytes, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkLeaks(t)
			hqNode := exchangetest.NewNode("hq", fed.Bundle)
			if err := hqNode.Append(log[:10]...); err != nil {
				t.Fatal(err)
			}
			hq := startExchange(t, fed, "hq", hqNode, func(cfg *exchange.Config) {
				pushOnly(cfg)
				cfg.BatchSize, cfg.MaxRangeEntries, cfg.MaxFrameBytes = 5000, 5000, 16<<20
			})
			hz := startHarness(t, fed.Identity("tianjin"), &harness{federation: fed.ID})
			hz.connect(t, hq.x.AddrInfo())
			if c.said > 0 {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				s, err := hz.h.NewStream(ctx, hq.x.ID(), wire.ProtocolID)
				if err != nil {
					t.Fatal(err)
				}
				s.Write(wire.AppendFrame(nil, &wire.RangeReq{Origin: "hq", FromSeq: 1, Limit: 10, MaxBatch: 1000, MaxFrameBytes: c.said}))
				r := bufio.NewReader(s)
				for done := false; !done; {
					body, err := wire.ReadFrame(r, 64<<20)
					if err != nil {
						t.Fatal(err)
					}
					m, err := wire.Decode(body)
					b, ok := m.(*wire.Batch)
					if err != nil || !ok {
						t.Fatalf("range answer %v %v", m, err)
					}
					done = b.Done
				}
				s.Close()
			}
			if c.reconnect {
				hz.h.Network().ClosePeer(hq.x.ID())
				waitFor(t, 5*time.Second, "hq to see tianjin gone", func() bool {
					ps := peerStatusByID(hq, hz.h.ID())
					return ps != nil && !ps.Connected
				})
				back := time.Now()
				hz.connect(t, hq.x.AddrInfo())
				// The heads exchange hq starts on the new connection comes
				// after it handled the disconnection (events are in order).
				waitFor(t, 5*time.Second, "hq to trade heads with tianjin again", func() bool {
					ps := peerStatusByID(hq, hz.h.ID())
					return ps != nil && ps.HeadsAt != nil && ps.HeadsAt.After(back)
				})
			}
			if err := hqNode.Append(log[10:]...); err != nil { // one commit: one push
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "a push", func() bool {
				hz.mu.Lock()
				defer hz.mu.Unlock()
				return len(hz.pushSizes) > 0
			})
			hz.mu.Lock()
			first := hz.pushSizes[0]
			hz.mu.Unlock()
			if first > c.limit || first < c.least {
				t.Errorf("a push frame of %d bytes, want %d–%d", first, c.least, c.limit)
			}
		})
	}
}

// TestBothVersionsShareOnePeerAllowance: a peer's inbound sync streams are
// bounded together, whichever version each speaks: one that opens streams
// of both versions holds no more than one that speaks one.
func TestBothVersionsShareOnePeerAllowance(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 1, "victim")
	victim := startExchange(t, fed, "victim", nil, func(c *exchange.Config) { c.RequestTimeout = 5 * time.Second })
	hz := startHarness(t, evil.Identities[0], &harness{federation: fed.ID})
	hz.connect(t, victim.x.AddrInfo())
	// Refused at the version's own limit, the shared one or the peer's:
	// any of them keeps the peer to its allowance.
	refusals := func() float64 { return metricTotal(t, victim.reg, "liandong_sync_resource_refusals_total") }
	const each = 24
	var opened []network.Stream
	for _, proto := range []protocol.ID{wire.ProtocolID, wire.ProtocolV2} {
		opened = append(opened, holdOpen(each, 5*time.Second, 0x80, func(ctx context.Context) (network.Stream, error) {
			return hz.h.NewStream(ctx, victim.x.ID(), proto)
		})...)
	}
	defer func() {
		for _, s := range opened {
			s.Reset()
		}
	}()
	// 16 streams a peer: of 48, at least 32 refused, at the version's own
	// limit or at the shared one.
	waitFor(t, 5*time.Second, "refusals of both versions' streams", func() bool { return refusals() >= 2*each-16 })
	t.Logf("%d streams opened; %v refused", len(opened), refusals())
}
