// Package server assembles one replica of a centre from its parts: the raft node
// and state file (node), the HTTP API (node/api), the federation exchange
// (sync/exchange), keys and the trust bundle (auth), and one Prometheus registry.
// cmd/liandong's serve and demo, and the integration tests, all run nodes through it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"liandong/auth"
	"liandong/client"
	"liandong/node"
	"liandong/node/api"
	"liandong/node/store"
	"liandong/node/ui"
	"liandong/sync/exchange"
)

// ErrListenHTTP wraps a failure to listen on the HTTP address, so a caller
// can tell it from another listener's (raft's, libp2p's) in its advice.
var ErrListenHTTP = errors.New("listen for HTTP on")

// Server is one running replica.
type Server struct {
	cfg      Config
	Node     *node.Node
	Exchange *exchange.Exchange
	Registry *prometheus.Registry
	http     *http.Server
	ln       net.Listener
	faults   *faults // injected faults: nil but in a build with -tags failpoints
	// replicaRT carries calls to the centre's other replicas (nil:
	// http.DefaultTransport): tls.ca's roots, cut by injected faults.
	replicaRT http.RoundTripper
	// URL is the API's base URL, e.g. http://127.0.0.1:8701.
	URL string
}

// ErrNotMember is returned when the bundle does not list this centre or its keys.
var ErrNotMember = errors.New("this centre is not in the trust bundle")

