package exchange

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"liandong/schema"
	"liandong/sync/wire"
)

// Config configures an Exchange. Start from DefaultConfig and set Identity.
type Config struct {
	// ListenAddrs are the multiaddrs the host listens on (TCP and QUIC).
	ListenAddrs []string
	// Identity is the host's libp2p key; its peer id must be listed in the trust
	// bundle for other centres to admit this node. See LoadOrCreateIdentity.
	Identity crypto.PrivKey

	// AntiEntropyInterval is how often heads are exchanged with every connected
	// peer (pull repair), and how often disconnected members are redialled.
	AntiEntropyInterval time.Duration
	// HeartbeatInterval is how often every connected peer is pinged.
	HeartbeatInterval time.Duration
	// StallAfter marks a connected peer stalled when nothing it was asked has
	// been answered for this long.
	StallAfter time.Duration
	// BatchSize bounds the entries of one batch: one frame of a range answer, one
	// verification and one ApplyEntries call.
	BatchSize int
	// MaxRangeEntries bounds the entries one range request asks for or serves.
	MaxRangeEntries int
	// MaxFrameBytes is the hard limit of one frame, in both directions. A peer
	// that sends a larger one is cut off.
	MaxFrameBytes int
	// RequestTimeout bounds each request and each frame read or written.
	RequestTimeout time.Duration
	// BackoffDuration is how long a peer that broke the protocol or sent bad
	// entries is refused.
	BackoffDuration time.Duration
	// AnnounceDebounce coalesces Notify calls into one heads announcement
	// while push is off, when gossip is how peers learn of fresh entries.
	AnnounceDebounce time.Duration
	// PushingAnnounceDebounce is the least coalescing while push is on (the
	// longer of it and AnnounceDebounce applies). Every connected peer then
	// gets fresh entries from their origin's push, and an announcement only
	// tells peers who else holds what: a member cut off from an origin pulls
	// it through whoever announced it, and a head a lost push left behind is
	// pulled. Announcing every commit cost each peer a signature check per
	// announcement, in the same moments as the push it duplicated: converge's
	// p99 at four centres was half as long again (BENCHMARKS.md, session 11).
	PushingAnnounceDebounce time.Duration
	// PushGrace is how long a pull of an origin waits, while that origin is
	// connected and pushing (a push from it within the last minute), for the
	// origin's own push of entries others announce. The
	// announcement (gossip, or a relay's) usually beats the push, and a pull
	// started then holds the origin's apply lock for a range request's round
	// trip, so the push that arrives meanwhile is wasted. Zero pulls at once.
	PushGrace time.Duration

	// BlockMembers lists member centres this host neither dials nor admits: an
	// operator's cut of single links. Their entries still arrive through others.
	BlockMembers []string

	// DisableGossip turns off the gossipsub heads announcements; anti-entropy
	// alone then carries changes, within AntiEntropyInterval.
	DisableGossip bool
	// DisablePush turns off pushing this centre's fresh entries to connected peers.
	DisablePush bool

	// MaxConns bounds the host's connections; MaxMemoryBytes the memory the
	// libp2p resource manager lets streams and connections reserve.
	MaxConns       int
	MaxMemoryBytes int64

	// Registerer receives the liandong_sync_* metrics. Nil: metrics are kept but
	// not registered. Never the global registry unless the caller passes it.
	Registerer prometheus.Registerer
	// Logger receives structured logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Faults injects one-way or two-way cuts of sync streams (faults.go); nil,
	// the default, injects none. A test hook: only tests and a build with
	// `-tags failpoints` set it.
	Faults Faults
}

// DefaultConfig returns the defaults: loopback listeners (set ListenAddrs to
// "/ip4/0.0.0.0/..." to serve other hosts), 2 s anti-entropy, 1 s heartbeats,
// stalled after 5 s, batches of 1000 entries, 4 MiB frames.
func DefaultConfig() Config {
	return Config{
		ListenAddrs:             []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"},
		AntiEntropyInterval:     2 * time.Second,
		HeartbeatInterval:       time.Second,
		StallAfter:              5 * time.Second,
		BatchSize:               1000,
		MaxRangeEntries:         16000,
		MaxFrameBytes:           4 << 20,
		RequestTimeout:          10 * time.Second,
		BackoffDuration:         30 * time.Second,
		AnnounceDebounce:        20 * time.Millisecond,
		PushingAnnounceDebounce: 250 * time.Millisecond,
		PushGrace:               100 * time.Millisecond,
		MaxConns:                128,
		MaxMemoryBytes:          512 << 20,
	}
}

// minFrameBytes is the least MaxFrameBytes that still carries one entry of the
// largest size schema allows.
const minFrameBytes = schema.MaxEntryBytes + schema.SignatureSize + wire.Overhead + 16

