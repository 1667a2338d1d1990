package exchange

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/schema"
	"liandong/sync/wire"
)

const streamBufferSize = 64 << 10

// conn is one sync stream with its buffers; every frame read or written has its
// own deadline of RequestTimeout.
type conn struct {
	x *Exchange
	s network.Stream
	r *bufio.Reader
	w *bufio.Writer
}

func (x *Exchange) newConn(s network.Stream) *conn {
	return &conn{x: x, s: s, r: bufio.NewReaderSize(s, streamBufferSize), w: bufio.NewWriterSize(s, streamBufferSize)}
}

// send writes m as one frame and flushes it.
func (c *conn) send(m wire.Message) error {
	body := wire.Encode(m)
	if len(body) > c.x.cfg.MaxFrameBytes {
		return fmt.Errorf("send %s: %d bytes exceeds the %d-byte frame limit", m.Type(), len(body), c.x.cfg.MaxFrameBytes)
	}
	if err := c.s.SetWriteDeadline(time.Now().Add(c.x.cfg.RequestTimeout)); err != nil {
		return fmt.Errorf("send %s: %w", m.Type(), err)
	}
	if err := wire.WriteFrame(c.w, body); err != nil {
		return fmt.Errorf("send %s: %w", m.Type(), err)
	}
	if err := c.w.Flush(); err != nil {
		return fmt.Errorf("send %s: %w", m.Type(), err)
	}
	c.x.m.framesSent.WithLabelValues(m.Type().String()).Inc()
	c.x.m.bytesSent.Add(float64(len(body) + uvarintLen(len(body))))
	return nil
}

// recv reads and decodes one frame. An oversized or undecodable frame is a
// *faultError; a clean end of stream is io.EOF.
func (c *conn) recv() (wire.Message, error) {
	if err := c.s.SetReadDeadline(time.Now().Add(c.x.cfg.RequestTimeout)); err != nil {
		return nil, err
	}
	m, n, err := readMessage(c.r, c.x.cfg.MaxFrameBytes)
	if n > 0 {
		c.x.m.bytesRecv.Add(float64(n))
		typ := frameInvalid
		if m != nil {
			typ = m.Type().String()
		}
		c.x.m.framesRecv.WithLabelValues(typ).Inc()
	}
	return m, err
}

// readMessage reads one frame of at most max bytes and decodes it, returning the
// bytes it took when a whole frame was read. Breaches of the protocol are
// *faultError.
func readMessage(r *bufio.Reader, max int) (wire.Message, int, error) {
	body, err := wire.ReadFrame(r, max)
	switch {
	case errors.Is(err, wire.ErrFrameTooLarge):
		return nil, 0, &faultError{reason: reasonOversized, err: err}
	case errors.Is(err, wire.ErrMalformed):
		return nil, 0, &faultError{reason: reasonMalformed, err: err}
	case err != nil:
		return nil, 0, err
	}
	n := len(body) + uvarintLen(len(body))
	m, err := wire.Decode(body)
	if err != nil {
		return nil, n, &faultError{reason: reasonMalformed, err: err}
	}
	return m, n, nil
}

func uvarintLen(n int) int {
	l := 1
	for v := uint64(n); v >= 0x80; v >>= 7 {
		l++
	}
	return l
}

// openStream opens a sync stream to p over an existing connection (it never
// dials), bounded by RequestTimeout.
func (x *Exchange) openStream(ctx context.Context, p peer.ID) (network.Stream, error) {
	if err := x.dropsOutbound(p); err != nil { // an injected cut (Config.Faults)
		return nil, fmt.Errorf("%w: %w", errNoStreamHere, err)
	}
	octx, cancel := context.WithTimeout(ctx, x.cfg.RequestTimeout)
	defer cancel()
	s, err := x.host.NewStream(network.WithNoDial(octx, "sync request"), p, wire.ProtocolID, wire.ProtocolV2)
	switch {
	case errors.Is(err, network.ErrResourceLimitExceeded), errors.Is(err, network.ErrResourceScopeClosed), errors.Is(err, network.ErrNoConn):
		return nil, fmt.Errorf("%w: %w", errNoStreamHere, err)
	case err != nil:
		// Negotiation refused or stalled: the peer's doing, or its network's.
		return nil, fmt.Errorf("open stream: %w", err)
	}
	return s, nil
}

