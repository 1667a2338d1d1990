package node

import (
	"context"
	"errors"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node/store"
	"liandong/schema"
)

// trustFixture is a one-centre federation: its root key and bundle v1.
type trustFixture struct {
	root, rec *auth.KeyPair
	v1        *auth.Bundle
}

func newTrustFixture(t *testing.T) *trustFixture {
	t.Helper()
	root, _ := auth.GenerateKey("root")
	rec, _ := auth.GenerateKey("tianjin-rec")
	now := time.Now().UTC()
	return &trustFixture{root: root, rec: rec, v1: &auth.Bundle{
		Federation: "jjj", Version: 1, IssuedAt: now, ExpiresAt: now.Add(time.Hour),
		Signers: []auth.Key{root.BundleKey(now.Add(-time.Hour))}, Threshold: 1,
		Members: []auth.Member{{ID: "tianjin", Name: "Tianjin", RecordKeys: []auth.Key{rec.BundleKey(now.Add(-time.Hour))}}},
	}}
}

func (f *trustFixture) sign(t *testing.T, b *auth.Bundle, keys ...*auth.KeyPair) []byte {
	t.Helper()
	sb, err := auth.SignBundle(b, keys...)
	if err != nil {
		t.Fatal(err)
	}
	data, err := sb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func (f *trustFixture) open(t *testing.T, dir string) *Node {
	t.Helper()
	return f.openWith(t, dir, nil)
}

// openWith opens a single replica on bundle v1, tweak (if not nil) adjusting
// its config, and waits until it leads. The caller closes it.
func (f *trustFixture) openWith(t *testing.T, dir string, tweak func(*Config)) *Node {
	t.Helper()
	cfg := DefaultConfig("tianjin", dir)
	cfg.RecordKey = f.rec
	cfg.Bundle, cfg.BundleSigned = f.v1, f.sign(t, f.v1, f.root)
	if tweak != nil {
		tweak(&cfg)
	}
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestInstallBundle: a newer, properly signed bundle is installed, audited and
// kept across a restart although the configured file is still v1; older,
// badly signed and malformed bundles are refused with reasons callers branch on.
func TestInstallBundle(t *testing.T) {
	f := newTrustFixture(t)
	dir := t.TempDir()
	n := f.open(t, dir)
	ctx := context.Background()

	v2 := *f.v1
	v2.Version = 2
	v2.Revocations = []auth.Revocation{{Subject: "sub:tianjin/leaked", Before: time.Now().UTC()}}
	stranger, _ := auth.GenerateKey("root")
	cases := []struct {
		name   string
		signed []byte
		want   error
	}{
		{"malformed", []byte(`{"payload":`), auth.ErrBundleInvalid},
		{"signed by a stranger", f.sign(t, &v2, stranger), auth.ErrTooFewSignatures},
		{"unsigned", f.sign(t, &v2), auth.ErrTooFewSignatures},
	}
	for _, tc := range cases {
		if _, err := n.InstallBundle(ctx, tc.signed, "test"); !errors.Is(err, ErrBundleRefused) || !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if n.Bundle().Version != 1 {
		t.Fatalf("refused bundles changed the version to %d", n.Bundle().Version)
	}
	signed2 := f.sign(t, &v2, f.root)
	b, err := n.InstallBundle(ctx, signed2, "tianjin/admin")
	if err != nil || b.Version != 2 || n.Bundle().Version != 2 || string(n.SignedBundle()) != string(signed2) {
		t.Fatalf("install v2: %v, %v; node runs v%d", b, err, n.Bundle().Version)
	}
	if b, err := n.InstallBundle(ctx, signed2, "again"); err != nil || b.Version != 2 {
		t.Fatalf("the same bundle again: %v, %v", b, err)
	}
	if _, err := n.InstallBundle(ctx, f.sign(t, f.v1, f.root), "replay"); !errors.Is(err, auth.ErrRollback) {
		t.Fatalf("replayed v1: %v, want ErrRollback", err)
	}
	events, err := n.AuditLog(ctx, 1, 10)
	if err != nil || len(events) != 1 || events[0].Action != "bundle.install" || events[0].Actor != "tianjin/admin" {
		t.Fatalf("audit log %+v, %v", events, err)
	}
	if err := VerifyAudit(n.Bundle(), schema.Hash{}, events); err != nil {
		t.Fatalf("audit log does not verify: %v", err)
	}
	// A tampered event does not verify.
	bad := events[0]
	bad.Actor = "someone-else"
	if err := VerifyAudit(n.Bundle(), schema.Hash{}, []store.AuditEvent{bad}); err == nil {
		t.Fatal("a tampered audit event verified")
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart with the v1 file: the node runs on v2 from its state.
	n = f.open(t, dir)
	defer n.Close()
	if n.Bundle().Version != 2 || !n.Bundle().Revoked("sub:tianjin/leaked", time.Now().Add(-time.Minute)) {
		t.Fatalf("after restart: v%d", n.Bundle().Version)
	}
	if err := n.Audit(ctx, "tianjin/admin", "replica.add", "tianjin-2"); err != nil {
		t.Fatal(err)
	}
	events, _ = n.AuditLog(ctx, 1, 10)
	if len(events) != 2 || VerifyAudit(n.Bundle(), schema.Hash{}, events) != nil {
		t.Fatalf("audit chain after restart: %+v", events)
	}
}

// TestSigningKeyFollowsBundle: with two record keys held, the node signs with
// the one the bundle lists as valid now, preferring the later start, and a
// replica without that key cannot be used to sign.
func TestSigningKeyFollowsBundle(t *testing.T) {
	f := newTrustFixture(t)
	next, _ := auth.GenerateKey("tianjin-rec")
	n := f.openWith(t, t.TempDir(), func(cfg *Config) { cfg.RotationKeys = []*auth.KeyPair{next} })
	defer n.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kidOf := func(title string) string {
		if _, err := n.Create(ctx, supplyRecord(title)); err != nil {
			t.Fatal(err)
		}
		head, err := n.st.Head("tianjin")
		if err != nil {
			t.Fatal(err)
		}
		es, err := n.ReadRange(ctx, "tianjin", head.Seq, 1)
		if err != nil || len(es) != 1 {
			t.Fatalf("read own head: %v", err)
		}
		return es[0].KeyID
	}
	if kid := kidOf("旧钥匙"); kid != f.rec.ID {
		t.Fatalf("before the rotation signed with %s, want %s", kid, f.rec.ID)
	}
	now := time.Now().UTC()
	v2 := *f.v1
	v2.Version = 2
	m := v2.Members[0]
	m.RecordKeys = append([]auth.Key{}, m.RecordKeys...)
	retire := now.Add(time.Hour)
	m.RecordKeys[0].NotAfter = &retire
	m.RecordKeys = append(m.RecordKeys, next.BundleKey(now.Add(-time.Second)))
	v2.Members = []auth.Member{m}
	if _, err := n.InstallBundle(ctx, f.sign(t, &v2, f.root), "test"); err != nil {
		t.Fatal(err)
	}
	if kid := kidOf("新钥匙"); kid != next.ID {
		t.Fatalf("after the rotation signed with %s, want %s", kid, next.ID)
	}
}
