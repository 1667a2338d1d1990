package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// errRaftStopping is what a raft dial, read or write made by this replica
// returns once its Close has begun.
var errRaftStopping = errors.New("raft connection ended: this replica is stopping")

// contextLayer is a raft stream layer whose dials a context can cut short.
type contextLayer interface {
	raft.StreamLayer
	DialContext(ctx context.Context, address raft.ServerAddress, timeout time.Duration) (net.Conn, error)
}

// stoppableLayer is the stream layer raft's transport runs over: every
// connection it dials, and every dial under way, is ended by stop. Raft's
// Shutdown waits for all of its goroutines, among them those replicating to
// followers, sending heartbeats and asking for votes; each waits on an RPC
// to another replica for as long as raft's transport timeout (raftTimeout,
// 10 s) when that replica does not answer (a one-way cut, a black-holed
// address), and raft has no way to end one. Ended, the RPC fails, and the
// goroutine, seeing raft shut down, returns: a stop takes no longer than the
// local work. Connections accepted from other replicas are left alone: the
// transport's own goroutines serve them, not raft's, and they end when the
// other side closes them or the process exits.
type stoppableLayer struct {
	contextLayer
	ctx  context.Context
	stop context.CancelFunc

	mu    sync.Mutex
	conns map[*stoppableConn]struct{}
}

func newStoppableLayer(inner contextLayer) *stoppableLayer {
	ctx, cancel := context.WithCancel(context.Background())
	return &stoppableLayer{contextLayer: inner, ctx: ctx, stop: cancel, conns: map[*stoppableConn]struct{}{}}
}

// Dial connects to another replica, unless this one is stopping.
func (l *stoppableLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := l.DialContext(l.ctx, address, timeout)
	if err != nil {
		if l.ctx.Err() != nil {
			return nil, fmt.Errorf("dial raft %s: %w: %w", address, errRaftStopping, err)
		}
		return nil, err
	}
	sc := &stoppableConn{Conn: c, layer: l}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx.Err() != nil {
		c.Close()
		return nil, fmt.Errorf("dial raft %s: %w", address, errRaftStopping)
	}
	l.conns[sc] = struct{}{}
	return sc, nil
}

// endDialled ends every dial under way and every connection dialled, and
// fails every dial after. Reads and writes blocked on them return at once.
func (l *stoppableLayer) endDialled() {
	l.stop()
	l.mu.Lock()
	conns := l.conns
	l.conns = map[*stoppableConn]struct{}{}
	l.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

// stoppableConn is a connection a stoppableLayer dialled; closed, it is
// forgotten.
type stoppableConn struct {
	net.Conn
	layer *stoppableLayer
}

func (c *stoppableConn) Close() error {
	c.layer.mu.Lock()
	delete(c.layer.conns, c)
	c.layer.mu.Unlock()
	return c.Conn.Close()
}

// tcpLayer is raft.TCPStreamLayer, whose dials also take a context.
type tcpLayer struct {
	net.Listener
	advertise net.Addr
}

// listenRaftTCP listens for raft on addr, advertising advertise, which other
// replicas must be able to dial (raft's own TCP transport refuses the same).
func listenRaftTCP(addr string, advertise net.Addr) (net.Listener, error) {
	if a, ok := advertise.(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		return nil, fmt.Errorf("raft address %v is not advertisable", advertise)
	}
	return net.Listen("tcp", addr) // the caller says what it listened for
}

// Addr is the address the other replicas reach this one at.
func (l *tcpLayer) Addr() net.Addr { return l.advertise }

func (l *tcpLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return l.DialContext(context.Background(), address, timeout)
}

func (l *tcpLayer) DialContext(ctx context.Context, address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout}
	return d.DialContext(ctx, "tcp", string(address))
}
