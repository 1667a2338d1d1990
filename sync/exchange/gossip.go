package exchange

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"liandong/schema"
	"liandong/sync/wire"
)

// TopicPrefix is the prefix of the gossipsub topic heads are announced on; the
// federation id follows it.
const TopicPrefix = "/liandong/heads/"

// Gossip limits. Announcements are small and, at each author, at most one per
// AnnounceDebounce; anything well beyond that is a flood. Every drop is counted
// in liandong_sync_announcements_refused_total by reason.
const (
	// maxAnnouncementBytes bounds one announcement: heads only, a few per origin.
	// A peer that delivers a larger one is cut off.
	maxAnnouncementBytes = 64 << 10
	// maxGossipRPCBytes bounds one gossipsub RPC, as gossipsub's reader enforces
	// it (a larger one resets the stream, uncounted). It leaves room for an
	// oversized announcement to be read, counted and blamed.
	maxGossipRPCBytes = 4 * maxAnnouncementBytes
	// peerGossipRate and peerGossipBurst bound the messages one connected peer
	// delivers, whoever their authors, before their signatures are checked:
	// anything over is dropped unread. Gossipsub itself starts dropping
	// messages around 1,000/s (DESIGN.md), so no honest peer comes near.
	peerGossipRate  = 1000.0
	peerGossipBurst = 2000.0
	// Each message a peer delivers over its rate adds one to its flood debt,
	// which drains at floodDrops per floodWindow; a peer whose debt reaches
	// floodDrops is cut off and backed off (fault gossip-flood). So a peer
	// sending at twice the rate is cut off within about 1.5 s of its burst.
	floodDrops  = 1000
	floodWindow = 5 * time.Second
	// An author may announce authorRateFactor times as often as this node's
	// AnnounceDebounce allows, and at least minAuthorRate per second, with a
	// burst of two seconds' worth; none when AnnounceDebounce is 0. Honest
	// relays forward only what they accept, so each of them passes on at most
	// that much of a flooding author: far below peerGossipRate.
	authorRateFactor = 4
	minAuthorRate    = 50.0
	// replayMemory is how long an author's last accepted seqno is remembered:
	// an announcement not newer than it is stale (a replay, or overtaken by a
	// newer one on another path) and ignored. Exact copies within gossipsub's
	// seen-cache window are dropped before validation, as duplicates.
	replayMemory = 10 * time.Minute
	// maxGossipStates bounds the limiter's tables; beyond it idle entries go.
	maxGossipStates = 1024
)

// startGossip joins the federation's heads topic. Pubsub lives as long as ctx.
func (x *Exchange) startGossip(ctx context.Context) error {
	b := x.node.Bundle()
	if b == nil || b.Federation == "" {
		return fmt.Errorf("start gossip: the trust bundle names no federation")
	}
	g := newGossipGuard(x)
	admitted := func(p peer.ID, _ string) bool { _, ok := x.admit(p); return ok }
	ps, err := pubsub.NewGossipSub(ctx, x.host,
		pubsub.WithPeerFilter(admitted),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMaxMessageSize(maxGossipRPCBytes),
		pubsub.WithAppSpecificRpcInspector(g.inspect),
		pubsub.WithRawTracer(gossipTracer{g}),
		pubsub.WithPeerExchange(false),
		pubsub.WithLogger(x.log.With("subsystem", "gossipsub")),
	)
	if err != nil {
		return fmt.Errorf("start gossipsub: %w", err)
	}
	name := TopicPrefix + b.Federation
	// Inline: the validator is cheap, and a flood must not start a goroutine
	// per message.
	if err := ps.RegisterTopicValidator(name, g.validate, pubsub.WithValidatorInline(true)); err != nil {
		return fmt.Errorf("gossip validator: %w", err)
	}
	topic, err := ps.Join(name)
	if err != nil {
		return fmt.Errorf("join %s: %w", name, err)
	}
	sub, err := topic.Subscribe()
	if err != nil {
		topic.Close()
		return fmt.Errorf("subscribe %s: %w", name, err)
	}
	x.mu.Lock()
	x.topic = topic
	x.mu.Unlock()
	x.goFunc(func() {
		defer sub.Cancel()
		x.gossipLoop(ctx, sub)
	})
	return nil
}

