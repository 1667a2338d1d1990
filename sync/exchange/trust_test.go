package exchange_test

import (
	"testing"
	"time"

	"liandong/auth"
	"liandong/sync/exchange/exchangetest"
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
