package exchange

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/auth"
	"liandong/schema"
	"liandong/sync/wire"
)

// maxPullAttempts bounds the range requests of one pull session; the scheduler
// starts another session if the origin is still behind.
const maxPullAttempts = 8

// pullLoop starts a pull session for every origin some connected peer holds more
// of, whenever woken (heads learnt, a peer cut off, an anti-entropy tick).
func (x *Exchange) pullLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-x.pullCh:
		}
		x.schedulePulls()
	}
}

func (x *Exchange) schedulePulls() {
	if !x.node.CanApply() {
		return
	}
	now := time.Now() // monotonic: grace is a local wait, not a signed time
	x.mu.Lock()
	start, nextGrace := x.duePullsLocked(now)
	if !nextGrace.IsZero() && !x.stopping {
		d := nextGrace.Sub(now)
		if x.graceTimer == nil {
			x.graceTimer = time.AfterFunc(d, x.wakePull)
		} else {
			x.graceTimer.Reset(d)
		}
	}
	x.mu.Unlock()
	for _, o := range start {
		if !x.goFunc(func() { x.pullOrigin(o) }) {
			x.mu.Lock()
			x.originLocked(o).pulling = false
			x.mu.Unlock()
		}
	}
}

// duePullsLocked marks as pulling, and returns, the origins whose pull
// starts now; nextGrace is when the earliest PushGrace still waited ends
// (zero: none).
func (x *Exchange) duePullsLocked(now time.Time) (start []string, nextGrace time.Time) {
	origins := map[string]bool{}
	for _, ps := range x.peers {
		for o := range ps.heads {
			origins[o] = true
		}
	}
	recovering := x.node.Recovering()
	for o := range origins {
		if o == x.centre && !recovering {
			continue
		}
		st := x.originLocked(o)
		if st.pulling {
			continue
		}
		if _, _, ok := x.sourceLocked(o, st.local, nil); !ok {
			// Nothing to pull (a stale push's claim, say): a gap flag
			// left set would skip the grace of the next, unrelated pull.
			st.awaitPush, st.pushGap = time.Time{}, false
			continue
		}
		if until, wait := x.awaitPushLocked(o, st, now); wait {
			if nextGrace.IsZero() || until.Before(nextGrace) {
				nextGrace = until
			}
			continue
		}
		st.awaitPush, st.pushGap = time.Time{}, false
		st.pulling = true
		start = append(start, o)
	}
	return start, nextGrace
}

// pushRecency is how recently a connected peer must have pushed its centre's
// entries for a pull of that centre to wait for its next push.
const pushRecency = time.Minute

// awaitPushLocked reports whether the pull of origin, found behind a claim,
// should wait for the origin's own push, and until when: while PushGrace runs
// from when it was first found behind, if a connected replica of the origin
// has pushed to this node within pushRecency. Otherwise the pull starts at
// once: the origin's connected replicas do not push (push turned off there, or
// followers only), or the claim is a gap its pushes left (pushGap); so does
// recovery of this centre's own log, which nobody pushes.
func (x *Exchange) awaitPushLocked(origin string, st *originState, now time.Time) (time.Time, bool) {
	if x.cfg.PushGrace <= 0 || origin == x.centre || st.pushGap {
		return time.Time{}, false
	}
	pushing := false
	clock := x.now() // back-offs run on the exchange's clock, now is monotonic
	for p, ps := range x.peers {
		if ps.member == origin && ps.connected && now.Sub(ps.pushedUsAt) < pushRecency {
			if x.backedOffLocked(p, clock) {
				continue // its pushes are refused until then
			}
			pushing = true
			break
		}
	}
	if !pushing {
		return time.Time{}, false
	}
	if st.awaitPush.IsZero() {
		st.awaitPush = now
	}
	until := st.awaitPush.Add(x.cfg.PushGrace)
	return until, now.Before(until)
}

// lockOrigin takes origin's apply lock, waiting at most until ctx ends.
func (x *Exchange) lockOrigin(ctx context.Context, origin string) (unlock func(), ok bool) {
	x.mu.Lock()
	ch := x.originLocked(origin).apply
	x.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return x.unlocker(origin, ch), true
	case <-ctx.Done():
		return nil, false
	}
}