// gossipGuard refuses, bounds and counts what arrives on the heads topic, in
// three places: inspect (every RPC, on gossipsub's event loop, before any
// signature is checked), validate (each message with a valid signature) and
// gossipTracer (what gossipsub itself drops). A peer that delivers a flood, a
// malformed or oversized announcement or a bad signature is cut off like a
// peer breaking the sync protocol: counted in liandong_sync_peer_faults_total,
// backed off (the gater refuses it) and disconnected.
type gossipGuard struct {
	x                       *Exchange
	authorRate, authorBurst float64 // 0: no per-author limit

	mu      sync.Mutex // leaf lock: guards the tables below
	peers   map[peer.ID]*gossipPeer
	authors map[peer.ID]*gossipAuthor
}

// gossipPeer is a connected peer delivering gossip, whoever the authors.
type gossipPeer struct {
	bucket   tokenBucket
	debt     float64   // messages over the rate, draining at floodDrops per floodWindow
	debtAt   time.Time // when debt was last updated
	cutUntil time.Time // cut off: everything it delivers is dropped
	seen     time.Time
}

// gossipAuthor is a member peer whose announcements were accepted.
type gossipAuthor struct {
	bucket  tokenBucket
	lastSeq uint64 // gossipsub seqno of its last accepted announcement
	lastAt  time.Time
}

func newGossipGuard(x *Exchange) *gossipGuard {
	g := &gossipGuard{x: x, peers: map[peer.ID]*gossipPeer{}, authors: map[peer.ID]*gossipAuthor{}}
	if d := x.cfg.AnnounceDebounce; d > 0 {
		g.authorRate = max(minAuthorRate, authorRateFactor/d.Seconds())
		g.authorBurst = 2 * g.authorRate
	}
	return g
}

// tokenBucket is a rate limit: take returns how many of n it lets through.
type tokenBucket struct {
	tokens float64
	at     time.Time
}

func (b *tokenBucket) take(now time.Time, rate, burst float64, n int) int {
	if b.at.IsZero() {
		b.tokens = burst
	} else if dt := now.Sub(b.at).Seconds(); dt > 0 {
		b.tokens = min(burst, b.tokens+dt*rate)
	}
	b.at = now
	k := min(n, int(b.tokens))
	b.tokens -= float64(k)
	return k
}

func (g *gossipGuard) peerLocked(p peer.ID, now time.Time) *gossipPeer {
	st, ok := g.peers[p]
	if !ok {
		if len(g.peers) >= maxGossipStates {
			for q, s := range g.peers {
				if now.Sub(s.seen) > 2*floodWindow && !now.Before(s.cutUntil) {
					delete(g.peers, q)
				}
			}
		}
		st = &gossipPeer{}
		g.peers[p] = st
	}
	st.seen = now
	return st
}

func (g *gossipGuard) authorLocked(p peer.ID, now time.Time) *gossipAuthor {
	a, ok := g.authors[p]
	if !ok {
		if len(g.authors) >= maxGossipStates {
			for q, s := range g.authors {
				if now.Sub(s.lastAt) > replayMemory {
					delete(g.authors, q)
				}
			}
		}
		a = &gossipAuthor{}
		g.authors[p] = a
	}
	return a
}

func (g *gossipGuard) refused(reason string, n int) {
	if n > 0 {
		g.x.m.announceRefused.WithLabelValues(reason).Add(float64(n))
	}
}

// cutOff punishes p, the peer that delivered a bad message, once per back-off.
// Gossipsub calls the guard from its event loop and validation workers, which
// closing p's connections would wait on, so the punishment runs on its own
// goroutine.
func (g *gossipGuard) cutOff(p peer.ID, reason string, format string, args ...any) {
	now := time.Now()
	g.mu.Lock()
	st := g.peerLocked(p, now)
	if now.Before(st.cutUntil) {
		g.mu.Unlock()
		return
	}
	st.cutUntil = now.Add(g.x.cfg.BackoffDuration)
	g.mu.Unlock()
	err := fault(reason, 0, "gossip: "+format, args...)
	g.x.goFunc(func() { g.x.handleErr(p, err) })
}

