package exchange

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"liandong/auth"
	"liandong/schema"
	"liandong/sync/wire"
)

// Node is what the exchange needs from the local node.
type Node interface {
	// Centre is this node's centre id.
	Centre() string
	// Heads returns the local head of every origin held, this centre's included.
	Heads(ctx context.Context) ([]schema.Head, error)
	// ReadRange returns entries of origin from fromSeq on, in order, at most
	// limit; fewer (or none) at the end of the log.
	ReadRange(ctx context.Context, origin string, fromSeq uint64, limit int) ([]*schema.Entry, error)
	// ReadRangeRaw is ReadRange for sending entries on (range answers,
	// pushes): the entries need only Origin, Seq, Raw and Sig, and the rest
	// of their payload may be left zero, undecoded.
	ReadRangeRaw(ctx context.Context, origin string, fromSeq uint64, limit int) ([]*schema.Entry, error)
	// ApplyEntries applies verified entries of one origin that continue the local
	// head. Entries already held at the start are skipped if their hash matches;
	// a held seq with another hash is an error. Only called when CanApply is true.
	ApplyEntries(ctx context.Context, origin string, entries []*schema.Entry) error
	// CanApply reports whether this replica may apply (the raft leader).
	CanApply() bool
	// Bundle returns the current trust bundle. It may change at any time and must
	// be cheap: the connection gater calls it for every connection.
	Bundle() *auth.Bundle
	// SignedBundle returns the current bundle as distributed, for peers that
	// announce an older version; nil if the node has none to give.
	SignedBundle() []byte
	// InstallBundle verifies a signed bundle offered by a peer against the
	// current one and installs it if it is newer. Only called when CanApply.
	InstallBundle(ctx context.Context, signed []byte, actor string) (*auth.Bundle, error)
	// Recovering reports whether the node is recovering its own log from peers
	// (it lost its state) and so takes entries of its own origin from them.
	Recovering() bool
	// EndRecovery tells the node that peers hold no more of its own log than it
	// does (seq), as heard from that many members: it may write again.
	EndRecovery(seq uint64, members int)
}

// Errors.
var (
	ErrClosed     = errors.New("sync exchange closed")
	ErrRunning    = errors.New("sync exchange already running")
	ErrNotAllowed = errors.New("peer not admitted by the trust bundle")
	ErrBackedOff  = errors.New("peer backed off after a fault")
	errNotLeader  = errors.New("this replica cannot apply entries (not the raft leader)")
)

// Exchange replicates signed logs with the federation's other nodes. Create it
// with New, then call Run.
type Exchange struct {
	cfg    Config
	node   Node
	log    *slog.Logger
	m      *metrics
	host   host.Host
	self   peer.ID
	centre string
	now    func() time.Time

	notifyCh  chan struct{} // Notify → announce loop, capacity 1
	pushCh    chan struct{} // Notify → push loop, capacity 1
	pullCh    chan struct{} // wakes the pull scheduler, capacity 1
	closeOnce sync.Once

	wg sync.WaitGroup // every goroutine started by goFunc or a stream handler

	peerTexts sync.Map // peer.ID → its text form, for admitted peers (peerMember)
	// unsendable is the set of origins whose head was left out of our heads
	// (sendableHead), so the warning is logged once an origin, not each round.
	unsendable sync.Map

	mu       sync.Mutex // leaf lock: guards everything below
	running  bool
	closed   bool
	stopping bool
	runCtx   context.Context
	topic    *pubsub.Topic
	peers    map[peer.ID]*peerState
	backoff  map[peer.ID]time.Time
	origins  map[string]*originState
	ownHead  schema.Head // this centre's head at the last announcement
	trust    trustState
	refuse   func(peer.ID) bool // test hook: the gater also refuses these
	// graceTimer wakes the pull scheduler when an origin's PushGrace ends.
	graceTimer *time.Timer
}

// originState is what the exchange tracks per origin.
type originState struct {
	apply       chan struct{} // held (a token in it) while verifying and applying
	local       schema.Head
	pulling     bool
	behindSince time.Time
	// awaitPush is when the pull scheduler first found the origin behind a
	// claim while the origin itself was connected (Config.PushGrace); zero
	// when it is not waiting.
	awaitPush time.Time
	// pushGap is set when a push showed that the origin's pushes alone will
	// not close the gap to its claim; the pull that follows does not wait.
	pushGap bool
	// pushed holds entries pushed while the apply lock was taken, applied by
	// whoever releases it (drainPushed); pushedFrom is the peer that sent them.
	// pushedAt says when each arrived, if the origin itself pushed it (zero
	// if relayed), for the push-delay histogram.
	pushed     []*schema.Entry
	pushedAt   []time.Time
	pushedFrom peer.ID
}

