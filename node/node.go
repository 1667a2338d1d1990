package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/types"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/bbolt"

	"liandong/auth"
	"liandong/node/store"
	"liandong/schema"
)

// Sentinel errors of the node. The store's (store.ErrNotFound …) pass through.
var (
	ErrNotLeader   = errors.New("not the raft leader")
	ErrNotReady    = errors.New("node not ready")
	ErrTimeout     = errors.New("write not committed in time")
	ErrStateFailed = errors.New("state file failed")
	ErrShutdown    = errors.New("node shutting down")
	// ErrNoSigningKey refuses a write when the trust bundle lists no record key
	// of this centre that is valid at the leader's clock (see signingKey).
	ErrNoSigningKey = errors.New("no record key of this centre is valid at this node's clock")
	// ErrRemoved is a replica that is no longer a voter of its centre's raft
	// group (centre remove-replica): it will never have a leader again.
	ErrRemoved = errors.New("this replica was removed from its centre's raft group")
)

// Config configures one replica.
type Config struct {
	// Centre is this centre's id (hq, tianjin, …).
	Centre string
	// ReplicaID names this replica in the raft group; default "<centre>-1".
	ReplicaID string
	// DataDir holds raft's log, snapshots and the state file.
	DataDir string
	// RaftAddr is the address raft listens on for the other replicas. Empty means a
	// single replica with an in-memory transport: nothing listens.
	RaftAddr string
	// Bootstrap makes this replica the first voter of a new group when it has no
	// raft state yet.
	Bootstrap bool
	// RecordKey signs this centre's log entries. RotationKeys are more keys held
	// during a key rotation: the leader picks, per write, the held key the trust
	// bundle lists as valid then with the latest start, and names it in the raft
	// command so every replica signs with the same key.
	RecordKey    *auth.KeyPair
	RotationKeys []*auth.KeyPair
	// RecoverOwnLog makes a replica whose own log is empty refuse writes until
	// the sync exchange has learnt from peers how far the log went and pulled
	// it (EndRecovery): a centre that lost its disk must not fork its history.
	// Off for a centre alone in its federation: nobody could tell it.
	RecoverOwnLog bool
	// SkipOwnLogRecovery lets a replica whose own log is empty write at once
	// (p2p.skip_own_log_recovery: a brand-new centre). It is not honoured
	// while a recovery marker is on disk (a recovery begun earlier, or a
	// restore from a backup): that own log is not new.
	SkipOwnLogRecovery bool
	// Bundle is the trust bundle the node starts with, and BundleSigned its
	// signed form as distributed (served to peers that lack it). A newer bundle
	// installed through raft (InstallBundle) replaces it, also after a restart.
	Bundle       *auth.Bundle
	BundleSigned []byte

	ApplyTimeout      time.Duration
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	// TrailingLogs kept after a snapshot, for followers slightly behind.
	TrailingLogs uint64
	// LogStore is how raft's log is kept: LogStoreBolt (raft-boltdb, a bbolt
	// file) or LogStoreWAL (hashicorp/raft-wal: segment files appended with
	// one fsync a batch instead of bbolt's two, about half the commit latency;
	// Consul's default for new servers since 1.20, still "experimental" in its
	// README, and v0.4.1 needs the repairs in walfix.go). Empty, the default,
	// keeps the kind an existing log is of and gives a new data directory
	// bbolt. A replica keeps the kind its data directory was
	// created with: changing it means moving raft's directory, the state file
	// and the search index aside and rejoining (repairByRejoin).
	LogStore string
	// WALSegmentSize is the size of raft-wal's segment files, preallocated
	// when each is created; 0 means raft-wal's default (64 MiB).
	WALSegmentSize int
	// walVFS, set by tests, is the file system raft-wal works through.
	walVFS types.VFS
	// StateSync fsyncs the state file at every applied batch. Off by default:
	// raft's log is fsynced before a write is acknowledged and the state file
	// records the raft index it has applied, so after a crash raft replays what
	// the file lacks. An fsync per batch would halve throughput (the state file's
	// fsync, not raft's, is what limits group commit). After an unclean stop the
	// file is checked, and rebuilt from the snapshot and the log if it is torn,
	// or if the machine restarted meanwhile (see openState).
	StateSync bool

	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Now is the clock that stamps writes (signed_at, created_at, updated_at),
	// picks the signing key and checks bundles; time.Now if nil.
	Now func() time.Time
	// RaftFaults is a test hook that drops this replica's raft traffic while it
	// says so (faults_on.go). It works only in a build with `-tags failpoints`;
	// Validate refuses it in any other build. Nil: no faults.
	RaftFaults RaftFaults
	// CheckJoiner, when set, is asked about a replica AddReplica would add,
	// after the node's own checks: it refuses a build that lacks a feature
	// of this one's (Features; the server asks the joiner's /healthz).
	// Nil: no such check.
	CheckJoiner func(ctx context.Context, r store.Replica) error
	// ProbeReplica, when set, says whether replica r's API answers and it can
	// store raft's log (the server asks r's /healthz, which reports a full
	// disk); a removal that would leave fewer such voters than a majority is
	// refused. Nil: heartbeat failures alone decide.
	ProbeReplica func(ctx context.Context, r store.Replica) error
	// BootID names the machine's current boot (Linux's
	// /proc/sys/kernel/random/boot_id if nil; "" where there is none). After
	// an unclean stop it tells a crash of the process, which leaves the state
	// file's unsynced pages in the page cache, from one of the machine, which
	// can lose them (see openState). Tests fake a reboot with it.
	BootID func() string
	// AwaitLeaderCommit: as a follower, the node is not caught up (CaughtUp)
	// until it has applied what its leader had committed when asked
	// (SetLeaderCommit, which the caller's probe of the leader gives), so a
	// replica joining, or back after long down, does not serve the part of
	// its centre's records it has received so far as if it were all.
	AwaitLeaderCommit bool
}

