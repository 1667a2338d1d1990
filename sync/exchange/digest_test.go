package exchange_test

import (
	"bufio"
	"context"
	"testing"
	"time"

	"liandong/schema"
	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// headsRequests returns a copy of the heads requests hz received and their sizes.
func (hz *harness) headsRequests() ([]*wire.Heads, []int) {
	hz.mu.Lock()
	defer hz.mu.Unlock()
	return append([]*wire.Heads(nil), hz.headsReqs...), append([]int(nil), hz.headsSizes...)
}

func (hz *harness) setClaims(c []schema.Head) {
	hz.mu.Lock()
	hz.claims = c
	hz.mu.Unlock()
}

// askHeads sends p a heads request on a fresh stream and returns the answer.
func (hz *harness) askHeads(t testing.TB, p *peerNode, req *wire.Heads) *wire.Heads {
	t.Helper()
	hz.connect(t, p.x.AddrInfo())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := hz.h.NewStream(ctx, p.x.ID(), wire.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write(wire.AppendFrame(nil, req)); err != nil {
		t.Fatal(err)
	}
	s.SetReadDeadline(time.Now().Add(3 * time.Second))
	body, err := wire.ReadFrame(bufio.NewReader(s), 1<<20)
	if err != nil {
		t.Fatalf("read heads answer: %v", err)
	}
	m, err := wire.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := m.(*wire.Heads)
	if !ok || h.Request {
		t.Fatalf("answered a heads request with %s", m.Type())
	}
	return h
}

func fastAntiEntropy(c *exchange.Config) {
	c.AntiEntropyInterval = 40 * time.Millisecond
	c.DisableGossip = true
}

// TestHeadsDigestSteadyState: once both sides hold each other's heads, a heads
// exchange carries digests only, of a constant size; a change on either side
// sends the changed heads once.
func TestHeadsDigestSteadyState(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "peer")
	hqNode := exchangetest.NewNode("hq", fed.Bundle)
	author := fed.Author("hq")
	hqLog := write(t, hqNode, author, 3)
	hq := startExchange(t, fed, "hq", hqNode, fastAntiEntropy)
	// The peer holds what hq holds, so nothing is pulled and no claim lowered.
	held := []schema.Head{{Origin: "hq", Epoch: hqLog[2].Epoch, Seq: 3, Hash: hqLog[2].Hash()}}
	hz := startHarness(t, fed.Identity("peer"), &harness{federation: fed.ID, claims: held})
	hz.connect(t, hq.x.AddrInfo())

	waitFor(t, 5*time.Second, "six heads requests", func() bool { r, _ := hz.headsRequests(); return len(r) >= 6 })
	reqs, sizes := hz.headsRequests()
	first := reqs[0]
	if len(first.Heads) == 0 || !first.Known.IsZero() {
		t.Fatalf("first request: %d heads, known %x; want hq's heads and nothing known", len(first.Heads), first.Known)
	}
	if first.Digest != wire.HeadsDigest(first.Heads) {
		t.Fatal("first request's digest is not that of its heads")
	}
	want := wire.HeadsDigest(held)
	for i, r := range reqs[2:] {
		if !r.Omitted() || r.Known != want || r.Digest != first.Digest {
			t.Fatalf("steady request %d: omitted %v, known %x (want %x), digest %x (want %x)",
				i+2, r.Omitted(), r.Known[:4], want[:4], r.Digest[:4], first.Digest[:4])
		}
		if sizes[i+2] != sizes[2] {
			t.Fatalf("steady request sizes differ: %v", sizes)
		}
	}
	if sizes[2] >= sizes[0] {
		t.Fatalf("a steady request (%d bytes) is not smaller than a full one (%d)", sizes[2], sizes[0])
	}
	if st := peerStatus(hq, "peer"); st.HeadsAt == nil || time.Since(*st.HeadsAt) > 2*time.Second {
		t.Fatalf("an unchanged answer did not count as hearing the peer's heads: %+v", st)
	}

	// hq's heads change: the next request carries them whole, once.
	n := len(reqs)
	fourth := write(t, hqNode, author, 1)[0]
	hq.x.Notify()
	waitFor(t, 5*time.Second, "a request with hq's new heads", func() bool {
		r, _ := hz.headsRequests()
		for _, m := range r[n:] {
			if len(m.Heads) > 0 && m.Heads[0].Seq == 4 {
				return true
			}
		}
		return false
	})
	waitFor(t, 5*time.Second, "digest-only requests again", func() bool {
		r, _ := hz.headsRequests()
		last := r[len(r)-1]
		return last.Omitted() && last.Digest != first.Digest
	})

	// The peer's heads change: hq's Known no longer matches, so the peer
	// answers whole and hq's next requests know the new digest.
	moved := []schema.Head{{Origin: "hq", Epoch: fourth.Epoch, Seq: 4, Hash: fourth.Hash()}}
	hz.setClaims(moved)
	waitFor(t, 5*time.Second, "hq knows the peer's new digest", func() bool {
		r, _ := hz.headsRequests()
		return r[len(r)-1].Known == wire.HeadsDigest(moved)
	})
	if v := metricValue(t, hq.reg, "liandong_sync_peer_faults_total", "reason", "protocol-violation"); v != 0 {
		t.Fatalf("an honest peer was counted for %v protocol faults", v)
	}
}

// TestHeadsDigestLies: a peer that leaves out heads hq never held, or whose
// heads do not match their digest, is cut off for a protocol fault; a peer
// that believes hq holds its heads when hq does not is asked for them.
func TestHeadsDigestLies(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "liar", "mismatch", "fresh")
	hq := startExchange(t, fed, "hq", nil, fastAntiEntropy)

	liar := startHarness(t, fed.Identity("liar"), &harness{federation: fed.ID,
		headsAnswer: func(*wire.Heads) *wire.Heads {
			return &wire.Heads{Federation: fed.ID, BundleVersion: 1, Digest: schema.Hash{0xee}}
		}})
	liar.connect(t, hq.x.AddrInfo())
	claims := []schema.Head{{Origin: "liar", Epoch: "e1", Seq: 5}}
	mismatch := startHarness(t, fed.Identity("mismatch"), &harness{federation: fed.ID,
		headsAnswer: func(*wire.Heads) *wire.Heads {
			return &wire.Heads{Federation: fed.ID, BundleVersion: 1, Heads: claims, Digest: schema.Hash{0xdd}}
		}})
	mismatch.connect(t, hq.x.AddrInfo())
	waitFor(t, 5*time.Second, "both liars cut off", func() bool {
		return metricValue(t, hq.reg, "liandong_sync_peer_faults_total", "reason", "protocol-violation") >= 2
	})
	for _, m := range []string{"liar", "mismatch"} {
		if st := peerStatus(hq, m); st.LastError == "" {
			t.Errorf("%s: no error recorded: %+v", m, st)
		}
	}

	// A peer that thinks hq holds its heads (hq restarted, say): hq answers
	// whole (it knows nothing of the peer's digest) and asks for them.
	fresh := startHarness(t, fed.Identity("fresh"), &harness{federation: fed.ID,
		// hq's own origin: a claim hq never pulls, so it is never lowered.
		claims: []schema.Head{{Origin: "hq", Epoch: "e1", Seq: 2, Hash: schema.Hash{2}}}})
	ans := fresh.askHeads(t, hq, &wire.Heads{Request: true, Federation: fed.ID, BundleVersion: 1,
		Digest: wire.HeadsDigest(fresh.claims)})
	if ans.Omitted() {
		t.Fatal("hq left out its heads to a peer that knew none of them")
	}
	waitFor(t, 5*time.Second, "hq asks the fresh peer for its heads", func() bool {
		r, _ := fresh.headsRequests()
		return len(r) > 0
	})
	waitFor(t, 5*time.Second, "hq holds the fresh peer's claim", func() bool {
		r, _ := fresh.headsRequests()
		return r[len(r)-1].Known == wire.HeadsDigest(fresh.claims)
	})
}
