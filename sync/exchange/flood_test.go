package exchange_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"liandong/schema"
	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// TestGaterRefusalsCounted: connections the gater refuses are counted by
// reason: a host the bundle does not list, a member the operator blocked, and
// a member backed off after a fault.
func TestGaterRefusalsCounted(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 1, "hq", "tianjin")
	hqNode := exchangetest.NewNode("hq", fed.Bundle)
	ownLog := write(t, hqNode, fed.Author("hq"), 2)
	hq := startExchange(t, fed, "hq", hqNode, func(c *exchange.Config) { c.BlockMembers = []string{"tianjin"} })
	refused := func(reason string) float64 {
		return metricValue(t, hq.reg, "liandong_sync_refused_connections_total", "direction", "inbound", "reason", reason)
	}

	// A stranger.
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	stranger := &harness{h: h}
	if stranger.canOpenStream(hq.x.AddrInfo()) {
		t.Fatal("a stranger opened a sync stream")
	}
	waitFor(t, 5*time.Second, "the stranger counted", func() bool { return refused("not-member") >= 1 })

	// A blocked member.
	tj := startHarness(t, fed.Identity("tianjin"), &harness{federation: fed.ID})
	if tj.canOpenStream(hq.x.AddrInfo()) {
		t.Fatal("a blocked member opened a sync stream")
	}
	waitFor(t, 5*time.Second, "the blocked member counted", func() bool { return refused("blocked") >= 1 })
	// Members' ids are remembered in text form, strangers' are not: a flood
	// of made-up ids cannot grow the cache.
	if hq.x.PeerTextCached(stranger.h.ID()) || !hq.x.PeerTextCached(tj.h.ID()) {
		t.Errorf("ids remembered: the stranger's %v, the member's %v", hq.x.PeerTextCached(stranger.h.ID()), hq.x.PeerTextCached(tj.h.ID()))
	}

	// A member that pushed hq its own log: cut off, then refused while backed off.
	hz := startHarness(t, evil.Identities[0], &harness{federation: fed.ID})
	if refused("backed-off") != 0 {
		t.Fatalf("backed-off refusals before any fault: %v", refused("backed-off"))
	}
	hz.pushTo(t, hq.x.AddrInfo(), &wire.Push{Origin: "hq", Entries: ownLog})
	waitBackedOff(t, hq, hz.h.ID())
	// Its own side must see the connection gone too, or it would not dial again.
	waitFor(t, 5*time.Second, "the harness disconnected", func() bool {
		return hz.h.Network().Connectedness(hq.x.ID()) != network.Connected
	})
	if hz.canOpenStream(hq.x.AddrInfo()) {
		t.Fatal("a backed-off member opened a sync stream")
	}
	waitFor(t, 5*time.Second, "the backed-off member counted", func() bool { return refused("backed-off") >= 1 })
	t.Logf("refused inbound: not-member %v, blocked %v, backed-off %v", refused("not-member"), refused("blocked"), refused("backed-off"))
	if v := metricValue(t, hq.reg, "liandong_sync_peer_faults_total", "reason", "own-origin"); v != 1 {
		t.Errorf("own-origin faults = %v, want 1", v)
	}
	if problems, err := testutil.GatherAndLint(hq.reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %+v", err, problems)
	}
}

