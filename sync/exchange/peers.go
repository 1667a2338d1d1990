package exchange

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"liandong/auth"
	"liandong/schema"
	"liandong/sync/wire"
)

// peerState is what the exchange knows of one peer. Guarded by Exchange.mu.
type peerState struct {
	// refused holds, by origin, where this peer's entries were refused as
	// signed outside the bundle (outOfBundleLocked); one an origin of the
	// bundle at most.
	refused     map[string]refusal
	id          peer.ID
	member      string
	addrs       []multiaddr.Multiaddr // from the bundle
	connected   bool
	since       time.Time // connected since
	lastContact time.Time // last answer to a request of ours
	rtt         time.Duration
	lastErr     string
	lastErrAt   time.Time
	heads       map[string]schema.Head // what the peer last said it holds
	headsAt     time.Time
	// pushClaims holds the origins whose claim in heads a push of the peer
	// made (pullPushGap) and no heads of its have replaced since. A full
	// snapshot that is older than that push (a heads answer, request or
	// announcement written before it, read after) does not lower it in its
	// epoch while it is still ahead of what this node holds (noteHeadsAnd).
	pushClaims map[string]bool
	// fullHeads is set once heads holds a full snapshot of the peer's (a
	// heads exchange or gossip announcement), and unset when punish clears
	// them. headsAt alone does not tell: a push's claim of one origin sets
	// it too, and own-log recovery must hear how far the log went.
	fullHeads bool
	// theirs is the digest of the peer's heads that heads holds (zero when
	// heads was changed since, or is unknown); a heads request sends it as
	// Known so the peer can leave its heads out when they are unchanged.
	theirs schema.Hash
	// sent is the digest of this node's heads the peer holds, as far as we
	// know; our heads requests leave the heads out while it is current.
	sent   schema.Hash
	bundle uint64 // the trust bundle version the peer last announced
	// offerShortUnder is the version of our bundle when a bundle fetch from
	// the peer last failed, was refused, or brought less than the peer
	// announced (zero: never; no bundle has version 0). While we still hold
	// that version the peer's announcements are not believed (rotationExempt).
	offerShortUnder uint64

	// frameBytes is the frame limit the peer's range requests gave (version
	// 3) since it connected, 0 while unknown: pushes keep under it.
	frameBytes int

	pushedSeq uint64 // this centre's log: the last seq pushed to the peer
	pushedAt  time.Time
	// pushedUsAt is when the peer last pushed its own centre's entries to
	// this node: a pull of that centre waits PushGrace for its push only
	// while this is recent (awaitPushLocked).
	pushedUsAt time.Time
	// pushStream carries pushes to the peer (pushConn); used only by the push
	// worker while pushing, closed by closeIdlePushStreams when idle.
	pushStream *conn

	dialing, pinging, exchanging, pushing, pushAgain bool
}

// busyLocked reports whether a goroutine is working with the peer (dialing,
// pinging, exchanging heads, pushing), which holds its state.
func (ps *peerState) busyLocked() bool {
	return ps.dialing || ps.pinging || ps.exchanging || ps.pushing || ps.pushStream != nil
}

func (x *Exchange) peerLocked(p peer.ID, member string) *peerState {
	ps, ok := x.peers[p]
	if !ok {
		ps = &peerState{id: p, heads: make(map[string]schema.Head)}
		x.peers[p] = ps
	}
	if member != "" {
		ps.member = member
	}
	return ps
}

// stalledLocked reports whether a connected peer has answered nothing for
// StallAfter (counting from the connection when it never answered).
func (x *Exchange) stalledLocked(ps *peerState, now time.Time) bool {
	if !ps.connected {
		return false
	}
	last := ps.lastContact
	if last.Before(ps.since) {
		last = ps.since
	}
	return now.Sub(last) > x.cfg.StallAfter
}

