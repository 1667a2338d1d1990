package exchange_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/auth"
	"liandong/schema"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// longEpochLog signs n entries of a's log with epoch, bypassing
// schema.NewEntry's bound on epochs, as a member's own software could.
func longEpochLog(t *testing.T, a *exchangetest.Author, n int, epoch string) []*schema.Entry {
	t.Helper()
	var (
		out  []*schema.Entry
		prev schema.Hash
	)
	for range n {
		e, err := a.Next() // for its record
		if err != nil {
			t.Fatal(err)
		}
		p := e.EntryPayload
		p.Epoch, p.PrevHash = epoch, prev
		js, err := json.Marshal(&p)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := schema.Canonical(js)
		if err != nil {
			t.Fatal(err)
		}
		le := &schema.Entry{EntryPayload: p, Raw: raw}
		if err := auth.SignEntry(a.Key, le); err != nil {
			t.Fatal(err)
		}
		prev = le.Hash()
		out = append(out, le)
	}
	return out
}

// A member signs its log with an epoch longer than the sync codec carries in
// heads and pushes it. The receiver refuses the push and cuts off only the
// pusher; it never applies the entries, so its heads stay decodable and an
// honest peer that connects to it gets its log without a fault.
func TestOverlongEpochIsRefusedFromItsSender(t *testing.T) {
	fed := newFed(t, "hq", "tianjin", "hebei")
	tjLog := longEpochLog(t, fed.Author("tianjin"), 3, strings.Repeat("e", 300))

	hqNode := exchangetest.NewNode("hq", fed.Bundle)
	hq := startExchange(t, fed, "hq", hqNode, nil)
	write(t, hqNode, fed.Author("hq"), 5)

	evil := startHarness(t, fed.Identity("tianjin"), &harness{federation: fed.ID})
	evil.pushTo(t, peer.AddrInfo{ID: hq.x.ID(), Addrs: hq.x.Addrs()}, &wire.Push{Origin: "tianjin", Entries: tjLog})
	waitFor(t, 10*time.Second, "hq to cut off tianjin for its push", func() bool {
		return metricTotal(t, hq.reg, "liandong_sync_peer_faults_total") > 0
	})
	if n := hqNode.Len("tianjin"); n != 0 {
		t.Fatalf("hq applied %d entries with a %d-byte epoch", n, len(tjLog[0].Epoch))
	}

	hebei := startExchange(t, fed, "hebei", nil, nil)
	connect(t, hebei, hq)
	waitFor(t, 10*time.Second, "hebei to pull hq's log", func() bool { return hebei.node.Len("hq") == 5 })
	if faults := metricTotal(t, hebei.reg, "liandong_sync_peer_faults_total"); faults > 0 {
		t.Fatalf("hebei counted %v faults of honest hq", faults)
	}
}

// A relay that applied entries with an over-long epoch before epochs were
// bounded leaves that origin's head out of its heads rather than send heads
// its peers refuse: they go on syncing its other logs and do not cut it off.
func TestHeldOverlongEpochIsLeftOutOfHeads(t *testing.T) {
	fed := newFed(t, "hq", "tianjin", "hebei")
	hqNode := exchangetest.NewNode("hq", fed.Bundle)
	if err := hqNode.Append(longEpochLog(t, fed.Author("tianjin"), 3, strings.Repeat("e", 300))...); err != nil {
		t.Fatal(err)
	}
	hq := startExchange(t, fed, "hq", hqNode, nil)
	write(t, hqNode, fed.Author("hq"), 5)

	hebei := startExchange(t, fed, "hebei", nil, nil)
	connect(t, hebei, hq)
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && hebei.node.Len("hq") < 5 {
		time.Sleep(20 * time.Millisecond)
	}
	faults := metricTotal(t, hebei.reg, "liandong_sync_peer_faults_total")
	if hebei.node.Len("hq") != 5 || faults > 0 {
		t.Fatalf("hebei holds %d of hq's 5 entries and counted %v faults of honest hq", hebei.node.Len("hq"), faults)
	}
	if n := hebei.node.Len("tianjin"); n != 0 {
		t.Fatalf("hebei took %d entries with an over-long epoch", n)
	}
}