// inspect sees each RPC from peer from before gossipsub handles it: oversized
// announcements and messages over from's rate are dropped unread, and a flood
// or an oversized announcement cuts from off; so are, unblamed, the messages
// of a member Config.Faults cuts. Control messages pass.
func (g *gossipGuard) inspect(from peer.ID, rpc *pubsub.RPC) error {
	msgs := rpc.GetPublish()
	if len(msgs) == 0 {
		return nil
	}
	if g.x.dropsFrom(from) {
		// A cut link carries no announcement either: what the cut member
		// delivers is dropped, unblamed. Here, before gossipsub marks the
		// messages seen, so that copies other members relay still come, as
		// around a real partition (dropped in the validator, they would be
		// refused later as duplicates).
		rpc.Publish = nil
		g.refused(gossipInjected, len(msgs))
		return nil
	}
	oversized := 0
	for _, m := range msgs {
		if len(m.GetData()) > maxAnnouncementBytes {
			oversized++
		}
	}
	now := time.Now()
	g.mu.Lock()
	st := g.peerLocked(from, now)
	if now.Before(st.cutUntil) {
		g.mu.Unlock()
		rpc.Publish = nil
		g.refused(gossipBackedOff, len(msgs))
		return nil
	}
	if oversized > 0 {
		g.mu.Unlock()
		rpc.Publish = nil
		g.refused(gossipOversized, oversized)
		g.refused(gossipBackedOff, len(msgs)-oversized)
		g.cutOff(from, reasonGossipOversized, "an announcement over %d bytes", maxAnnouncementBytes)
		return nil
	}
	allowed := st.bucket.take(now, peerGossipRate, peerGossipBurst, len(msgs))
	dropped := len(msgs) - allowed
	flood := false
	if dropped > 0 {
		drain := now.Sub(st.debtAt).Seconds() * floodDrops / floodWindow.Seconds()
		st.debt = max(0, st.debt-drain) + float64(dropped)
		st.debtAt = now
		flood = st.debt >= floodDrops
	}
	g.mu.Unlock()
	if dropped > 0 {
		rpc.Publish = msgs[:allowed]
		g.refused(gossipRateLimited, dropped)
	}
	if flood {
		g.cutOff(from, reasonGossipFlood, "%d or more messages over the limit of %.0f/s (burst %.0f) within %v", floodDrops, peerGossipRate, peerGossipBurst, floodWindow)
	}
	return nil
}