// connectedPeers lists the admitted peers with a connection.
func (x *Exchange) connectedPeers() []peer.ID {
	var out []peer.ID
	for _, p := range x.host.Network().Peers() {
		if _, ok := x.admit(p); ok {
			out = append(out, p)
		}
	}
	return out
}

// contact records a successful answer from p.
func (x *Exchange) contact(p peer.ID, rtt time.Duration) {
	x.mu.Lock()
	defer x.mu.Unlock()
	ps := x.peerLocked(p, "")
	ps.lastContact = x.now()
	if rtt > 0 {
		ps.rtt = rtt
	}
}

// peerError records a failure talking to p that is not p's fault as far as we
// can tell (a timeout, a reset, a refused connection).
func (x *Exchange) peerError(p peer.ID, err error) {
	x.mu.Lock()
	ps := x.peerLocked(p, "")
	ps.lastErr = err.Error()
	ps.lastErrAt = x.now()
	member := ps.member
	x.mu.Unlock()
	x.log.Debug("sync request failed", "peer", p.String(), "member", member, "err", err)
}

// faultError is a peer's breach of the protocol: it is cut off for it.
type faultError struct {
	reason  string
	entries int // entries refused with it
	err     error
}

func (e *faultError) Error() string { return fmt.Sprintf("%s: %v", e.reason, e.err) }
func (e *faultError) Unwrap() error { return e.err }

func fault(reason string, entries int, format string, args ...any) error {
	return &faultError{reason: reason, entries: entries, err: fmt.Errorf(format, args...)}
}

// handleErr sorts an error from talking to p: a fault cuts p off; anything else
// is recorded as its last error.
func (x *Exchange) handleErr(p peer.ID, err error) {
	var f *faultError
	if errors.As(err, &f) {
		if v, ok := x.rotationExempt(p); ok && f.reason == string(auth.ReasonUnknownKey) {
			// Signed with a key our bundle does not list yet, by a peer that
			// holds a newer bundle: most likely a key rotation that reached it
			// first. Refuse the entries without cutting the peer off, and fetch
			// the bundle; the next pull verifies them.
			x.m.rejected.WithLabelValues(f.reason).Add(float64(f.entries))
			x.peerError(p, err)
			x.noteBundleVersion(p, v)
			return
		}
		x.punish(p, f)
		return
	}
	var le *localError
	if errors.As(err, &le) {
		x.log.Error("sync: local node failed", "peer", p.String(), "err", err)
		return
	}
	x.peerError(p, err)
}

// rotationExempt reports the bundle version p announced when it is newer than
// ours and p's offers have not fallen short while we held ours. The version
// is p's word alone: once fetching its bundle failed, or was refused, p's
// entries under keys we do not know are faults again, whatever version it
// announces next (a higher one would otherwise buy it another exemption),
// until our bundle moves on.
func (x *Exchange) rotationExempt(p peer.ID) (uint64, bool) {
	b := x.node.Bundle()
	x.mu.Lock()
	defer x.mu.Unlock()
	ps, ok := x.peers[p]
	if !ok || b == nil || ps.bundle <= b.Version || ps.offerShortUnder == b.Version {
		return 0, false
	}
	return ps.bundle, true
}

// noteOfferShort records that a bundle fetch from p failed, was refused, or
// brought less than p announced, under the bundle held now.
func (x *Exchange) noteOfferShort(p peer.ID) {
	b := x.node.Bundle()
	if b == nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if ps, ok := x.peers[p]; ok {
		ps.offerShortUnder = b.Version
	}
}

