package exchange

import (
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/auth"
	"liandong/schema"
)

// FederationStatus is the sync state the node shows at /v1/federation.
type FederationStatus struct {
	Federation    string   `json:"federation"`
	BundleVersion uint64   `json:"bundle_version"`
	Centre        string   `json:"centre"`
	PeerID        string   `json:"peer_id"`
	Addrs         []string `json:"addrs"`
	CanApply      bool     `json:"can_apply"`
	// Block is this host's Config.BlockMembers (p2p.block) as configured,
	// so that an entry naming the wrong centre, or none, shows.
	Block   []string       `json:"block,omitempty"`
	Peers   []PeerStatus   `json:"peers"`
	Origins []OriginStatus `json:"origins"`
}

// PeerStatus is one peer: a host the bundle lists, or one that connected.
type PeerStatus struct {
	PeerID string `json:"peer_id"`
	Member string `json:"member,omitempty"`
	// Addrs are the addresses the bundle lists; ConnAddrs those of the open
	// connections.
	Addrs     []string `json:"addrs,omitempty"`
	ConnAddrs []string `json:"conn_addrs,omitempty"`
	Connected bool     `json:"connected"`
	// Stalled: connected, but nothing asked of it was answered for StallAfter.
	Stalled bool `json:"stalled"`
	// Blocked: the peer's member is in Config.BlockMembers (p2p.block), so
	// this host neither dials nor admits it: the operator's cut, not a fault.
	Blocked bool `json:"blocked,omitempty"`
	// Revoked: the trust bundle revokes the peer's id ("peer:" revocation),
	// so no host holding that bundle dials or admits it. RevokedReason is
	// the revocation's reason, when it gives one.
	Revoked        bool          `json:"revoked,omitempty"`
	RevokedReason  string        `json:"revoked_reason,omitempty"`
	BackedOffUntil *time.Time    `json:"backed_off_until,omitempty"`
	LastContact    *time.Time    `json:"last_contact,omitempty"`
	RTTSeconds     float64       `json:"rtt_seconds,omitempty"`
	LastError      string        `json:"last_error,omitempty"`
	LastErrorAt    *time.Time    `json:"last_error_at,omitempty"`
	Heads          []schema.Head `json:"heads,omitempty"`
	HeadsAt        *time.Time    `json:"heads_at,omitempty"`
}

// OriginStatus is one origin's log here against the best any peer claims.
type OriginStatus struct {
	Origin string      `json:"origin"`
	Local  schema.Head `json:"local"`
	Best   schema.Head `json:"best"`
	// BestPeer claims Best; empty when no peer is ahead.
	BestPeer   string `json:"best_peer,omitempty"`
	LagEntries uint64 `json:"lag_entries"`
	// LagSeconds is how long this node has known of entries it does not hold
	// yet (0 when caught up). Peers' clocks play no part in it.
	LagSeconds float64 `json:"lag_seconds"`
	Pulling    bool    `json:"pulling"`
}

