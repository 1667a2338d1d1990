package exchange_test

import (
	"bufio"
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"liandong/auth"
	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// signBundle signs b with the given keys, as `federation sign` does.
func signBundle(t *testing.T, b *auth.Bundle, keys ...*auth.KeyPair) []byte {
	t.Helper()
	sb, err := auth.SignBundle(b, keys...)
	if err != nil {
		t.Fatal(err)
	}
	data, err := sb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestTrustBundleSpreads: a newer bundle published at one centre reaches the
// others through the sync protocol; one without enough valid signatures, or an
// older one, does not.
func TestTrustBundleSpreads(t *testing.T) {
	checkLeaks(t)
	fed := newFed(t, "hq", "tianjin", "hebei")
	v1 := signBundle(t, fed.Bundle, fed.Root)
	nodes := map[string]*exchangetest.Node{}
	peers := map[string]*peerNode{}
	for _, id := range []string{"hq", "tianjin", "hebei"} {
		nodes[id] = exchangetest.NewNode(id, fed.Bundle)
		if err := nodes[id].SetSignedBundle(v1); err != nil {
			t.Fatal(err)
		}
		peers[id] = startExchange(t, fed, id, nodes[id], nil)
	}
	// A line: tianjin — hq — hebei, so hebei learns it through hq (relayed).
	connect(t, peers["tianjin"], peers["hq"])
	connect(t, peers["hq"], peers["hebei"])

	// A bundle signed by a stranger is refused; nobody moves off v1.
	stranger, err := auth.GenerateKey("stranger")
	if err != nil {
		t.Fatal(err)
	}
	forged := *fed.Bundle
	forged.Version = 5
	forged.Revocations = []auth.Revocation{{Subject: "sub:hq/partner", Before: time.Now()}}
	if err := nodes["tianjin"].SetSignedBundle(signBundle(t, &forged, stranger)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "hq refuses the forged bundle", func() bool {
		return metricValue(t, peers["hq"].reg, "liandong_sync_trust_bundles_total", "outcome", "refused") >= 1
	})
	if v := nodes["hq"].Bundle().Version; v != fed.Bundle.Version {
		t.Fatalf("hq runs on v%d after a forged offer, want v%d", v, fed.Bundle.Version)
	}

	// A properly signed v6 at tianjin reaches hq and, through it, hebei.
	next := *fed.Bundle
	next.Version = 6
	next.Revocations = []auth.Revocation{{Subject: "sub:hq/partner", Before: time.Now()}}
	if err := nodes["tianjin"].SetSignedBundle(signBundle(t, &next, fed.Root)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"hq", "hebei"} {
		waitFor(t, 15*time.Second, id+" installs v6", func() bool { return nodes[id].Bundle().Version == 6 })
		if !nodes[id].Bundle().Revoked("sub:hq/partner", time.Now().Add(-time.Minute)) {
			t.Errorf("%s: v6 lacks its revocation", id)
		}
	}
	// A replay of v1 offered by a peer is a rollback: ignored.
	if err := nodes["tianjin"].SetSignedBundle(v1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if v := nodes["hq"].Bundle().Version; v != 6 {
		t.Fatalf("hq went back to v%d", v)
	}
}

// TestBundleAnnouncementSpam: a member announcing ever newer bundle versions
// and answering every fetch with garbage leaves the victim remembering one
// fetch per peer, and that for the trust fetch interval only; a version
// refused is not asked for again from the same peer within it.
func TestBundleAnnouncementSpam(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 2, "victim")
	var offset atomic.Int64 // the victim's clock runs this far ahead
	victim := startExchange(t, fed, "victim", nil, func(c *exchange.Config) {
		c.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	})
	spammers := make([]*harness, 2)
	for i := range spammers {
		spammers[i] = startHarness(t, evil.Identities[i], &harness{federation: fed.ID, trust: []byte("{}")})
		spammers[i].connect(t, victim.x.AddrInfo())
	}
	fetches := func(hz *harness) int {
		hz.mu.Lock()
		defer hz.mu.Unlock()
		n := 0
		for _, r := range hz.requests {
			if r == wire.TypeTrustReq {
				n++
			}
		}
		return n
	}
	refused := func() float64 {
		return metricValue(t, victim.reg, "liandong_sync_trust_bundles_total", "outcome", "refused")
	}
	// announce sends a heads request announcing version v, and waits for the
	// answer (the announcement taken in) and for the fetch it starts, if
	// any, to end.
	announce := func(hz *harness, v uint64) {
		t.Helper()
		before := refused()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		s, err := hz.h.NewStream(ctx, victim.x.ID(), wire.ProtocolID)
		if err != nil {
			t.Fatalf("announce v%d: %v", v, err)
		}
		defer s.Close()
		s.Write(wire.AppendFrame(nil, &wire.Heads{Request: true, Federation: fed.ID, BundleVersion: v}))
		s.CloseWrite()
		s.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := wire.ReadFrame(bufio.NewReader(s), 1<<20); err != nil {
			t.Fatalf("announce v%d: %v", v, err)
		}
		for deadline := time.Now().Add(100 * time.Millisecond); refused() == before && time.Now().Before(deadline); {
			time.Sleep(time.Millisecond)
		}
	}

	const n = 200
	v := fed.Bundle.Version
	for range n {
		v++
		announce(spammers[0], v)
	}
	asked := fetches(spammers[0])
	t.Logf("%d announcements, %d fetches", n, asked)
	if asked < 2 {
		t.Fatalf("asked %d times for %d ever newer versions: the spam did not run", asked, n)
	}
	if got := victim.x.TrustTracked(); got != 1 {
		t.Errorf("%d fetches remembered after %d announcements by one peer, want 1", got, n)
	}
	announce(spammers[0], v)
	if got := fetches(spammers[0]); got != asked {
		t.Errorf("asked again for v%d within the interval", v)
	}

	// Past the interval the spammer's fetch is forgotten when another is
	// remembered, and it is asked for the same version again.
	offset.Store(int64(exchange.TrustFetchInterval + time.Second))
	announce(spammers[1], v)
	waitFor(t, 5*time.Second, "the other spammer asked", func() bool { return fetches(spammers[1]) == 1 })
	if got := victim.x.TrustTracked(); got != 1 {
		t.Errorf("%d fetches remembered past the interval, want 1 (the other spammer's)", got)
	}
	announce(spammers[0], v)
	waitFor(t, 5*time.Second, "the spammer asked again", func() bool { return fetches(spammers[0]) == asked+1 })
}

// TestSlowBundleOfferHoldsOnlyItsOwnFetch: a member that announces a far
// bundle version and never delivers it holds a fetch for a whole request
// timeout; a revocation an honest member announces meanwhile is fetched at
// once, not when that fetch gives up. The request timeout is far longer than
// the wait for the honest bundle, so an exchange that queued the honest fetch
// behind evil's fails however fast or loaded the machine (the test once
// compared the time taken with half the timeout).
func TestSlowBundleOfferHoldsOnlyItsOwnFetch(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 1, "victim", "bravo")
	const timeout = 10 * time.Minute // evil's fetch outlives the test
	victim := startExchange(t, fed, "victim", nil, func(c *exchange.Config) { c.RequestTimeout = timeout })
	hz := startHarness(t, evil.Identities[0], &harness{federation: fed.ID, stallTrust: true,
		headsAnswer: func(*wire.Heads) *wire.Heads { return &wire.Heads{Federation: fed.ID, BundleVersion: 1 << 60} }})
	hz.connect(t, victim.x.AddrInfo())
	waitFor(t, 5*time.Second, "a trust request to evil", func() bool {
		hz.mu.Lock()
		defer hz.mu.Unlock()
		return slices.Contains(hz.requests, wire.TypeTrustReq)
	})

	next := *fed.Bundle
	next.Version = fed.Bundle.Version + 1
	next.Revocations = []auth.Revocation{{Subject: "sub:victim/partner", Before: time.Now()}}
	signed := signBundle(t, &next, fed.Root)
	honest := startHarness(t, fed.Identity("bravo"), &harness{federation: fed.ID, trust: signed,
		headsAnswer: func(*wire.Heads) *wire.Heads { return &wire.Heads{Federation: fed.ID, BundleVersion: next.Version} }})
	honest.connect(t, victim.x.AddrInfo())
	waitFor(t, 30*time.Second, "bravo's bundle installed while evil's fetch is held", func() bool {
		return victim.node.Bundle().Version == next.Version
	})
}