// punish counts the fault, backs p off (the gater refuses it until then), forgets
// what p claimed and closes its connections.
func (x *Exchange) punish(p peer.ID, f *faultError) {
	x.m.faults.WithLabelValues(f.reason).Inc()
	if f.entries > 0 {
		x.m.rejected.WithLabelValues(f.reason).Add(float64(f.entries))
	}
	now := x.now()
	until := now.Add(x.cfg.BackoffDuration)
	x.mu.Lock()
	ps := x.peerLocked(p, "")
	ps.lastErr = f.Error()
	ps.lastErrAt = now
	clear(ps.heads)
	clear(ps.pushClaims)
	ps.theirs, ps.sent = schema.Hash{}, schema.Hash{}
	ps.fullHeads = false
	x.backoff[p] = until
	member := ps.member
	x.mu.Unlock()
	if f.reason == reasonFork {
		x.log.Error("FORK: a peer sent a validly signed entry that conflicts with one held; refused, never merged; the origin's operators must investigate",
			"peer", p.String(), "member", member, "err", f.err)
	} else {
		x.log.Warn("peer cut off and backed off for breaking the sync protocol", "peer", p.String(), "member", member, "reason", f.reason,
			"entries_refused", f.entries, "backoff_until", until, "err", f.err)
	}
	x.host.Network().ClosePeer(p)
	x.wakePull() // pull what it failed to deliver from someone else
}

// noteHeads records heads p claims. A full snapshot (heads exchange, gossip)
// replaces what p said before, but for a push's claim still ahead of the
// local head (keptPushClaimsLocked); a partial one (a push) only raises it.
func (x *Exchange) noteHeads(p peer.ID, heads []schema.Head, full bool) {
	x.noteHeadsAnd(p, heads, full, nil)
}

// noteHeadsAnd is noteHeads that also runs andLocked under the same hold of
// x.mu, before the pull scheduler can see the heads.
func (x *Exchange) noteHeadsAnd(p peer.ID, heads []schema.Head, full bool, andLocked func()) {
	b := x.node.Bundle()
	member, _ := x.peerMember(b, p)
	now := x.now()
	x.mu.Lock()
	if andLocked != nil {
		andLocked()
	}
	ps := x.peerLocked(p, member)
	var kept []schema.Head
	if full {
		kept = x.keptPushClaimsLocked(ps)
		clear(ps.heads)
		clear(ps.pushClaims)
		ps.theirs = schema.Hash{}
		ps.fullHeads = true
	}
	for _, h := range heads {
		if h.Seq == 0 || !sendableHead(h) {
			// An epoch past schema.MaxEpochBytes (a node of an older build
			// may claim one) is a claim no entry we take can meet.
			continue
		}
		if _, ok := b.Member(h.Origin); !ok {
			continue
		}
		if old, ok := ps.heads[h.Origin]; ok && !full && old.Epoch == h.Epoch && old.Seq >= h.Seq {
			continue
		}
		ps.heads[h.Origin] = h
		if !full {
			if ps.pushClaims == nil {
				ps.pushClaims = make(map[string]bool)
			}
			ps.pushClaims[h.Origin] = true
		}
	}
	for _, h := range kept {
		// Within an epoch an origin's log only grows: a snapshot below the
		// push's claim (or without the origin) was written before the push
		// and read after it, and taking it would drop the gap the push
		// showed until the next anti-entropy round. Another epoch in the
		// snapshot is news, and replaces it. An origin the bundle no longer
		// lists goes as the snapshot's heads of it do: kept, the claim would
		// outlive every snapshot, and its pull would cut the peer off for
		// entries under a key the bundle does not know.
		if _, ok := b.Member(h.Origin); !ok {
			continue
		}
		if cur, ok := ps.heads[h.Origin]; ok && (cur.Epoch != h.Epoch || cur.Seq >= h.Seq) {
			continue
		}
		ps.heads[h.Origin] = h
		if ps.pushClaims == nil {
			ps.pushClaims = make(map[string]bool)
		}
		ps.pushClaims[h.Origin] = true
	}
	ps.headsAt = now
	x.mu.Unlock()
	x.wakePull()
	x.checkRecovery()
}