// Start opens everything and binds the HTTP listener; Run serves.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	flt, err := openFaults(cfg)
	if err != nil {
		return nil, err
	}
	recordKey, err := auth.LoadKey(cfg.Path(cfg.Keys.Record))
	if err != nil {
		return nil, fmt.Errorf("record-signing key: %w", err)
	}
	var rotation []*auth.KeyPair
	for _, path := range cfg.Keys.RecordRotation {
		k, err := auth.LoadKey(cfg.Path(path))
		if err != nil {
			return nil, fmt.Errorf("record-signing key for rotation: %w", err)
		}
		rotation = append(rotation, k)
	}
	tokenKey, err := auth.LoadKey(cfg.Path(cfg.Keys.Token))
	if err != nil {
		return nil, fmt.Errorf("token-signing key: %w", err)
	}
	_ = tokenKey // tokens are issued by `liandong token issue`; the node verifies them through the bundle
	identity, err := exchange.LoadOrCreateIdentity(cfg.Path(cfg.Keys.P2P))
	if err != nil {
		return nil, fmt.Errorf("libp2p identity: %w", err)
	}
	// Every wall-clock judgement of this replica (bundle validity, signing
	// times, token times) reads one clock, which faults may offset.
	base, err := replicaTransport(cfg.Path(cfg.TLS.CA))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var certs *certReloader
	if cfg.TLS.Cert != "" {
		if certs, err = newCertReloader(cfg.Path(cfg.TLS.Cert), cfg.Path(cfg.TLS.Key), cfg.Logger); err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	replicaRT := flt.forwardTransport(base)
	clock := flt.clock()
	// An expired file does not stop the node: the node's state may hold a
	// newer bundle installed through publish or sync (nothing rewrites the
	// file), and even when it does not, a running node keeps its bundle after
	// expiry and a restart must not turn a lapse into an outage. Its
	// signatures and pinned roots must still verify.
	bundle, signed, fileExpired, err := LoadSignedBundleAllowExpired(cfg.Path(cfg.Bundle), cfg.RootKeys, clock())
	if err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{cfg: cfg, Registry: reg, faults: flt, replicaRT: replicaRT}

	ncfg := node.DefaultConfig(cfg.Centre, cfg.DataDir)
	ncfg.ReplicaID = cfg.Raft.ReplicaID
	ncfg.RaftAddr = cfg.Raft.Addr
	ncfg.Bootstrap = cfg.Raft.Bootstrap && cfg.Raft.Join == ""
	ncfg.RecordKey = recordKey
	ncfg.RotationKeys = rotation
	if cfg.Raft.SnapshotInterval > 0 {
		ncfg.SnapshotInterval = cfg.Raft.SnapshotInterval
	}
	if cfg.Raft.SnapshotThreshold > 0 {
		ncfg.SnapshotThreshold = cfg.Raft.SnapshotThreshold
	}
	if cfg.Raft.TrailingLogs > 0 {
		ncfg.TrailingLogs = cfg.Raft.TrailingLogs
	}
	if cfg.Raft.LogStore != "" {
		ncfg.LogStore = cfg.Raft.LogStore
	}
	ncfg.WALSegmentSize = cfg.Raft.WALSegmentSize
	ncfg.Bundle, ncfg.BundleSigned = bundle, signed
	ncfg.RecoverOwnLog = hasOtherMembers(bundle, cfg.Centre)
	ncfg.SkipOwnLogRecovery = cfg.P2P.SkipOwnLogRecovery
	// A replica of a group serves once it has applied what its leader had
	// committed: membership asks the leader's /healthz.
	ncfg.AwaitLeaderCommit = cfg.Raft.Addr != ""
	ncfg.Logger = cfg.Logger
	ncfg.Registerer = reg
	ncfg.Now = clock
	ncfg.RaftFaults = flt.raftFaults()
	ncfg.CheckJoiner = func(ctx context.Context, r store.Replica) error {
		return checkJoinerBuild(ctx, r, replicaRT)
	}
	ncfg.ProbeReplica = func(ctx context.Context, r store.Replica) error {
		return probeVoter(ctx, r, replicaRT)
	}
	if s.Node, err = node.Open(ncfg); err != nil {
		return nil, err
	}
	// Checked against the bundle the node runs on: one installed through sync
	// and kept in the state file may be newer than the configured file.
	if err := checkMembership(s.Node.Bundle(), cfg, append([]*auth.KeyPair{recordKey}, rotation...), clock()); err != nil {
		s.Node.Close()
		return nil, err
	}
	if fileExpired && s.Node.Bundle().Version > bundle.Version {
		cfg.Logger.Warn("the trust bundle file has expired; running on the newer version installed earlier",
			"file", cfg.Path(cfg.Bundle), "file_version", bundle.Version, "version", s.Node.Bundle().Version)
	}
	warnExpiry(cfg.Logger, s.Node.Bundle(), clock())

	xcfg := exchange.DefaultConfig()
	xcfg.ListenAddrs = cfg.P2P.Listen
	xcfg.Identity = identity
	if cfg.P2P.AntiEntropyInterval > 0 {
		xcfg.AntiEntropyInterval = cfg.P2P.AntiEntropyInterval
	}
	xcfg.BlockMembers = cfg.P2P.Block
	xcfg.Registerer = reg
	xcfg.Logger = cfg.Logger.With("component", "exchange")
	xcfg.Now = clock
	xcfg.Faults = flt.exchangeFaults()
	if s.Exchange, err = exchange.New(ctx, xcfg, s.Node); err != nil {
		s.Node.Close()
		return nil, fmt.Errorf("start libp2p host: %w", err)
	}
	s.Node.SetNotifier(s.Exchange.Notify)

	handler, err := api.New(api.Options{
		Service:    s.Node,
		Verifier:   &auth.TokenVerifier{Federation: bundle.Federation, Bundle: s.Node.Bundle, Now: clock, Cache: &auth.TokenCache{}},
		Authorizer: &auth.Authorizer{Centre: cfg.Centre, AllowAnonymous: cfg.AnonymousReads},
		Registerer: reg,
		Gatherer:   reg,
		Federation: s.federation,
		Logger:     cfg.Logger,
		Forward:    replicaRT,
		Now:        clock,
		MaxWrites:  cfg.MaxWrites,
	})
	if err != nil {
		s.closeParts()
		return nil, err
	}
	s.ln, err = net.Listen("tcp", cfg.HTTP)
	if err != nil {
		s.closeParts()
		if errors.Is(err, syscall.EADDRINUSE) {
			// Which flag or key moves the port is the caller's to say (serve's
			// --http, demo's --base-port); it can test for EADDRINUSE too.
			return nil, fmt.Errorf("%w %s: %w (is another process using the port?)", ErrListenHTTP, cfg.HTTP, err)
		}
		return nil, fmt.Errorf("%w %s: %w", ErrListenHTTP, cfg.HTTP, err)
	}
	s.URL = "http://" + s.ln.Addr().String()
	if certs != nil {
		s.URL = "https://" + s.ln.Addr().String()
	}
	if s.cfg.AdvertiseHTTP == "" {
		s.cfg.AdvertiseHTTP = s.URL
	}
	s.http = api.NewServer(cfg.HTTP, handler)
	if certs != nil {
		s.http.TLSConfig = certs.serverTLS()
	}
	console, err := ui.New(ui.Options{API: handler, Centre: cfg.Centre, Bundle: s.Node.Bundle, Logger: cfg.Logger.With("component", "console"), Now: clock})
	if err != nil {
		s.ln.Close()
		s.closeParts()
		return nil, err
	}
	s.http.Handler = flt.wrapHTTP(ui.Mount(console, handler)) // the web console at /ui/, the API everywhere else
	return s, nil
}

