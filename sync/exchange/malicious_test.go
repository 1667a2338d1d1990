package exchange_test

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"testing"
	"time"

	"liandong/schema"
	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// TestMaliciousPeers: peers serving tampered, reordered, forked, oversized or
// garbled answers, or pushing the victim's own log, are cut off, backed off and
// counted; nothing they sent is applied; the honest log still arrives.
func TestMaliciousPeers(t *testing.T) {
	checkLeaks(t)
	fed, evil := newFedWithEvil(t, 6, "alpha", "victim", "bravo")
	alpha := fed.Author("alpha")
	alphaLog, err := alpha.NextN(10)
	if err != nil {
		t.Fatal(err)
	}
	victimNode := exchangetest.NewNode("victim", fed.Bundle)
	if err := victimNode.Append(alphaLog[:5]...); err != nil {
		t.Fatal(err)
	}
	ownLog := write(t, victimNode, fed.Author("victim"), 3)
	var frameLimit int
	victim := startExchange(t, fed, "victim", victimNode, func(c *exchange.Config) { frameLimit = c.MaxFrameBytes })
	claim := []schema.Head{{Origin: "alpha", Epoch: "e1", Seq: 10, Hash: alphaLog[9].Hash()}}
	batch := func(w *bufio.Writer, es ...*schema.Entry) {
		w.Write(wire.AppendFrame(nil, &wire.Batch{Origin: "alpha", Done: true, Entries: es}))
	}

	// tampered: entry 10's record altered after signing (re-canonicalised, so it
	// decodes; the signature no longer matches).
	p := alphaLog[9].EntryPayload
	rec := p.Record.Clone()
	rec.Body = json.RawMessage(`{"title":"篡改的成果"}`)
	p.Record = rec
	tampered, err := schema.NewEntry(p)
	if err != nil {
		t.Fatal(err)
	}
	tampered.Sig = alphaLog[9].Sig

	// fork: a second, validly signed entry 5.
	fp := alphaLog[4].EntryPayload
	frec := fp.Record.Clone()
	frec.Body = json.RawMessage(`{"title":"另一个版本"}`)
	fp.Record = frec
	forked, err := alpha.Sign(fp)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		name     string
		reason   string
		rejected float64
		answer   func(w *bufio.Writer, req *wire.RangeReq)
		push     *wire.Push
	}{
		{name: "tampered", reason: "bad-signature", rejected: 5, answer: func(w *bufio.Writer, _ *wire.RangeReq) {
			batch(w, append(append([]*schema.Entry(nil), alphaLog[5:9]...), tampered)...)
		}},
		{name: "reordered", reason: "reorder", rejected: 5, answer: func(w *bufio.Writer, _ *wire.RangeReq) {
			batch(w, alphaLog[5], alphaLog[7], alphaLog[6], alphaLog[8], alphaLog[9])
		}},
		{name: "fork", reason: "fork", rejected: 1, answer: func(w *bufio.Writer, _ *wire.RangeReq) {
			batch(w, forked)
		}},
		{name: "oversized", reason: "oversized-frame", answer: func(w *bufio.Writer, _ *wire.RangeReq) {
			w.Write(binary.AppendUvarint(nil, uint64(frameLimit)+1))
			w.Write(make([]byte, 1024))
		}},
		{name: "garbled", reason: "malformed-frame", answer: func(w *bufio.Writer, _ *wire.RangeReq) {
			w.Write(wire.AppendFrame(nil, &wire.Ping{Nonce: 1})[:1])
			w.Write([]byte{0x07, 0xff, 0xff, 0xff})
		}},
		{name: "own-origin-push", reason: "own-origin", rejected: 3,
			push: &wire.Push{Origin: "victim", Entries: ownLog}},
	}
	for i, tc := range cases {
		hz := startHarness(t, evil.Identities[i], &harness{federation: fed.ID, claims: claim, answer: tc.answer})
		if tc.push != nil {
			hz.pushTo(t, victim.x.AddrInfo(), tc.push)
		} else {
			hz.connect(t, victim.x.AddrInfo()) // the victim asks for heads, then pulls
		}
		waitFor(t, 5*time.Second, tc.name+" counted", func() bool {
			return metricValue(t, victim.reg, "liandong_sync_peer_faults_total", "reason", tc.reason) == 1
		})
		if got := metricValue(t, victim.reg, "liandong_sync_entries_rejected_total", "reason", tc.reason); got != tc.rejected {
			t.Errorf("%s: rejected entries %v, want %v", tc.name, got, tc.rejected)
		}
		// The fault is counted before the connection is closed: wait for both.
		waitFor(t, 5*time.Second, tc.name+" backed off and disconnected", func() bool {
			for _, ps := range victim.x.Status().Peers {
				if ps.PeerID == hz.h.ID().String() && ps.BackedOffUntil != nil && !ps.Connected {
					return true
				}
			}
			return false
		})
		if hz.canOpenStream(victim.x.AddrInfo()) {
			t.Errorf("%s: backed-off peer opened a stream", tc.name)
		}
		if got, want := exchangetest.Digest(victimNode.Log("alpha")), exchangetest.Digest(alphaLog[:5]); got != want {
			t.Fatalf("%s: victim's alpha log is %s, want %s (untouched)", tc.name, got, want)
		}
		if got, want := exchangetest.Digest(victimNode.Log("victim")), exchangetest.Digest(ownLog); got != want {
			t.Fatalf("%s: victim's own log is %s, want %s", tc.name, got, want)
		}
	}
	if v := metricValue(t, victim.reg, "liandong_sync_forks_detected_total", "origin", "alpha"); v != 1 {
		t.Errorf("forks detected = %v, want 1", v)
	}
	if v := metricValue(t, victim.reg, "liandong_sync_entries_applied_total", "origin", "alpha"); v != 0 {
		t.Errorf("applied before the honest peer came: %v", v)
	}

	// An honest peer with the whole log: the victim catches up from it.
	bravo := connectHolder(t, fed, victim, "bravo", alphaLog, nil)
	waitFor(t, 5*time.Second, "honest log from bravo", func() bool { return victimNode.Len("alpha") == 10 })
	if got, want := exchangetest.Digest(victimNode.Log("alpha")), exchangetest.Digest(alphaLog); got != want {
		t.Fatalf("victim's alpha log %s, want %s", got, want)
	}
	// The metric is counted just after the node has the entries.
	waitMetric(t, 5*time.Second, victim.reg, 5, "liandong_sync_entries_applied_total", "origin", "alpha")
	for _, ps := range victim.x.Status().Peers {
		if ps.Member == "bravo" && (ps.BackedOffUntil != nil || !ps.Connected) {
			t.Errorf("honest peer affected: %+v", ps)
		}
	}
	if v := metricValue(t, bravo.reg, "liandong_sync_peer_faults_total", "reason", "malformed-frame"); v != 0 {
		t.Errorf("bravo counted faults: %v", v)
	}
}