// tryLockOrigin takes origin's apply lock if it is free.
func (x *Exchange) tryLockOrigin(origin string) (unlock func(), ok bool) {
	x.mu.Lock()
	ch := x.originLocked(origin).apply
	x.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return x.unlocker(origin, ch), true
	default:
		return nil, false
	}
}

// unlocker releases origin's apply lock and then applies what was pushed while
// it was held: pushes leave their entries behind (holdPushed) rather than
// wait for the lock, and the holder must not leave them there.
func (x *Exchange) unlocker(origin string, ch chan struct{}) func() {
	return func() {
		<-ch
		x.mu.Lock()
		waiting := len(x.originLocked(origin).pushed) > 0
		x.mu.Unlock()
		if waiting {
			x.goFunc(func() { x.drainPushed(origin) })
		}
	}
}

// holdPushed keeps entries p pushed of origin (consecutive seqs, as
// receivePush checks) for drainPushed: alone, or after what is held when they
// continue it (the same peer's next push), so what is held is consecutive
// too. Otherwise, or past MaxFrameBytes held, or when it brings another entry
// for a seq held, it keeps nothing new and reports false: what is
// held is still applied, and a pull fetches the rest. A push never replaces
// held entries, so a stale replay from another peer cannot push out the
// origin's fresh ones.
//
// at is when the push arrived, if the origin itself sent it (zero if relayed).
func (x *Exchange) holdPushed(p peer.ID, origin string, entries []*schema.Entry, at time.Time) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	st := x.originLocked(origin)
	held, heldAt := st.pushed, st.pushedAt
	if len(held) > 0 {
		first, last := held[0].Seq, held[len(held)-1].Seq
		if st.pushedFrom != p || entries[0].Seq > last+1 {
			return false
		}
		for _, e := range entries {
			if e.Seq > last {
				held = append(held, e)
				heldAt = append(heldAt, at)
				last = e.Seq
			} else if e.Seq >= first && !sameEntry(e, held[e.Seq-first]) {
				// Two entries for one seq: left to a pull, whose accept
				// compares them with what is applied then and names a fork.
				return false
			}
		}
	} else {
		held, heldAt = entries, make([]time.Time, len(entries))
		for i := range heldAt {
			heldAt[i] = at
		}
	}
	size := 0
	for _, e := range held {
		size += wire.EntrySize(e)
	}
	if len(held) > x.cfg.BatchSize || size > x.cfg.MaxFrameBytes {
		return false // a pull in bounded frames does better
	}
	st.pushed, st.pushedAt, st.pushedFrom = held, heldAt, p
	return true
}

// sameEntry reports whether a and b are the same signed entry, without
// hashing them (holdPushed compares under the exchange's lock).
func sameEntry(a, b *schema.Entry) bool {
	return bytes.Equal(a.Raw, b.Raw) && bytes.Equal(a.Sig, b.Sig)
}

// drainPushed applies the entries held by holdPushed, if origin's apply lock is
// free; if not, its holder starts drainPushed again when it releases it.
func (x *Exchange) drainPushed(origin string) {
	unlock, ok := x.tryLockOrigin(origin)
	if !ok {
		return
	}
	defer unlock()
	x.mu.Lock()
	st := x.originLocked(origin)
	entries, arrived, p := st.pushed, st.pushedAt, st.pushedFrom
	st.pushed, st.pushedAt, st.pushedFrom = nil, nil, ""
	ctx := x.runCtx
	x.mu.Unlock()
	if len(entries) == 0 || ctx == nil {
		return
	}
	if err := x.applyPushed(ctx, p, origin, entries, arrived); err != nil {
		x.handleErr(p, fmt.Errorf("push: %w", err))
	}
}

