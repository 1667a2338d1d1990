package exchange

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
	"liandong/sync/wire"
)

// metrics are the liandong_sync_* series. Peer series are labelled by member
// centre id, never by raw peer id, to keep cardinality bounded by the bundle.
type metrics struct {
	peersConnected prometheus.Gauge
	peersStalled   *prometheus.GaugeVec // member
	lagEntries     *prometheus.GaugeVec // origin
	lagSeconds     *prometheus.GaugeVec // origin
	localSeq       *prometheus.GaugeVec // origin
	peerBehind     *prometheus.GaugeVec // member, origin
	applied        *prometheus.CounterVec
	rejected       *prometheus.CounterVec // reason
	faults         *prometheus.CounterVec // reason
	forks          *prometheus.CounterVec // origin
	framesSent     *prometheus.CounterVec // type
	framesRecv     *prometheus.CounterVec // type
	bytesSent      prometheus.Counter
	bytesRecv      prometheus.Counter
	announces      *prometheus.CounterVec // direction
	trust          *prometheus.CounterVec // outcome
	delay          *prometheus.HistogramVec
	pushDelay      *prometheus.HistogramVec

	refusedConns     *prometheus.CounterVec // direction, reason
	resourceRefusals *prometheus.CounterVec // scope, resource
	announceRefused  *prometheus.CounterVec // reason
}

// The label values below are the single list both the code that counts and
// newMetrics, which exports each at zero before the first event, use: a value
// counted but missing here would appear at 1, and rate() and increase() would
// miss that first event.

// Fault reasons beyond auth.ChainReason values: why a peer was cut off.
const (
	reasonOversized = "oversized-frame"
	reasonMalformed = "malformed-frame"
	reasonProtocol  = "protocol-violation"
	reasonFork      = "fork"
	reasonOwnOrigin = "own-origin"

	// Gossip faults (gossip.go): the peer that delivered the announcement is
	// cut off for them.
	reasonGossipFlood     = "gossip-flood"
	reasonGossipMalformed = "gossip-malformed"
	reasonGossipOversized = "gossip-oversized"
	reasonGossipSignature = "gossip-bad-signature"
)

// entryReasons are the fault reasons beyond auth.ChainReasons that can come
// with refused entries (liandong_sync_entries_rejected_total as well as
// liandong_sync_peer_faults_total); gossipReasons never do.
var (
	entryReasons  = []string{reasonOversized, reasonMalformed, reasonProtocol, reasonFork, reasonOwnOrigin}
	gossipReasons = []string{reasonGossipFlood, reasonGossipMalformed, reasonGossipOversized, reasonGossipSignature}
)

// rejectReasons are the reason values of liandong_sync_entries_rejected_total.
func rejectReasons() []string {
	out := make([]string, 0, len(auth.ChainReasons)+len(entryReasons))
	for _, r := range auth.ChainReasons {
		out = append(out, string(r))
	}
	return append(out, entryReasons...)
}

// faultReasons are the reason values of liandong_sync_peer_faults_total.
func faultReasons() []string { return append(rejectReasons(), gossipReasons...) }

// Why the connection gater refused a peer (liandong_sync_refused_connections_total).
const (
	refuseNotMember = "not-member" // the trust bundle does not list it (or no longer)
	refuseBlocked   = "blocked"    // its member is in Config.BlockMembers
	refuseBackedOff = "backed-off" // cut off after a fault, for BackoffDuration
	refuseSelf      = "self"       // this host's own peer id
	refuseCut       = "cut"        // a link cut by the test hook (SetRefuse)
)

// refuseReasons start at zero in both gaterDirections. refuseSelf is left out
// (libp2p never dials its own host, so the gater does not see it in practice),
// and so is refuseCut (a test hook).
const (
	dirInbound  = "inbound"
	dirOutbound = "outbound"
)

var (
	gaterDirections = []string{dirInbound, dirOutbound}
	refuseReasons   = []string{refuseNotMember, refuseBlocked, refuseBackedOff}
)