// keptPushClaimsLocked returns the claims pushes of ps made that a full
// snapshot of its heads must not lower: those still ahead of the local head
// in its epoch (any epoch while nothing is held), so still asking for a pull.
// Once this node holds them they are left to the snapshot, which is then the
// truer word on the peer (it may have been restored from an older backup
// since; status and the behind gauge show what it says). A claim the peer
// does not serve is lowered by the pull that finds out (lowerClaim).
func (x *Exchange) keptPushClaimsLocked(ps *peerState) []schema.Head {
	var kept []schema.Head
	for origin := range ps.pushClaims {
		h, ok := ps.heads[origin]
		if !ok {
			continue
		}
		local := x.originLocked(origin).local
		if h.Seq > local.Seq && (local.Seq == 0 || h.Epoch == local.Epoch) {
			kept = append(kept, h)
		}
	}
	return kept
}

// noteAllHeads records the full heads of a Heads message from p and, once they
// match its digest, that digest as the one held for p. Heads that do not match
// their digest are a fault: p would otherwise be trusted to leave out heads we
// never held.
func (x *Exchange) noteAllHeads(p peer.ID, h *wire.Heads) error {
	if got := wire.HeadsDigest(h.Heads); got != h.Digest {
		return fault(reasonProtocol, 0, "%d heads with digest %x, they hash to %x", len(h.Heads), h.Digest[:8], got[:8])
	}
	x.noteHeads(p, h.Heads, true)
	x.mu.Lock()
	x.peerLocked(p, "").theirs = h.Digest
	x.mu.Unlock()
	return nil
}

// heldDigest reports whether the heads held for p are those of digest d, and
// counts that as hearing them again when they are.
func (x *Exchange) heldDigest(p peer.ID, d schema.Hash) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	ps := x.peerLocked(p, "")
	if ps.theirs.IsZero() || ps.theirs != d {
		return false
	}
	ps.headsAt = x.now()
	return true
}

// lowerClaim caps what p is believed to hold of origin at h: it served less
// than it claimed, or another epoch. The heads held for p no longer match its
// digest, so the next exchange fetches them whole and p's claim is heard anew.
func (x *Exchange) lowerClaim(p peer.ID, origin string, h schema.Head) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if ps, ok := x.peers[p]; ok {
		ps.theirs = schema.Hash{}
		if old, ok := ps.heads[origin]; ok && (old.Seq > h.Seq || old.Epoch != h.Epoch) {
			// What p served outweighs what its push said: its next heads
			// may lower the claim further.
			delete(ps.pushClaims, origin)
			if h.Seq == 0 {
				delete(ps.heads, origin)
			} else {
				ps.heads[origin] = h
			}
		}
	}
}

func (x *Exchange) startPing(p peer.ID) {
	x.mu.Lock()
	ps := x.peerLocked(p, "")
	if ps.pinging {
		x.mu.Unlock()
		return
	}
	ps.pinging = true
	x.mu.Unlock()
	done := func() {
		x.mu.Lock()
		ps.pinging = false
		x.mu.Unlock()
	}
	if !x.goFunc(func() {
		defer done()
		x.ping(p)
	}) {
		done()
	}
}

func (x *Exchange) ping(p peer.ID) {
	ctx, cancel := x.requestContext()
	defer cancel()
	start := time.Now()
	nonce := rand.Uint64()
	err := x.request(ctx, p, &wire.Ping{Nonce: nonce}, func(m wire.Message) (bool, error) {
		pong, ok := m.(*wire.Pong)
		if !ok {
			return false, fault(reasonProtocol, 0, "answered a ping with %s", m.Type())
		}
		if pong.Nonce != nonce {
			return false, fault(reasonProtocol, 0, "pong nonce %d, sent %d", pong.Nonce, nonce)
		}
		return true, nil
	})
	if err != nil {
		x.handleErr(p, fmt.Errorf("ping: %w", err))
		return
	}
	x.contact(p, time.Since(start))
}

func (x *Exchange) startHeadsExchange(p peer.ID) {
	x.mu.Lock()
	ps := x.peerLocked(p, "")
	if ps.exchanging {
		x.mu.Unlock()
		return
	}
	ps.exchanging = true
	x.mu.Unlock()
	done := func() {
		x.mu.Lock()
		ps.exchanging = false
		x.mu.Unlock()
	}
	if !x.goFunc(func() {
		defer done()
		x.exchangeHeads(p)
	}) {
		done()
	}
}