// pullOrigin pulls origin from the best peers until caught up with what
// connected peers claim, or out of attempts.
func (x *Exchange) pullOrigin(origin string) {
	x.mu.Lock()
	ctx := x.runCtx
	x.mu.Unlock()
	progressed := false
	defer func() {
		x.mu.Lock()
		x.originLocked(origin).pulling = false
		x.mu.Unlock()
		if progressed {
			// More may have been announced meanwhile, or the peers that
			// answered short have more: woken once this pull no longer
			// counts as running, or the scheduler would pass over it.
			x.wakePull()
		}
	}()
	unlock, ok := x.lockOrigin(ctx, origin)
	if !ok {
		return
	}
	defer unlock()
	tried := map[peer.ID]bool{}
	short := map[peer.ID]int{} // answers short of what was asked that made progress
	for range maxPullAttempts {
		if ctx.Err() != nil || !x.node.CanApply() {
			return
		}
		local, err := x.nodeHead(ctx, origin)
		if err != nil {
			if ctx.Err() == nil {
				x.log.Warn("read local head", "origin", origin, "err", err)
			}
			return
		}
		x.mu.Lock()
		target, p, ok := x.sourceLocked(origin, local, tried)
		x.mu.Unlock()
		if !ok {
			break
		}
		after, err := x.pullFrom(ctx, p, origin, local, target)
		if after.Seq > local.Seq {
			progressed = true
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errNotLeader) {
				return
			}
			tried[p] = true
			var le *localError
			if errors.As(err, &le) {
				x.log.Error("apply received entries", "origin", origin, "err", err)
				return
			}
			if errors.Is(err, errOutOfBundle) {
				// Not p's fault; what it holds from there on is not asked
				// for again under this bundle (sourceLocked).
				continue
			}
			if errors.Is(err, errRangeDeadline) {
				// Slow is not faulty: an honest peer on a poor link may be this
				// slow, so it is not cut off; but what it claimed beyond what
				// it served waits for its next heads, and the pull goes on
				// from another peer rather than waiting on it again.
				x.peerError(p, fmt.Errorf("pull %s: %w", origin, err))
				x.lowerClaim(p, origin, after)
				continue
			}
			x.handleErr(p, fmt.Errorf("pull %s: %w", origin, err))
			continue
		}
		if want := min(target.Seq, local.Seq+uint64(x.cfg.MaxRangeEntries)); after.Seq < want {
			switch {
			case after.Seq <= local.Seq:
				// It served nothing new of what it claimed: believe what it
				// served.
				x.lowerClaim(p, origin, after)
				tried[p] = true
			case short[p]+1 >= shortAnswersPerPull:
				// Short answers that made progress are not taken for a
				// smaller log: a peer whose MaxRangeEntries is below ours
				// answers every range short, and catch-up would otherwise
				// wait an anti-entropy interval for its next heads at each
				// range. But a peer claiming the most and trickling an
				// entry a range would be asked first at every attempt: after
				// a few, the others are asked (a later pull, woken by this
				// one's progress, comes back to it).
				tried[p] = true
			default:
				short[p]++
			}
		}
	}
}

// shortAnswersPerPull is how many answers short of what was asked, that
// made progress, a pull takes from one peer before it asks the others.
const shortAnswersPerPull = 2

// nodeHead reads origin's local head from the node (not the cache) and caches it.
func (x *Exchange) nodeHead(ctx context.Context, origin string) (schema.Head, error) {
	heads, err := x.refreshLocal(ctx)
	if err != nil {
		return schema.Head{}, err
	}
	for _, h := range heads {
		if h.Origin == origin {
			return h, nil
		}
	}
	return schema.Head{Origin: origin}, nil
}

// localError is a failure of the local node, not of the peer.
type localError struct{ err error }

func (e *localError) Error() string { return e.err.Error() }
func (e *localError) Unwrap() error { return e.err }

// errOutOfBundle refuses entries the origin signed with a key the current
// bundle no longer takes at their time, relayed by a peer that took them under
// the bundle before: refused, but no fault of the relay.
var errOutOfBundle = errors.New("entries signed outside what the current trust bundle accepts")

