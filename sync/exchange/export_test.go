package exchange

import "github.com/libp2p/go-libp2p/core/peer"

// TrustFetchInterval spaces fetches of a version from one peer.
const TrustFetchInterval = trustFetchInterval

// SetRefuse makes the gater also refuse the peers f reports (nil: none), and
// closes connections to those already connected: a link cut for tests.
func (x *Exchange) SetRefuse(f func(peer.ID) bool) {
	x.mu.Lock()
	x.refuse = f
	x.mu.Unlock()
	x.enforceBundle()
}

// TrustTracked is the number of peers whose last bundle fetch is remembered.
func (x *Exchange) TrustTracked() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return len(x.trust.tried)
}

// PeerTextCached reports whether p's text form is remembered (peerMember).
func (x *Exchange) PeerTextCached(p peer.ID) bool {
	_, ok := x.peerTexts.Load(p)
	return ok
}