// exchangeHeads sends p our heads and records p's. Both sides leave their heads
// out when the other already holds them (wire.Heads), so in a steady state the
// exchange costs a few dozen bytes whatever the number of origins.
func (x *Exchange) exchangeHeads(p peer.ID) {
	ctx, cancel := x.requestContext()
	defer cancel()
	req, err := x.headsMessage(ctx, true)
	if err != nil {
		if ctx.Err() == nil {
			x.log.Warn("read local heads", "err", err)
		}
		return
	}
	x.mu.Lock()
	ps := x.peerLocked(p, "")
	req.Known = ps.theirs
	if !ps.sent.IsZero() && ps.sent == req.Digest {
		req.Heads = nil
	}
	x.mu.Unlock()
	start := time.Now()
	var theirs *wire.Heads
	err = x.request(ctx, p, req, func(m wire.Message) (bool, error) {
		h, ok := m.(*wire.Heads)
		if !ok || h.Request {
			return false, fault(reasonProtocol, 0, "answered a heads request with %s", m.Type())
		}
		theirs = h
		return true, nil
	})
	if err == nil {
		err = x.noteAnswer(p, req, theirs)
	}
	if err != nil {
		x.handleErr(p, fmt.Errorf("heads exchange: %w", err))
		return
	}
	x.contact(p, time.Since(start))
}

// noteAnswer records p's answer to our heads request req.
func (x *Exchange) noteAnswer(p peer.ID, req, theirs *wire.Heads) error {
	x.checkFederation(p, theirs)
	if theirs.Omitted() {
		if theirs.Digest != req.Known {
			return fault(reasonProtocol, 0, "left out its heads of digest %x; we hold %x", theirs.Digest[:8], req.Known[:8])
		}
		// Unchanged since we last heard them; unless a claim was lowered
		// meanwhile, which keeps the lowered one until the next exchange.
		x.heldDigest(p, theirs.Digest)
		x.wakePull()
	} else if err := x.noteAllHeads(p, theirs); err != nil {
		return err
	}
	if len(req.Heads) > 0 || req.Digest.IsZero() {
		// p answered, so it took in the heads we sent.
		x.mu.Lock()
		x.peerLocked(p, "").sent = req.Digest
		x.mu.Unlock()
	}
	return nil
}

// serveHeads answers p's heads request m and records p's heads.
func (x *Exchange) serveHeads(ctx context.Context, p peer.ID, c *conn, m *wire.Heads) error {
	x.checkFederation(p, m)
	if m.Omitted() {
		if !x.heldDigest(p, m.Digest) {
			// p thinks we hold its heads and we do not (we restarted, or
			// lowered a claim): ask it for them.
			x.startHeadsExchange(p)
		}
	} else if err := x.noteAllHeads(p, m); err != nil {
		return err
	}
	ours, err := x.headsMessage(ctx, false)
	if err != nil {
		c.send(&wire.Error{Code: wire.CodeInternal, Message: "cannot read heads"})
		return &localError{fmt.Errorf("read local heads: %w", err)}
	}
	if m.Known == ours.Digest {
		ours.Heads = nil
	}
	if err := c.send(ours); err != nil {
		return err
	}
	// What p holds of ours now: what it said it held, or what we just sent.
	x.mu.Lock()
	x.peerLocked(p, "").sent = ours.Digest
	x.mu.Unlock()
	return nil
}