// errNoStreamHere marks a request that never left this node: its own
// resource limits, no connection to the peer, an injected cut.
var errNoStreamHere = errors.New("open stream")

// request sends req to p on a new stream and hands each answer frame to handle
// until it reports done. An Error frame ends the request as a *wire.Error. The
// stream is reset if ctx ends first.
func (x *Exchange) request(ctx context.Context, p peer.ID, req wire.Message, handle func(wire.Message) (done bool, err error)) error {
	s, err := x.openStream(ctx, p)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	if r, ok := req.(*wire.RangeReq); ok && s.Protocol() != wire.ProtocolID {
		// A version 2 node refuses the frame limits (trailing bytes) and
		// frames its answer by its own limits alone.
		v2 := *r
		v2.MaxBatch, v2.MaxFrameBytes = 0, 0
		req = &v2
	}
	c := x.newConn(s)
	if err := c.send(req); err != nil {
		s.Reset()
		return err
	}
	if err := s.CloseWrite(); err != nil {
		s.Reset()
		return fmt.Errorf("close write: %w", err)
	}
	for {
		m, err := c.recv()
		if err != nil {
			s.Reset()
			if isEOF(err) {
				return fmt.Errorf("%s: stream ended before the answer", req.Type())
			}
			if ctx.Err() != nil {
				return fmt.Errorf("%s: %w", req.Type(), ctx.Err())
			}
			return err
		}
		if e, ok := m.(*wire.Error); ok {
			s.Reset()
			return e
		}
		done, err := handle(m)
		if err != nil {
			s.Reset()
			return err
		}
		if done {
			s.Close() // the answer is complete; a failing close changes nothing
			return nil
		}
	}
}

// handleStream serves one inbound sync stream: requests one after another until
// the peer closes its side.
func (x *Exchange) handleStream(s network.Stream) {
	if x.dropsInbound(s) { // an injected cut (Config.Faults)
		s.Reset()
		return
	}
	ctx, ok := x.track()
	if !ok {
		s.Reset()
		return
	}
	defer x.wg.Done()
	p := s.Conn().RemotePeer()
	if _, ok := x.admit(p); !ok {
		s.Reset()
		return
	}
	// Streams of both versions count against one allowance (a refusal is
	// counted by resourceReporter, at the service-peer scope).
	if err := s.Scope().SetService(syncService); err != nil {
		s.Reset()
		return
	}
	stop := context.AfterFunc(ctx, func() { s.Reset() })
	defer stop()
	c := x.newConn(s)
	pushes := false
	for {
		m, err := c.recv()
		if err != nil {
			if isEOF(err) {
				s.Close()
				return
			}
			s.Reset()
			if pushes && isTimeout(err) {
				// A push stream idle longer than our read deadline: its
				// sender keeps it between pushes (pushConn) and opens
				// another when this one is gone. Not a fault.
				return
			}
			if ctx.Err() == nil {
				x.handleErr(p, fmt.Errorf("serve: %w", err))
			}
			return
		}
		// Admitted at every request, not once a stream: a push stream is
		// kept open for as long as pushes come, and a peer the bundle has
		// since dropped (or that was backed off) gets nothing more on it.
		member, ok := x.admit(p)
		if !ok {
			s.Reset()
			return
		}
		_, isPush := m.(*wire.Push)
		pushes = pushes || isPush
		if err := x.serve(ctx, p, member, c, m); err != nil {
			s.Reset()
			if ctx.Err() == nil {
				x.handleErr(p, fmt.Errorf("serve %s: %w", m.Type(), err))
			}
			return
		}
	}
}