// validate accepts heads announcements of this federation by member peers, in
// order and at a bounded rate per author; anything else is rejected (bad) or
// ignored (stale, too many), and counted. from is the peer that delivered the
// message: when it is also the author, a malformed message cuts it off.
func (g *gossipGuard) validate(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	x := g.x
	src := msg.GetFrom()
	if src == x.self {
		return pubsub.ValidationAccept
	}
	refuse := func(reason string, r pubsub.ValidationResult) pubsub.ValidationResult {
		g.refused(reason, 1)
		return r
	}
	b := x.node.Bundle()
	if _, ok := x.peerMember(b, src); !ok {
		return refuse(gossipNotMember, pubsub.ValidationReject)
	}
	if x.backedOff(src) || x.backedOff(from) {
		return refuse(gossipBackedOff, pubsub.ValidationIgnore)
	}
	direct := from == src
	if len(msg.Data) > maxAnnouncementBytes { // inspect drops these first
		if direct {
			g.cutOff(from, reasonGossipOversized, "an announcement of %d bytes", len(msg.Data))
		}
		return refuse(gossipOversized, pubsub.ValidationReject)
	}
	m, err := wire.Decode(msg.Data)
	if err != nil {
		if direct {
			g.cutOff(from, reasonGossipMalformed, "announcement: %v", err)
		}
		return refuse(gossipMalformed, pubsub.ValidationReject)
	}
	h, ok := m.(*wire.Heads)
	if !ok || h.Request {
		if direct {
			g.cutOff(from, reasonGossipMalformed, "a %s message on the heads topic", m.Type())
		}
		return refuse(gossipNotAnnouncement, pubsub.ValidationReject)
	}
	if h.Omitted() || wire.HeadsDigest(h.Heads) != h.Digest {
		// An announcement carries its heads whole, under their digest
		// (exchange peers record the digest and leave known heads out).
		if direct {
			g.cutOff(from, reasonGossipMalformed, "an announcement whose heads do not match its digest")
		}
		return refuse(gossipMalformed, pubsub.ValidationReject)
	}
	if h.Federation != b.Federation {
		return refuse(gossipOtherFederation, pubsub.ValidationReject)
	}
	seqno := msg.GetSeqno()
	if len(seqno) != 8 {
		if direct {
			g.cutOff(from, reasonGossipMalformed, "a seqno of %d bytes", len(seqno))
		}
		return refuse(gossipMalformed, pubsub.ValidationReject)
	}
	seq := binary.BigEndian.Uint64(seqno)
	now := time.Now()
	g.mu.Lock()
	a := g.authorLocked(src, now)
	if !a.lastAt.IsZero() && seq <= a.lastSeq && now.Sub(a.lastAt) < replayMemory {
		g.mu.Unlock()
		return refuse(gossipStale, pubsub.ValidationIgnore)
	}
	if g.authorRate > 0 && a.bucket.take(now, g.authorRate, g.authorBurst, 1) == 0 {
		g.mu.Unlock()
		return refuse(gossipRateLimited, pubsub.ValidationIgnore)
	}
	a.lastSeq, a.lastAt = seq, now
	g.mu.Unlock()
	msg.ValidatorData = h
	return pubsub.ValidationAccept
}

// gossipTracer counts what gossipsub drops by itself, and cuts off a peer that
// delivers a message whose signature is invalid or missing: honest peers check
// signatures before they forward.
type gossipTracer struct{ g *gossipGuard }

func (t gossipTracer) RejectMessage(msg *pubsub.Message, reason string) {
	switch reason {
	case pubsub.RejectInvalidSignature:
		t.g.refused(gossipBadSignature, 1)
		t.g.cutOff(msg.ReceivedFrom, reasonGossipSignature, "a message signed other than by its author %s", msg.GetFrom())
	case pubsub.RejectMissingSignature, pubsub.RejectUnexpectedSignature, pubsub.RejectUnexpectedAuthInfo:
		t.g.refused(gossipUnsigned, 1)
		t.g.cutOff(msg.ReceivedFrom, reasonGossipSignature, "a message without a valid signature (%s)", reason)
	case pubsub.RejectSelfOrigin:
		// Possibly our own from before a restart: counted, nobody blamed.
		t.g.refused(gossipSelfOrigin, 1)
	case pubsub.RejectValidationQueueFull, pubsub.RejectValidationThrottled:
		t.g.refused(gossipOverloaded, 1)
	}
	// RejectValidationFailed and RejectValidationIgnored: counted by validate.
}

func (t gossipTracer) UndeliverableMessage(*pubsub.Message) { t.g.refused(gossipOverloaded, 1) }