// refusal is where a peer's entries of an origin (in one epoch of its log)
// were refused as signed outside what a bundle version accepts
// (errOutOfBundle).
type refusal struct {
	seq, bundle uint64
	epoch       string
}

// outOfBundleLocked returns the first seq of origin refused from ps under the
// current bundle (0: none): from there on, ps is neither asked for that
// origin's entries nor are its pushes of them verified again while that
// bundle holds, or a relay holding a removed centre's last entries would be
// asked at every round. Kept per peer: one peer's refusal says nothing of
// what the others hold.
func (x *Exchange) outOfBundleLocked(ps *peerState, origin, epoch string) uint64 {
	r, ok := ps.refused[origin]
	if !ok || r.bundle != x.node.Bundle().Version || r.epoch != epoch {
		return 0
	}
	return r.seq
}

// claimLocked is ps's head of origin as worth pulling: below what was refused
// from it under this bundle (outOfBundleLocked), so that neither pulls nor lag
// count on entries this node will not take. The head it returns below a
// refusal carries no hash.
func (x *Exchange) claimLocked(ps *peerState, origin string) (schema.Head, bool) {
	h, ok := ps.heads[origin]
	if refused := x.outOfBundleLocked(ps, origin, h.Epoch); ok && refused > 0 && h.Seq >= refused {
		h = schema.Head{Origin: h.Origin, Epoch: h.Epoch, Seq: refused - 1}
	}
	return h, ok
}