// Why a heads announcement was dropped (liandong_sync_announcements_refused_total).
const (
	gossipNotMember       = "not-member"       // its author is not a member peer
	gossipBackedOff       = "backed-off"       // its author or the peer delivering it is backed off
	gossipMalformed       = "malformed"        // not a wire message
	gossipNotAnnouncement = "not-announcement" // a wire message, but not heads
	gossipOtherFederation = "other-federation" // heads of another federation
	gossipOversized       = "oversized"        // data over maxAnnouncementBytes
	gossipStale           = "stale"            // not newer than its author's last accepted one: a replay, or overtaken
	gossipRateLimited     = "rate-limited"     // over the author's or the delivering peer's rate
	gossipBadSignature    = "bad-signature"    // signature invalid (e.g. another author claimed)
	gossipUnsigned        = "unsigned"         // no signature, or one of the wrong kind
	gossipSelfOrigin      = "self-origin"      // claims to be this host's, which never published it
	gossipOverloaded      = "overloaded"       // gossipsub's validation or delivery queue was full
	gossipInjected        = "fault-injected"   // delivered across a link Config.Faults cuts (test builds only)
)

// gossipRefusals start at zero; gossipInjected, of test builds only, does not.
var gossipRefusals = []string{gossipNotMember, gossipBackedOff, gossipMalformed, gossipNotAnnouncement, gossipOtherFederation,
	gossipOversized, gossipStale, gossipRateLimited, gossipBadSignature, gossipUnsigned, gossipSelfOrigin, gossipOverloaded}

// Directions of liandong_sync_announcements_total.
const (
	announceSent     = "sent"
	announceReceived = "received"
)

var announceDirections = []string{announceSent, announceReceived}

// Outcomes of liandong_sync_trust_bundles_total.
const (
	trustInstalled = "installed"
	trustRefused   = "refused"
)

var trustOutcomes = []string{trustInstalled, trustRefused}

// frameTypes are the message types of the sync protocol, the type values of
// liandong_sync_frames_sent_total and liandong_sync_frames_received_total;
// frameInvalid counts received frames that do not decode.
var frameTypes = []wire.Type{wire.TypePing, wire.TypePong, wire.TypeHeadsReq, wire.TypeHeads, wire.TypeRangeReq,
	wire.TypeBatch, wire.TypePush, wire.TypeError, wire.TypeTrustReq, wire.TypeTrust}

const frameInvalid = "invalid"

// Scope classes of liandong_sync_resource_refusals_total (resourceScope).
const (
	scopeSystem       = "system"
	scopeTransient    = "transient"
	scopePeer         = "peer"
	scopeProtocol     = "protocol"
	scopeProtocolPeer = "protocol-peer"
	scopeService      = "service"
	scopeServicePeer  = "service-peer"
	scopeConnection   = "connection"
	scopeStream       = "stream"
	scopeOther        = "other"
)

// Resources of liandong_sync_resource_refusals_total.
const (
	resourceStreams     = "streams"
	resourceConnections = "connections"
	resourceMemory      = "memory"
)