// headsMessage builds a Heads message from the node's current heads, sorted
// by origin, with their digest.
func (x *Exchange) headsMessage(ctx context.Context, request bool) (*wire.Heads, error) {
	heads, err := x.refreshLocal(ctx)
	if err != nil {
		return nil, err
	}
	heads = slices.DeleteFunc(slices.Clone(heads), func(h schema.Head) bool {
		if sendableHead(h) {
			return false
		}
		// Only a log applied before entries' epochs were bounded can hold
		// one. Sent, it would make every heads message of ours malformed to
		// peers, who would cut us off; left out, only that origin stops
		// being relayed by us.
		if _, seen := x.unsendable.LoadOrStore(h.Origin, true); !seen {
			x.log.Warn("leaving a head out of our heads: peers would refuse it", "origin", h.Origin, "epoch_bytes", len(h.Epoch), "seq", h.Seq)
		}
		return true
	})
	slices.SortFunc(heads, func(a, b schema.Head) int { return strings.Compare(a.Origin, b.Origin) })
	b := x.node.Bundle()
	m := &wire.Heads{Request: request, Heads: heads}
	if b != nil {
		m.Federation, m.BundleVersion = b.Federation, b.Version
	}
	if len(m.Heads) > wire.MaxHeads {
		m.Heads = m.Heads[:wire.MaxHeads]
	}
	m.Digest = wire.HeadsDigest(m.Heads)
	return m, nil
}

// sendableHead reports whether h may go into our heads: peers decode it
// (wire.ValidHead) and could take entries of its epoch (schema.MaxEpochBytes).
func sendableHead(h schema.Head) bool {
	return wire.ValidHead(h) && len(h.Epoch) <= schema.MaxEpochBytes
}

// checkFederation logs a peer that runs another federation or a newer bundle.
func (x *Exchange) checkFederation(p peer.ID, h *wire.Heads) {
	b := x.node.Bundle()
	if b == nil {
		return
	}
	if h.Federation != b.Federation {
		x.log.Warn("peer reports another federation", "peer", p.String(), "theirs", h.Federation, "ours", b.Federation)
	}
	// Only for peers already tracked: a gossip relay's source need not be one,
	// and inventing an entry for it would show a phantom peer in Status.
	x.mu.Lock()
	if ps, ok := x.peers[p]; ok {
		ps.bundle = h.BundleVersion
	}
	x.mu.Unlock()
	if h.Federation == b.Federation && h.BundleVersion > b.Version {
		x.log.Info("peer holds a newer trust bundle", "peer", p.String(), "theirs", h.BundleVersion, "ours", b.Version)
		x.noteBundleVersion(p, h.BundleVersion)
	}
}