// Bounds of Config.WALSegmentSize: raft-wal preallocates through a 32-bit size.
const minWALSegment, maxWALSegment = 16 << 10, 1 << 30

// Kinds of raft log store (Config.LogStore).
const (
	LogStoreBolt = "bolt"
	LogStoreWAL  = "wal"
)

// DefaultConfig returns a single-replica configuration for centre in dataDir.
func DefaultConfig(centre, dataDir string) Config {
	return Config{
		Centre:            centre,
		ReplicaID:         centre + "-1",
		DataDir:           dataDir,
		Bootstrap:         true,
		ApplyTimeout:      10 * time.Second,
		SnapshotInterval:  2 * time.Minute,
		SnapshotThreshold: 8192,
		TrailingLogs:      4096,
	}
}

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if !schema.ValidCentreID(c.Centre) {
		return fmt.Errorf("config: centre %q: want 1-32 lowercase letters, digits or '-'", c.Centre)
	}
	if c.DataDir == "" {
		return errors.New("config: data directory not set")
	}
	if c.RecordKey == nil {
		return errors.New("config: no record-signing key")
	}
	if c.ReplicaID == "" {
		c.ReplicaID = c.Centre + "-1"
	}
	if c.ApplyTimeout <= 0 {
		c.ApplyTimeout = 10 * time.Second
	}
	if c.SnapshotInterval <= 0 {
		c.SnapshotInterval = 2 * time.Minute
	}
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 4096
	}
	if c.WALSegmentSize != 0 && (c.WALSegmentSize < minWALSegment || c.WALSegmentSize > maxWALSegment) {
		return fmt.Errorf("config: raft.wal_segment_size %d: want 0 (64 MiB) or %d to %d bytes", c.WALSegmentSize, minWALSegment, maxWALSegment)
	}
	switch c.LogStore {
	case "", LogStoreBolt, LogStoreWAL:
	default:
		return fmt.Errorf("raft log store %q: want %q or %q", c.LogStore, LogStoreBolt, LogStoreWAL)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.RaftFaults != nil && !faultsCompiled {
		return errors.New("config: raft fault injection needs a build with -tags failpoints")
	}
	return nil
}

