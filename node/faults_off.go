//go:build !failpoints

package node

import (
	"net"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// faultsCompiled says whether Config.RaftFaults can be honoured: only in a build
// with `-tags failpoints` (faults_on.go).
const faultsCompiled = false

// newRaftTransport listens for raft on cfg.RaftAddr and advertises advertise.
// Its connections end when the layer it returns is stopped (Node.Close).
func newRaftTransport(cfg Config, advertise net.Addr, log hclog.Logger) (*raft.NetworkTransport, *stoppableLayer, error) {
	ln, err := listenRaftTCP(cfg.RaftAddr, advertise)
	if err != nil {
		return nil, nil, err
	}
	layer := newStoppableLayer(&tcpLayer{Listener: ln, advertise: advertise})
	return raft.NewNetworkTransportWithConfig(raftTransportConfig(layer, log)), layer, nil
}
