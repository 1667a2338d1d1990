package exchange

import (
	"testing"

	"github.com/libp2p/go-libp2p/core/network"

	"liandong/sync/wire"
)

// TestStreamLimitsLeaveTransientRoom: inbound streams wait in the transient
// scope, counted against their peer too, until they name their protocol. The
// transient scope must hold every expected peer's whole allowance, or a few
// peers opening streams that never negotiate lock every other peer out; and a
// peer's allowance must hold its sync streams with room for other protocols.
func TestStreamLimitsLeaveTransientRoom(t *testing.T) {
	const peers = 32 // "a few dozen"
	l := resourceLimiter(DefaultConfig())
	in := network.DirInbound
	system := l.GetSystemLimits().GetStreamLimit(in)
	transient := l.GetTransientLimits().GetStreamLimit(in)
	perPeer := l.GetPeerLimits("12D3KooWAny").GetStreamLimit(in)
	syncIn := l.GetProtocolPeerLimits(wire.ProtocolID).GetStreamLimit(in)
	t.Logf("inbound streams: system %d, transient %d, per peer %d, sync per peer %d", system, transient, perPeer, syncIn)
	if perPeer*peers > transient {
		t.Errorf("%d peers may hold %d streams each, over the transient scope's %d", peers, perPeer, transient)
	}
	if transient > system {
		t.Errorf("transient scope (%d) over the system's (%d)", transient, system)
	}
	if syncIn+8 > perPeer {
		t.Errorf("a peer's %d streams leave its %d sync streams too little room for other protocols", perPeer, syncIn)
	}
}