// Node is one replica of a centre.
type Node struct {
	// freeSpace is filesystemSpace, which tests replace.
	freeSpace func(path string) (avail, size float64, ok bool)
	cfg       Config
	log       *slog.Logger
	st        *store.Store
	fsm       *fsm
	raft      *raft.Raft
	logStore  logStore
	// logStoreKind is the kind logStore is (LogStoreBolt or LogStoreWAL).
	logStoreKind string
	transport    raft.Transport
	// raftConns is the stream layer under transport (nil in memory): Close
	// ends its connections so that raft's Shutdown need not wait on them.
	raftConns *stoppableLayer
	metrics   *metrics

	search searchState

	bundle       atomic.Pointer[auth.Bundle]
	bundleSigned atomic.Pointer[[]byte]
	bundleMu     sync.Mutex // serialises replacing bundle and bundleSigned together
	notifier     atomic.Pointer[func()]
	// peers tells, as leader, which followers do not answer heartbeats.
	peers peerHealth
	// acks tells, as leader, which followers answered no append lately.
	acks appendAcks
	// feedName caches the state's feed epoch once it is named (it never
	// changes after, except by a restore, which clears the cache).
	feedMu   sync.Mutex
	feedName string
	// replicaMu serialises this leader's proposals of replica records
	// (RegisterSelf, AddReplica, RecordFeatures), each of which reads the
	// record it rewrites.
	replicaMu sync.Mutex
	// purgeLock serialises this leader's purges (PurgeOrigin, ResumePurges),
	// so that a resumed purge does not take chunks an operator's call
	// counts on: held while it holds a token. A channel rather than a
	// sync.Mutex, so that PurgeOrigin waiting behind a ResumePurges (up to
	// its maxChunks chunks) gives up when its caller's context ends.
	purgeLock chan struct{}
	// purgeWaiting is set while ResumePurges waits for every replica to
	// take chunks, so that it says so once.
	purgeWaiting atomic.Bool
	// membershipChanges counts this node's additions and removals of
	// replicas (Membership).
	membershipChanges atomic.Uint64

	recovering      atomic.Bool
	recoveringSince time.Time
	// writeLocks order the dating of a record's writes with their handing
	// to raft, by a hash of the id under writeSeed (enqueueWrite);
	// lastWriteAt is the newest time (Unix nanoseconds) a write this node
	// proposed was dated: see writeTime.
	writeLocks  [64]sync.Mutex
	writeSeed   maphash.Seed
	lastWriteAt atomic.Int64
	// openLast is raft's last log index at start: the state file must have
	// applied the last command up to it before the node serves (CaughtUp);
	// caughtUp latches once it has.
	openLast uint64
	caughtUp atomic.Bool
	// pendingOwn and pendingLeader are the commands CaughtUp last found yet
	// to apply, of the log at start and up to the leader's commit.
	pendingOwn, pendingLeader atomic.Uint64
	// termApplied is the raft term in which this leader has applied all its
	// log (awaitTermApplied); termBarrier, under termMu, is the barrier that
	// finds out.
	// recoveryAfterReplay: an own-log recovery waits for the replay of raft's
	// log to say whether the own log was lost (settleRecovery).
	recoveryAfterReplay atomic.Bool
	termApplied         atomic.Uint64
	termMu              sync.Mutex
	termBarrier         *termBarrier
	// leaderCommit is what SetLeaderCommit learnt (Config.AwaitLeaderCommit);
	// leaderCommitSet says it has been called.
	leaderCommit    atomic.Uint64
	leaderCommitSet atomic.Bool
	closed          atomic.Bool
}

// Open starts a replica: opens the state file and raft's stores, restores from a
// snapshot only if the state file is behind it, and joins or bootstraps the group.
func Open(cfg Config) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	n := &Node{cfg: cfg, log: cfg.Logger.With("centre", cfg.Centre, "replica", cfg.ReplicaID), writeSeed: maphash.MakeSeed(), freeSpace: filesystemSpace, purgeLock: make(chan struct{}, 1)}
	if cfg.Bundle != nil {
		n.bundle.Store(cfg.Bundle)
		signed := cfg.BundleSigned
		n.bundleSigned.Store(&signed)
	}
	var err error
	n.metrics, err = newMetrics(cfg.Registerer, n)
	if err != nil {
		return nil, err
	}
	// A failed Open releases what it took, so that the caller can open again
	// in the same process: the registry's names and the raft port.
	defer func() {
		if err == nil {
			return
		}
		if n.metrics != nil {
			n.metrics.unregister()
		}
		if c, ok := n.transport.(io.Closer); ok {
			c.Close()
		}
	}()
	if err = n.openState(); err != nil {
		return nil, err
	}
	// Starting on the configured bundle when the state holds a newer one would
	// undo what the newer one revoked, removed or rotated.
	if err = n.loadStoredBundle(); err != nil {
		n.st.Close()
		return nil, fmt.Errorf("%w; the node will not run on an older trust bundle than it installed: put a signed bundle of that version or newer at the configured bundle path", err)
	}
	if err = n.startRecovery(); err != nil {
		n.st.Close()
		return nil, err
	}
	if err = n.openSearch(); err != nil {
		n.st.Close()
		return nil, err
	}
	if err = n.startRaft(); err != nil {
		n.closeSearch()
		n.st.Close()
		if n.logStore != nil {
			n.logStore.Close()
		}
		return nil, err
	}
	// The state file may have been restored from a snapshot while raft started.
	n.restored()
	return n, nil
}

