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
func newRaftTransport(cfg Config, advertise net.Addr, log hclog.Logger) (*raft.NetworkTransport, error) {
	return raft.NewTCPTransportWithConfig(cfg.RaftAddr, advertise, raftTransportConfig(nil, log))
}
