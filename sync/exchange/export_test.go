package exchange

import "github.com/libp2p/go-libp2p/core/peer"

// SetRefuse makes the gater also refuse the peers f reports (nil: none), and
// closes connections to those already connected: a link cut for tests.
func (x *Exchange) SetRefuse(f func(peer.ID) bool) {
	x.mu.Lock()
	x.refuse = f
	x.mu.Unlock()
	x.enforceBundle()
}
