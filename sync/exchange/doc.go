// Package exchange replicates the federation's per-origin signed logs between
// centres over libp2p. It is the sync/ part of liandong (see DESIGN.md, "Between
// centres"); the frame codec lives in liandong/sync/wire.
//
// Each node replica runs one Exchange: a libp2p host (ed25519 identity, Noise,
// yamux, TCP and QUIC) whose connection gater admits only peer ids the current
// trust bundle lists, under a resource manager with fixed limits. It never
// imports the node: it talks to it through the Node interface, declared here.
//
// # Mechanisms
//
//   - Push. Notify (called by the node after each local commit) is debounced into
//     one heads announcement on the gossipsub topic "/liandong/heads/<federation>",
//     and, on the raft leader, the fresh entries of this centre's own log are sent
//     to every connected peer on one stream per peer, kept open between pushes
//     until idle a heartbeat. While push is on, announcements are coalesced
//     longer (PushingAnnounceDebounce): pushes carry fresh entries to every
//     connected peer, and gossip only tells peers who else holds what, for
//     those cut off from an origin. A receiver keeps pushed entries that find their
//     origin being applied and applies them when the apply lock is released,
//     so the pushes that arrive meanwhile share one raft batch; and it lets a
//     head announced for an origin that is connected and has pushed to it
//     within the last minute wait PushGrace for that origin's push before
//     pulling it, since announcements usually arrive first. A gap a push
//     leaves is pulled at once: heads of the pusher that were written before
//     the push and read after it do not lower the claim the push made, in
//     its epoch, while this node is behind it (what the pusher then serves
//     does). Gossip is never trusted with entries and may drop messages; it
//     only tells peers whom to pull from.
//   - Pull. The stream protocol /liandong/sync/3 (and /liandong/sync/2, for
//     nodes not yet upgraded) serves heads and ranges (origin, from_seq,
//     limit) in frames of at most BatchSize entries and MaxFrameBytes, and
//     within the requester's own two limits, which a version 3 range request
//     carries (a frame limit is taken as at least one largest entry, the
//     least a node may be configured with): centres configured differently
//     still sync. A frame of a version 2 peer larger than this node's
//     BatchSize is applied in batches of BatchSize; a push, sent unasked,
//     keeps under the frame limit the peer's range requests said. Streams
//     of both versions share one allowance a peer (the resource manager's
//     service scope). Every
//     AntiEntropyInterval the exchange trades heads with each connected peer and
//     pulls wherever a peer is ahead, from whichever peer is, so an origin's
//     entries arrive through any relay when the direct link is down. Heads
//     travel with their digest and are left out when the other side holds
//     them already (wire.Heads), so a round in the steady state costs a node
//     bytes linear in its peers, not in peers times origins. A range answer
//     is read and decoded while the previous batch is applied; it has
//     RequestTimeout for each frame and a deadline for the whole that grows
//     with the entries asked for, past which the peer, slow but not faulty,
//     is not cut off, but the range is pulled from another.
//   - Heartbeats. Each HeartbeatInterval every connected peer is pinged; a peer
//     that answers nothing for StallAfter shows as stalled, connection or not.
//
// # Verification
//
// Only a node whose CanApply is true (the centre's raft leader) pulls and applies;
// every node serves heads and ranges. Received entries continue the local head of
// their origin: held seqs are compared by hash (equal: skipped; different: a fork,
// refused, counted and logged, never merged), the rest go through
// auth.VerifyChain in batch-signature mode against the current bundle, and only
// then to Node.ApplyEntries, one batch at a time under a per-origin lock. A node
// never accepts entries of its own origin. A peer that sends a forged,
// broken-chain, malformed or oversized frame is disconnected, refused by the
// gater for BackoffDuration, and counted by reason; nothing of the batch is
// applied and the range is pulled from another peer. Entries its origin signed
// with a key the current bundle no longer takes at that time (the origin was
// removed, or the key revoked or retired, after the relay applied them under
// the bundle before) are refused and counted, what comes before them is
// applied, and a relay that is not their origin is not cut off: it forged
// nothing, and would be cut off again at every reconnection. That relay is
// not asked for them again, nor are its pushes of them verified, while the
// bundle version holds.
//
// # Caller duties
//
// Build with New (it listens at once, so ID and Addrs can go into the trust
// bundle), then call Run once; it returns when its context ends, after closing
// the host. Close releases an Exchange that was never run. The node calls
// Notify after each commit (its own entries and applied ones alike); Status is
// cheap enough for every /v1/federation request. Config.Registerer must be the
// node's own registry: two Exchanges cannot share one.
//
// # Ownership and locks
//
// Run owns every goroutine the exchange starts (loops, requests, stream handlers):
// each is started through goFunc, which refuses once shutdown has begun, and Run
// waits for all of them after closing the host. Exchange.mu guards the peer,
// origin and back-off tables; it is a leaf lock, never held while calling the
// Node, the host, or while waiting on an origin's apply lock. The Node's methods
// may be called from several goroutines at once; Bundle and CanApply must be cheap,
// as the connection gater calls Bundle for every new connection.
package exchange