func (n *Node) startRaft() error {
	cfg := n.cfg
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if err := os.MkdirAll(raftDir, 0o700); err != nil {
		return fmt.Errorf("create raft directory: %w", err)
	}
	if err := checkRaftFiles(raftDir); err != nil {
		return err
	}
	var err error
	hlog := newRaftLogger(n.log)
	if n.logStore, n.logStoreKind, err = openLogStore(raftDir, cfg.LogStore, walOptions{cfg.WALSegmentSize, cfg.walVFS}, hlog); err != nil {
		return err
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hlog)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if err := n.checkLogCoversState(raftDir, snaps); err != nil {
		return err
	}
	if err := n.checkLogReachesSnapshot(raftDir, snaps); err != nil {
		return err
	}
	if err := n.catchUpFromSnapshot(snaps); err != nil {
		return err
	}
	if n.openLast, err = n.logStore.LastIndex(); err != nil {
		return fmt.Errorf("read raft log: %w", err)
	}
	if n.recovering.Load() {
		if err := n.settleRecovery(snaps); err != nil {
			return err
		}
	}

	if cfg.RaftAddr == "" {
		_, n.transport = raft.NewInmemTransport(raft.ServerAddress(cfg.ReplicaID))
	} else {
		addr, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
		if err != nil {
			return fmt.Errorf("raft address %q: %w", cfg.RaftAddr, err)
		}
		tr, layer, err := newRaftTransport(cfg, addr, hlog)
		if err != nil {
			return fmt.Errorf("listen for raft on %s: %w (is the port in use?)", cfg.RaftAddr, err)
		}
		n.transport = newAckingTransport(tr, &n.acks)
		n.raftConns = layer
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.ReplicaID)
	rc.Logger = hlog
	rc.BatchApplyCh = true
	rc.MaxAppendEntries = 256
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	// The state file is durable and records its applied index, so a restart keeps it
	// and lets raft replay only what it lacks (catchUpFromSnapshot handles a state
	// file older than the newest snapshot).
	rc.NoSnapshotRestoreOnStart = true
	rc.NoLegacyTelemetry = true
	// A leader removed from the configuration steps down rather than shutting
	// raft down: on shutdown raft leaves unanswered the futures already queued
	// for the state machine (the removal itself among them), so callers waited
	// for ever. RemoveReplica no longer removes the leader itself, but a leader
	// may still commit its removal that an older build's leader appended.
	rc.ShutdownOnRemove = false
	if cfg.RaftAddr == "" {
		// Alone, there is nobody to wait for: elect at once.
		rc.HeartbeatTimeout = 100 * time.Millisecond
		rc.ElectionTimeout = 100 * time.Millisecond
		rc.LeaderLeaseTimeout = 100 * time.Millisecond
	}

	n.fsm = &fsm{st: n.st, onApply: n.applied, onRestore: n.restored}
	n.fsm.disk.log = n.log

	has, err := raft.HasExistingState(n.logStore, n.logStore, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	if has {
		// Founded or joined at an earlier start: what raft holds now rules.
		if err := removeIfExists(filepath.Join(cfg.DataDir, restoredMarker)); err != nil {
			return err
		}
	}
	if cfg.Bootstrap {
		if !has {
			// The configured address, not the transport's: that is the
			// one the name resolved to at this start, and a replica whose
			// name stays while its address changes (a Kubernetes pod made
			// again) would never hear from its group again. Raft's TCP
			// transport resolves the name at every dial.
			self := n.transport.LocalAddr()
			if cfg.RaftAddr != "" {
				self = raft.ServerAddress(cfg.RaftAddr)
			}
			conf := raft.Configuration{Servers: []raft.Server{{ID: rc.LocalID, Address: self, Suffrage: raft.Voter}}}
			if restored, err := n.restoredFromBackup(); err != nil {
				return err
			} else if restored {
				if err := n.foundOnRestoredState(snaps, conf); err != nil {
					return err
				}
			} else if err := raft.BootstrapCluster(rc, n.logStore, n.logStore, snaps, n.transport, conf); err != nil {
				return fmt.Errorf("bootstrap raft: %w", err)
			}
		}
	}
	n.raft, err = raft.NewRaft(rc, withFailpointsFSM(n.fsm), n.fsm.disk.watchLogStore(withFailpointsLogStore(n.logStore)), n.logStore, snaps, n.transport)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	// A filter without a channel: raft calls it for every observation and
	// sends nothing anywhere.
	n.raft.RegisterObserver(raft.NewObserver(nil, false, n.peers.observe))
	return nil
}

// catchUpFromSnapshot restores the newest snapshot into the state file when the
// file is behind it (lost or replaced), because raft, told not to restore on start,
// will only replay logs after the snapshot.
func (n *Node) catchUpFromSnapshot(snaps raft.SnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return err
	}
	applied, _, err := n.st.AppliedIndex()
	if err != nil {
		return err
	}
	if applied >= list[0].Index {
		return nil
	}
	n.log.Warn("state file behind the newest snapshot; restoring it", "applied", applied, "snapshot", list[0].Index)
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", list[0].ID, err)
	}
	defer rc.Close()
	return n.st.Restore(withFailpointsRestore(rc))
}