// New builds the libp2p host and starts listening; nothing is dialled or served
// until Run. ctx bounds only the construction.
func New(ctx context.Context, cfg Config, n Node) (*Exchange, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if n == nil {
		return nil, errors.New("new sync exchange: no node")
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	centre := n.Centre()
	if !schema.ValidCentreID(centre) {
		return nil, fmt.Errorf("new sync exchange: node centre id %q is not a valid centre id", centre)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	x := &Exchange{
		cfg:      cfg,
		node:     n,
		log:      cfg.Logger,
		m:        m,
		centre:   centre,
		now:      cfg.Now,
		notifyCh: make(chan struct{}, 1),
		pushCh:   make(chan struct{}, 1),
		pullCh:   make(chan struct{}, 1),
		peers:    make(map[peer.ID]*peerState),
		backoff:  make(map[peer.ID]time.Time),
		origins:  make(map[string]*originState),
	}
	if x.log == nil {
		x.log = slog.New(slog.DiscardHandler)
	}
	if x.now == nil {
		x.now = time.Now
	}
	h, err := newHost(cfg, gater{x})
	if err != nil {
		return nil, err
	}
	x.host = h
	x.self = h.ID()
	if err := registerMemberCollector(cfg.Registerer, x); err != nil {
		h.Close()
		return nil, err
	}
	x.log = x.log.With("local_peer", x.self.String())
	if member, ok := n.Bundle().PeerAllowed(x.self.String()); !ok {
		x.log.Warn("this node's libp2p peer id is not in the trust bundle; other centres will refuse it until the bundle lists it",
			"centre", centre)
	} else if member != centre {
		x.log.Warn("the trust bundle lists this node's peer id under another centre", "centre", centre, "listed_under", member)
	}
	return x, nil
}

// ID is the host's libp2p peer id.
func (x *Exchange) ID() peer.ID { return x.self }

// Addrs are the host's listen addresses (without the /p2p component).
func (x *Exchange) Addrs() []multiaddr.Multiaddr { return x.host.Addrs() }

// AddrInfo is the host's peer id with its addresses, as peers dial it.
func (x *Exchange) AddrInfo() peer.AddrInfo { return peer.AddrInfo{ID: x.self, Addrs: x.host.Addrs()} }

// Notify tells the exchange the local log has changed. It never blocks; calls
// are coalesced into one announcement (Config.AnnounceDebounce and
// PushingAnnounceDebounce), and, on the leader, start a push at once.
func (x *Exchange) Notify() {
	select {
	case x.notifyCh <- struct{}{}:
	default:
	}
	select {
	case x.pushCh <- struct{}{}:
	default:
	}
}

// Connect dials p now (in addition to the members the bundle lists, which Run
// dials by itself). Note that a connection the remote's gater refuses may still
// report success here; the refusal shows at the first request.
func (x *Exchange) Connect(ctx context.Context, p peer.AddrInfo) error {
	if _, ok := x.admit(p.ID); !ok {
		x.mu.Lock()
		_, backedOff := x.backoff[p.ID]
		x.mu.Unlock()
		if backedOff {
			return fmt.Errorf("connect %s: %w", p.ID, ErrBackedOff)
		}
		return fmt.Errorf("connect %s: %w", p.ID, ErrNotAllowed)
	}
	if err := x.host.Connect(ctx, p); err != nil {
		return fmt.Errorf("connect %s: %w", p.ID, err)
	}
	return nil
}

// Close releases the host. Run closes it on return by itself; Close is for an
// Exchange that was never run, and is harmless after Run.
func (x *Exchange) Close() error {
	x.mu.Lock()
	x.closed = true
	running := x.running
	x.mu.Unlock()
	if running {
		return nil
	}
	return x.closeHost()
}

func (x *Exchange) closeHost() error {
	var err error
	x.closeOnce.Do(func() { err = x.host.Close() })
	return err
}

// Run serves and replicates until ctx is done, then stops every goroutine it
// started, closes the host and returns nil. It can be called once.
func (x *Exchange) Run(ctx context.Context) error {
	x.mu.Lock()
	switch {
	case x.closed:
		x.mu.Unlock()
		return ErrClosed
	case x.running:
		x.mu.Unlock()
		return ErrRunning
	}
	x.running = true
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	x.runCtx = ctx
	x.mu.Unlock()

	err := x.start(ctx)
	switch {
	case err == nil:
		<-ctx.Done()
	case ctx.Err() != nil:
		// Stopped while starting (gossipsub refuses a done context): what
		// was asked for, not a failure to report.
		err = nil
	}
	cancel() // before stop: the loops end with ctx
	x.stop()
	return err
}

func (x *Exchange) start(ctx context.Context) error {
	if _, err := x.refreshLocal(ctx); err != nil {
		x.log.Warn("read local heads", "err", err)
	} else {
		// The gauges from the start rather than the first heartbeat, with
		// the origins held known.
		x.updateGauges()
	}
	sub, err := x.host.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
	if err != nil {
		return fmt.Errorf("subscribe to connection events: %w", err)
	}
	x.goFunc(func() {
		defer sub.Close()
		x.eventLoop(ctx, sub)
	})
	// Nodes not yet upgraded speak version 2 only; its frames are version
	// 3's but for what a RangeReq carries (request drops that for them).
	x.host.SetStreamHandler(wire.ProtocolID, x.handleStream)
	x.host.SetStreamHandler(wire.ProtocolV2, x.handleStream)
	if !x.cfg.DisableGossip {
		if err := x.startGossip(ctx); err != nil {
			return err
		}
	}
	x.goFunc(func() { x.announceLoop(ctx) })
	if !x.cfg.DisablePush {
		x.goFunc(func() { x.pushLoop(ctx) })
	}
	x.goFunc(func() { x.tickLoop(ctx) })
	x.goFunc(func() { x.pullLoop(ctx) })
	// Peers connected before Run (Connect after New) get their first exchange now.
	for _, p := range x.host.Network().Peers() {
		x.onConnected(p)
	}
	x.redial()
	x.log.Info("sync exchange running", "centre", x.centre, "addrs", fmt.Sprint(x.host.Addrs()))
	return nil
}

func (x *Exchange) stop() {
	x.mu.Lock()
	x.stopping = true
	topic := x.topic
	x.topic = nil
	x.mu.Unlock()
	x.host.RemoveStreamHandler(wire.ProtocolID)
	x.host.RemoveStreamHandler(wire.ProtocolV2)
	x.mu.Lock()
	if x.graceTimer != nil {
		x.graceTimer.Stop()
	}
	x.mu.Unlock()
	if topic != nil {
		// The subscription was cancelled by ctx; pubsub stops with ctx too.
		topic.Close()
	}
	if err := x.closeHost(); err != nil {
		x.log.Warn("close libp2p host", "err", err)
	}
	x.wg.Wait()
	x.log.Info("sync exchange stopped")
}

// goFunc runs f on a goroutine Run waits for. It refuses (false) once shutdown
// has begun.
func (x *Exchange) goFunc(f func()) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stopping {
		return false
	}
	x.wg.Add(1)
	go func() {
		defer x.wg.Done()
		f()
	}()
	return true
}

// track registers a goroutine libp2p started (a stream handler) with the wait
// group; false once shutdown has begun.
func (x *Exchange) track() (context.Context, bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.stopping || x.runCtx == nil {
		return nil, false
	}
	x.wg.Add(1)
	return x.runCtx, true
}

func (x *Exchange) wakePull() {
	select {
	case x.pullCh <- struct{}{}:
	default:
	}
}

// eventLoop follows connections as libp2p reports them.
func (x *Exchange) eventLoop(ctx context.Context, sub event.Subscription) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-sub.Out():
			if !ok {
				return
			}
			e := ev.(event.EvtPeerConnectednessChanged)
			if e.Connectedness == network.Connected {
				x.onConnected(e.Peer)
			} else {
				x.onDisconnected(e.Peer)
			}
		}
	}
}

