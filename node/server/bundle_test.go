package server

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"liandong/auth"
)

// bundleFixture is a one-centre data directory from DevSetup, with its root
// key, for tests that rewrite the bundle file.
type bundleFixture struct {
	cfg  Config
	root *auth.KeyPair
	v1   *auth.Bundle
}

func newBundleFixture(t *testing.T) *bundleFixture {
	t.Helper()
	cfg := Default()
	cfg.Centre = "tianjin"
	cfg.DataDir = t.TempDir()
	cfg.HTTP = "127.0.0.1:0"
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	if _, err := DevSetup(&cfg, time.Now()); err != nil {
		t.Fatal(err)
	}
	root, err := auth.LoadKey(cfg.Path("keys/root.key"))
	if err != nil {
		t.Fatal(err)
	}
	v1, err := LoadBundle(cfg.Path(cfg.Bundle), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &bundleFixture{cfg: cfg, root: root, v1: v1}
}

// write signs b with the root key as the bundle file.
func (f *bundleFixture) write(t *testing.T, b *auth.Bundle) *auth.SignedBundle {
	t.Helper()
	sb, err := SignNewBundle(f.cfg.Path(f.cfg.Bundle), b, f.root)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

// expired returns a copy of b with version v that expired a minute ago.
func expired(b *auth.Bundle, v uint64) *auth.Bundle {
	c := *b
	c.Version = v
	c.IssuedAt = time.Now().UTC().Add(-2 * time.Hour)
	c.ExpiresAt = time.Now().UTC().Add(-time.Minute)
	return &c
}

// TestStartWithExpiredBundleFile: an expired bundle file does not stop a node
// whose state holds a newer valid bundle, nor one that has nothing newer (it
// runs on the expired one and says so, as a running node does); a file that
// is not signed by a pinned root is refused, expired or not.
func TestStartWithExpiredBundleFile(t *testing.T) {
	t.Run("newer bundle in the state", func(t *testing.T) {
		f := newBundleFixture(t)
		s, err := Start(context.Background(), f.cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Node.WaitLeader(ctx); err != nil {
			t.Fatal(err)
		}
		v2 := *f.v1
		v2.Version = 2
		v2.Revocations = []auth.Revocation{{Subject: "jti:leaked", Before: time.Now().UTC()}}
		sb, err := auth.SignBundle(&v2, f.root)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := sb.MarshalJSON()
		if _, err := s.Node.InstallBundle(ctx, data, "test"); err != nil {
			t.Fatal(err)
		}
		s.Close()
		// Time passes: the file's v1 expires, v2 stays valid.
		f.write(t, expired(f.v1, 1))
		s2, err := Start(context.Background(), f.cfg)
		if err != nil {
			t.Fatalf("start with an expired file and a valid v2 in the state: %v", err)
		}
		defer s2.Close()
		if v := s2.Node.Bundle().Version; v != 2 {
			t.Fatalf("runs on v%d, want v2", v)
		}
	})
	t.Run("nothing newer", func(t *testing.T) {
		f := newBundleFixture(t)
		f.write(t, expired(f.v1, 1))
		s, err := Start(context.Background(), f.cfg)
		if err != nil {
			t.Fatalf("start on an expired bundle: %v", err)
		}
		defer s.Close()
		if v := s.Node.Bundle().Version; v != 1 {
			t.Fatalf("runs on v%d, want v1", v)
		}
	})
	t.Run("unpinned signer", func(t *testing.T) {
		f := newBundleFixture(t)
		f.write(t, expired(f.v1, 1))
		stranger, _ := auth.GenerateKey("root")
		f.cfg.RootKeys = []string{stranger.ID}
		if s, err := Start(context.Background(), f.cfg); !errors.Is(err, auth.ErrBundleUntrusted) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("start on a bundle no pinned root signed: %v, want ErrBundleUntrusted", err)
		}
	})
}

// TestDevSetupWithExpiredBundle: serve --dev sets up again over a dev bundle
// that has expired (Start then runs on it, and warns), rather than refusing
// before Start.
func TestDevSetupWithExpiredBundle(t *testing.T) {
	f := newBundleFixture(t)
	f.write(t, expired(f.v1, 1))
	if _, err := DevSetup(&f.cfg, time.Now()); err != nil {
		t.Fatalf("DevSetup over an expired dev bundle: %v", err)
	}
}

// TestDamagedBundleFileSaysWhatToDo: a truncated or overwritten bundle file is
// refused with the way to get it back, as a damaged key file is.
func TestDamagedBundleFileSaysWhatToDo(t *testing.T) {
	f := newBundleFixture(t)
	path := f.cfg.Path(f.cfg.Bundle)
	for name, data := range map[string][]byte{"empty": nil, "zeroed": make([]byte, 600)} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, _, err := LoadSignedBundleAllowExpired(path, nil, time.Now())
		if err == nil || !strings.Contains(err.Error(), "restore it from a backup") || !strings.Contains(err.Error(), "/v1/bundle") {
			t.Errorf("%s bundle file: %v, want a refusal saying how to get it back", name, err)
		}
	}
}
