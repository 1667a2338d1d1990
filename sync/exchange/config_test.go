package exchange_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"

	"liandong/sync/exchange"
)

func TestConfigValidate(t *testing.T) {
	id, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	good := exchange.DefaultConfig()
	good.Identity = id
	if err := good.Validate(); err != nil {
		t.Fatalf("default config with an identity: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(*exchange.Config)
		want   string
	}{
		{"no identity", func(c *exchange.Config) { c.Identity = nil }, "identity"},
		{"bad listen addr", func(c *exchange.Config) { c.ListenAddrs = []string{"127.0.0.1:4001"} }, "listen_addrs"},
		{"no listen addr", func(c *exchange.Config) { c.ListenAddrs = nil }, "listen_addrs"},
		{"zero heartbeat", func(c *exchange.Config) { c.HeartbeatInterval = 0 }, "heartbeat_interval"},
		{"stall below heartbeat", func(c *exchange.Config) { c.StallAfter = c.HeartbeatInterval }, "stall_after"},
		{"zero batch", func(c *exchange.Config) { c.BatchSize = 0 }, "batch_size"},
		{"tiny frames", func(c *exchange.Config) { c.MaxFrameBytes = 1024 }, "max_frame_bytes"},
		{"range below batch", func(c *exchange.Config) { c.MaxRangeEntries = c.BatchSize - 1 }, "max_range_entries"},
		{"negative debounce", func(c *exchange.Config) { c.AnnounceDebounce = -time.Millisecond }, "announce_debounce"},
		{"negative pushing debounce", func(c *exchange.Config) { c.PushingAnnounceDebounce = -time.Millisecond }, "pushing_announce_debounce"},
	}
	for _, tc := range cases {
		c := good
		tc.mutate(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one mentioning %q", tc.name, err, tc.want)
		}
	}
	rsa, _, err := crypto.GenerateECDSAKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := good
	c.Identity = rsa
	if err := c.Validate(); err == nil {
		t.Error("a non-ed25519 identity was accepted")
	}
}

func TestLoadOrCreateIdentity(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys", "p2p.key")
	k1, err := exchange.LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	k2, err := exchange.LoadOrCreateIdentity(path)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equals(k2) || k1.Type() != crypto.Ed25519 {
		t.Fatal("reloaded identity differs, or is not ed25519")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := exchange.LoadOrCreateIdentity(path); !errors.Is(err, exchange.ErrIdentityPermissions) {
		t.Errorf("group-readable identity: %v, want ErrIdentityPermissions", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := exchange.LoadOrCreateIdentity(bad); err == nil {
		t.Error("garbage identity accepted")
	}
}
