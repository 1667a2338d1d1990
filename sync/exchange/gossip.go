package exchange

import (
	"context"
	"fmt"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/schema"
	"liandong/sync/wire"
)

// TopicPrefix is the prefix of the gossipsub topic heads are announced on; the
// federation id follows it.
const TopicPrefix = "/liandong/heads/"

// maxAnnouncementBytes bounds one announcement: heads only, a few per origin.
const maxAnnouncementBytes = 64 << 10

// startGossip joins the federation's heads topic. Pubsub lives as long as ctx.
func (x *Exchange) startGossip(ctx context.Context) error {
	b := x.node.Bundle()
	if b == nil || b.Federation == "" {
		return fmt.Errorf("start gossip: the trust bundle names no federation")
	}
	admitted := func(p peer.ID, _ string) bool { _, ok := x.admit(p); return ok }
	ps, err := pubsub.NewGossipSub(ctx, x.host,
		pubsub.WithPeerFilter(admitted),
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMaxMessageSize(maxAnnouncementBytes),
		pubsub.WithPeerExchange(false),
		pubsub.WithLogger(x.log.With("subsystem", "gossipsub")),
	)
	if err != nil {
		return fmt.Errorf("start gossipsub: %w", err)
	}
	name := TopicPrefix + b.Federation
	if err := ps.RegisterTopicValidator(name, x.validateAnnouncement); err != nil {
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

// validateAnnouncement accepts heads announcements of admitted peers of this
// federation; anything else is rejected (and scored down by gossipsub).
func (x *Exchange) validateAnnouncement(_ context.Context, from peer.ID, msg *pubsub.Message) pubsub.ValidationResult {
	src := msg.GetFrom()
	if src == x.self {
		return pubsub.ValidationAccept
	}
	if _, ok := x.node.Bundle().PeerAllowed(src.String()); !ok {
		return pubsub.ValidationReject
	}
	m, err := wire.Decode(msg.Data)
	if err != nil {
		return pubsub.ValidationReject
	}
	h, ok := m.(*wire.Heads)
	if !ok || h.Request || h.Federation != x.node.Bundle().Federation {
		return pubsub.ValidationReject
	}
	msg.ValidatorData = h
	return pubsub.ValidationAccept
}

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
		x.m.announces.WithLabelValues("received").Inc()
		x.checkFederation(src, h)
		x.noteHeads(src, h.Heads, true)
	}
}

// announce publishes the local heads and, on the leader, pushes this centre's
// fresh entries to connected peers.
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
	if topic != nil {
		if err := topic.Publish(ctx, wire.Encode(h)); err != nil {
			if ctx.Err() == nil {
				x.log.Warn("publish heads", "err", err)
			}
		} else {
			x.m.announces.WithLabelValues("sent").Inc()
		}
	}
	if !x.cfg.DisablePush {
		for _, hd := range h.Heads {
			if hd.Origin == x.centre {
				x.push(hd)
			}
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
	entries, err := x.node.ReadRange(ctx, x.centre, from, int(own.Seq-from+1))
	if err != nil {
		if ctx.Err() == nil {
			x.log.Warn("read own entries to push", "from", from, "err", err)
		}
		return
	}
	// Keep the frame under the limit by dropping the oldest; a pull fetches them.
	size, maxBody := 0, x.cfg.MaxFrameBytes-wire.Overhead
	cut := len(entries)
	for cut > 0 && size+wire.EntrySize(entries[cut-1]) <= maxBody {
		size += wire.EntrySize(entries[cut-1])
		cut--
	}
	entries = entries[cut:]
	if len(entries) == 0 {
		return
	}
	if err := x.sendOneWay(ctx, p, &wire.Push{Origin: x.centre, Entries: entries}); err != nil {
		x.handleErr(p, fmt.Errorf("push: %w", err))
		return
	}
	x.mu.Lock()
	ps.pushedSeq = max(ps.pushedSeq, entries[len(entries)-1].Seq)
	x.mu.Unlock()
}