func (x *Exchange) onConnected(p peer.ID) {
	member, ok := x.admit(p)
	if !ok {
		// Admitted by an older bundle, or backed off since: cut it.
		x.host.Network().ClosePeer(p)
		return
	}
	x.mu.Lock()
	ps := x.peerLocked(p, member)
	if !ps.connected {
		ps.connected = true
		ps.since = x.now()
	}
	x.mu.Unlock()
	x.updateConnGauge()
	x.startHeadsExchange(p)
}

func (x *Exchange) onDisconnected(p peer.ID) {
	var push *conn
	x.mu.Lock()
	if ps, ok := x.peers[p]; ok {
		ps.connected = false
		ps.since = time.Time{}
		// It may come back restarted, remembering none of our heads, and
		// configured otherwise (or of another version).
		ps.theirs, ps.sent = schema.Hash{}, schema.Hash{}
		ps.frameBytes = 0
		// The push stream went with the connection; a worker holding it
		// finds out at its next send and retries on a new one.
		if !ps.pushing {
			push, ps.pushStream = ps.pushStream, nil
		}
	}
	x.mu.Unlock()
	if push != nil {
		push.s.Reset()
	}
	x.updateConnGauge()
}

func (x *Exchange) updateConnGauge() {
	x.mu.Lock()
	n := 0
	for _, ps := range x.peers {
		if ps.connected {
			n++
		}
	}
	x.mu.Unlock()
	x.m.peersConnected.Set(float64(n))
}

// pushLoop pushes this centre's fresh entries to connected peers on every
// Notify, without the announcements' debounce: convergence waits on pushes,
// and they bound themselves (one push in flight per peer, the next carrying
// everything committed meanwhile).
func (x *Exchange) pushLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-x.pushCh:
		}
		// Announcements wake the pull scheduler too, but coalesced while
		// pushes run; a commit here (a new leader's first, say) wakes it now.
		x.wakePull()
		if !x.node.CanApply() {
			continue
		}
		own, err := x.nodeHead(ctx, x.centre)
		if err != nil {
			if ctx.Err() == nil {
				x.log.Warn("read own head to push", "err", err)
			}
			continue
		}
		if own.Seq > 0 {
			x.push(own)
		}
	}
}

// announceLoop turns Notify calls into heads announcements on gossip.
func (x *Exchange) announceLoop(ctx context.Context) {
	// Leading-edge debounce: the first change is announced at once; changes
	// during the following debounce are coalesced into one announcement at
	// its end, which is what bounds the gossip rate under load (and what
	// peers' gossip guards allow an author).
	d := x.cfg.AnnounceDebounce
	if !x.cfg.DisablePush {
		d = max(d, x.cfg.PushingAnnounceDebounce)
	}
	var timer *time.Timer
	for {
		select {
		case <-ctx.Done():
			return
		case <-x.notifyCh:
		}
		for {
			x.announce(ctx)
			x.wakePull() // a new leader starts pulling at once
			if d <= 0 {
				break
			}
			if timer == nil {
				timer = time.NewTimer(d)
			} else {
				timer.Reset(d)
			}
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
			more := false
			select {
			case <-x.notifyCh:
				more = true
			default:
			}
			if !more {
				break
			}
		}
	}
}

// tickLoop drives heartbeats, anti-entropy, redials and the gauges.
func (x *Exchange) tickLoop(ctx context.Context) {
	hb := time.NewTicker(x.cfg.HeartbeatInterval)
	defer hb.Stop()
	ae := time.NewTicker(x.cfg.AntiEntropyInterval)
	defer ae.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hb.C:
			for _, p := range x.connectedPeers() {
				x.startPing(p)
			}
			x.closeIdlePushStreams()
			x.updateGauges()
		case <-ae.C:
			if _, err := x.refreshLocal(ctx); err != nil && ctx.Err() == nil {
				x.log.Warn("read local heads", "err", err)
			}
			x.expireBackoffs()
			x.checkRecovery()
			x.enforceBundle()
			x.redial()
			for _, p := range x.connectedPeers() {
				x.startHeadsExchange(p)
			}
			x.wakePull()
		}
	}
}

// refreshLocal reads the node's heads into the cache and returns them.
func (x *Exchange) refreshLocal(ctx context.Context) ([]schema.Head, error) {
	heads, err := x.node.Heads(ctx)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	for _, h := range heads {
		x.originLocked(h.Origin).local = h
	}
	x.mu.Unlock()
	return heads, nil
}

func (x *Exchange) originLocked(origin string) *originState {
	o, ok := x.origins[origin]
	if !ok {
		o = &originState{apply: make(chan struct{}, 1), local: schema.Head{Origin: origin}}
		x.origins[origin] = o
	}
	return o
}

// isEOF reports a clean end of stream.
func isEOF(err error) bool { return errors.Is(err, io.EOF) }