// TestResourceRefusalsCounted: a member opening more sync streams than the
// resource manager lets one peer hold on the protocol (16 inbound) is refused
// the rest, and the refusals are counted by scope and resource.
func TestResourceRefusalsCounted(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 1, "victim")
	// Held streams last a request timeout: long enough for all to be opened.
	victim := startExchange(t, fed, "victim", nil, func(c *exchange.Config) { c.RequestTimeout = 5 * time.Second })
	hz := startHarness(t, evil.Identities[0], &harness{federation: fed.ID})
	hz.connect(t, victim.x.AddrInfo())
	refusals := func() float64 {
		return metricValue(t, victim.reg, "liandong_sync_resource_refusals_total", "scope", "protocol-peer", "resource", "streams")
	}
	if v := refusals(); v != 0 {
		t.Fatalf("refusals before the flood: %v", v)
	}

	const streams = 48
	opened := hz.holdStreams(victim.x.ID(), streams)
	defer func() {
		for _, s := range opened {
			s.Reset()
		}
	}()
	waitFor(t, 5*time.Second, "stream refusals counted", func() bool { return refusals() >= 1 })
	time.Sleep(200 * time.Millisecond) // let the rest of the refusals land, for the log
	t.Logf("%d streams written to, %v refused at the protocol-peer scope", len(opened), refusals())
	if v := refusals(); v > streams-16 {
		t.Errorf("%v refusals for %d streams over a limit of 16", v, streams)
	}
	if problems, err := testutil.GatherAndLint(victim.reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %+v", err, problems)
	}
}

// TestRawStreamFlood: a member opening streams that never name their protocol
// (Network().NewStream, half a multistream header) holds them in the
// transient scope until libp2p's negotiation timeout. Its own peer limit
// refuses all but a few, so another member still opens sync streams.
func TestRawStreamFlood(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 1, "victim", "bravo")
	victim := startExchange(t, fed, "victim", nil, nil)
	hz := startHarness(t, evil.Identities[0], &harness{federation: fed.ID})
	hz.connect(t, victim.x.AddrInfo())
	honest := startHarness(t, fed.Identity("bravo"), &harness{federation: fed.ID})
	if !honest.canOpenStream(victim.x.AddrInfo()) {
		t.Fatal("the honest member cannot open a stream before the flood")
	}

	const flood = 250 // more than the transient scope held before (128)
	// Raw streams name no protocol: they sit in the transient scope. 0x13 is
	// the start of multistream's header, left unfinished.
	opened := holdOpen(flood, 3*time.Second, 0x13, func(ctx context.Context) (network.Stream, error) {
		return hz.h.Network().NewStream(ctx, victim.x.ID())
	})
	defer func() {
		for _, s := range opened {
			s.Reset()
		}
	}()
	refused := func(scope string) float64 {
		return metricValue(t, victim.reg, "liandong_sync_resource_refusals_total", "scope", scope, "resource", "streams")
	}
	// The victim refuses streams over its limits as their headers arrive.
	waitFor(t, 5*time.Second, "raw streams refused", func() bool { return refused("peer")+refused("transient") >= 1 })
	ok := 0
	for range 5 {
		if honest.canOpenStream(victim.x.AddrInfo()) {
			ok++
		}
	}
	t.Logf("%d raw streams written to; refused at the peer scope %v, transient %v; the honest member opened %d of 5",
		len(opened), refused("peer"), refused("transient"), ok)
	if ok != 5 {
		t.Errorf("the honest member opened %d of 5 sync streams while another held raw ones", ok)
	}
	if v := refused("transient"); v != 0 {
		t.Errorf("%v streams refused at the transient scope: one member filled it", v)
	}
}