// signedOutOfWindow reports whether the entry ce refused was refused only for
// its key's window or revocation, its signature verifying with that key of its
// origin as the bundle lists it.
func signedOutOfWindow(bundle *auth.Bundle, ce *auth.ChainError, entries []*schema.Entry) bool {
	if ce.Reason != auth.ReasonKeyNotValidAtTime && ce.Reason != auth.ReasonRevokedKey || ce.Index >= len(entries) {
		return false
	}
	e := entries[ce.Index]
	m, ok := bundle.Member(e.Origin)
	if !ok {
		return false
	}
	for _, k := range m.RecordKeys {
		if k.ID == e.KeyID {
			return len(k.Public) == ed25519.PublicKeySize && len(e.Sig) == ed25519.SignatureSize && ed25519.Verify(k.Public, e.Raw, e.Sig)
		}
	}
	return false
}

// errRangeDeadline ends a range request that outlived rangeDeadline.
var errRangeDeadline = errors.New("range answer took longer than its deadline")

// rangeDeadline bounds a whole range request of limit entries. The per-frame
// deadline alone lets a peer hold origin's apply lock for ever, a frame at a
// time (an entry every RequestTimeout less a little): so the answer as a whole
// gets RequestTimeout for each frame of BatchSize entries it needs plus the
// last (170 s for the defaults, 16000 entries in frames of 1000 at 10 s). An
// honest peer needs a small part of that for entries of ordinary size (a frame
// of 1000 is milliseconds on a working link). The bound counts entries, not
// bytes, and includes this node's own commits of what arrived: 16000 entries
// near the 80 KB limit (over a GB) on a link slower than ~6 MB/s run out of
// it. Nothing is lost then: each batch is applied as it arrives, the peer's
// claim is lowered to what it served, and the next pull goes on from there,
// from it or another peer.
func (x *Exchange) rangeDeadline(limit uint64) time.Duration {
	batch := uint64(x.cfg.BatchSize)
	frames := (limit+batch-1)/batch + 1
	return time.Duration(frames) * x.cfg.RequestTimeout
}

// pullFrom asks p for origin's entries after local, up to target, and applies
// each batch as it arrives. It returns the local head reached. An answer that
// takes longer than rangeDeadline ends with errRangeDeadline.
//
// Reading and applying overlap: while one batch is verified and applied (a
// raft commit), the stream's next frame is read and decoded, which costs as
// much CPU again (the strict canonical check of every payload). At most
// pullPipeline decoded batches wait for the applier.
func (x *Exchange) pullFrom(ctx context.Context, p peer.ID, origin string, local, target schema.Head) (schema.Head, error) {
	limit := min(target.Seq-local.Seq, uint64(x.cfg.MaxRangeEntries))
	req := &wire.RangeReq{Origin: origin, FromSeq: local.Seq + 1, Limit: limit,
		MaxBatch: uint64(x.cfg.BatchSize), MaxFrameBytes: uint64(x.cfg.MaxFrameBytes)}
	if local.Seq > 0 {
		req.Epoch = local.Epoch
	}
	deadline := x.rangeDeadline(limit)
	reqCtx, cancel := context.WithTimeout(ctx, deadline)
	defer cancel()
	batches := make(chan []*schema.Entry, pullPipeline)
	var applyErr error
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for es := range batches {
			if applyErr != nil {
				continue // drain: the request is being torn down
			}
			next, err := x.accept(ctx, p, origin, local, es)
			if err != nil {
				if errors.Is(err, errOutOfBundle) {
					local = next // the prefix before the refused entries was applied
				}
				applyErr = err
				cancel() // resets the stream: stop reading what cannot be applied
				continue
			}
			local = next
		}
	}()
	var got uint64
	err := x.request(reqCtx, p, req, func(m wire.Message) (bool, error) {
		b, ok := m.(*wire.Batch)
		if !ok {
			return false, fault(reasonProtocol, 0, "answered a range request with %s", m.Type())
		}
		if b.Origin != origin {
			return false, fault(reasonProtocol, len(b.Entries), "asked for %s, got entries of %s", origin, b.Origin)
		}
		got += uint64(len(b.Entries))
		if got > limit {
			return false, fault(reasonProtocol, len(b.Entries), "sent %d entries, asked for %d", got, limit)
		}
		if len(b.Entries) == 0 && !b.Done {
			// serveRange sends only the last frame empty: an empty one
			// before it carries nothing but a reset of the frame deadline.
			return false, fault(reasonProtocol, 0, "sent an empty batch before the last")
		}
		if len(b.Entries) > 0 {
			x.contact(p, 0)
		}
		// A node of version 2 frames by its own BatchSize, which may be
		// larger than this node's; what it sent is within the limit asked
		// and the frame bound, and is verified and applied in batches of
		// this node's size.
		for es := b.Entries; len(es) > 0; {
			n := min(len(es), x.cfg.BatchSize)
			select {
			case batches <- es[:n:n]:
			case <-reqCtx.Done():
				return false, reqCtx.Err()
			}
			es = es[n:]
		}
		return b.Done, nil
	})
	close(batches)
	<-applied
	var f *faultError
	switch {
	case applyErr != nil:
		// The applier's failure is the cause; the reader saw only its
		// cancellation.
		err = applyErr
	case err != nil && !errors.As(err, &f) && ctx.Err() == nil && errors.Is(reqCtx.Err(), context.DeadlineExceeded):
		err = fmt.Errorf("%w: %d of %d entries of %s in %v", errRangeDeadline, got, limit, origin, deadline)
	}
	var we *wire.Error
	if errors.As(err, &we) && we.Code == wire.CodeEpochMismatch {
		x.lowerClaim(p, origin, schema.Head{Origin: origin})
	}
	return local, err
}

