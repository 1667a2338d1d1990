package server

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"liandong/node"
	"liandong/schema"
)

// Config is a replica's whole configuration, as the config file spells it. Paths
// that are relative are taken relative to DataDir.
type Config struct {
	Centre  string `yaml:"centre"`
	DataDir string `yaml:"data_dir"`
	// HTTP is the API's listen address.
	HTTP string `yaml:"http"`
	// AdvertiseHTTP is the URL other replicas of the centre reach this API at
	// (followers forward writes to the leader's); default http://<listen address>.
	AdvertiseHTTP string `yaml:"advertise_http"`

	// TLS serves the API over HTTPS (tls.cert, tls.key) and adds a CA to
	// trust for the other replicas' APIs (tls.ca).
	TLS TLSConfig `yaml:"tls"`

	Raft RaftConfig `yaml:"raft"`
	P2P  P2PConfig  `yaml:"p2p"`
	Keys KeysConfig `yaml:"keys"`

	// Bundle is the signed trust bundle file this node starts from.
	Bundle string `yaml:"bundle"`
	// RootKeys pins the federation root's signing keys, each by fingerprint
	// (auth.KeyFingerprint, "sha256:…", full strength) or by key id (only 32
	// bits of the key hash): a bundle on disk that is not signed by one of them
	// is refused. Empty, nothing is pinned and serve warns.
	RootKeys []string `yaml:"root_keys"`
	// AnonymousReads lets requests without a token read public records.
	AnonymousReads bool `yaml:"anonymous_reads"`

	// ShutdownTimeout bounds finishing in-flight requests on SIGTERM: for
	// its first half they finish on their own, then those still under way
	// are ended (Run, drainRequests).
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`

	// MaxWrites bounds the write requests (creates, updates, deletes, and
	// batches, each counted once) this replica serves at once: past it a
	// write is answered 429 with Retry-After. 0: 1024 (api.DefaultMaxWrites);
	// -1: no bound.
	MaxWrites int `yaml:"max_writes"`

	Logger *slog.Logger `yaml:"-"`

	// FaultsFile names a JSON file of injected faults (a clock offset, sync
	// streams dropped per member and direction, raft isolation) that the server
	// reads at start and polls while it runs: a test hook of the chaos harness,
	// described in faults_on.go. Only a build with `-tags failpoints` honours it;
	// Start refuses it in any other build. Not settable in the config file.
	FaultsFile string `yaml:"-"`
}

// RaftConfig configures the centre's raft group.
type RaftConfig struct {
	ReplicaID string `yaml:"replica_id"`
	// Addr is where raft listens for the other replicas; empty: a single replica.
	Addr      string `yaml:"addr"`
	Bootstrap bool   `yaml:"bootstrap"`
	// Join is the API URL of any running replica of this centre: a new replica
	// asks it to be added as a voter (instead of bootstrapping).
	Join string `yaml:"join"`
	// JoinToken names a file holding an admin token of this centre for Join.
	JoinToken string `yaml:"join_token"`
	// Snapshots: taken every SnapshotInterval once SnapshotThreshold entries
	// have been written since the last; raft's log keeps TrailingLogs entries
	// after a snapshot for followers slightly behind. Zero: node defaults.
	SnapshotInterval  time.Duration `yaml:"snapshot_interval"`
	SnapshotThreshold uint64        `yaml:"snapshot_threshold"`
	TrailingLogs      uint64        `yaml:"trailing_logs"`
	// LogStore is how raft's log is kept: "bolt" or "wal". Unset, a new data
	// directory gets "bolt" and an existing one keeps the kind it holds
	// (node.Config.LogStore says what each costs and promises).
	LogStore string `yaml:"log_store"`
	// WALSegmentSize is the size in bytes of raft-wal's segment files, each
	// preallocated when made; 0: raft-wal's 64 MiB. Smaller segments reserve
	// less disk and let a compacted log's files go sooner.
	WALSegmentSize int `yaml:"wal_segment_size"`
}

// P2PConfig configures the libp2p host.
type P2PConfig struct {
	Listen              []string      `yaml:"listen"`
	AntiEntropyInterval time.Duration `yaml:"anti_entropy_interval"`
	// Block lists member centres this node refuses to connect to or accept: an
	// operator's cut of one link (entries still arrive through other members).
	Block []string `yaml:"block"`
	// SkipOwnLogRecovery lets a centre with an empty own log write at once,
	// without first asking its peers how far its log went. Only for a centre
	// that certainly never wrote (a brand-new federation brought up one centre
	// at a time); after a lost disk it would fork the centre's history.
	SkipOwnLogRecovery bool `yaml:"skip_own_log_recovery"`
}

// KeysConfig names key files.
type KeysConfig struct {
	Record string `yaml:"record"`
	// RecordRotation lists more record keys this replica holds during a key
	// rotation. The leader signs with whichever held key the trust bundle lists
	// as valid now, preferring the one that became valid last; so a rotation is:
	// give every replica the new key here, restart them one by one, then publish
	// a bundle with `federation rotate-key`.
	RecordRotation []string `yaml:"record_rotation"`
	Token          string   `yaml:"token"`
	P2P            string   `yaml:"p2p"`
}

// The bounds node.Config accepts for raft-wal's segment size (node keeps them
// unexported).
const minWALSegment, maxWALSegment = 16 << 10, 1 << 30

// Default returns the embedded default: one replica on loopback, keys and bundle
// in the data directory.
func Default() Config {
	return Config{
		HTTP:            "127.0.0.1:8700",
		Raft:            RaftConfig{Bootstrap: true},
		P2P:             P2PConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}, AntiEntropyInterval: 2 * time.Second},
		Keys:            KeysConfig{Record: "keys/record.key", Token: "keys/token.key", P2P: "keys/p2p.key"},
		Bundle:          "bundle.json",
		AnonymousReads:  true,
		ShutdownTimeout: 20 * time.Second,
	}
}

// Validate reports every problem at once, each naming the config key at fault.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !schema.ValidCentreID(c.Centre) {
		bad("centre: %q is not a centre id (1-32 lowercase letters, digits or '-', e.g. tianjin)", c.Centre)
	}
	if c.DataDir == "" {
		bad("data_dir: not set (the directory for the state, raft log and keys)")
	}
	if c.HTTP == "" {
		bad("http: not set (e.g. 127.0.0.1:8700)")
	}
	if len(c.P2P.Listen) == 0 {
		bad("p2p.listen: at least one multiaddr is needed")
	}
	for _, b := range c.P2P.Block {
		// Whether it names a member is known only with the bundle (serve
		// warns then); its form can be checked now.
		if !schema.ValidCentreID(b) {
			bad("p2p.block: %q is not a centre id (1-32 lowercase letters, digits or '-', e.g. tianjin)", b)
		}
	}
	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		bad("tls.cert and tls.key: give both (PEM files of the API's certificate and its key), or neither")
	}
	if c.Keys.Record == "" || c.Keys.Token == "" || c.Keys.P2P == "" {
		bad("keys: record, token and p2p key files must all be named")
	}
	if c.Raft.Join != "" && c.Raft.Addr == "" {
		bad("raft.addr: a replica that joins others needs a raft address they can reach")
	}
	if c.Raft.Join != "" && c.Raft.JoinToken == "" {
		bad("raft.join_token: joining needs an admin token file of this centre")
	}
	// node.Open checks these too, but only after keys and bundle have been
	// read; here they are reported with the others and as config mistakes.
	switch c.Raft.LogStore {
	case "", node.LogStoreBolt, node.LogStoreWAL:
	default:
		bad("raft.log_store: %q: want %q or %q (unset: what the data directory holds, else %q)", c.Raft.LogStore, node.LogStoreBolt, node.LogStoreWAL, node.LogStoreBolt)
	}
	if n := c.Raft.WALSegmentSize; n != 0 && (n < minWALSegment || n > maxWALSegment) {
		bad("raft.wal_segment_size: %d: want 0 (64 MiB) or %d to %d bytes", n, minWALSegment, maxWALSegment)
	}
	if c.Bundle == "" {
		bad("bundle: not set (the signed trust bundle file)")
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 20 * time.Second
	}
	if c.MaxWrites < -1 {
		bad("max_writes: %d: want a number of writes at once, 0 (the default, 1024) or -1 (no bound)", c.MaxWrites)
	}
	if c.Raft.ReplicaID == "" && c.Centre != "" {
		c.Raft.ReplicaID = c.Centre + "-1"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return errors.Join(errs...)
}

// Path resolves p against the data directory.
func (c *Config) Path(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(c.DataDir, p)
}