// Close stops raft and closes the files. A leader of several replicas hands over
// leadership first so the group does not wait an election timeout.
func (n *Node) Close() error {
	if !n.closed.CompareAndSwap(false, true) {
		return nil
	}
	var errs []error
	if err := n.closeSearch(); err != nil {
		errs = append(errs, err)
	}
	if n.fsm != nil {
		n.fsm.disk.stopping.Store(true) // a batch waiting for disk space gives up
	}
	if n.raft != nil {
		if n.raft.State() == raft.Leader && len(n.servers()) > 1 {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.log.Warn("leadership transfer before shutdown failed", "err", err)
			}
		}
		stopped := n.raft.Shutdown() // raft's shutdown has begun: its goroutines return on an error
		if n.raftConns != nil {
			// Not waited out: an RPC to a replica that does not answer
			// would hold Shutdown for raftTimeout (stoppableLayer). What
			// this replica acknowledged is in its log already.
			n.raftConns.endDialled()
		}
		if err := stopped.Error(); err != nil {
			errs = append(errs, fmt.Errorf("raft shutdown: %w", err))
		}
	}
	if c, ok := n.transport.(interface{ Close() error }); ok {
		c.Close()
	}
	if n.logStore != nil {
		errs = append(errs, n.logStore.Close())
	}
	if err := n.st.Close(); err != nil {
		errs = append(errs, err)
	} else if err := markClean(n.cfg.DataDir); err != nil {
		errs = append(errs, err)
	}
	n.metrics.unregister()
	return errors.Join(errs...)
}

// Removed reports whether the group removed this replica: it knows no
// leader, and the raft configuration it holds leaves it out (a removed
// follower learns the configuration that does, and hears from no leader
// again). A replica that has yet to join holds none; one being added holds
// the group's earlier configuration until the entry that adds it arrives,
// but hears from the leader meanwhile.
func (n *Node) Removed() bool {
	if addr, _ := n.raft.LeaderWithID(); addr != "" {
		return false
	}
	servers := n.servers()
	return len(servers) > 0 && !slices.ContainsFunc(servers, func(s raft.Server) bool { return string(s.ID) == n.cfg.ReplicaID })
}

func (n *Node) servers() []raft.Server {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	return f.Configuration().Servers
}

// Centre returns this node's centre id.
func (n *Node) Centre() string { return n.cfg.Centre }

// Store returns the state file, for read paths and tests.
func (n *Node) Store() *store.Store { return n.st }

// Bundle returns the current trust bundle.
func (n *Node) Bundle() *auth.Bundle { return n.bundle.Load() }

// SetNotifier registers fn to be called after each applied batch that changed a
// log head (the exchange announces heads from it). fn must not block.
func (n *Node) SetNotifier(fn func()) { n.notifier.Store(&fn) }

// DiskFull says why this replica cannot store writes now, or nil: its state
// file or raft's log could not grow the last time it tried, on a follower as
// on the leader. /healthz reports it, so that a leader does not count on a
// voter that cannot append (RemoveReplica's quorum check).
func (n *Node) DiskFull() error { return n.fsm.disk.full() }