// serve answers one request of p, a host of member (as admitted for it).
func (x *Exchange) serve(ctx context.Context, p peer.ID, member string, c *conn, m wire.Message) error {
	switch m := m.(type) {
	case *wire.Ping:
		return c.send(&wire.Pong{Nonce: m.Nonce})
	case *wire.Heads:
		if !m.Request {
			return fault(reasonProtocol, 0, "unasked heads answer")
		}
		return x.serveHeads(ctx, p, c, m)
	case *wire.RangeReq:
		x.noteFrameLimit(p, m.MaxFrameBytes)
		return x.serveRange(ctx, c, m)
	case *wire.Push:
		return x.receivePush(p, member, m)
	case *wire.TrustReq:
		if err := x.serveTrust(c); err != nil {
			return err
		}
		if b := x.node.Bundle(); b != nil && m.Version > b.Version {
			x.noteBundleVersion(p, m.Version)
		}
		return nil
	default:
		return fault(reasonProtocol, 0, "%s is not a request", m.Type())
	}
}

// serveRange answers a range request in frames of at most BatchSize entries and
// MaxFrameBytes bytes, and within the requester's own limits when it says them
// (version 3; a frame limit below minFrameBytes, which no node may be
// configured with, is taken as minFrameBytes), the last one marked Done.
func (x *Exchange) serveRange(ctx context.Context, c *conn, req *wire.RangeReq) error {
	if !schema.ValidCentreID(req.Origin) || req.FromSeq == 0 || req.Limit == 0 {
		c.send(&wire.Error{Code: wire.CodeBadRequest, Message: "range needs an origin, from_seq >= 1 and limit >= 1"})
		return fault(reasonProtocol, 0, "bad range request %s from %d limit %d", req.Origin, req.FromSeq, req.Limit)
	}
	limit := int(min(req.Limit, uint64(x.cfg.MaxRangeEntries)))
	if req.Epoch != "" {
		local, err := x.nodeHead(ctx, req.Origin)
		if err != nil {
			c.send(&wire.Error{Code: wire.CodeInternal, Message: "cannot read heads"})
			return &localError{fmt.Errorf("read local heads: %w", err)}
		}
		if local.Seq > 0 && local.Epoch != req.Epoch {
			return c.send(&wire.Error{Code: wire.CodeEpochMismatch,
				Message: fmt.Sprintf("holding epoch %q of %s, not %q", local.Epoch, req.Origin, req.Epoch)})
		}
	}
	batchSize, frameBytes := x.cfg.BatchSize, x.cfg.MaxFrameBytes
	if req.MaxBatch > 0 {
		batchSize = int(min(req.MaxBatch, uint64(batchSize)))
	}
	if req.MaxFrameBytes > 0 {
		// No node may be configured below one largest entry: a request
		// asking for less is held to that, not answered an entry a frame.
		frameBytes = int(min(max(req.MaxFrameBytes, minFrameBytes), uint64(frameBytes)))
	}
	maxBody := frameBytes - wire.Overhead
	from := req.FromSeq
	var (
		batch []*schema.Entry
		size  int
		sent  int
	)
	for sent < limit {
		// The log is read in this node's batches, whatever the framing.
		n := min(x.cfg.BatchSize, limit-sent)
		es, err := x.node.ReadRangeRaw(ctx, req.Origin, from, n)
		if err != nil {
			c.send(&wire.Error{Code: wire.CodeInternal, Message: "cannot read the log"})
			return &localError{fmt.Errorf("read %s from %d: %w", req.Origin, from, err)}
		}
		if len(es) > n {
			es = es[:n]
		}
		for _, e := range es {
			sz := wire.EntrySize(e)
			if len(batch) > 0 && (size+sz > maxBody || len(batch) >= batchSize) {
				if err := c.send(&wire.Batch{Origin: req.Origin, Entries: batch}); err != nil {
					return err
				}
				batch, size = nil, 0
			}
			batch = append(batch, e)
			size += sz
		}
		sent += len(es)
		from += uint64(len(es))
		if len(es) < n {
			break
		}
	}
	return c.send(&wire.Batch{Origin: req.Origin, Done: true, Entries: batch})
}

// isTimeout reports whether err is a read or write deadline passing, as the
// stream muxers report it (net.Error's Timeout).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