// Run serves until ctx ends, then shuts down gracefully: in-flight requests finish
// (up to ShutdownTimeout, see drainRequests), the exchange stops, raft and the
// files close. It logs how long each step took.
func (s *Server) Run(ctx context.Context) error {
	// Every request's context ends when drainRequests says so.
	rctx, endRequests := context.WithCancelCause(context.Background())
	defer endRequests(nil)
	s.http.BaseContext = func(net.Listener) context.Context { return rctx }
	xctx, stopExchange := context.WithCancel(context.Background())
	xdone := make(chan error, 1)
	go func() { xdone <- s.Exchange.Run(xctx) }()
	hdone := make(chan error, 1)
	go func() {
		if s.http.TLSConfig != nil {
			hdone <- s.http.ServeTLS(s.ln, "", "") // certificates from TLSConfig.GetCertificate
			return
		}
		hdone <- s.http.Serve(s.ln)
	}()
	mctx, stopMembership := context.WithCancel(context.Background())
	mdone := make(chan struct{})
	go func() { defer close(mdone); s.membership(mctx) }()
	// The faults poller: a no-op but in a build with -tags failpoints, where it
	// follows the faults file until the exchange has stopped.
	fctx, stopFaults := context.WithCancel(context.Background())
	fdone := make(chan struct{})
	go func() { defer close(fdone); s.faults.run(fctx) }()

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-hdone:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = fmt.Errorf("http server: %w", err)
		}
		hdone <- nil
	case err := <-xdone:
		runErr = fmt.Errorf("exchange: %w", err)
		xdone <- nil
	}
	began := time.Now()
	stopMembership()
	<-mdone
	membershipStopped := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	// With a cause, so that what reads it answers 503, the node stopping,
	// not 499, the client gone (the batch's items waiting for a write).
	ended := time.AfterFunc(drainRequests(s.cfg.ShutdownTimeout), func() { endRequests(errRequestsEnded) })
	if err := s.http.Shutdown(sctx); err != nil {
		s.cfg.Logger.Warn("http shutdown", "err", err)
	}
	cut := !ended.Stop()
	<-hdone
	httpStopped := time.Now()
	stopExchange()
	<-xdone
	stopFaults()
	<-fdone
	exchangeStopped := time.Now()
	err := errors.Join(runErr, s.Node.Close())
	s.cfg.Logger.Info("stopped", "took", time.Since(began).Round(time.Millisecond),
		"membership", membershipStopped.Sub(began).Round(time.Millisecond),
		"http", httpStopped.Sub(membershipStopped).Round(time.Millisecond), "requests_ended", cut,
		"exchange", exchangeStopped.Sub(httpStopped).Round(time.Millisecond),
		"node", time.Since(exchangeStopped).Round(time.Millisecond))
	return err
}