// TestGossipFlood: member peers publish on the heads topic thousands of
// announcements, malformed ones, an oversized one, ones claiming another author
// or a non-member author, and replays. Each is refused or bounded and counted by
// reason; the peers that flood or send bad messages are cut off and backed off;
// the victim keeps answering another peer's requests promptly; an honest peer's
// entries and announcements still arrive; nothing is applied that should not be.
func TestGossipFlood(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 7, "alpha", "victim", "bravo", "charlie")
	topic := exchange.TopicPrefix + fed.ID
	alphaLog, err := fed.Author("alpha").NextN(10)
	if err != nil {
		t.Fatal(err)
	}
	victimNode := exchangetest.NewNode("victim", fed.Bundle)
	if err := victimNode.Append(alphaLog[:5]...); err != nil {
		t.Fatal(err)
	}
	ownLog := write(t, victimNode, fed.Author("victim"), 3)
	victim := startExchange(t, fed, "victim", victimNode, nil)
	bravoNode := exchangetest.NewNode("bravo", fed.Bundle)
	if err := bravoNode.Append(alphaLog...); err != nil {
		t.Fatal(err)
	}
	bravo := startExchange(t, fed, "bravo", bravoNode, nil)
	connect(t, victim, bravo)
	waitFor(t, 10*time.Second, "alpha's log from bravo", func() bool { return victimNode.Len("alpha") == 10 })
	authorBravo := fed.Author("bravo")
	var bravoLog []*schema.Entry
	bravoLog = append(bravoLog, write(t, bravoNode, authorBravo, 1)...)
	received := func() float64 {
		return metricValue(t, victim.reg, "liandong_sync_announcements_total", "direction", "received")
	}
	nudge(t, "an announcement from bravo", bravo, func() bool { return received() >= 1 })

	// charlie probes the victim with pings all along; bravo keeps writing.
	probe := startHarness(t, fed.Identity("charlie"), &harness{federation: fed.ID})
	probe.connect(t, victim.x.AddrInfo())
	var baseline time.Duration
	for range 10 {
		rtt, err := pingOnce(probe, victim.x.ID())
		if err != nil {
			t.Fatal(err)
		}
		baseline = max(baseline, rtt)
	}
	stop := make(chan struct{})
	var (
		bg       sync.WaitGroup
		rtts     []time.Duration
		probeErr error
	)
	bg.Add(2)
	go func() {
		defer bg.Done()
		for i := 0; i < 2000; i++ { // bounded: 2,000 pings or until stopped
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			rtt, err := pingOnce(probe, victim.x.ID())
			if err != nil {
				probeErr = err
				return
			}
			rtts = append(rtts, rtt)
		}
	}()
	bravoWrites := make(chan []*schema.Entry, 1)
	go func() {
		defer bg.Done()
		var es []*schema.Entry
		defer func() { bravoWrites <- es }()
		for i := 0; i < 200; i++ { // bounded: 200 entries or until stopped
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			e, err := authorBravo.NextN(1)
			if err == nil {
				err = bravoNode.Append(e...)
			}
			if err != nil {
				t.Error(err)
				return
			}
			es = append(es, e...)
		}
	}()
	stopped := false
	stopBackground := func() {
		if !stopped {
			stopped = true
			close(stop)
			bg.Wait()
			bravoLog = append(bravoLog, <-bravoWrites...)
		}
	}
	defer stopBackground()

	refused := func(reason string) float64 {
		return metricValue(t, victim.reg, "liandong_sync_announcements_refused_total", "reason", reason)
	}
	faults := func(reason string) float64 {
		return metricValue(t, victim.reg, "liandong_sync_peer_faults_total", "reason", reason)
	}
	alphaHead := schema.Head{Origin: "alpha", Epoch: alphaLog[9].Epoch, Seq: alphaLog[9].Seq, Hash: alphaLog[9].Hash()}
	claims := func(i int) []schema.Head {
		return []schema.Head{
			{Origin: "alpha", Epoch: alphaHead.Epoch, Seq: 1000 + uint64(i), Hash: alphaHead.Hash}, // beyond alpha's log
			{Origin: "victim", Epoch: ownLog[0].Epoch, Seq: 99, Hash: schema.Hash{9}},              // the victim's own origin
			{Origin: "zzz", Epoch: "e1", Seq: 5, Hash: schema.Hash{7}},                             // no such member
		}
	}
	announcement := func(federation string, heads []schema.Head) []byte {
		return wire.Encode(&wire.Heads{Federation: federation, BundleVersion: fed.Bundle.Version, Heads: heads, Digest: wire.HeadsDigest(heads)})
	}

	// 1. A flood: 3,000 distinct validly signed announcements (signed beforehand:
	// under the race detector signing is slower than the victim's limit), sent
	// 500 to an RPC and over again, until the victim cuts the flooder off (at
	// most 40 RPCs: 20,000 messages; copies count against the rate like others).
	flooder := startGossiper(t, fed, evil.Identities[0], topic, victim.x.AddrInfo())
	pool := make([][]byte, 3000)
	for i := range pool {
		pool[i] = flooder.sign(flooder.next(), announcement(fed.ID, claims(i)))
	}
	sent, start := 0, time.Now()
	for rpc := 0; rpc < 40; rpc++ {
		from := rpc * 500 % len(pool)
		if err := flooder.publish(pool[from : from+500]...); err != nil {
			break // cut off
		}
		sent += 500
	}
	t.Logf("flood: %d announcements (%d distinct) sent in %v; refused: rate-limited %v, overloaded %v, backed-off %v",
		sent, len(pool), time.Since(start).Round(time.Millisecond), refused("rate-limited"), refused("overloaded"), refused("backed-off"))
	waitFor(t, 10*time.Second, "the flooder cut off", func() bool { return faults("gossip-flood") == 1 })
	waitBackedOff(t, victim, flooder.h.ID())
	if refused("rate-limited") < 1000 {
		t.Errorf("rate-limited announcements = %v, want at least 1000", refused("rate-limited"))
	}

	// 2. Malformed, not an announcement, oversized: each cuts its sender off.
	bad := []struct {
		name, reason, fault string
		data                []byte
	}{
		{"malformed", "malformed", "gossip-malformed", []byte("not a frame at all")},
		{"heads request", "not-announcement", "gossip-malformed", wire.Encode(&wire.Heads{Request: true, Federation: fed.ID})},
		{"oversized", "oversized", "gossip-oversized", make([]byte, 100<<10)},
		{"heads under another digest", "malformed", "gossip-malformed", wire.Encode(&wire.Heads{Federation: fed.ID, BundleVersion: fed.Bundle.Version,
			Heads: []schema.Head{{Origin: "evil", Epoch: "e1", Seq: 1}}, Digest: schema.Hash{1}})},
	}
	for i, tc := range bad {
		id := evil.Identities[1+i]
		if i == 3 {
			id = evil.Identities[6] // 4 and 5 serve the cases below
		}
		g := startGossiper(t, fed, id, topic, victim.x.AddrInfo())
		before, faultsBefore := refused(tc.reason), faults(tc.fault)
		if err := g.publish(g.sign(g.next(), tc.data)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		waitFor(t, 5*time.Second, tc.name+" refused and its sender cut off", func() bool {
			return refused(tc.reason) == before+1 && faults(tc.fault) == faultsBefore+1
		})
		waitBackedOff(t, victim, g.h.ID())
	}

	// 3. Another author: a stranger's (validly signed, relayed by a member), then
	// alpha's (signed by the member itself).
	forger := startGossiper(t, fed, evil.Identities[4], topic, victim.x.AddrInfo())
	strangerKey, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	strangerID, err := peer.IDFromPrivateKey(strangerKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := forger.publish(signedMessage(t, strangerKey, strangerID, 1, topic, announcement(fed.ID, claims(0)))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a stranger's announcement refused", func() bool { return refused("not-member") == 1 })
	alphaID, err := peer.IDFromPrivateKey(fed.Identity("alpha"))
	if err != nil {
		t.Fatal(err)
	}
	if err := forger.publish(signedMessage(t, forger.key, alphaID, 1, topic, announcement(fed.ID, claims(0)))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "a forged author refused and the forger cut off", func() bool {
		return refused("bad-signature") == 1 && faults("gossip-bad-signature") == 1
	})
	waitBackedOff(t, victim, forger.h.ID())

	// 4. Replays, another federation, the victim's own id as author: refused,
	// counted, nobody cut off.
	rp := startGossiper(t, fed, evil.Identities[5], topic, victim.x.AddrInfo())
	base := rp.seq
	rp.seq += 100
	first := rp.sign(rp.next(), announcement(fed.ID, []schema.Head{{Origin: "alpha", Epoch: alphaHead.Epoch, Seq: 7, Hash: alphaLog[6].Hash()}}))
	got := received()
	if err := rp.publish(first); err != nil {
		t.Fatal(err)
	}
	// bravo announces too: this only paces the test. That the first was
	// accepted shows below: the older seqnos after it are replays.
	waitFor(t, 5*time.Second, "an announcement accepted", func() bool { return received() > got })
	// Exact copies: gossipsub drops them as duplicates before validation (had
	// they been validated, they would count as replays too).
	copies := make([][]byte, 50)
	for i := range copies {
		copies[i] = first
	}
	if err := rp.publish(copies...); err != nil {
		t.Fatal(err)
	}
	// Older seqnos, freshly signed: replays of what came before.
	replayBefore, overloadedBefore := refused("stale"), refused("overloaded")
	for i := range 10 {
		var msgs [][]byte
		for j := range 5 {
			msgs = append(msgs, rp.sign(base+uint64(1+5*i+j), announcement(fed.ID, claims(0))))
		}
		if err := rp.publish(msgs...); err != nil {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	waitFor(t, 5*time.Second, "50 replays refused", func() bool {
		return refused("stale")-replayBefore+refused("overloaded")-overloadedBefore >= 50
	})
	// Some may have met a full validation queue (what is left of the flood);
	// and one of bravo's announcements may be overtaken by its next one.
	if n := refused("stale") - replayBefore; n < 40 {
		t.Errorf("%v refused as stale, want most of the 50 replays", n)
	}
	otherBefore := refused("other-federation")
	if err := rp.publish(rp.sign(rp.next(), announcement("another-federation", claims(0)))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "another federation's announcement refused", func() bool { return refused("other-federation") == otherBefore+1 })
	if err := rp.publish(signedMessage(t, rp.key, victim.x.ID(), rp.next(), topic, announcement(fed.ID, claims(0)))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "an announcement claiming the victim as author refused", func() bool { return refused("self-origin") == 1 })
	if ps := peerStatusByID(victim, rp.h.ID()); ps == nil || ps.BackedOffUntil != nil || !ps.Connected {
		t.Errorf("the replaying peer was cut off: %+v", ps)
	}

	// 5. A host outside the bundle cannot even reach the topic.
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.Connect(ctx, victim.x.AddrInfo()) // may report success
	if s, err := h.NewStream(ctx, victim.x.ID(), meshsubID); err == nil {
		s.Reset()
		t.Fatal("a stranger opened a gossipsub stream")
	}
	waitFor(t, 5*time.Second, "the stranger refused at the gater", func() bool {
		return metricValue(t, victim.reg, "liandong_sync_refused_connections_total", "direction", "inbound", "reason", "not-member") >= 1
	})

	// The victim answered charlie throughout, promptly.
	stopBackground()
	if probeErr != nil {
		t.Fatalf("a ping to the victim failed during the attacks: %v", probeErr)
	}
	if len(rtts) == 0 {
		t.Fatal("no ping answered")
	}
	sorted := slices.Sorted(slices.Values(rtts))
	t.Logf("pings answered during the attacks: %d, p50 %v, max %v (before: max %v of 10)", len(sorted), sorted[len(sorted)/2], sorted[len(sorted)-1], baseline)
	// Normal time: well within a request's timeout (3 s in these tests), so no
	// peer's request fails, on a shared 2-core machine under the race detector
	// (where each signature the flood makes the victim check costs ~1 ms).
	if worst := sorted[len(sorted)-1]; worst > 2*time.Second {
		t.Errorf("slowest ping answered in %v, want under 2s", worst)
	}

	// bravo's entries, written all along, arrive; its announcements still do.
	waitFor(t, 10*time.Second, "bravo's log", func() bool { return victimNode.Len("bravo") == len(bravoLog) })
	if got, want := exchangetest.Digest(victimNode.Log("bravo")), exchangetest.Digest(bravoLog); got != want {
		t.Fatalf("victim's bravo log %s, want %s", got, want)
	}
	got = received()
	write(t, bravoNode, authorBravo, 1)
	nudge(t, "an announcement from bravo after the attacks", bravo, func() bool { return received() > got })

	// Nothing applied that should not be.
	if got, want := exchangetest.Digest(victimNode.Log("alpha")), exchangetest.Digest(alphaLog); got != want {
		t.Errorf("victim's alpha log %s, want %s", got, want)
	}
	if got, want := exchangetest.Digest(victimNode.Log("victim")), exchangetest.Digest(ownLog); got != want {
		t.Errorf("victim's own log %s, want %s", got, want)
	}
	if n := victimNode.Len("zzz"); n != 0 {
		t.Errorf("victim holds %d entries of a non-member", n)
	}
	if v := metricValue(t, victim.reg, "liandong_sync_entries_applied_total", "origin", "alpha"); v != 5 {
		t.Errorf("applied alpha = %v, want 5", v)
	}
	for _, ps := range victim.x.Status().Peers {
		if ps.PeerID == strangerID.String() || ps.PeerID == h.ID().String() {
			t.Errorf("a stranger listed in status: %+v", ps)
		}
	}

	// Counted by reason, and only the guilty cut off.
	for reason, want := range map[string]float64{"gossip-flood": 1, "gossip-malformed": 3, "gossip-oversized": 1,
		"gossip-bad-signature": 1, "protocol-violation": 0, "malformed-frame": 0} {
		if v := faults(reason); v != want {
			t.Errorf("victim's %s faults = %v, want %v", reason, v, want)
		}
	}
	for _, p := range []*peerNode{victim, bravo} {
		other := "bravo"
		if p == bravo {
			other = "victim"
		}
		if ps := peerStatus(p, other); ps.BackedOffUntil != nil || !ps.Connected {
			t.Errorf("%s cut off %s: %+v", p.name, other, ps)
		}
	}
	if ps := peerStatus(victim, "charlie"); ps.BackedOffUntil != nil || !ps.Connected {
		t.Errorf("victim cut off charlie: %+v", ps)
	}
	for _, reason := range []string{"gossip-flood", "gossip-malformed", "gossip-oversized", "gossip-bad-signature"} {
		if v := metricValue(t, bravo.reg, "liandong_sync_peer_faults_total", "reason", reason); v != 0 {
			t.Errorf("bravo counted %v %s faults (it only heard what the victim relayed)", v, reason)
		}
	}
	for _, reason := range []string{"rate-limited", "malformed", "not-announcement", "oversized", "not-member",
		"bad-signature", "stale", "other-federation", "self-origin", "overloaded", "backed-off"} {
		t.Logf("refused %s: %v", reason, refused(reason))
	}
	if problems, err := testutil.GatherAndLint(victim.reg); err != nil || len(problems) > 0 {
		t.Errorf("metrics lint: %v %+v", err, problems)
	}
}

// nudge makes p announce (Notify) every 500 ms until cond holds, for at most
// 10 s: gossip may drop an announcement made before its mesh has formed.
func nudge(t *testing.T, what string, p *peerNode, cond func() bool) {
	t.Helper()
	last := time.Time{}
	waitFor(t, 10*time.Second, what, func() bool {
		if time.Since(last) > 500*time.Millisecond {
			p.x.Notify()
			last = time.Now()
		}
		return cond()
	})
}

// waitBackedOff waits until p shows in x's status as backed off and disconnected.
func waitBackedOff(t *testing.T, x *peerNode, p peer.ID) {
	t.Helper()
	waitFor(t, 5*time.Second, p.String()+" backed off and disconnected", func() bool {
		ps := peerStatusByID(x, p)
		return ps != nil && ps.BackedOffUntil != nil && !ps.Connected
	})
}

func peerStatusByID(x *peerNode, p peer.ID) *exchange.PeerStatus {
	for _, ps := range x.x.Status().Peers {
		if ps.PeerID == p.String() {
			return &ps
		}
	}
	return nil
}

// pingOnce asks p for a Pong on a fresh sync stream and returns how long it took.
func pingOnce(hz *harness, p peer.ID) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	s, err := hz.h.NewStream(ctx, p, wire.ProtocolID)
	if err != nil {
		return 0, err
	}
	defer s.Close()
	if _, err := s.Write(wire.AppendFrame(nil, &wire.Ping{Nonce: 42})); err != nil {
		return 0, err
	}
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	body, err := wire.ReadFrame(bufio.NewReader(s), 1<<20)
	if err != nil {
		return 0, err
	}
	m, err := wire.Decode(body)
	if err != nil {
		return 0, err
	}
	if pong, ok := m.(*wire.Pong); !ok || pong.Nonce != 42 {
		return 0, errors.New("ping answered with something else than its pong")
	}
	return time.Since(start), nil
}

// meshsubID is the gossipsub protocol the raw gossiper speaks.
const meshsubID = "/meshsub/1.1.0"

// gossiper is a member peer that speaks gossipsub by hand, so it can send what
// an honest gossipsub never would: thousands of messages in one RPC, malformed,
// oversized, with forged authors and replayed seqnos. It is a harness too (it
// answers the victim's sync requests: heads it claims none of, ranges with
// nothing).
type gossiper struct {
	*harness
	t     testing.TB
	key   crypto.PrivKey
	topic string
	s     network.Stream
	seq   uint64 // the last seqno used, as gossipsub counts: from the clock
}

func startGossiper(t testing.TB, fed *exchangetest.Federation, key crypto.PrivKey, topic string, to peer.AddrInfo) *gossiper {
	t.Helper()
	hz := startHarness(t, key, &harness{federation: fed.ID, answer: func(w *bufio.Writer, req *wire.RangeReq) {
		w.Write(wire.AppendFrame(nil, &wire.Batch{Origin: req.Origin, Done: true}))
	}})
	// The victim opens its own gossipsub stream to us: read it to the end.
	hz.h.SetStreamHandler(meshsubID, func(s network.Stream) {
		io.Copy(io.Discard, s)
		s.Reset()
	})
	hz.connect(t, to)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := hz.h.NewStream(ctx, to.ID, meshsubID)
	if err != nil {
		t.Fatalf("open a gossipsub stream: %v", err)
	}
	g := &gossiper{harness: hz, t: t, key: key, topic: topic, s: s, seq: uint64(time.Now().UnixNano())}
	sub := append([]byte{0x08, 0x01}, pbField(nil, 2, []byte(topic))...) // subscribe: true, topicid
	if err := g.write(pbField(nil, 1, sub)); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	return g
}

func (g *gossiper) next() uint64 {
	g.seq++
	return g.seq
}

// sign makes a message of g's own, validly signed.
func (g *gossiper) sign(seq uint64, data []byte) []byte {
	return signedMessage(g.t, g.key, g.h.ID(), seq, g.topic, data)
}

// publish sends msgs in one RPC.
func (g *gossiper) publish(msgs ...[]byte) error {
	var rpc []byte
	for _, m := range msgs {
		rpc = pbField(rpc, 2, m)
	}
	return g.write(rpc)
}

func (g *gossiper) write(rpc []byte) error {
	if err := g.s.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	_, err := g.s.Write(append(binary.AppendUvarint(nil, uint64(len(rpc))), rpc...))
	return err
}

// signedMessage encodes a gossipsub message (protobuf pubsub.pb.Message) with
// author from, signed by key as gossipsub signs: valid only if key is from's.
func signedMessage(t testing.TB, key crypto.PrivKey, from peer.ID, seq uint64, topic string, data []byte) []byte {
	var m []byte
	m = pbField(m, 1, []byte(from))
	m = pbField(m, 2, data)
	m = pbField(m, 3, binary.BigEndian.AppendUint64(nil, seq))
	m = pbField(m, 4, []byte(topic))
	sig, err := key.Sign(append([]byte(pubsub.SignPrefix), m...))
	if err != nil {
		t.Fatal(err)
	}
	return pbField(m, 5, sig)
}

// pbField appends a length-delimited protobuf field.
func pbField(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}
