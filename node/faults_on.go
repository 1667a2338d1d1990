//go:build failpoints

package node

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// faultsCompiled says whether Config.RaftFaults can be honoured: in this build
// (`-tags failpoints`), yes.
const faultsCompiled = true

// errRaftIsolated is what a raft dial, read or write returns while the replica
// is isolated by Config.RaftFaults.
var errRaftIsolated = errors.New("raft traffic dropped: this replica is isolated by an injected fault")

// newRaftTransport listens for raft on cfg.RaftAddr and advertises advertise.
// With cfg.RaftFaults set, the transport runs over a stream layer that drops
// every connection while the replica is isolated; raft's own TCP transport
// offers no hook, so this layer does what raft.TCPStreamLayer does plus that.
func newRaftTransport(cfg Config, advertise net.Addr, log hclog.Logger) (*raft.NetworkTransport, error) {
	if cfg.RaftFaults == nil {
		return raft.NewTCPTransportWithConfig(cfg.RaftAddr, advertise, raftTransportConfig(nil, log))
	}
	if a, ok := advertise.(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		// raft's TCP transport refuses this too: peers could not dial it.
		return nil, fmt.Errorf("raft address %v is not advertisable", advertise)
	}
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("listen for raft on %s: %w", cfg.RaftAddr, err)
	}
	layer := &isolatingLayer{Listener: ln, advertise: advertise, faults: cfg.RaftFaults}
	return raft.NewNetworkTransportWithConfig(raftTransportConfig(layer, log)), nil
}

// isolatingLayer is a raft.StreamLayer over TCP that refuses to dial and closes
// accepted connections while faults says the replica is isolated, and whose
// connections fail (and close) on the first read or write made while it is.
type isolatingLayer struct {
	net.Listener
	advertise net.Addr
	faults    RaftFaults
}

var _ raft.StreamLayer = (*isolatingLayer)(nil)

// Accept returns the next connection made while not isolated; those that
// arrive while isolated are closed at once, as a refusal would end them.
func (l *isolatingLayer) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err // the listener was closed: raft is shutting down
		}
		if !l.faults.RaftIsolated() {
			return &isolatingConn{Conn: c, faults: l.faults}, nil
		}
		c.Close()
	}
}

// Addr is the address the other replicas reach this one at.
func (l *isolatingLayer) Addr() net.Addr { return l.advertise }

// Dial connects to another replica, unless this one is isolated.
func (l *isolatingLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if l.faults.RaftIsolated() {
		return nil, fmt.Errorf("dial raft %s: %w", address, errRaftIsolated)
	}
	c, err := net.DialTimeout("tcp", string(address), timeout)
	if err != nil {
		return nil, err
	}
	return &isolatingConn{Conn: c, faults: l.faults}, nil
}

// isolatingConn is a raft connection that breaks when its replica is isolated:
// pooled connections made before the isolation must not carry RPCs across it.
type isolatingConn struct {
	net.Conn
	faults RaftFaults
}

func (c *isolatingConn) Read(p []byte) (int, error) {
	if c.faults.RaftIsolated() {
		c.Conn.Close()
		return 0, errRaftIsolated
	}
	n, err := c.Conn.Read(p)
	// A read that was blocked when the isolation began must not deliver what
	// arrived after it.
	if n > 0 && c.faults.RaftIsolated() {
		c.Conn.Close()
		return 0, errRaftIsolated
	}
	return n, err
}

func (c *isolatingConn) Write(p []byte) (int, error) {
	if c.faults.RaftIsolated() {
		c.Conn.Close()
		return 0, errRaftIsolated
	}
	return c.Conn.Write(p)
}
