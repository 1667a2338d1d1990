package exchange_test

import (
	"bufio"
	"encoding/json"
	"runtime"
	"testing"
	"time"

	"liandong/auth"
	"liandong/schema"
	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// TestAttackChainFaults adds to TestMaliciousPeers the chain faults it does not
// script: a validly signed entry whose prev_hash breaks the chain, a gap, a seq
// repeated in one batch, an entry signed by a key outside the bundle, one signed
// by a key outside its validity window, and one of another origin in the batch
// (refused by the frame decoder as malformed).
// Each is refused, counted by reason, its peer cut off and backed off, and
// nothing of it applied; a replay of entries already held (pulled or pushed) is
// not a fault and changes nothing. The honest log then arrives whole.
func TestAttackChainFaults(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 10, "alpha", "victim", "bravo")
	alpha := fed.Author("alpha")
	alphaLog, err := alpha.NextN(10)
	if err != nil {
		t.Fatal(err)
	}
	evilLog, err := fed.Author("evil").NextN(6)
	if err != nil {
		t.Fatal(err)
	}

	// The victim's bundle also lists a retired record key of alpha.
	retired, err := auth.GenerateKey("alpha-rec")
	if err != nil {
		t.Fatal(err)
	}
	bundle := cloneBundle(t, fed.Bundle)
	retiredAt := time.Now().Add(-time.Hour)
	for i := range bundle.Members {
		if bundle.Members[i].ID == "alpha" {
			k := retired.BundleKey(time.Now().Add(-48 * time.Hour))
			k.NotAfter = &retiredAt
			bundle.Members[i].RecordKeys = append(bundle.Members[i].RecordKeys, k)
		}
	}
	victimNode := exchangetest.NewNode("victim", bundle)
	if err := victimNode.Append(alphaLog[:5]...); err != nil {
		t.Fatal(err)
	}
	victim := startExchange(t, fed, "victim", victimNode, nil)
	claim := []schema.Head{{Origin: "alpha", Epoch: "e1", Seq: 10, Hash: alphaLog[9].Hash()}}
	batch := func(w *bufio.Writer, es ...*schema.Entry) {
		w.Write(wire.AppendFrame(nil, &wire.Batch{Origin: "alpha", Done: true, Entries: es}))
	}
	// resign signs entry 6's payload, edited, with key.
	resign := func(key *auth.KeyPair, edit func(p *schema.EntryPayload)) *schema.Entry {
		p := alphaLog[5].EntryPayload
		p.Record = p.Record.Clone()
		edit(&p)
		a := exchangetest.NewAuthor("alpha", key)
		e, err := a.Sign(p)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	brokenChain := resign(fed.Members["alpha"].RecordKey, func(p *schema.EntryPayload) { p.PrevHash = alphaLog[2].Hash() })
	outsider, _ := auth.GenerateKey("alpha-rec")
	unknownKey := resign(outsider, func(p *schema.EntryPayload) {})
	expiredKey := resign(retired, func(p *schema.EntryPayload) { p.SignedAt = time.Now().UTC().Truncate(time.Millisecond) })

	cases := []struct {
		name     string
		reason   string
		rejected float64
		answer   func(w *bufio.Writer, req *wire.RangeReq)
		// relayed: validly signed by alpha, out of its key's window: what
		// a peer that ran an earlier bundle may hold honestly. Refused and
		// counted, its peer not cut off (TestRemovedOriginTailDoesNotCutOffRelays).
		relayed bool
	}{
		{name: "broken chain", reason: string(auth.ReasonBadPrevHash), rejected: 1, answer: func(w *bufio.Writer, _ *wire.RangeReq) { batch(w, brokenChain) }},
		{name: "gap", reason: string(auth.ReasonGap), rejected: 3, answer: func(w *bufio.Writer, _ *wire.RangeReq) { batch(w, alphaLog[7:10]...) }},
		{name: "duplicate", reason: string(auth.ReasonDuplicate), rejected: 3, answer: func(w *bufio.Writer, _ *wire.RangeReq) {
			batch(w, alphaLog[5], alphaLog[6], alphaLog[6])
		}},
		{name: "unknown key", reason: string(auth.ReasonUnknownKey), rejected: 1, answer: func(w *bufio.Writer, _ *wire.RangeReq) { batch(w, unknownKey) }},
		{name: "key outside its validity window", reason: string(auth.ReasonKeyNotValidAtTime), rejected: 1, relayed: true, answer: func(w *bufio.Writer, _ *wire.RangeReq) { batch(w, expiredKey) }},
		// The frame decoder refuses a batch whose entries are not all of its origin.
		{name: "entry of another origin", reason: "malformed-frame", rejected: 0, answer: func(w *bufio.Writer, _ *wire.RangeReq) { batch(w, evilLog[5]) }},
	}
	for i, tc := range cases {
		hz := startHarness(t, evil.Identities[i], &harness{federation: fed.ID, claims: claim, answer: tc.answer})
		hz.connect(t, victim.x.AddrInfo())
		if tc.relayed {
			waitFor(t, 10*time.Second, tc.name+" refused", func() bool {
				return metricValue(t, victim.reg, "liandong_sync_entries_rejected_total", "reason", tc.reason) == tc.rejected
			})
			time.Sleep(500 * time.Millisecond)
			if got := metricValue(t, victim.reg, "liandong_sync_peer_faults_total", "reason", tc.reason); got != 0 {
				t.Errorf("%s: its relay cut off %v times", tc.name, got)
			}
			if got, want := exchangetest.Digest(victimNode.Log("alpha")), exchangetest.Digest(alphaLog[:5]); got != want {
				t.Fatalf("%s: victim's alpha log changed", tc.name)
			}
			continue
		}
		waitFor(t, 10*time.Second, tc.name+" counted", func() bool {
			return metricValue(t, victim.reg, "liandong_sync_peer_faults_total", "reason", tc.reason) == 1
		})
		if got := metricValue(t, victim.reg, "liandong_sync_entries_rejected_total", "reason", tc.reason); got != tc.rejected {
			t.Errorf("%s: rejected entries %v, want %v", tc.name, got, tc.rejected)
		}
		waitFor(t, 10*time.Second, tc.name+" backed off and disconnected", func() bool {
			for _, ps := range victim.x.Status().Peers {
				if ps.PeerID == hz.h.ID().String() && ps.BackedOffUntil != nil && !ps.Connected {
					return true
				}
			}
			return false
		})
		if got, want := exchangetest.Digest(victimNode.Log("alpha")), exchangetest.Digest(alphaLog[:5]); got != want {
			t.Fatalf("%s: victim's alpha log changed", tc.name)
		}
	}

	// Replays of held entries, pulled and pushed: nothing applied, nobody punished.
	faults := func() float64 {
		var sum float64
		for _, r := range append(auth.ChainReasons, "oversized-frame", "malformed-frame", "protocol-violation", "fork", "own-origin") {
			sum += metricValue(t, victim.reg, "liandong_sync_peer_faults_total", "reason", string(r))
		}
		return sum
	}
	before := faults()
	applies := victimNode.ApplyCalls()
	replay := startHarness(t, evil.Identities[len(cases)], &harness{federation: fed.ID,
		claims: []schema.Head{{Origin: "alpha", Epoch: "e1", Seq: 5, Hash: alphaLog[4].Hash()}},
		answer: func(w *bufio.Writer, _ *wire.RangeReq) { batch(w, alphaLog[:5]...) }})
	replay.pushTo(t, victim.x.AddrInfo(), &wire.Push{Origin: "alpha", Entries: alphaLog[1:4]})
	time.Sleep(time.Second) // a few anti-entropy rounds of the victim with the replaying peer
	if got := faults(); got != before {
		t.Errorf("a replay of held entries counted as a fault (%v → %v)", before, got)
	}
	if got := victimNode.ApplyCalls(); got != applies {
		t.Errorf("a replay of held entries was applied (%d → %d apply calls)", applies, got)
	}
	if got, want := exchangetest.Digest(victimNode.Log("alpha")), exchangetest.Digest(alphaLog[:5]); got != want {
		t.Fatal("a replay changed the victim's alpha log")
	}

	// An honest peer: the victim takes the rest of the log from it.
	connectHolder(t, fed, victim, "bravo", alphaLog, nil)
	waitFor(t, 10*time.Second, "honest log from bravo", func() bool { return victimNode.Len("alpha") == 10 })
	if got, want := exchangetest.Digest(victimNode.Log("alpha")), exchangetest.Digest(alphaLog); got != want {
		t.Fatalf("victim's alpha log %s, want %s", got, want)
	}
	// The metric is counted after the node has the entries: wait for it too.
	waitFor(t, 5*time.Second, "applied counted", func() bool {
		return metricValue(t, victim.reg, "liandong_sync_entries_applied_total", "origin", "alpha") >= 5
	})
	if v := metricValue(t, victim.reg, "liandong_sync_entries_applied_total", "origin", "alpha"); v != 5 {
		t.Errorf("applied alpha = %v, want 5 (each entry once)", v)
	}
}

func cloneBundle(t *testing.T, b *auth.Bundle) *auth.Bundle {
	t.Helper()
	js, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	var c auth.Bundle
	if err := json.Unmarshal(js, &c); err != nil {
		t.Fatal(err)
	}
	return &c
}

// TestAttackStreamFlood: a member's peer opens hundreds of sync streams at once
// and holds them. The resource manager admits a bounded number (16 inbound per
// peer and protocol), the victim's goroutines stay bounded, held streams are
// closed by the request timeout, and an honest peer's log still arrives.
func TestAttackStreamFlood(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 1, "alpha", "victim", "bravo")
	alphaLog, err := fed.Author("alpha").NextN(50)
	if err != nil {
		t.Fatal(err)
	}
	victimNode := exchangetest.NewNode("victim", fed.Bundle)
	victim := startExchange(t, fed, "victim", victimNode, func(c *exchange.Config) { c.RequestTimeout = 2 * time.Second })
	hz := startHarness(t, evil.Identities[0], &harness{federation: fed.ID})
	hz.connect(t, victim.x.AddrInfo())
	time.Sleep(300 * time.Millisecond)
	base := runtime.NumGoroutine()

	const flood = 400
	opened := hz.holdStreams(victim.x.ID(), flood)
	during := runtime.NumGoroutine()
	t.Logf("%d of %d streams opened on the flooding side (the victim resets those over its limits); goroutines %d → %d", len(opened), flood, base, during)
	if during > base+200 {
		t.Errorf("goroutines grew from %d to %d under a flood of %d streams", base, during, flood)
	}

	// The honest peer is served while the flood holds its streams.
	connectHolder(t, fed, victim, "bravo", alphaLog, nil)
	waitFor(t, 15*time.Second, "honest log during the flood", func() bool { return victimNode.Len("alpha") == 50 })

	// Held streams end with the request timeout; goroutines come back.
	waitFor(t, 15*time.Second, "goroutines back after the flood", func() bool {
		return runtime.NumGoroutine() <= base+60
	})
	for _, s := range opened {
		s.Reset()
	}
	waitFor(t, 5*time.Second, "applied counted", func() bool {
		return metricValue(t, victim.reg, "liandong_sync_entries_applied_total", "origin", "alpha") >= 50
	})
	if v := metricValue(t, victim.reg, "liandong_sync_entries_applied_total", "origin", "alpha"); v != 50 {
		t.Errorf("applied alpha = %v, want 50", v)
	}
}