// Validate reports every problem with c, joined.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.ListenAddrs) == 0 {
		bad("listen_addrs: at least one multiaddr is needed")
	}
	for _, a := range c.ListenAddrs {
		if _, err := multiaddr.NewMultiaddr(a); err != nil {
			bad("listen_addrs: %q: %v", a, err)
		}
	}
	if c.Identity == nil {
		bad("identity: no libp2p key (use LoadOrCreateIdentity)")
	} else if c.Identity.Type() != crypto.Ed25519 {
		bad("identity: key type %v, want Ed25519", c.Identity.Type())
	}
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			bad("%s: must be positive, got %v", name, d)
		}
	}
	positive("anti_entropy_interval", c.AntiEntropyInterval)
	positive("heartbeat_interval", c.HeartbeatInterval)
	positive("stall_after", c.StallAfter)
	positive("request_timeout", c.RequestTimeout)
	positive("backoff_duration", c.BackoffDuration)
	if c.AnnounceDebounce < 0 {
		bad("announce_debounce: must not be negative, got %v", c.AnnounceDebounce)
	}
	if c.PushingAnnounceDebounce < 0 {
		bad("pushing_announce_debounce: must not be negative, got %v", c.PushingAnnounceDebounce)
	}
	if c.PushGrace < 0 {
		bad("push_grace: must not be negative, got %v", c.PushGrace)
	}
	if c.StallAfter > 0 && c.StallAfter <= c.HeartbeatInterval {
		bad("stall_after (%v) must exceed heartbeat_interval (%v)", c.StallAfter, c.HeartbeatInterval)
	}
	if c.BatchSize < 1 || c.BatchSize > 100000 {
		bad("batch_size: want 1-100000, got %d", c.BatchSize)
	}
	if c.MaxRangeEntries < c.BatchSize {
		bad("max_range_entries (%d) must be at least batch_size (%d)", c.MaxRangeEntries, c.BatchSize)
	}
	if c.MaxFrameBytes < minFrameBytes || c.MaxFrameBytes > 64<<20 {
		bad("max_frame_bytes: want %d-%d (one largest entry must fit), got %d", minFrameBytes, 64<<20, c.MaxFrameBytes)
	}
	if c.MaxConns < 4 {
		bad("max_conns: want at least 4, got %d", c.MaxConns)
	}
	if c.MaxMemoryBytes < 4*int64(c.MaxFrameBytes) {
		bad("max_memory_bytes: want at least 4 frames (%d), got %d", 4*int64(c.MaxFrameBytes), c.MaxMemoryBytes)
	}
	if len(errs) > 0 {
		return fmt.Errorf("sync config: %w", errors.Join(errs...))
	}
	return nil
}

// ErrIdentityPermissions is returned for an identity file readable by others.
var ErrIdentityPermissions = errors.New("libp2p identity file readable by group or others")

// LoadOrCreateIdentity reads the libp2p identity at path, or creates an ed25519
// one there (mode 0600, directory 0700) if the file does not exist. The peer id
// derived from it is what the trust bundle lists for this node.
func LoadOrCreateIdentity(path string) (crypto.PrivKey, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("load libp2p identity %s: %w", path, err)
		}
		if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("load libp2p identity %s: %w (mode %04o); run `chmod 600 %s`", path, ErrIdentityPermissions, fi.Mode().Perm(), path)
		}
		k, err := crypto.UnmarshalPrivateKey(data)
		if err != nil {
			return nil, fmt.Errorf("load libp2p identity %s: %w; restore it from backup, or move it away to make a new one (the trust bundle must then list the new peer id)", path, err)
		}
		if k.Type() != crypto.Ed25519 {
			return nil, fmt.Errorf("load libp2p identity %s: key type %v, want Ed25519", path, k.Type())
		}
		// libp2p takes the public half as stored, without deriving it from
		// the seed: a damaged one would name the node by one key (its peer
		// id) while it signs its handshakes with another, which every peer
		// refuses.
		raw, err := k.Raw()
		if err != nil || len(raw) != ed25519.PrivateKeySize ||
			!bytes.Equal(ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])[ed25519.SeedSize:], raw[ed25519.SeedSize:]) {
			return nil, fmt.Errorf("load libp2p identity %s: its public key is not the one its private key gives (the file is damaged); restore it from backup, or move it away to make a new one (the trust bundle must then list the new peer id)", path)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("load libp2p identity %s: %w", path, err)
	}
	k, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, fmt.Errorf("create libp2p identity: %w", err)
	}
	data, err = crypto.MarshalPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("create libp2p identity: %w", err)
	}
	if err := writeNewFile(path, data); err != nil {
		return nil, fmt.Errorf("create libp2p identity %s: %w", path, err)
	}
	return k, nil
}

// writeNewFile writes data to path atomically with mode 0600, never replacing an
// existing file.
func writeNewFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	name := tmp.Name()
	defer os.Remove(name)
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	// A hard link fails if the name is taken, where rename would replace it.
	if err := os.Link(name, path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