// IsLeader reports whether this replica leads its centre's raft group.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// WaitLeader blocks until the group has a leader or ctx ends.
func (n *Node) WaitLeader(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if addr, _ := n.raft.LeaderWithID(); addr != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for raft leader: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// Ready reports whether the node can serve: raft has a leader and the state file
// has not failed.
func (n *Node) Ready() error {
	if n.closed.Load() {
		return ErrShutdown
	}
	if err := n.fsm.failure(); err != nil {
		return err
	}
	if addr, _ := n.raft.LeaderWithID(); addr == "" {
		if n.Removed() {
			// Its state no longer follows the group's, and never will.
			return ErrRemoved
		}
		return fmt.Errorf("%w: no raft leader", ErrNotReady)
	}
	if n.recovering.Load() && n.IsLeader() {
		return ErrRecovering
	}
	return n.CaughtUp()
}

// ErrReplaying is CaughtUp's answer while the state file has yet to apply
// the commands raft's log held at start.
var ErrReplaying = fmt.Errorf("%w: applying its raft log after a restart; until it has, it holds only part of its centre's records and an older trust bundle", ErrNotReady)

// pendingCommand returns the index of the highest command entry in
// (applied, upTo] of logs, or 0 when there is none: what a state file that
// has applied up to applied has yet to apply of the log up to upTo. It reads
// at most the entries raft has yet to replay; entries no longer held (the log
// compacted behind a snapshot the state file got whole) count as none.
func pendingCommand(logs raft.LogStore, applied, upTo uint64) (uint64, error) {
	first, err := logs.FirstIndex()
	if err != nil {
		return 0, err
	}
	last, err := logs.LastIndex()
	if err != nil {
		return 0, err
	}
	for i := min(last, upTo); i > applied && i >= first && i > 0; i-- {
		var l raft.Log
		if err := logs.GetLog(i, &l); errors.Is(err, raft.ErrLogNotFound) {
			return 0, nil
		} else if err != nil {
			return 0, fmt.Errorf("raft log entry %d: %w", i, err)
		}
		if l.Type == raft.LogCommand {
			return i, nil
		}
	}
	return 0, nil
}

// stillPending reports whether entry c of logs, found pending before, is
// still a command above applied: a new leader may have cut it, or put its
// no-op in its place.
func stillPending(logs raft.LogStore, c, applied uint64) bool {
	if c <= applied {
		return false
	}
	var l raft.Log
	return logs.GetLog(c, &l) == nil && l.Type == raft.LogCommand
}

// CaughtUp reports whether the state file has applied every command raft's
// log held when the node opened, and, for a follower that awaits its leader
// (Config.AwaitLeaderCommit), what the leader had committed when asked. Until
// then (a restart after a crash or a machine restart, when the state file was
// behind or rebuilt, and raft replays its log into it; a replica joining, or
// back after long down) the node would answer reads from part of its records,
// 404 for writes it acknowledged, and check tokens against the trust bundle
// of an older state: the API refuses with 503 and /readyz says not ready.
// Once caught up it stays so.
//
// Each call before then costs a read of the state file's applied index and
// of one log entry, the pending command found last; the log is scanned again
// (back to the applied index, no further) only once that one is applied.
func (n *Node) CaughtUp() error {
	if n.caughtUp.Load() {
		return nil
	}
	applied, _, err := n.st.AppliedIndex()
	if err != nil {
		return err
	}
	if stillPending(n.logStore, n.pendingOwn.Load(), applied) {
		return ErrReplaying
	}
	upTo := n.openLast
	if n.raft != nil {
		upTo = min(upTo, n.raft.LastIndex())
	}
	c, err := pendingCommand(n.logStore, applied, upTo)
	if err != nil {
		return err
	}
	if c > 0 {
		n.pendingOwn.Store(c)
		return ErrReplaying
	}
	if n.cfg.AwaitLeaderCommit && !n.IsLeader() {
		if !n.leaderCommitSet.Load() {
			return ErrCatchingUp
		}
		commit := n.leaderCommit.Load()
		// Raft's applied index counts the entries no state file applies
		// (no-ops, configurations), but moves when raft queues a batch for
		// the state machine, not when it is applied: the state file must
		// hold every command up to commit too.
		if n.raft.AppliedIndex() < commit || stillPending(n.logStore, n.pendingLeader.Load(), applied) {
			return ErrCatchingUp
		}
		c, err := pendingCommand(n.logStore, applied, commit)
		if err != nil {
			return err
		}
		if c > 0 {
			n.pendingLeader.Store(c)
			return ErrCatchingUp
		}
	}
	n.caughtUp.Store(true)
	n.settleReplayedRecovery()
	return nil
}

// ErrCatchingUp is CaughtUp's answer while a follower has yet to learn, or to
// apply, what its leader had committed (Config.AwaitLeaderCommit).
var ErrCatchingUp = fmt.Errorf("%w: catching up with its raft leader; until it has, it holds only part of its centre's records", ErrNotReady)

// SetLeaderCommit tells a follower that awaits its leader's commit index
// (Config.AwaitLeaderCommit) what it was; 0 when the leader does not say (an
// older build) or cannot be asked, which leaves the follower to its own log.
func (n *Node) SetLeaderCommit(index uint64) {
	n.leaderCommit.Store(index)
	n.leaderCommitSet.Store(true)
}

// CommitIndex is raft's commit index here: /healthz reports it, for the
// followers of a leader (SetLeaderCommit).
func (n *Node) CommitIndex() uint64 { return n.raft.CommitIndex() }

func (n *Node) applied(results []store.Result, took time.Duration) {
	n.metrics.applyDuration.Observe(took.Seconds())
	n.metrics.applyBatch.Observe(float64(len(results)))
	changedHead := false
	for _, r := range results {
		if r.Record != nil && r.Err == nil && n.recovering.Load() {
			// A local write: the leader that proposed it had ended its
			// recovery, which followers learn only so.
			n.endRecovery("own-log recovery ended: the centre writes again")
		}
		changedHead = changedHead || r.Entry != nil || r.Applied > 0
		if r.Bundle != nil {
			n.adoptBundle(r.Bundle)
		}
	}
	if changedHead {
		if fn := n.notifier.Load(); fn != nil {
			(*fn)()
		}
	}
}

// restored runs after raft restored a snapshot into the state file: the file may
// carry a newer trust bundle than the node runs on.
func (n *Node) restored() {
	n.feedMu.Lock()
	n.feedName = ""
	n.feedMu.Unlock()
	if err := n.loadStoredBundle(); err != nil {
		n.log.Error("not using the trust bundle of the restored snapshot", "err", err)
	}
}

// propose submits a command through raft and waits for its result.
func (n *Node) propose(ctx context.Context, cmd *store.Command) (store.Result, error) {
	wait, err := n.enqueue(ctx, cmd)
	if err != nil {
		return store.Result{}, err
	}
	return wait()
}

// enqueue hands cmd to raft and returns a function that waits for its outcome.
// Commands enqueued back to back share raft's log writes and fsyncs.
func (n *Node) enqueue(ctx context.Context, cmd *store.Command) (wait func() (store.Result, error), err error) {
	if n.closed.Load() {
		return nil, ErrShutdown
	}
	if err := n.fsm.disk.refuse(); err != nil {
		return nil, err
	}
	if err := n.fsm.failure(); err != nil {
		// A replica that stopped applying proposes nothing: the others would
		// apply what it cannot show, and a client told to retry elsewhere
		// would write twice. As leader it hands leadership on (the transfer
		// runs in raft; its outcome is not waited for).
		if n.raft.State() == raft.Leader && len(n.servers()) > 1 {
			n.raft.LeadershipTransfer()
		}
		return nil, err
	}
	data, err := store.EncodeCommand(cmd)
	if err != nil {
		return nil, err
	}
	f := n.raft.Apply(data, n.timeout(ctx))
	return func() (store.Result, error) { return n.awaitApply(ctx, f) }, nil
}

// awaitApply waits for the outcome of f, but no longer than the caller will:
// raft's timeout bounds only the enqueueing.
func (n *Node) awaitApply(ctx context.Context, f raft.ApplyFuture) (store.Result, error) {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return store.Result{}, n.raftError("raft apply", err)
		}
	case <-ctx.Done():
		return store.Result{}, fmt.Errorf("%w (it may still be applied: check before retrying): %w", ErrTimeout, ctx.Err())
	case <-n.fsm.disk.filledSignal():
		select {
		case err := <-done: // finished just before the disk filled
			if err != nil {
				return store.Result{}, n.raftError("raft apply", err)
			}
		default:
			return store.Result{}, fmt.Errorf("%w: the disk filled while it was applied; it will be once space returns: check before retrying", ErrTimeout)
		}
	}
	res, ok := f.Response().(store.Result)
	if !ok {
		return store.Result{}, fmt.Errorf("raft apply: unexpected response %T", f.Response())
	}
	return res, res.Err
}