// TestAttackBundleClaimNoShield: entries under a key the victim's bundle does
// not list are not held against a peer that announces a newer bundle, as a key
// rotation may reach it first; but a member that merely announces one, and
// offers no newer bundle when asked, is cut off for them like anyone else.
func TestAttackBundleClaimNoShield(t *testing.T) {
	checkLeaks(t)
	for _, tc := range []struct {
		name    string
		offer   func(fed *exchangetest.Federation) []byte // nil: no answer
		outcome string                                    // of the fetch, if answered
	}{
		{"does not answer", nil, ""},
		{"offers garbage", func(*exchangetest.Federation) []byte { return []byte("{}") }, "refused"},
		// Installs as a no-op: less than it announced.
		{"offers our own bundle", func(fed *exchangetest.Federation) []byte { return signBundle(t, fed.Bundle, fed.Root) }, "installed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fed, evil := newFedWithEvil(t, 1, "alpha", "victim")
			k, err := auth.GenerateKey("forged")
			if err != nil {
				t.Fatal(err)
			}
			forged, err := exchangetest.NewAuthor("alpha", k).NextN(5)
			if err != nil {
				t.Fatal(err)
			}
			victim := startExchange(t, fed, "victim", nil, nil)
			claims := []schema.Head{{Origin: "alpha", Epoch: forged[4].Epoch, Seq: 5, Hash: forged[4].Hash()}}
			var offer []byte
			if tc.offer != nil {
				offer = tc.offer(fed)
			}
			hz := startHarness(t, evil.Identities[0], &harness{federation: fed.ID, claims: claims, trust: offer,
				headsAnswer: func(*wire.Heads) *wire.Heads {
					return &wire.Heads{Federation: fed.ID, BundleVersion: 1 << 60, Heads: claims, Digest: wire.HeadsDigest(claims)}
				},
				answer: func(w *bufio.Writer, _ *wire.RangeReq) {
					w.Write(wire.AppendFrame(nil, &wire.Batch{Origin: "alpha", Done: true, Entries: forged}))
				}})
			hz.connect(t, victim.x.AddrInfo())
			waitFor(t, 10*time.Second, "evil cut off for unknown keys", func() bool {
				return metricValue(t, victim.reg, "liandong_sync_peer_faults_total", "reason", string(auth.ReasonUnknownKey)) >= 1 &&
					peerStatus(victim, "evil").BackedOffUntil != nil
			})
			if n := victim.node.Len("alpha"); n != 0 {
				t.Errorf("%d forged entries applied", n)
			}
			if tc.outcome != "" {
				if v := metricValue(t, victim.reg, "liandong_sync_trust_bundles_total", "outcome", tc.outcome); v < 1 {
					t.Errorf("trust bundle fetches %s = %v, want the offer counted", tc.outcome, v)
				}
			}
		})
	}
}
