package exchange

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	yamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	noise "github.com/libp2p/go-libp2p/p2p/security/noise"
	quic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	"github.com/multiformats/go-multiaddr"

	"liandong/auth"
	"liandong/sync/wire"
)

// newHost builds the libp2p host: the configured identity, Noise, yamux, TCP and
// QUIC only, no relay, no libp2p metrics on any registry, the gater, and a
// resource manager with fixed limits. Refusals of both are counted in g's
// exchange's metrics.
func newHost(cfg Config, g gater) (host.Host, error) {
	rm, err := newResourceManager(cfg, g.x.m)
	if err != nil {
		return nil, err
	}
	h, err := libp2p.New(
		libp2p.Identity(cfg.Identity),
		libp2p.ListenAddrStrings(cfg.ListenAddrs...),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(quic.NewTransport),
		libp2p.ConnectionGater(g),
		libp2p.ResourceManager(rm),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
		libp2p.Ping(false),
		libp2p.UserAgent("liandong"),
		libp2p.WithDialTimeout(cfg.RequestTimeout),
	)
	if err != nil {
		rm.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	return h, nil
}

// newResourceManager bounds connections, streams and memory with
// resourceLimiter's limits. Every refusal is counted in m
// (liandong_sync_resource_refusals_total).
func newResourceManager(cfg Config, m *metrics) (network.ResourceManager, error) {
	// libp2p's own metrics stay off (they would register on the global
	// registry); a trace reporter sees each refusal, with the scope refusing.
	rm, err := rcmgr.NewResourceManager(resourceLimiter(cfg), rcmgr.WithMetricsDisabled(),
		rcmgr.WithTraceReporter(resourceReporter{m: m}))
	if err != nil {
		return nil, fmt.Errorf("libp2p resource manager: %w", err)
	}
	return rm, nil
}

const (
	// expectedPeers is the most peers (hosts, not centres) the limits are
	// sized for: a few dozen.
	expectedPeers = 32
	// syncPeerStreamsInbound bounds one peer's inbound sync streams: a
	// range answer holds up to a frame in memory, so this bounds what one
	// peer can make this node buffer.
	syncPeerStreamsInbound = 16
	// peerStreamsInbound bounds the streams one peer may have open to this
	// node, negotiated or not, across protocols: its sync streams, with as
	// many again for gossipsub's and identify's few and to spare.
	peerStreamsInbound = 2 * syncPeerStreamsInbound
	// transientStreamsInbound is the node-wide room for inbound streams that
	// have not named their protocol yet, which libp2p leaves there for up to
	// its negotiation timeout (10 s; go-libp2p v0.51 offers no option to
	// shorten it). Each stream also counts against its peer's
	// peerStreamsInbound, so with room for every expected peer's whole
	// allowance, one peer (or a few) opening raw streams that never
	// negotiate cannot lock the others out.
	transientStreamsInbound = expectedPeers * peerStreamsInbound
	// syncService is the resource manager service of both versions' streams.
	syncService = "liandong-sync"
)

// resourceLimiter returns fixed limits, the same on every machine: libp2p's
// defaults scaled for MaxMemoryBytes and 1024 file descriptors, then tightened
// for a federation of expectedPeers peers.
func resourceLimiter(cfg Config) rcmgr.Limiter {
	scaling := rcmgr.DefaultLimits
	libp2p.SetDefaultServiceLimits(&scaling)
	base := scaling.Scale(cfg.MaxMemoryBytes, 1024)

	conns := rcmgr.LimitVal(cfg.MaxConns)
	perPeerMem := rcmgr.LimitVal64(max(cfg.MaxMemoryBytes/8, 8*int64(cfg.MaxFrameBytes)))
	syncLimits := rcmgr.ResourceLimits{
		Streams: 1024, StreamsInbound: 512, StreamsOutbound: 512,
		Memory: rcmgr.LimitVal64(cfg.MaxMemoryBytes / 2),
	}
	syncPeerLimits := rcmgr.ResourceLimits{
		Streams: syncPeerStreamsInbound + 32, StreamsInbound: syncPeerStreamsInbound, StreamsOutbound: 32,
		Memory: perPeerMem,
	}
	partial := rcmgr.PartialLimitConfig{
		System: rcmgr.ResourceLimits{
			Conns: conns, ConnsInbound: conns, ConnsOutbound: conns,
			Streams: 4096, StreamsInbound: 2048, StreamsOutbound: 2048,
			FD:     rcmgr.LimitVal(cfg.MaxConns),
			Memory: rcmgr.LimitVal64(cfg.MaxMemoryBytes),
		},
		Transient: rcmgr.ResourceLimits{
			Conns: conns / 2, ConnsInbound: conns / 2, ConnsOutbound: conns / 2,
			Streams: transientStreamsInbound + 128, StreamsInbound: transientStreamsInbound, StreamsOutbound: 128,
			FD:     rcmgr.LimitVal(cfg.MaxConns / 2),
			Memory: rcmgr.LimitVal64(cfg.MaxMemoryBytes / 8),
		},
		PeerDefault: rcmgr.ResourceLimits{
			Conns: 8, ConnsInbound: 4, ConnsOutbound: 4,
			Streams: peerStreamsInbound + 256, StreamsInbound: peerStreamsInbound, StreamsOutbound: 256,
			FD:     8,
			Memory: perPeerMem,
		},
		// Version 2 streams get limits of their own, as large as version
		// 3's: an honest peer opens streams of one version only. One that
		// opens both is held to one allowance by the sync service's scope,
		// which handleStream puts every inbound stream of either in.
		Service:     map[string]rcmgr.ResourceLimits{syncService: syncLimits},
		ServicePeer: map[string]rcmgr.ResourceLimits{syncService: syncPeerLimits},
		Protocol: map[protocol.ID]rcmgr.ResourceLimits{
			wire.ProtocolID: syncLimits,
			wire.ProtocolV2: syncLimits,
		},
		ProtocolPeer: map[protocol.ID]rcmgr.ResourceLimits{
			wire.ProtocolID: syncPeerLimits,
			wire.ProtocolV2: syncPeerLimits,
		},
	}
	return rcmgr.NewFixedLimiter(partial.Build(base))
}

// resourceReporter counts the resource manager's refusals by scope and
// resource. The resource manager calls it synchronously for every event, under
// its trace lock: it only matches the event type and bumps a counter.
type resourceReporter struct{ m *metrics }

func (r resourceReporter) ConsumeEvent(evt rcmgr.TraceEvt) {
	var resource string
	switch evt.Type {
	case rcmgr.TraceBlockAddStreamEvt:
		resource = resourceStreams
	case rcmgr.TraceBlockAddConnEvt:
		resource = resourceConnections
	case rcmgr.TraceBlockReserveMemoryEvt:
		resource = resourceMemory
	default:
		return
	}
	r.m.resourceRefusals.WithLabelValues(resourceScope(evt.Name), resource).Inc()
}

// resourceScope maps a resource manager scope name ("system",
// "protocol:/liandong/sync/3.peer:12D3…", "conn-42.span-3" …) to its class, so
// the label's values are bounded: system, transient, peer, protocol,
// protocol-peer, service, service-peer, connection, stream or other.
func resourceScope(name string) string {
	if i := strings.Index(name, ".span-"); i >= 0 {
		name = name[:i]
	}
	switch {
	case name == "system" || name == "allowlistedSystem":
		return scopeSystem
	case name == "transient" || name == "allowlistedTransient":
		return scopeTransient
	case strings.HasPrefix(name, "peer:"):
		return scopePeer
	case strings.HasPrefix(name, "conn-"):
		return scopeConnection
	case strings.HasPrefix(name, "stream-"):
		return scopeStream
	case strings.HasPrefix(name, "protocol:"):
		if strings.Contains(name, ".peer:") {
			return scopeProtocolPeer
		}
		return scopeProtocol
	case strings.HasPrefix(name, "service:"):
		if strings.Contains(name, ".peer:") {
			return scopeServicePeer
		}
		return scopeService
	}
	return scopeOther
}

// gater admits only peers the current bundle lists, that are not backed off,
// and counts what it refuses (liandong_sync_refused_connections_total).
type gater struct{ x *Exchange }

func (g gater) InterceptPeerDial(p peer.ID) bool                    { return g.x.gate(network.DirOutbound, p) }
func (g gater) InterceptAddrDial(peer.ID, multiaddr.Multiaddr) bool { return true }
func (g gater) InterceptAccept(network.ConnMultiaddrs) bool         { return true }
func (g gater) InterceptSecured(dir network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return g.x.gate(dir, p)
}
func (g gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// gate is admit for the connection gater: a refusal is counted by direction and
// reason, and logged at debug level (a stranger may dial in a loop).
func (x *Exchange) gate(dir network.Direction, p peer.ID) bool {
	member, reason := x.admission(p)
	if reason == "" {
		return true
	}
	d := dirInbound
	if dir == network.DirOutbound {
		d = dirOutbound
	}
	x.m.refusedConns.WithLabelValues(d, reason).Inc()
	x.log.Debug("connection refused by the gater", "peer", p.String(), "member", member, "direction", d, "reason", reason)
	return false
}

// admit reports whether p may be connected now, and its member centre.
func (x *Exchange) admit(p peer.ID) (member string, ok bool) {
	member, reason := x.admission(p)
	return member, reason == ""
}

// peerMember is b.PeerAllowed for p. An admitted peer's text form (base58)
// is remembered: every push asks the bundle who each connected peer is, and
// encoding the id anew was 1.2 % of a node's CPU at 200 writes/s across the
// federation. Only peers the bundle admits are remembered, so a stream of
// made-up ids cannot grow the cache, and an id's text never changes.
func (x *Exchange) peerMember(b *auth.Bundle, p peer.ID) (member string, ok bool) {
	text, cached := "", false
	if v, found := x.peerTexts.Load(p); found {
		text, cached = v.(string), true
	} else {
		text = p.String()
	}
	member, ok = b.PeerAllowed(text)
	if ok && !cached {
		x.peerTexts.Store(p, text)
	}
	return member, ok
}

// admission returns p's member centre and, when p may not be connected now,
// why not (a refuse* reason); "" when it may.
func (x *Exchange) admission(p peer.ID) (member, reason string) {
	if p == x.self {
		return "", refuseSelf
	}
	member, ok := x.peerMember(x.node.Bundle(), p)
	if !ok {
		return "", refuseNotMember
	}
	if slices.Contains(x.cfg.BlockMembers, member) {
		return member, refuseBlocked
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.backedOffLocked(p, x.now()) {
		return member, refuseBackedOff
	}
	if x.refuse != nil && x.refuse(p) {
		return member, refuseCut
	}
	return member, ""
}

// backedOff reports whether p is backed off after a fault.
func (x *Exchange) backedOff(p peer.ID) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.backedOffLocked(p, x.now())
}

// backedOffLocked is backedOff at now (the exchange's clock) for a caller
// holding x.mu.
func (x *Exchange) backedOffLocked(p peer.ID, now time.Time) bool {
	until, bad := x.backoff[p]
	return bad && now.Before(until)
}

// expireBackoffs forgets back-offs that have run out.
func (x *Exchange) expireBackoffs() {
	now := x.now()
	x.mu.Lock()
	defer x.mu.Unlock()
	for p, until := range x.backoff {
		if !now.Before(until) {
			delete(x.backoff, p)
		}
	}
}

// enforceBundle closes connections to peers the current bundle no longer admits
// (a member removed, a peer revoked), and forgets peers it no longer lists.
func (x *Exchange) enforceBundle() {
	for _, p := range x.host.Network().Peers() {
		if _, ok := x.admit(p); !ok {
			x.log.Info("closing connection to a peer no longer admitted", "peer", p.String())
			x.host.Network().ClosePeer(p)
		}
	}
	x.forgetUnlisted()
}

// forgetUnlisted drops what is known of disconnected peers the current bundle
// does not admit as any member's (a host a new bundle took from its centre):
// kept, such a peer showed at /v1/federation, and so in `liandong status`, as
// a host of its former centre that is down, until a restart. A blocked or
// backed-off peer is still listed and kept; one a later bundle lists again
// starts afresh. Nothing is forgotten while the node recovers its own log.
func (x *Exchange) forgetUnlisted() {
	b := x.node.Bundle()
	if b == nil || x.node.Recovering() {
		// Own-log recovery ends on the highest head any peer claimed
		// (checkRecovery): a host taken from its centre may be the only one
		// that said how far this centre's log went.
		return
	}
	x.mu.Lock()
	var idle []peer.ID
	for p, ps := range x.peers {
		if !ps.connected && !ps.busyLocked() {
			idle = append(idle, p)
		}
	}
	x.mu.Unlock()
	var gone []peer.ID
	for _, p := range idle {
		if _, ok := x.peerMember(b, p); !ok {
			gone = append(gone, p)
		}
	}
	if len(gone) == 0 {
		return
	}
	x.mu.Lock()
	for _, p := range gone {
		// Checked again: it may have connected or been asked something
		// since. One a newer bundle lists again is made afresh by redial.
		if ps, ok := x.peers[p]; ok && !ps.connected && !ps.busyLocked() {
			delete(x.peers, p)
			x.log.Info("forgetting a peer the trust bundle no longer lists", "peer", p.String(), "member", ps.member)
		}
	}
	x.mu.Unlock()
}

// redial connects to every admitted bundle peer that is not connected.
func (x *Exchange) redial() {
	b := x.node.Bundle()
	if b == nil {
		return
	}
	for _, m := range b.Members {
		if m.Removed != nil {
			continue
		}
		for _, bp := range m.Peers {
			ai, err := bundlePeerInfo(bp.ID, bp.Addrs)
			if err != nil {
				x.log.Debug("bundle peer unusable", "member", m.ID, "peer", bp.ID, "err", err)
				continue
			}
			if ai.ID == x.self || len(ai.Addrs) == 0 {
				continue
			}
			if x.host.Network().Connectedness(ai.ID) == network.Connected {
				continue
			}
			if _, ok := x.admit(ai.ID); !ok {
				continue
			}
			x.mu.Lock()
			ps := x.peerLocked(ai.ID, m.ID)
			ps.addrs = ai.Addrs
			busy := ps.dialing
			ps.dialing = true
			x.mu.Unlock()
			if busy {
				continue
			}
			if !x.goFunc(func() { x.dial(ai) }) {
				x.mu.Lock()
				ps.dialing = false
				x.mu.Unlock()
			}
		}
	}
}

func (x *Exchange) dial(ai peer.AddrInfo) {
	defer func() {
		x.mu.Lock()
		if ps, ok := x.peers[ai.ID]; ok {
			ps.dialing = false
		}
		x.mu.Unlock()
	}()
	ctx, cancel := x.requestContext()
	defer cancel()
	// Past libp2p's dial backoff: redial already paces the dials (one per
	// peer per anti-entropy round, never two at once), and the swarm's
	// backoff of an address whose dials failed grows to 5 min (5 s + 1 s ×
	// failures²), so after an outage of half an hour sync came back up to
	// five minutes after the link did, every round in between refused
	// without dialling, when only this side can dial (the other's
	// connections do not reach it: a firewall that lets them out only).
	ctx = network.WithForceDirectDial(ctx, "liandong: redial a listed peer")
	if err := x.host.Connect(ctx, ai); err != nil {
		x.peerError(ai.ID, fmt.Errorf("dial: %w", err))
	}
}

// bundlePeerInfo parses a bundle peer: its id and multiaddrs, which may carry a
// trailing /p2p/<id>.
func bundlePeerInfo(id string, addrs []string) (peer.AddrInfo, error) {
	pid, err := peer.Decode(id)
	if err != nil {
		return peer.AddrInfo{}, fmt.Errorf("peer id %q: %w", id, err)
	}
	ai := peer.AddrInfo{ID: pid}
	for _, s := range addrs {
		a, err := multiaddr.NewMultiaddr(s)
		if err != nil {
			return peer.AddrInfo{}, fmt.Errorf("address %q: %w", s, err)
		}
		transport, p2p := peer.SplitAddr(a)
		if p2p != "" && p2p != pid {
			return peer.AddrInfo{}, fmt.Errorf("address %q names peer %s, not %s", s, p2p, pid)
		}
		if transport != nil {
			ai.Addrs = append(ai.Addrs, transport)
		}
	}
	return ai, nil
}

// requestContext is a context for one request: Run's, bounded by RequestTimeout.
func (x *Exchange) requestContext() (context.Context, context.CancelFunc) {
	x.mu.Lock()
	ctx := x.runCtx
	x.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, x.cfg.RequestTimeout)
}
