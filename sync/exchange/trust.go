package exchange

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/auth"
	"liandong/sync/wire"
)

// trustFetchInterval spaces fetches of a version from one peer: a peer that
// keeps announcing a version we refuse is asked again only this often.
const trustFetchInterval = 30 * time.Second

// maxTrustFetches bounds the bundle fetches in flight, one a peer at most: a
// member that announces versions it then delivers slowly holds its own fetch,
// not the one a revocation from an honest peer needs.
const maxTrustFetches = 4

// trustState tracks bundle fetches; guarded by Exchange.mu.
type trustState struct {
	fetching map[peer.ID]bool
	// tried holds the last fetch from each peer, for trustFetchInterval: an
	// entry a peer (never one per version a peer may announce), and only
	// while it matters.
	tried map[peer.ID]bundleTry
}

// bundleTry is a fetch of a peer's bundle.
type bundleTry struct {
	version uint64 // what the peer announced
	at      time.Time
}

// noteBundleVersion reacts to a peer announcing the trust bundle version it
// holds: when it is newer than ours and this replica can install (the leader),
// fetch it from that peer and hand it to the node, which verifies it against
// the bundle it holds. Followers learn the bundle through raft.
func (x *Exchange) noteBundleVersion(p peer.ID, version uint64) {
	b := x.node.Bundle()
	if b == nil || version <= b.Version || !x.node.CanApply() {
		return
	}
	if x.host.Network().Connectedness(p) != network.Connected {
		// A gossip author need not be a neighbour, and a fetch never dials:
		// it would fail, and count against p (noteOfferShort) for nothing
		// p did. A neighbour's announcement brings the bundle.
		return
	}
	now := x.now()
	x.mu.Lock()
	if x.trust.tried == nil {
		x.trust.tried = make(map[peer.ID]bundleTry)
	}
	for q, t := range x.trust.tried {
		if now.Sub(t.at) >= trustFetchInterval {
			delete(x.trust.tried, q)
		}
	}
	// Within the interval p is asked again only for a higher version than
	// the last it was asked for: a bundle it has since taken in may be the
	// fix for the one refused.
	if t, ok := x.trust.tried[p]; x.trust.fetching[p] || len(x.trust.fetching) >= maxTrustFetches || (ok && version <= t.version) {
		x.mu.Unlock()
		return
	}
	if x.trust.fetching == nil {
		x.trust.fetching = make(map[peer.ID]bool)
	}
	x.trust.fetching[p] = true
	x.trust.tried[p] = bundleTry{version: version, at: now}
	x.mu.Unlock()
	if !x.goFunc(func() {
		defer x.endTrustFetch(p)
		x.fetchBundle(p, version)
	}) {
		x.endTrustFetch(p)
	}
}

func (x *Exchange) endTrustFetch(p peer.ID) {
	x.mu.Lock()
	delete(x.trust.fetching, p)
	x.mu.Unlock()
}

// fetchBundle asks p for its signed bundle and installs it.
func (x *Exchange) fetchBundle(p peer.ID, announced uint64) {
	ctx, cancel := x.requestContext()
	defer cancel()
	var signed []byte
	held := x.node.Bundle()
	err := x.request(ctx, p, &wire.TrustReq{Version: held.Version}, func(m wire.Message) (bool, error) {
		t, ok := m.(*wire.Trust)
		if !ok {
			return false, fault(reasonProtocol, 0, "answered a trust request with %s", m.Type())
		}
		signed = t.Bundle
		return true, nil
	})
	if err != nil {
		if answerFellShort(err) {
			x.noteOfferShort(p)
		}
		x.handleErr(p, fmt.Errorf("fetch trust bundle v%d: %w", announced, err))
		return
	}
	b, err := x.node.InstallBundle(ctx, signed, "sync:"+p.String())
	if err != nil {
		// Not the peer's fault as such: it may hold a bundle signed by signers
		// this node does not trust yet. Count it and say why; but its word
		// on keys rotated in that bundle is worth no more than the bundle.
		// A failure of this node's own (not the leader, a raft timeout, a
		// full disk) says nothing about the bundle.
		if bundleRefused(err) {
			x.noteOfferShort(p)
		}
		x.m.trust.WithLabelValues(trustRefused).Inc()
		x.log.Warn("trust bundle offered by a peer refused", "peer", p.String(), "announced", announced, "err", err)
		return
	}
	if b.Version < announced {
		// It announced more than it gave (our own bundle back, say, which
		// installs as a no-op): the announcement was not a rotation.
		x.noteOfferShort(p)
	}
	x.m.trust.WithLabelValues(trustInstalled).Inc()
	x.log.Info("trust bundle installed from a peer", "peer", p.String(), "version", b.Version)
	// Tell the others now (within the announcement debounce) rather than at
	// the next commit's announcement.
	x.Notify()
	x.enforceBundle()
	x.redial()
}

// answerFellShort reports whether a failed trust request tells against the
// peer's announcement: the peer refused the protocol, answered wrongly or not
// in time. One that never left this node (errNoStreamHere) or that this node
// gave up (shutdown) does not: a peer cannot cause either.
func answerFellShort(err error) bool {
	return !errors.Is(err, errNoStreamHere) && !errors.Is(err, context.Canceled)
}

// bundleRefused reports whether installing a bundle failed on the bundle
// itself: its form, signatures, version, federation or expiry.
func bundleRefused(err error) bool {
	for _, e := range []error{auth.ErrBundleInvalid, auth.ErrTooFewSignatures, auth.ErrBundleUntrusted, auth.ErrWrongFederation,
		auth.ErrRollback, auth.ErrSameVersionDifferent, auth.ErrBundleExpired} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// serveTrust answers a trust request with the bundle this node runs on.
func (x *Exchange) serveTrust(c *conn) error {
	signed := x.node.SignedBundle()
	if len(signed) == 0 {
		return c.send(&wire.Error{Code: wire.CodeUnavailable, Message: "this node holds no signed trust bundle"})
	}
	return c.send(&wire.Trust{Bundle: signed})
}