// pullPipeline is how many decoded batches of a range answer may wait for
// the applier: one being applied and one read ahead keep both busy.
const pullPipeline = 1

// receivePush keeps entries p pushed for a drainer goroutine to apply
// (holdPushed, drainPushed), so the push stream is read on while they are
// verified and committed, and pushes that arrive meanwhile go into one raft
// batch. Entries that leave a gap are left to a pull. member is p's member
// centre, as handleStream admitted p for this frame.
func (x *Exchange) receivePush(p peer.ID, member string, m *wire.Push) error {
	if len(m.Entries) == 0 {
		return nil
	}
	if m.Origin == x.centre {
		if member == x.centre {
			// Another replica of this centre (an old leader, say): it has the
			// log through raft already; nothing to apply and nothing to punish.
			return nil
		}
		return fault(reasonOwnOrigin, len(m.Entries), "pushed %d entries of this centre's own log", len(m.Entries))
	}
	for i, e := range m.Entries {
		if e.Seq != m.Entries[0].Seq+uint64(i) {
			// holdPushed indexes held entries by seq, and a chain has no
			// other order.
			return fault(string(auth.ReasonReorder), len(m.Entries), "pushed entries of %s out of order at index %d (seq %d)", m.Origin, i, e.Seq)
		}
	}
	if _, ok := x.node.Bundle().Member(m.Origin); !ok {
		// Nobody's log to apply: held, it would only make an origin the
		// bundle does not know.
		return fault(reasonProtocol, len(m.Entries), "pushed %d entries of %q, not a member of the federation", len(m.Entries), m.Origin)
	}
	if !x.node.CanApply() {
		return nil
	}
	x.mu.Lock()
	refused := x.outOfBundleLocked(x.peerLocked(p, member), m.Origin, m.Entries[0].Epoch)
	x.mu.Unlock()
	if refused > 0 && m.Entries[0].Seq >= refused && member != m.Origin {
		// Refused under this bundle already: not verified again.
		return nil
	}
	if member == m.Origin {
		// The peer's entry may not exist yet: the connection event that
		// makes it can come after the first stream. Monotonic time, as
		// awaitPushLocked compares it with.
		x.mu.Lock()
		x.peerLocked(p, member).pushedUsAt = time.Now()
		x.mu.Unlock()
	}
	var at time.Time
	if member == m.Origin {
		at = x.now()
	}
	if !x.holdPushed(p, m.Origin, m.Entries, at) {
		x.pullPushGap(p, m.Origin, m.Entries)
		return nil
	}
	x.goFunc(func() { x.drainPushed(m.Origin) })
	return nil
}