// Status reports the exchange's view of peers and origins. It reads only cached
// state, never the network or the node's store.
func (x *Exchange) Status() FederationStatus {
	now := x.now()
	b := x.node.Bundle()
	st := FederationStatus{Centre: x.centre, PeerID: x.self.String(), CanApply: x.node.CanApply(),
		Peers: []PeerStatus{}, Origins: []OriginStatus{}}
	for _, a := range x.host.Addrs() {
		st.Addrs = append(st.Addrs, a.String())
	}
	if b != nil {
		st.Federation, st.BundleVersion = b.Federation, b.Version
	}
	st.Block = slices.Clone(x.cfg.BlockMembers)
	// Every peer the bundle lists shows, connected or not.
	listed := map[peer.ID]PeerStatus{}
	if b != nil {
		for _, m := range b.Members {
			if m.Removed != nil {
				continue
			}
			for _, bp := range m.Peers {
				pid, err := peer.Decode(bp.ID)
				if err != nil || pid == x.self {
					continue
				}
				listed[pid] = PeerStatus{PeerID: bp.ID, Member: m.ID, Addrs: slices.Clone(bp.Addrs)}
			}
		}
	}
	connected := map[peer.ID]bool{}
	connAddrs := map[peer.ID][]string{}
	for _, p := range x.host.Network().Peers() {
		connected[p] = x.host.Network().Connectedness(p) == network.Connected
		for _, c := range x.host.Network().ConnsToPeer(p) {
			connAddrs[p] = append(connAddrs[p], c.RemoteMultiaddr().String())
		}
	}
	timePtr := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	x.mu.Lock()
	for p, ps := range x.peers {
		s, ok := listed[p]
		if !ok {
			s = PeerStatus{PeerID: p.String(), Member: ps.member}
			for _, a := range ps.addrs {
				s.Addrs = append(s.Addrs, a.String())
			}
		}
		s.Stalled = x.stalledLocked(ps, now)
		s.LastContact = timePtr(ps.lastContact)
		s.RTTSeconds = ps.rtt.Seconds()
		s.LastError = ps.lastErr
		s.LastErrorAt = timePtr(ps.lastErrAt)
		s.HeadsAt = timePtr(ps.headsAt)
		for _, h := range ps.heads {
			s.Heads = append(s.Heads, h)
		}
		slices.SortFunc(s.Heads, func(a, b schema.Head) int { return strings.Compare(a.Origin, b.Origin) })
		listed[p] = s
	}
	for p, until := range x.backoff {
		if now.Before(until) {
			s, ok := listed[p]
			if !ok {
				s = PeerStatus{PeerID: p.String()}
			}
			s.BackedOffUntil = timePtr(until)
			listed[p] = s
		}
	}
	for origin, o := range x.origins {
		best, from := x.bestLocked(origin, o.local)
		os := OriginStatus{Origin: origin, Local: o.local, Best: best, Pulling: o.pulling}
		if from != "" {
			os.BestPeer = from.String()
		}
		if origin != x.centre && best.Seq > o.local.Seq {
			os.LagEntries = best.Seq - o.local.Seq
			if !o.behindSince.IsZero() {
				os.LagSeconds = now.Sub(o.behindSince).Seconds()
			}
		}
		st.Origins = append(st.Origins, os)
	}
	x.mu.Unlock()
	for p, s := range listed {
		s.Connected = connected[p]
		s.ConnAddrs = connAddrs[p]
		if !s.Connected {
			s.Stalled = false
		}
		// The two refusals of admission that are someone's choice, not a
		// fault: without them a peer cut on purpose reads as an outage.
		s.Blocked = s.Member != "" && slices.Contains(x.cfg.BlockMembers, s.Member)
		s.Revoked, s.RevokedReason = peerRevocation(b, s.PeerID)
		st.Peers = append(st.Peers, s)
	}
	slices.SortFunc(st.Peers, func(a, b PeerStatus) int {
		if c := strings.Compare(a.Member, b.Member); c != 0 {
			return c
		}
		return strings.Compare(a.PeerID, b.PeerID)
	})
	slices.SortFunc(st.Origins, func(a, b OriginStatus) int { return strings.Compare(a.Origin, b.Origin) })
	return st
}

// peerRevocation reports whether b revokes the peer id (the test of
// auth.Bundle.PeerAllowed: any "peer:" revocation of it, whatever its Before),
// with the reasons the revocations give.
func peerRevocation(b *auth.Bundle, id string) (revoked bool, reason string) {
	if b == nil {
		return false, ""
	}
	var reasons []string
	for _, r := range b.Revocations {
		if r.Subject != auth.RevokePeer+id {
			continue
		}
		revoked = true
		if r.Reason != "" && !slices.Contains(reasons, r.Reason) {
			reasons = append(reasons, r.Reason)
		}
	}
	return revoked, strings.Join(reasons, "; ")
}