// KeySigner adapts record keys to the store's Signer, for tools that open a
// store without a node. The first key is the default.
func KeySigner(keys ...*auth.KeyPair) store.Signer { return keySigner{keys} }

// keySigner adapts auth keys to the store's Signer: it signs an entry with the
// key its KeyID names, and anything else with the first key.
type keySigner struct{ keys []*auth.KeyPair }

func (s keySigner) KeyID() string { return s.keys[0].ID }

func (s keySigner) Sign(e *schema.Entry) error {
	for _, k := range s.keys {
		if k.ID == e.KeyID {
			return auth.SignEntry(k, e)
		}
	}
	return fmt.Errorf("record key %s is not held by this replica: add its file to keys.record_rotation and restart", e.KeyID)
}

func (s keySigner) SignBytes(keyID string, msg []byte) ([]byte, error) {
	if keyID == "" {
		return ed25519.Sign(s.keys[0].Private, msg), nil
	}
	for _, k := range s.keys {
		if k.ID == keyID {
			return ed25519.Sign(k.Private, msg), nil
		}
	}
	return nil, fmt.Errorf("record key %s is not held by this replica: add its file to keys.record_rotation and restart", keyID)
}

// signingKey picks the key the leader signs a write at at with: of the keys this
// replica holds, one the bundle lists as valid at at, the latest to start.
// When none is, it refuses with ErrNoSigningKey (a clock outside the keys'
// windows, or a bundle without a current key). A centre the bundle does not
// list signs with its configured key: nothing it writes is accepted anyway.
func (n *Node) signingKey(at time.Time) (string, error) {
	b := n.Bundle()
	best, bestStart := n.cfg.RecordKey.ID, time.Time{}
	m, ok := b.Member(n.cfg.Centre)
	if !ok {
		return best, nil
	}
	for _, k := range append([]*auth.KeyPair{n.cfg.RecordKey}, n.cfg.RotationKeys...) {
		if _, err := b.RecordKey(n.cfg.Centre, k.ID, at); err != nil {
			continue
		}
		for _, bk := range m.RecordKeys {
			if bk.ID == k.ID && (bestStart.IsZero() || bk.NotBefore.After(bestStart)) {
				best, bestStart = k.ID, bk.NotBefore
			}
		}
	}
	if bestStart.IsZero() {
		// Every peer would refuse an entry signed now (key-not-valid-at-time),
		// and every later entry chains on it: the log would stop spreading
		// at this write until a bundle covered it, and peers would back this
		// centre off each time it offered the entry. Refuse the write instead.
		return "", fmt.Errorf("%w: this node's clock reads %s; check the clock, or publish a trust bundle with a record key of %s valid now",
			ErrNoSigningKey, at.UTC().Format(time.RFC3339), n.cfg.Centre)
	}
	return best, nil
}