// pullPushGap notes the head a push of origin's entries claims for p, to be
// pulled without waiting for another push: the push that came shows that
// pushes will not close the gap (a seq skipped, another replica's push, more
// than one frame held, two entries for one seq).
func (x *Exchange) pullPushGap(p peer.ID, origin string, entries []*schema.Entry) {
	x.noteHeadsAnd(p, []schema.Head{pushClaim(origin, entries)}, false, func() {
		x.originLocked(origin).pushGap = true
	})
}

// pushClaim is the head a push of entries of origin claims its sender holds.
func pushClaim(origin string, entries []*schema.Entry) schema.Head {
	last := entries[len(entries)-1]
	return schema.Head{Origin: origin, Epoch: last.Epoch, Seq: last.Seq, Hash: last.Hash()}
}

// applyPushed applies entries of origin p pushed; the caller holds origin's
// apply lock. arrived[i] is when entries[i] arrived from its origin (zero if
// relayed): the entries this push applies are timed from their signing to it.
func (x *Exchange) applyPushed(ctx context.Context, p peer.ID, origin string, entries []*schema.Entry, arrived []time.Time) error {
	local, err := x.nodeHead(ctx, origin)
	if err != nil {
		return &localError{err}
	}
	if local.Seq > 0 && entries[0].Epoch != local.Epoch {
		// The origin began another epoch of its log (it recovered from
		// nothing, say). As with a pull (CodeEpochMismatch), the epoch held
		// is kept and the origin is not blamed for pushing its own log.
		return nil
	}
	if entries[0].Seq > local.Seq+1 {
		// A gap: pull the missing part (and these) from p.
		x.pullPushGap(p, origin, entries)
		return nil
	}
	_, err = x.accept(ctx, p, origin, local, entries)
	var le *localError
	if errors.Is(err, errOutOfBundle) {
		return nil // logged once by accept
	}
	if errors.Is(err, errNotLeader) || errors.As(err, &le) {
		if le != nil {
			x.log.Error("apply pushed entries", "origin", origin, "err", err)
		}
		return nil
	}
	if err == nil {
		x.contact(p, 0)
		delay := x.m.pushDelay.WithLabelValues(origin)
		for i, e := range entries {
			// Held seqs were skipped, not applied from this push.
			if e.Seq > local.Seq && i < len(arrived) && !arrived[i].IsZero() {
				delay.Observe(max(arrived[i].Sub(e.SignedAt), 0).Seconds())
			}
		}
	}
	return err
}