// updateGauges refreshes the stalled, lag and head gauges.
func (x *Exchange) updateGauges() {
	now := x.now()
	stalled := map[string]int{}
	var listed, removed []string // origins of the members the bundle lists, and of those it removed
	if b := x.node.Bundle(); b != nil {
		for _, m := range b.Members {
			if m.ID != x.centre || len(m.Peers) > 1 {
				stalled[m.ID] = 0
			}
			if m.Removed == nil {
				listed = append(listed, m.ID)
			} else if m.ID != x.centre {
				removed = append(removed, m.ID)
			}
		}
	}
	type lag struct {
		origin  string
		local   uint64
		entries uint64
		seconds float64
	}
	var lags []lag
	type memberOrigin struct{ member, origin string }
	peerBest := map[memberOrigin]uint64{} // highest seq a member's connected peers claim
	x.mu.Lock()
	connected := 0
	for _, ps := range x.peers {
		if ps.connected {
			connected++
		}
		if ps.member == "" {
			continue
		}
		if x.stalledLocked(ps, now) {
			stalled[ps.member]++
		}
		if !ps.connected {
			continue
		}
		for origin, o := range x.origins {
			h, ok := ps.heads[origin]
			if ok && h.Epoch != o.local.Epoch {
				continue
			}
			k := memberOrigin{ps.member, origin}
			peerBest[k] = max(peerBest[k], h.Seq)
		}
	}
	behind := map[memberOrigin]float64{}
	for k, seq := range peerBest {
		if local := x.origins[k.origin].local.Seq; local > seq {
			behind[k] = float64(local - seq)
		} else {
			behind[k] = 0
		}
	}
	for origin, o := range x.origins {
		best, _ := x.bestLocked(origin, o.local)
		var l lag
		l.origin, l.local = origin, o.local.Seq
		if origin != x.centre && best.Seq > o.local.Seq {
			l.entries = best.Seq - o.local.Seq
			if o.behindSince.IsZero() {
				o.behindSince = now
			}
			l.seconds = now.Sub(o.behindSince).Seconds()
		} else {
			o.behindSince = time.Time{}
		}
		lags = append(lags, l)
	}
	x.mu.Unlock()
	x.m.peersConnected.Set(float64(connected))
	for member, n := range stalled {
		x.m.peersStalled.WithLabelValues(member).Set(float64(n))
	}
	x.m.peerBehind.Reset() // members that left or disconnected drop out
	for k, v := range behind {
		x.m.peerBehind.WithLabelValues(k.member, k.origin).Set(v)
	}
	// A removed centre of which nothing is held loses the series started
	// at zero for it: they would read as a centre in step.
	for _, o := range removed {
		if !slices.ContainsFunc(lags, func(l lag) bool { return l.origin == o && l.local > 0 }) {
			x.m.forgetOrigin(o)
		}
	}
	for _, l := range lags {
		if l.local == 0 && slices.Contains(removed, l.origin) {
			continue // forgotten above: nothing of it is held
		}
		x.m.localSeq.WithLabelValues(l.origin).Set(float64(l.local))
		if l.origin == x.centre {
			continue
		}
		x.m.lagEntries.WithLabelValues(l.origin).Set(float64(l.entries))
		x.m.lagSeconds.WithLabelValues(l.origin).Set(l.seconds)
	}
	// After the values above, so that a scrape never reads a zero for an
	// origin held.
	for _, o := range listed {
		x.m.knowOrigin(o, o == x.centre)
	}
}

// bestLocked returns the highest head of origin that any peer not backed off
// claims in local's epoch (any epoch while local is empty), and that peer; local
// and "" when no peer is ahead.
func (x *Exchange) bestLocked(origin string, local schema.Head) (schema.Head, peer.ID) {
	best, from := local, peer.ID("")
	now := x.now()
	for p, ps := range x.peers {
		h, ok := x.claimLocked(ps, origin)
		if !ok || h.Seq <= best.Seq || (local.Seq > 0 && h.Epoch != local.Epoch) {
			continue
		}
		if x.backedOffLocked(p, now) {
			continue
		}
		best, from = h, p
	}
	return best, from
}

// sourceLocked picks the peer to pull origin from: connected, not backed off, not
// in skip, ahead of local in its epoch; answering peers first, then the furthest
// ahead.
func (x *Exchange) sourceLocked(origin string, local schema.Head, skip map[peer.ID]bool) (schema.Head, peer.ID, bool) {
	var (
		best        schema.Head
		from        peer.ID
		bestStalled bool
	)
	now := x.now()
	for p, ps := range x.peers {
		h, ok := x.claimLocked(ps, origin)
		if !ok || !ps.connected || skip[p] || h.Seq <= local.Seq || (local.Seq > 0 && h.Epoch != local.Epoch) {
			continue
		}
		if x.backedOffLocked(p, now) {
			continue
		}
		stalled := x.stalledLocked(ps, now)
		if from == "" || (bestStalled && !stalled) || (bestStalled == stalled && h.Seq > best.Seq) {
			best, from, bestStalled = h, p, stalled
		}
	}
	return best, from, from != ""
}

// noteFrameLimit keeps the frame limit a range request of p said (version 3;
// 0: it said none), for pushes to p to keep under. Only peers already known
// are noted, so requests cannot grow the table.
func (x *Exchange) noteFrameLimit(p peer.ID, limit uint64) {
	if limit == 0 {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if ps, ok := x.peers[p]; ok {
		ps.frameBytes = int(min(max(limit, minFrameBytes), uint64(x.cfg.MaxFrameBytes)))
	}
}