func newULID(now time.Time) string {
	return ulid.MustNew(ulid.Timestamp(now), ulid.DefaultEntropy()).String()
}

func boltOptions() *bbolt.Options {
	return &bbolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType, InitialMmapSize: store.MmapReserve, PageSize: store.PageSize}
}

// ReplicaStatus describes this replica's place in its raft group.
type ReplicaStatus struct {
	ReplicaID    string   `json:"replica_id"`
	State        string   `json:"state"`
	Leader       string   `json:"leader,omitempty"`
	Term         uint64   `json:"term"`
	CommitIndex  uint64   `json:"commit_index"`
	AppliedIndex uint64   `json:"applied_index"`
	Voters       []string `json:"voters"`
	// NotReady says why this replica cannot serve (what /readyz answers
	// 503 for: its state file failed, it replays or catches up, it
	// recovers its centre's log, it knows no leader); empty when ready.
	NotReady string `json:"not_ready,omitempty"`
}

// ReplicaStatus returns this replica's raft role, leader and indexes.
func (n *Node) ReplicaStatus() ReplicaStatus {
	_, leader := n.raft.LeaderWithID()
	st := ReplicaStatus{
		ReplicaID:    n.cfg.ReplicaID,
		State:        n.raft.State().String(),
		Leader:       string(leader),
		CommitIndex:  n.raft.CommitIndex(),
		AppliedIndex: n.raft.AppliedIndex(),
	}
	if t, err := strconv.ParseUint(n.raft.Stats()["term"], 10, 64); err == nil {
		st.Term = t
	}
	for _, s := range n.servers() {
		if s.Suffrage == raft.Voter {
			st.Voters = append(st.Voters, string(s.ID))
		}
	}
	if err := n.Ready(); err != nil {
		st.NotReady = err.Error()
	}
	return st
}