// accept checks entries of origin received from p against local, the head held
// (the caller holds origin's apply lock), and applies them. Held seqs must match
// by hash; the rest must pass auth.VerifyChain. It returns the new local head.
func (x *Exchange) accept(ctx context.Context, p peer.ID, origin string, local schema.Head, entries []*schema.Entry) (schema.Head, error) {
	if origin == x.centre && !x.node.Recovering() {
		return local, fault(reasonOwnOrigin, len(entries), "sent %d entries of this centre's own log", len(entries))
	}
	bundle := x.node.Bundle()
	if first := entries[0].Seq; first <= local.Seq {
		n := int(min(local.Seq-first+1, uint64(len(entries))))
		held, err := x.node.ReadRange(ctx, origin, first, n)
		if err != nil {
			return local, &localError{fmt.Errorf("read held entries of %s: %w", origin, err)}
		}
		for i := range n {
			e := entries[i]
			if e.Seq != first+uint64(i) {
				return local, fault(string(auth.ReasonReorder), len(entries), "held range of %s out of order at index %d (seq %d)", origin, i, e.Seq)
			}
			if i >= len(held) || held[i].Seq != e.Seq {
				return local, &localError{fmt.Errorf("node returned no entry %s/%d below its head %d", origin, e.Seq, local.Seq)}
			}
			if e.Hash() == held[i].Hash() {
				continue
			}
			return local, x.conflict(bundle, held[i], e, len(entries))
		}
		entries = entries[n:]
		if len(entries) == 0 {
			return local, nil
		}
	}
	if err := auth.VerifyChain(bundle, local, entries, auth.VerifyBatchSignature); err != nil {
		reason := reasonMalformed
		var ce *auth.ChainError
		if errors.As(err, &ce) {
			reason = string(ce.Reason)
		}
		// peerMember, not admit: a removed origin still sending its own
		// entries over a connection not yet closed is no relay.
		if member, _ := x.peerMember(bundle, p); ce != nil && member != origin && signedOutOfWindow(bundle, ce, entries) {
			// Signed by the origin, with a key this bundle no longer takes
			// at that time: the origin was removed, or its key revoked or
			// retired, after p applied them under the bundle before. p
			// forged nothing: what comes before is taken, the rest is
			// refused without blaming p (errOutOfBundle).
			x.m.rejected.WithLabelValues(reason).Add(float64(len(entries) - ce.Index))
			x.mu.Lock()
			ps := x.peerLocked(p, "")
			refusedAt := entries[ce.Index]
			first := x.outOfBundleLocked(ps, origin, refusedAt.Epoch) == 0
			if ps.refused == nil {
				ps.refused = map[string]refusal{}
			}
			ps.refused[origin] = refusal{seq: refusedAt.Seq, bundle: bundle.Version, epoch: refusedAt.Epoch}
			x.mu.Unlock()
			if first {
				x.log.Info("refusing entries signed outside the current trust bundle, relayed by a peer that took them under an earlier one; not asking for them again under this bundle",
					"origin", origin, "from_seq", entries[ce.Index].Seq, "bundle", bundle.Version, "peer", p, "err", err)
			}
			if ce.Index > 0 {
				next, aerr := x.accept(ctx, p, origin, local, entries[:ce.Index])
				if aerr != nil {
					return next, aerr
				}
				local = next
			}
			return local, fmt.Errorf("%w: %v", errOutOfBundle, err)
		}
		return local, &faultError{reason: reason, entries: len(entries), err: err}
	}
	if !x.node.CanApply() {
		return local, errNotLeader
	}
	if err := x.node.ApplyEntries(ctx, origin, entries); err != nil {
		return local, &localError{fmt.Errorf("apply %d entries of %s from %d: %w", len(entries), origin, entries[0].Seq, err)}
	}
	now := x.now()
	delay := x.m.delay.WithLabelValues(origin)
	for _, e := range entries {
		delay.Observe(max(now.Sub(e.SignedAt), 0).Seconds())
	}
	x.m.applied.WithLabelValues(origin).Add(float64(len(entries)))
	last := entries[len(entries)-1]
	next := schema.Head{Origin: origin, Epoch: last.Epoch, Seq: last.Seq, Hash: last.Hash()}
	x.mu.Lock()
	st := x.originLocked(origin)
	if st.local.Seq < next.Seq || st.local.Epoch != next.Epoch {
		st.local = next
	}
	x.mu.Unlock()
	x.Notify() // relays announce what they now hold
	return next, nil
}

// conflict classifies an entry that differs from the held one of the same seq:
// validly signed by the origin in the same epoch, it is a fork (the origin
// signed two histories); otherwise a forgery or another epoch.
func (x *Exchange) conflict(bundle *auth.Bundle, held, got *schema.Entry, n int) error {
	if got.Epoch != held.Epoch {
		return fault(string(auth.ReasonWrongEpoch), n, "entry %s/%d of epoch %q, held epoch %q", got.Origin, got.Seq, got.Epoch, held.Epoch)
	}
	if err := auth.VerifyEntry(bundle, got); err != nil {
		var ce *auth.ChainError
		reason := string(auth.ReasonBadSignature)
		if errors.As(err, &ce) {
			reason = string(ce.Reason)
		}
		return &faultError{reason: reason, entries: n, err: fmt.Errorf("entry %s/%d differs from the one held: %w", got.Origin, got.Seq, err)}
	}
	x.m.forks.WithLabelValues(got.Origin).Inc()
	return fault(reasonFork, n, "entry %s/%d (hash %s, signed %s) conflicts with the held one (hash %s, signed %s)",
		got.Origin, got.Seq, got.Hash(), got.SignedAt.Format(time.RFC3339Nano), held.Hash(), held.SignedAt.Format(time.RFC3339Nano))
}
