package exchange

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Faults is a test hook: injected faults the exchange consults each time a sync
// stream is opened or accepted, so a test can cut one direction of a link, or
// both, while connections stay up and the process runs. Config.Faults is nil in
// production; node/server sets it only in a build with `-tags failpoints`
// (RELIABILITY.md, chaos harness). Both methods are called on every stream and
// must be cheap and safe for concurrent use.
//
// Gossipsub keeps its own streams, and they stay up: a heads announcement that
// member itself delivers is dropped where DropInbound cuts member, while what
// other members relay still comes, as across a real partition with a path
// around it.
type Faults interface {
	// DropInbound reports whether sync streams member opens to this host are
	// to be reset as they arrive (this host then neither answers member's pulls
	// and heads exchanges nor takes its pushes), and the heads announcements
	// member delivers dropped.
	DropInbound(member string) bool
	// DropOutbound reports whether this host is to refuse opening sync streams
	// to member (it then neither pulls from member nor pushes to it).
	DropOutbound(member string) bool
}

// ErrFaultInjected is returned, wrapped, when Config.Faults refuses a stream.
var ErrFaultInjected = errors.New("sync stream dropped by an injected fault")

// dropsInbound reports whether Config.Faults drops the inbound stream s.
func (x *Exchange) dropsInbound(s network.Stream) bool {
	return x.dropsFrom(s.Conn().RemotePeer())
}

// dropsFrom reports whether Config.Faults cuts what p delivers: its sync
// streams and its heads announcements. A peer the bundle does not list is
// left to the usual admission checks.
func (x *Exchange) dropsFrom(p peer.ID) bool {
	if x.cfg.Faults == nil {
		return false
	}
	member, ok := x.peerMember(x.node.Bundle(), p)
	return ok && x.cfg.Faults.DropInbound(member)
}

// dropsOutbound returns an error wrapping ErrFaultInjected when Config.Faults
// forbids opening a stream to p. The caller counts it as a failure to reach p
// (not p's fault), as it would a reset.
func (x *Exchange) dropsOutbound(p peer.ID) error {
	if x.cfg.Faults == nil {
		return nil
	}
	member, ok := x.peerMember(x.node.Bundle(), p)
	if ok && x.cfg.Faults.DropOutbound(member) {
		return fmt.Errorf("open stream to %s: %w", member, ErrFaultInjected)
	}
	return nil
}