// resourceKinds are the resources the resource manager refuses, each with the
// scopes whose limits can refuse it, the combinations that start at zero:
// a stream is refused at the scopes it is added to (its peer's, the
// transient or system scope, then its protocol's and service's), a connection
// at its peer's, the transient or system scope; memory is reserved in every
// scope. A connection's and a stream's own scope holds only itself, so it
// never refuses one.
var resourceKinds = []struct {
	name   string
	scopes []string
}{
	{resourceStreams, []string{scopeSystem, scopeTransient, scopePeer, scopeProtocol, scopeProtocolPeer, scopeService, scopeServicePeer}},
	{resourceConnections, []string{scopeSystem, scopeTransient, scopePeer}},
	{resourceMemory, []string{scopeSystem, scopeTransient, scopePeer, scopeProtocol, scopeProtocolPeer, scopeService, scopeServicePeer, scopeConnection, scopeStream}},
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "liandong", "sync"
	m := &metrics{
		peersConnected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "peers_connected", Help: "Federation peers with an open connection."}),
		peersStalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "peers_stalled", Help: "Connected peers of a member centre that have answered nothing for longer than the stall limit."}, []string{"member"}),
		lagEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "lag_entries", Help: "Best head seq seen at any peer minus the local head seq, per origin."}, []string{"origin"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "lag_seconds", Help: "How long this node has known of entries of the origin it does not hold yet; 0 when caught up."}, []string{"origin"}),
		localSeq: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "local_head_seq", Help: "Seq of the local head of each origin's log."}, []string{"origin"}),
		peerBehind: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "peer_behind_entries", Help: "Entries of an origin this node holds beyond the most a member's connected peers claim (0 when they are level or ahead)."}, []string{"member", "origin"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "entries_applied_total", Help: "Entries received from peers, verified and applied, by origin."}, []string{"origin"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "entries_rejected_total", Help: "Entries received from peers and refused, by reason; a refused batch counts all its entries."}, []string{"reason"}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "peer_faults_total", Help: "Peers cut off and backed off for breaking the protocol or sending bad entries, by reason."}, []string{"reason"}),
		forks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "forks_detected_total", Help: "Validly signed entries conflicting with held entries of the same origin and seq (the origin forked its log)."}, []string{"origin"}),
		framesSent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "frames_sent_total", Help: "Sync protocol frames sent, by message type."}, []string{"type"}),
		framesRecv: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "frames_received_total", Help: "Sync protocol frames received, by message type."}, []string{"type"}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "sent_bytes_total", Help: "Sync protocol bytes sent, frame headers included."}),
		bytesRecv: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "received_bytes_total", Help: "Sync protocol bytes received, frame headers included."}),
		announces: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "announcements_total", Help: "Heads announcements on gossipsub, published and received."}, []string{"direction"}),
		trust: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "trust_bundles_total", Help: "Newer trust bundles fetched from peers, by outcome (installed or refused)."}, []string{"outcome"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns,
			Name: "replication_delay_seconds", Help: "Time from an entry's signing at its origin to its apply here, by origin.",
			Buckets: delayBuckets()}, []string{"origin"}),
		pushDelay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns,
			Name: "replication_push_delay_seconds", Help: "Time from an entry's signing at its origin to the arrival here of the origin's push that carried it, for entries applied from that push, by origin: the origin's commit and the network, where replication_delay_seconds adds the wait for the origin's apply lock and this node's verification and commit.",
			Buckets: delayBuckets()}, []string{"origin"}),
		refusedConns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "refused_connections_total", Help: "Connections the libp2p connection gater refused, by direction and reason (not-member, blocked, backed-off, self, cut)."}, []string{"direction", "reason"}),
		resourceRefusals: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "resource_refusals_total", Help: "Streams, connections and memory reservations the libp2p resource manager refused, by the scope whose limit was reached and the resource."}, []string{"scope", "resource"}),
		announceRefused: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "announcements_refused_total", Help: "Heads announcements received on gossipsub and dropped, by reason."}, []string{"reason"}),
	}
	// Known label values start at zero, so rate() and alerts see them at once.
	for _, r := range faultReasons() {
		m.faults.WithLabelValues(r)
	}
	for _, r := range rejectReasons() {
		m.rejected.WithLabelValues(r)
	}
	for _, d := range gaterDirections {
		for _, r := range refuseReasons {
			m.refusedConns.WithLabelValues(d, r)
		}
	}
	for _, r := range gossipRefusals {
		m.announceRefused.WithLabelValues(r)
	}
	for _, d := range announceDirections {
		m.announces.WithLabelValues(d)
	}
	for _, o := range trustOutcomes {
		m.trust.WithLabelValues(o)
	}
	for _, t := range frameTypes {
		m.framesSent.WithLabelValues(t.String())
		m.framesRecv.WithLabelValues(t.String())
	}
	m.framesRecv.WithLabelValues(frameInvalid)
	for _, res := range resourceKinds {
		for _, scope := range res.scopes {
			m.resourceRefusals.WithLabelValues(scope, res.name)
		}
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.peersConnected, m.peersStalled, m.lagEntries, m.lagSeconds,
		m.localSeq, m.peerBehind, m.applied, m.rejected, m.faults, m.forks, m.framesSent, m.framesRecv, m.bytesSent,
		m.bytesRecv, m.announces, m.trust, m.delay, m.pushDelay, m.refusedConns, m.resourceRefusals, m.announceRefused} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("register sync metrics: already registered (one Exchange per registry)")
			}
			return nil, fmt.Errorf("register sync metrics: %w", err)
		}
	}
	return m, nil
}

// knowOrigin exports at zero the per-origin series of an origin the trust
// bundle lists, where it has none yet: the first entry applied (or fork
// detected) then shows as an increase, and the lag of a centre not heard from
// yet reads 0 rather than nothing. own is this node's centre: its log is not
// received from peers (but while it recovers), so only its local head is
// exported.
// forgetOrigin drops the per-origin series knowOrigin started, for a centre
// the bundle removed of which nothing is held.
func (m *metrics) forgetOrigin(origin string) {
	for _, v := range []*prometheus.GaugeVec{m.localSeq, m.lagEntries, m.lagSeconds} {
		v.DeleteLabelValues(origin)
	}
	m.applied.DeleteLabelValues(origin)
	m.forks.DeleteLabelValues(origin)
	m.delay.DeleteLabelValues(origin)
	m.pushDelay.DeleteLabelValues(origin)
}

