//go:build failpoints

package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync/atomic"
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
// Its connections end when the layer it returns is stopped (Node.Close).
func newRaftTransport(cfg Config, advertise net.Addr, log hclog.Logger) (*raft.NetworkTransport, *stoppableLayer, error) {
	ln, err := listenRaftTCP(cfg.RaftAddr, advertise)
	if err != nil {
		return nil, nil, err
	}
	var inner contextLayer = &tcpLayer{Listener: ln, advertise: advertise}
	if cfg.RaftFaults != nil {
		inner = &isolatingLayer{Listener: ln, advertise: advertise, faults: cfg.RaftFaults}
	}
	layer := newStoppableLayer(inner)
	return raft.NewNetworkTransportWithConfig(raftTransportConfig(layer, log)), layer, nil
}

// isolatingLayer is a raft.StreamLayer over TCP that refuses to dial and closes
// accepted connections while faults says the replica is isolated, and whose
// connections fail (and close) on the first read or write made while it is.
// When faults is also a RaftOneWay, it holds back one direction as TCP would
// behave across such a cut (RaftOneWay).
type isolatingLayer struct {
	net.Listener
	advertise net.Addr
	faults    RaftFaults
}

var _ raft.StreamLayer = (*isolatingLayer)(nil)

// holdPoll is how often a held read, write or dial looks whether the one-way
// cut has healed.
const holdPoll = 5 * time.Millisecond

// oneWay returns the directions cut now (none without a RaftOneWay).
func oneWay(f RaftFaults) (in, out bool) {
	if ow, ok := f.(RaftOneWay); ok {
		return ow.RaftDropIn(), ow.RaftDropOut()
	}
	return false, false
}

// Accept returns the next connection made while not isolated; those that
// arrive while isolated are closed at once, as a refusal would end them. One
// accepted across a one-way cut carries nothing either way until it heals:
// its handshake could not have completed.
func (l *isolatingLayer) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err // the listener was closed: raft is shutting down
		}
		if !l.faults.RaftIsolated() {
			ic := &isolatingConn{Conn: c, faults: l.faults}
			if in, out := oneWay(l.faults); in || out {
				ic.unestablished.Store(true)
			}
			return ic, nil
		}
		c.Close()
	}
}

// Addr is the address the other replicas reach this one at.
func (l *isolatingLayer) Addr() net.Addr { return l.advertise }

// Dial connects to another replica, unless this one is isolated. Across a
// one-way cut it waits until the cut heals or timeout passes, as a dial whose
// SYN or SYN-ACK is lost does.
func (l *isolatingLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.DialContext(context.Background(), address, timeout)
}

// DialContext is Dial, cut short when ctx ends.
func (l *isolatingLayer) DialContext(ctx context.Context, address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	if l.faults.RaftIsolated() {
		return nil, fmt.Errorf("dial raft %s: %w", address, errRaftIsolated)
	}
	deadline := time.Now().Add(timeout)
	for {
		in, out := oneWay(l.faults)
		if !in && !out {
			break
		}
		if !time.Now().Before(deadline) {
			return nil, fmt.Errorf("dial raft %s: %w (one-way cut)", address, os.ErrDeadlineExceeded)
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("dial raft %s: %w (one-way cut)", address, err)
		}
		time.Sleep(holdPoll)
	}
	d := net.Dialer{Deadline: deadline}
	c, err := d.DialContext(ctx, "tcp", string(address))
	if err != nil {
		return nil, err
	}
	return &isolatingConn{Conn: c, faults: l.faults}, nil
}

// isolatingConn is a raft connection that breaks when its replica is isolated:
// pooled connections made before the isolation must not carry RPCs across it.
// Across a one-way cut it holds back the cut direction instead.
type isolatingConn struct {
	net.Conn
	faults RaftFaults

	// unestablished: accepted across a one-way cut, it carries nothing
	// either way until the cut heals.
	unestablished atomic.Bool
	closed        atomic.Bool
	// The deadlines raft set, in Unix nanoseconds (0: none), which a held
	// read or write honours.
	readDeadline, writeDeadline atomic.Int64
	// pending is what a read received after a cut of its direction began,
	// delivered once it heals. Only Read touches it (raft reads a connection
	// from one goroutine).
	pending []byte
}

// held waits while the direction (in: this replica's reads) is cut, and
// returns an error when the deadline passes or the connection closes first.
func (c *isolatingConn) held(in bool) error {
	deadline := &c.writeDeadline
	if in {
		deadline = &c.readDeadline
	}
	for {
		cutIn, cutOut := oneWay(c.faults)
		cut := cutIn && in || cutOut && !in
		if c.unestablished.Load() {
			if !cutIn && !cutOut {
				c.unestablished.Store(false)
			}
			cut = cutIn || cutOut
		}
		if !cut {
			return nil
		}
		if c.closed.Load() {
			return net.ErrClosed
		}
		if d := deadline.Load(); d != 0 && time.Now().UnixNano() >= d {
			return os.ErrDeadlineExceeded
		}
		time.Sleep(holdPoll)
	}
}

func (c *isolatingConn) Read(p []byte) (int, error) {
	if c.faults.RaftIsolated() {
		c.Conn.Close()
		return 0, errRaftIsolated
	}
	if err := c.held(true); err != nil {
		return 0, err
	}
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	n, err := c.Conn.Read(p)
	// A read that was blocked when the isolation began must not deliver what
	// arrived after it.
	if n > 0 && c.faults.RaftIsolated() {
		c.Conn.Close()
		return 0, errRaftIsolated
	}
	if n > 0 {
		// Nor, across a one-way cut of this direction, before it heals.
		if herr := c.held(true); herr != nil {
			c.pending = append(c.pending, p[:n]...)
			return 0, herr
		}
	}
	return n, err
}

func (c *isolatingConn) Write(p []byte) (int, error) {
	if c.faults.RaftIsolated() {
		c.Conn.Close()
		return 0, errRaftIsolated
	}
	if err := c.held(false); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

func (c *isolatingConn) Close() error {
	c.closed.Store(true)
	return c.Conn.Close()
}

func (c *isolatingConn) SetDeadline(t time.Time) error {
	c.readDeadline.Store(unixNano(t))
	c.writeDeadline.Store(unixNano(t))
	return c.Conn.SetDeadline(t)
}

func (c *isolatingConn) SetReadDeadline(t time.Time) error {
	c.readDeadline.Store(unixNano(t))
	return c.Conn.SetReadDeadline(t)
}

func (c *isolatingConn) SetWriteDeadline(t time.Time) error {
	c.writeDeadline.Store(unixNano(t))
	return c.Conn.SetWriteDeadline(t)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