// drainRequests is how long, of a stop's shutdown timeout, requests under way
// are left to finish on their own: half of it. Then their contexts end, so
// that one waiting on something that does not answer (a write forwarded to a
// leader that is paused or cut off, bounded only by the API's forward
// timeout, 75 s; a write waiting for a commit, up to the node's apply
// timeout) answers at once, with the 503 a timeout gets ("it may have been
// applied": its outcome unknown, as at a crash), and the stop does not wait
// the whole timeout for it (measured: 20 s, then raft's own stop; see
// TestStopFitsAKillGrace). The other half is for them to write that answer.
func drainRequests(timeout time.Duration) time.Duration { return timeout / 2 }

// errRequestsEnded is the cause of the contexts of requests ended at a stop's
// drain.
var errRequestsEnded = fmt.Errorf("the request was still under way when the stop's drain ended it: %w", node.ErrShutdown)

// membership keeps this replica's place in its group: a joining replica asks to
// be added until it is, and a leader makes sure its own addresses are recorded.
func (s *Server) membership(ctx context.Context) {
	self := store.Replica{ID: s.cfg.Raft.ReplicaID, RaftAddr: s.cfg.Raft.Addr, HTTP: s.cfg.AdvertiseHTTP, PeerID: s.Exchange.ID().String()}
	joined := s.cfg.Raft.Join == ""
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	var probed, unnamedSince time.Time
	follow := leaderCommitFollower{since: time.Now()}
	for {
		follow.ask(ctx, s)
		if !joined {
			// A member whose addresses the group has not recorded (the join
			// added it to raft, then the record failed) asks again, or the
			// group could not forward to it, nor its leader probe it.
			if s.member() && s.recorded(self) {
				joined = true
			} else if err := s.requestJoin(ctx, self); err != nil {
				s.cfg.Logger.Warn("join request failed; retrying", "join", s.cfg.Raft.Join, "err", err)
			} else {
				joined = true
				s.cfg.Logger.Info("joined the centre's raft group", "via", s.cfg.Raft.Join)
			}
		}
		if s.Node.IsLeader() {
			if err := s.Node.RegisterSelf(ctx, self); err != nil && ctx.Err() == nil {
				s.cfg.Logger.Warn("record own replica addresses", "err", err)
			}
			// A purge whose leader stopped between chunks: a few chunks a
			// tick (some 25 ms each), so the rest of this loop keeps its pace.
			if _, err := s.Node.ResumePurges(ctx, 20); err != nil && ctx.Err() == nil && !errors.Is(err, node.ErrNotLeader) {
				s.cfg.Logger.Warn("resume a purge cut short", "err", err)
			}
			if time.Since(probed) > 5*time.Second {
				probed = time.Now()
				nameFeed(ctx, s.Node, self, s.replicaRT, s.cfg.Logger, &unnamedSince)
				// A replica an earlier leader took out to add back at a
				// new raft address, and lost its leadership (or stopped)
				// before it did.
				if n, err := s.Node.AddBackMoved(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, node.ErrNotLeader) {
					s.cfg.Logger.Warn("add back a replica a move took out of the group", "added_back", n, "err", err)
				} else if n > 0 {
					s.cfg.Logger.Info("added back replicas an earlier leader took out of the group to move them, and did not add back", "added_back", n)
				}
				if n, err := s.Node.NameRaftAddresses(ctx); err != nil && ctx.Err() == nil {
					s.cfg.Logger.Warn("give raft the replicas' recorded raft addresses", "err", err)
				} else if n > 0 {
					s.cfg.Logger.Info("raft now holds replicas by their recorded host names, not the IPs an earlier build bootstrapped with", "renamed", n)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// leaderCommitFollower learns, once, how far a starting follower must apply
// before it serves (node.Config.AwaitLeaderCommit): its leader's commit index,
// from the leader's /healthz, or the join address's while it does not know the
// leader's API yet (a joiner before it has the group's records). After
// leaderCommitPatience without an answer it gives up, leaving the follower to
// its own log, rather than refuse reads for ever.
type leaderCommitFollower struct {
	since time.Time
	done  bool
}

const leaderCommitPatience = time.Minute

func (f *leaderCommitFollower) ask(ctx context.Context, s *Server) {
	if f.done || s.Node.CaughtUp() == nil || s.Node.IsLeader() {
		f.done = f.done || s.Node.CaughtUp() == nil
		return
	}
	base := s.Node.LeaderHTTP()
	if base == "" {
		base = s.cfg.Raft.Join
	}
	if base != "" {
		if h, err := healthOf(ctx, base, s.replicaRT); err == nil {
			s.Node.SetLeaderCommit(h.CommitIndex)
			f.done = true
			return
		}
	}
	if time.Since(f.since) > leaderCommitPatience {
		s.cfg.Logger.Warn("could not learn how far the raft leader has committed; serving from what this replica holds", "asked", base)
		s.Node.SetLeaderCommit(0)
		f.done = true
	}
}

// nameFeed keeps the group agreed on its change feed's name. It names the feed
// once every replica runs a build that stores the name (one that did not would
// drop it, and refuse the cursors that carry it); after that, it proposes the
// name again whenever a replica reports none (one rebuilt by an older build,
// say), which fills it in there and changes nothing elsewhere.
func nameFeed(ctx context.Context, n feedNamer, self store.Replica, rt http.RoundTripper, log *slog.Logger, unnamedSince *time.Time) {
	// Taken before the replicas to ask are read: an addition or removal
	// after this makes what they answer unrecordable (RecordFeatures).
	asked := n.Membership()
	reps, err := n.Replicas()
	if err != nil {
		return
	}
	own := n.FeedEpoch()
	if !slices.ContainsFunc(reps, func(r node.ReplicaInfo) bool { return r.ID == self.ID }) {
		// Raft's configuration could not be read (or does not list this
		// leader): without the others to ask, do not name anything.
		return
	}
	probes := probeReplicas(ctx, reps, self.ID, rt)
	for _, p := range probes {
		if p.Err != nil {
			continue
		}
		if err := n.RecordFeatures(ctx, asked, p.ID, p.Features); err != nil && ctx.Err() == nil {
			log.Warn("record a replica's features", "replica", p.ID, "err", err)
		}
	}
	propose, name, why := feedNameToPropose(own, probes)
	if !propose {
		if own == "" && unnamedSince.IsZero() {
			*unnamedSince = time.Now()
		}
		if own == "" && time.Since(*unnamedSince) > 10*time.Minute {
			// Until named, a partner's cursor survives a rebuild of this
			// centre's state and then skips changes.
			log.Warn("the change feed is still not named", "waiting_for", why)
			*unnamedSince = time.Now()
		} else {
			log.Debug("change feed name not proposed", "reason", why)
		}
		return
	}
	if err := n.NameFeed(ctx, self, name); err != nil {
		if ctx.Err() == nil {
			log.Warn("name the change feed", "err", err)
		}
		return
	}
	log.Info("proposed the change feed's name", "feed_epoch", n.FeedEpoch(), "why", why)
}

// feedNamer is the part of *node.Node that nameFeed uses. The features each
// replica announced, learnt on the way, go to RecordFeatures (for the writes
// only a group whose every replica has them may take).
type feedNamer interface {
	Membership() node.MembershipMark
	RecordFeatures(ctx context.Context, asked node.MembershipMark, id string, features []string) error
	Replicas() ([]node.ReplicaInfo, error)
	FeedEpoch() string
	NameFeed(ctx context.Context, self store.Replica, name string) error
}

// replicaProbe is what one replica's /healthz said (Err when it did not).
type replicaProbe struct {
	ID        string
	Features  []string
	FeedEpoch string
	Err       error
}

// probeReplicas asks every replica but self for its /healthz, through rt (the
// transport followers forward writes with; nil: the default).
func probeReplicas(ctx context.Context, reps []node.ReplicaInfo, self string, rt http.RoundTripper) []replicaProbe {
	var out []replicaProbe
	for _, r := range reps {
		if r.ID == self {
			continue
		}
		p := replicaProbe{ID: r.ID}
		if r.HTTP == "" {
			p.Err = errors.New("no HTTP address recorded")
		} else if h, err := healthOf(ctx, r.HTTP, rt); err != nil {
			p.Err = err
		} else {
			p.Features, p.FeedEpoch = h.Features, h.FeedEpoch
		}
		out = append(out, p)
	}
	return out
}

// healthOf asks the replica API at base for its /healthz, for up to 2 s.
func healthOf(ctx context.Context, base string, rt http.RoundTripper) (*client.Health, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	return (&client.Client{BaseURL: base, HTTP: &http.Client{Transport: rt}}).Health(ctx)
}

// probeVoter is node.Config.ProbeReplica: a voter the leader may count on for a
// majority answers /healthz and can store raft's log. One whose disk is full
// acknowledges no appends, so removing another would stop the group.
func probeVoter(ctx context.Context, r store.Replica, rt http.RoundTripper) error {
	h, err := healthOf(ctx, r.HTTP, rt)
	if err != nil {
		return err
	}
	if h.DiskFull {
		return fmt.Errorf("it reports its disk full (%s)", strings.TrimPrefix(h.Disk, "disk full: "))
	}
	return nil
}

// /healthz finds the node's DiskFull by an optional interface; a rename
// would silently stop the report.
var _ interface{ DiskFull() error } = (*node.Node)(nil)

// checkJoinerBuild is node.Config.CheckJoiner: a replica of an older build may
// not join (also before the change feed is named), since it would apply what the group's features decide
// differently (drop the change feed's name and refuse the cursors partners
// hold; replace a record a create-only write must not); nor may one whose API
// does not answer, since its group forwards writes there when it leads.
func checkJoinerBuild(ctx context.Context, r store.Replica, rt http.RoundTripper) error {
	h, err := healthOf(ctx, r.HTTP, rt)
	if err != nil {
		return fmt.Errorf("its API at %s does not answer /healthz (%v): the leader must reach it there", r.HTTP, err)
	}
	for _, f := range node.Features() {
		if !slices.Contains(h.Features, f) {
			// Once in the configuration it would apply the log as its
			// build does, whatever the leader had checked of the others.
			return fmt.Errorf("it runs an older build than this centre's group (its /healthz lists no %q): upgrade it first", f)
		}
	}
	return nil
}

// feedNameToPropose decides, for a leader whose feed is named own ("" for
// none), whether to propose a name given the other replicas' probes, and
// which: nothing while any replica did not answer or runs an older build, or
// while all agree with own; own again when a replica lacks it; the name other
// replicas hold (most of them; the least on a tie) when the leader has none (a
// leader rebuilt without it must not invent a second); a fresh one ("") when
// nobody has one. why says what decided it.
func feedNameToPropose(own string, probes []replicaProbe) (propose bool, name, why string) {
	held := map[string]int{}
	lacking := ""
	for _, p := range probes {
		switch {
		case p.Err != nil:
			return false, "", fmt.Sprintf("%s did not answer (%v)", p.ID, p.Err)
		case !slices.Contains(p.Features, node.FeatureFeedEpoch):
			return false, "", p.ID + " runs an older build"
		case p.FeedEpoch == "":
			lacking = p.ID
		default:
			held[p.FeedEpoch]++
		}
	}
	if own != "" {
		if lacking != "" {
			return true, own, lacking + " has no name for the feed"
		}
		return false, "", "every replica has the name"
	}
	best := ""
	for n, c := range held {
		if best == "" || c > held[best] || c == held[best] && n < best {
			best = n
		}
	}
	if best != "" {
		return true, best, "this leader lacks the name other replicas hold"
	}
	return true, "", "every replica runs a build that keeps the name"
}

// recorded reports whether the group holds self's addresses as they are.
func (s *Server) recorded(self store.Replica) bool {
	have, err := s.Node.Store().Replicas()
	return err == nil && slices.ContainsFunc(have, self.SameAddresses)
}

// member reports whether this replica is already in its group's configuration.
func (s *Server) member() bool {
	for _, v := range s.Node.ReplicaStatus().Voters {
		if v == s.cfg.Raft.ReplicaID {
			return true
		}
	}
	return false
}

func (s *Server) requestJoin(ctx context.Context, self store.Replica) error {
	tok, err := os.ReadFile(s.cfg.Path(s.cfg.Raft.JoinToken))
	if err != nil {
		return fmt.Errorf("join token: %w", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c := client.New(s.cfg.Raft.Join, strings.TrimSpace(string(tok)))
	c.HTTP = &http.Client{Transport: s.replicaRT}
	return c.AddReplica(rctx, client.Replica{ID: self.ID, RaftAddr: self.RaftAddr, HTTP: self.HTTP, PeerID: self.PeerID})
}

// Close releases a server that was started but never run.
func (s *Server) Close() error {
	s.ln.Close()
	s.closeParts()
	return nil
}

func (s *Server) closeParts() {
	if s.Exchange != nil {
		s.Exchange.Close()
	}
	s.Node.Close()
}

// federation is the body of GET /v1/federation.
func (s *Server) federation(ctx context.Context) (any, error) {
	b := s.Node.Bundle()
	doc := map[string]any{
		"centre":  s.cfg.Centre,
		"replica": s.Node.ReplicaStatus(),
		"bundle": map[string]any{
			"federation": b.Federation,
			"version":    b.Version,
			"expires_at": b.ExpiresAt,
		},
		"peer_id": s.Exchange.ID().String(),
		"sync":    s.Exchange.Status(),
	}
	members := make([]map[string]any, 0, len(b.Members))
	for _, m := range b.Members {
		members = append(members, map[string]any{"id": m.ID, "name": m.Name, "name_zh": m.NameZH, "removed": m.Removed != nil})
	}
	doc["members"] = members
	return doc, nil
}

// LoadBundle reads and verifies a signed trust bundle file. With rootKeys set, one
// of them must have signed it.
func LoadBundle(path string, rootKeys []string, now time.Time) (*auth.Bundle, error) {
	b, _, err := LoadSignedBundle(path, rootKeys, now)
	return b, err
}

// LoadSignedBundle is LoadBundle that also returns the file's bytes, which the
// node hands to peers holding an older version.
func LoadSignedBundle(path string, rootKeys []string, now time.Time) (*auth.Bundle, []byte, error) {
	b, data, expired, err := LoadSignedBundleAllowExpired(path, rootKeys, now)
	if err != nil {
		return nil, nil, err
	}
	if expired {
		return nil, nil, fmt.Errorf("trust bundle %s: v%d %w at %s; ask the federation's signers for a new version",
			path, b.Version, auth.ErrBundleExpired, b.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return b, data, nil
}

// LoadSignedBundleAllowExpired is LoadSignedBundle that returns an expired
// bundle too, saying so, when its signatures (and pinned roots) verify: for a
// node that keeps running on its bundle after expiry, and for building the
// successor of an expired bundle, which an expired bundle still authorises.
func LoadSignedBundleAllowExpired(path string, rootKeys []string, now time.Time) (b *auth.Bundle, data []byte, expired bool, err error) {
	data, err = os.ReadFile(path)
	if err != nil {
		return nil, nil, false, fmt.Errorf("trust bundle: %w (create one with `liandong federation init`, or use `serve --dev`)", err)
	}
	sb, err := auth.ParseSignedBundle(data)
	if err != nil {
		// Truncated or overwritten: the same signed bytes are on every node.
		return nil, nil, false, fmt.Errorf("trust bundle %s: %w; the file is damaged: restore it from a backup, or fetch the federation's current bundle from any node (curl -o %s http://NODE/v1/bundle); a newer bundle the node installed still takes precedence at start", path, err, path)
	}
	b, expired, err = node.VerifyBundleAllowExpired(sb, nil, now, rootKeys...)
	if errors.Is(err, auth.ErrTooFewSignatures) {
		// Nodes install a version under the threshold of the one before
		// it; a file read with no earlier version must meet its own (one
		// that raised the threshold may not, as installed).
		return nil, nil, false, fmt.Errorf("trust bundle %s: %w; read on its own, a bundle must carry as many of its signers' signatures as its own threshold asks: have more of them sign this file (liandong federation sign --bundle %s --key KEY)", path, err, path)
	}
	if err != nil {
		return nil, nil, false, fmt.Errorf("trust bundle %s: %w", path, err)
	}
	return b, data, expired, nil
}

// hasOtherMembers reports whether the bundle lists a current member other than
// centre with a peer: one that could hold centre's log.
func hasOtherMembers(b *auth.Bundle, centre string) bool {
	for _, m := range b.Members {
		if m.ID != centre && m.Removed == nil && len(m.Peers) > 0 {
			return true
		}
	}
	return false
}

// checkMembership refuses to run a centre the bundle does not list, or whose
// record key it does not hold as valid now.
func checkMembership(b *auth.Bundle, cfg Config, recordKeys []*auth.KeyPair, now time.Time) error {
	m, ok := b.Member(cfg.Centre)
	if !ok {
		return fmt.Errorf("%w: %q is not listed in trust bundle v%d; add it with `liandong federation add-centre`", ErrNotMember, cfg.Centre, b.Version)
	}
	if m.Removed != nil {
		return fmt.Errorf("%w: %q was removed from the federation at %s (trust bundle v%d)", ErrNotMember, cfg.Centre, m.Removed.UTC().Format(time.RFC3339), b.Version)
	}
	var errs []string
	for _, k := range recordKeys {
		_, err := b.RecordKey(cfg.Centre, k.ID, now)
		if err == nil {
			return nil
		}
		errs = append(errs, err.Error())
	}
	return fmt.Errorf("%w: no record key of %s held here is valid in trust bundle v%d (%s); list one with `liandong federation add-centre` or rotate-key", ErrNotMember, m.ID, b.Version, strings.Join(errs, "; "))
}

// ExpiryWarning is how long before its expiry the trust bundle is warned about.
const ExpiryWarning = 14 * 24 * time.Hour

// warnExpiry logs when the bundle expires soon, and loudly when it has
// expired: the node keeps running on it, as it does when the bundle expires
// while it runs, but members' new keys and revocations wait for a new version.
// The metric liandong_trust_bundle_expiry_seconds carries the same news.
func warnExpiry(log *slog.Logger, b *auth.Bundle, now time.Time) {
	left := b.ExpiresIn(now)
	switch {
	case left <= 0:
		log.Error("THE TRUST BUNDLE HAS EXPIRED: running on it because it is the newest this node holds; ask the federation's signers for a new version (any bundle change with --ttl renews it) and publish it",
			"version", b.Version, "expired_at", b.ExpiresAt.UTC().Format(time.RFC3339), "ago", (-left).Round(time.Minute).String())
	case left < ExpiryWarning:
		log.Warn("the trust bundle expires soon: ask the federation's signers for a new version and publish it",
			"version", b.Version, "expires_at", b.ExpiresAt.UTC().Format(time.RFC3339), "left", left.Round(time.Minute).String())
	}
}