func (m *metrics) knowOrigin(origin string, own bool) {
	m.localSeq.WithLabelValues(origin)
	if own {
		return
	}
	m.lagEntries.WithLabelValues(origin)
	m.lagSeconds.WithLabelValues(origin)
	m.applied.WithLabelValues(origin)
	m.forks.WithLabelValues(origin)
	m.delay.WithLabelValues(origin)
	m.pushDelay.WithLabelValues(origin)
}

// Per-member connection series, read from Status at scrape time so that a
// member listed in the bundle shows (at 0) before its peers ever connect.
var (
	descMemberListed = prometheus.NewDesc("liandong_sync_member_listed_peers",
		"Peers (replicas) of a member centre the trust bundle lists, this node excluded, and so are peers cut on purpose (the member in p2p.block, the peer's id revoked in the bundle).", []string{"member"}, nil)
	descMemberConnected = prometheus.NewDesc("liandong_sync_member_connected_peers",
		"Peers of a member centre with an open connection to this node.", []string{"member"}, nil)
	descMemberContact = prometheus.NewDesc("liandong_sync_member_last_contact_timestamp_seconds",
		"When a peer of the member centre last answered a request of this node (Unix time); absent until one has.", []string{"member"}, nil)
	descMemberRTT = prometheus.NewDesc("liandong_sync_member_rtt_seconds",
		"Round-trip time of the last answer from the member's most recently heard connected peer.", []string{"member"}, nil)
)

// memberCollector turns the bundle's peer list and the exchange's Status into
// the liandong_sync_member_* series.
type memberCollector struct{ x *Exchange }

// registerMemberCollector adds the per-member series of x to reg.
func registerMemberCollector(reg prometheus.Registerer, x *Exchange) error {
	if reg == nil {
		return nil
	}
	if err := reg.Register(memberCollector{x: x}); err != nil {
		return fmt.Errorf("register sync member metrics: %w", err)
	}
	return nil
}

func (c memberCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descMemberListed, descMemberConnected, descMemberContact, descMemberRTT} {
		ch <- d
	}
}

func (c memberCollector) Collect(ch chan<- prometheus.Metric) {
	type member struct {
		listed, connected int
		contact           time.Time
		rtt               float64
	}
	members := map[string]*member{}
	if b := c.x.node.Bundle(); b != nil {
		for _, m := range b.Members {
			if m.Removed != nil {
				continue
			}
			// Peers cut on purpose, the member in p2p.block or the peer's
			// id revoked in the bundle, are left out, as Status marks
			// them and `liandong status` counts them: listed > 0 with
			// nothing connected (LiandongPeerDisconnected) is an outage,
			// not the operator's or the bundle's cut.
			blocked := slices.Contains(c.x.cfg.BlockMembers, m.ID)
			others, n := 0, 0
			for _, p := range m.Peers {
				if p.ID == c.x.self.String() {
					continue
				}
				others++
				if revoked, _ := peerRevocation(b, p.ID); !blocked && !revoked {
					n++
				}
			}
			if others > 0 {
				members[m.ID] = &member{listed: n}
			}
		}
	}
	for _, p := range c.x.Status().Peers {
		m := members[p.Member]
		if m == nil {
			continue // not (or no longer) listed: the gater refuses it
		}
		if p.Connected && !p.Blocked && !p.Revoked {
			m.connected++
		}
		if p.LastContact != nil && p.LastContact.After(m.contact) {
			m.contact = *p.LastContact
			m.rtt = 0
			if p.Connected {
				m.rtt = p.RTTSeconds
			}
		}
	}
	for id, m := range members {
		ch <- prometheus.MustNewConstMetric(descMemberListed, prometheus.GaugeValue, float64(m.listed), id)
		ch <- prometheus.MustNewConstMetric(descMemberConnected, prometheus.GaugeValue, float64(m.connected), id)
		if !m.contact.IsZero() {
			ch <- prometheus.MustNewConstMetric(descMemberContact, prometheus.GaugeValue, float64(m.contact.UnixNano())/1e9, id)
		}
		if m.rtt > 0 {
			ch <- prometheus.MustNewConstMetric(descMemberRTT, prometheus.GaugeValue, m.rtt, id)
		}
	}
}

// delayBuckets bound the replication delay histograms: from a millisecond (a
// push between centres on one network) to an hour (a centre back from a long
// partition).
func delayBuckets() []float64 {
	return []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}
}