func (gossipTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (gossipTracer) OnClosedOutboundStream(peer.ID)                       {}
func (gossipTracer) Join(string)                                          {}
func (gossipTracer) Leave(string)                                         {}
func (gossipTracer) Graft(peer.ID, string)                                {}
func (gossipTracer) Prune(peer.ID, string)                                {}
func (gossipTracer) ValidateMessage(*pubsub.Message)                      {}
func (gossipTracer) DeliverMessage(*pubsub.Message)                       {}
func (gossipTracer) DuplicateMessage(*pubsub.Message)                     {}
func (gossipTracer) ThrottlePeer(peer.ID)                                 {}
func (gossipTracer) RecvRPC(*pubsub.RPC)                                  {}
func (gossipTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (gossipTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (gossipTracer) DropRPC(*pubsub.RPC, peer.ID)                         {}

func (x *Exchange) gossipLoop(ctx context.Context, sub *pubsub.Subscription) {
	for {
		msg, err := sub.Next(ctx)
		if err != nil {
			return
		}
		src := msg.GetFrom()
		if src == x.self {
			continue
		}
		h, ok := msg.ValidatorData.(*wire.Heads)
		if !ok {
			continue
		}
		x.m.announces.WithLabelValues(announceReceived).Inc()
		x.checkFederation(src, h)
		if err := x.noteAllHeads(src, h); err != nil {
			x.log.Debug("gossip announcement refused", "author", src.String(), "err", err) // checked in validate; unreachable
		}
	}
}

// announce publishes the local heads (pushes are pushLoop's).
func (x *Exchange) announce(ctx context.Context) {
	h, err := x.headsMessage(ctx, false)
	if err != nil {
		if ctx.Err() == nil {
			x.log.Warn("read local heads", "err", err)
		}
		return
	}
	x.mu.Lock()
	topic := x.topic
	x.mu.Unlock()
	data := wire.Encode(h)
	if topic != nil && len(data) > maxAnnouncementBytes {
		// Peers would cut this node off for it; anti-entropy carries the heads.
		x.log.Warn("heads announcement too large to publish", "bytes", len(data), "limit", maxAnnouncementBytes)
		topic = nil
	}
	if topic != nil {
		if err := topic.Publish(ctx, data); err != nil {
			if ctx.Err() == nil {
				x.log.Warn("publish heads", "err", err)
			}
		} else {
			x.m.announces.WithLabelValues(announceSent).Inc()
		}
	}
}

// push sends every connected peer the entries of this centre's log it lacks,
// after what it claims to hold or was last pushed, at most the newest batch;
// without waiting. A peer that misses a push pulls the gap when the next one
// arrives, or at anti-entropy.
func (x *Exchange) push(own schema.Head) {
	if !x.node.CanApply() {
		return
	}
	x.mu.Lock()
	x.ownHead = own
	x.mu.Unlock()
	for _, p := range x.connectedPeers() {
		// The other replicas of this centre get its log through raft, not by push.
		if member, _ := x.admit(p); member != x.centre {
			x.startPush(p)
		}
	}
}

// startPush runs p's push worker, or asks the running one for another round.
func (x *Exchange) startPush(p peer.ID) {
	x.mu.Lock()
	ps := x.peerLocked(p, "")
	if ps.pushing {
		ps.pushAgain = true
		x.mu.Unlock()
		return
	}
	ps.pushing = true
	x.mu.Unlock()
	worker := func() {
		for {
			x.pushOnce(p, ps)
			x.mu.Lock()
			if !ps.pushAgain {
				ps.pushing = false
				x.mu.Unlock()
				return
			}
			ps.pushAgain = false
			x.mu.Unlock()
		}
	}
	if !x.goFunc(worker) {
		x.mu.Lock()
		ps.pushing = false
		x.mu.Unlock()
	}
}

func (x *Exchange) pushOnce(p peer.ID, ps *peerState) {
	ctx, cancel := x.requestContext()
	defer cancel()
	x.mu.Lock()
	own := x.ownHead
	from := ps.pushedSeq + 1
	if h, ok := ps.heads[x.centre]; ok && h.Epoch == own.Epoch && h.Seq >= from {
		from = h.Seq + 1
	}
	x.mu.Unlock()
	if own.Seq < from {
		return
	}
	if n := uint64(x.cfg.BatchSize); own.Seq-from+1 > n {
		from = own.Seq - n + 1
	}
	entries, err := x.node.ReadRangeRaw(ctx, x.centre, from, int(own.Seq-from+1))
	if err != nil {
		if ctx.Err() == nil {
			x.log.Warn("read own entries to push", "from", from, "err", err)
		}
		return
	}
	// Keep the frame under the limit by dropping the oldest; a pull fetches
	// them. A push is sent unasked, and a frame over the peer's limit would
	// be refused as a breach of the protocol: it keeps under the limit the
	// peer's range requests said, and while it said none (it has not pulled
	// from this node since it connected, or speaks version 2), under the
	// least any node may be configured with. The pull of what such a push
	// leaves out tells the limit.
	x.mu.Lock()
	limit := min(x.cfg.MaxFrameBytes, minFrameBytes)
	if ps.frameBytes > 0 {
		limit = min(x.cfg.MaxFrameBytes, ps.frameBytes)
	}
	x.mu.Unlock()
	size, maxBody := 0, limit-wire.Overhead
	cut := len(entries)
	for cut > 0 && size+wire.EntrySize(entries[cut-1]) <= maxBody {
		size += wire.EntrySize(entries[cut-1])
		cut--
	}
	entries = entries[cut:]
	if len(entries) == 0 {
		return
	}
	m := &wire.Push{Origin: x.centre, Entries: entries}
	c, reused, err := x.pushConn(ctx, p, ps)
	if err == nil {
		err = c.send(m)
	}
	if err != nil && reused {
		// A stream kept from an earlier push may have ended meanwhile (the
		// connection dropped, the receiver's read deadline passed): that is
		// no fault of p; try once on a new one.
		x.dropPushStream(ps)
		if c, _, err = x.pushConn(ctx, p, ps); err == nil {
			err = c.send(m)
		}
	}
	if err != nil {
		x.dropPushStream(ps)
		x.handleErr(p, fmt.Errorf("push: %w", err))
		return
	}
	x.mu.Lock()
	ps.pushedSeq = max(ps.pushedSeq, entries[len(entries)-1].Seq)
	ps.pushedAt = time.Now()
	x.mu.Unlock()
}

// pushConn returns the stream pushes to p go on, opening it if there is none
// (reused says it was kept from an earlier push). One stream carries every
// push until it has been idle a heartbeat: a stream per push cost a round
// trip at every close (the lazy multistream handshake is read before a stream
// closes), and pushes on separate streams could be handled out of order. Only
// p's push worker calls it.
func (x *Exchange) pushConn(ctx context.Context, p peer.ID, ps *peerState) (c *conn, reused bool, err error) {
	x.mu.Lock()
	c = ps.pushStream
	x.mu.Unlock()
	if c != nil {
		if !c.s.Conn().IsClosed() {
			return c, true, nil
		}
		x.dropPushStream(ps)
	}
	s, err := x.openStream(ctx, p)
	if err != nil {
		return nil, false, err
	}
	c = x.newConn(s)
	x.mu.Lock()
	ps.pushStream = c
	x.mu.Unlock()
	return c, false, nil
}

// dropPushStream resets ps's push stream after a failed send and forgets it.
func (x *Exchange) dropPushStream(ps *peerState) {
	x.mu.Lock()
	c := ps.pushStream
	ps.pushStream = nil
	x.mu.Unlock()
	if c != nil {
		c.s.Reset()
	}
}

// closeIdlePushStreams closes the push streams no push used for a heartbeat,
// well before the receiver's read deadline (RequestTimeout) would end them.
func (x *Exchange) closeIdlePushStreams() {
	now := time.Now()
	var idle []*conn
	x.mu.Lock()
	for _, ps := range x.peers {
		// Taken under the lock the worker checks pushStream under: a worker
		// that starts after this opens a new stream.
		if ps.pushStream != nil && !ps.pushing && now.Sub(ps.pushedAt) >= x.cfg.HeartbeatInterval {
			idle = append(idle, ps.pushStream)
			ps.pushStream = nil
		}
	}
	x.mu.Unlock()
	for _, c := range idle {
		// Close reads the peer's handshake answer: bound it, and keep it off
		// the heartbeat loop.
		_ = c.s.SetReadDeadline(time.Now().Add(x.cfg.RequestTimeout))
		if !x.goFunc(func() { c.s.Close() }) {
			c.s.Reset()
		}
	}
}
