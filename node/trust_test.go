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

// TestRestartAfterExpiryKeepsNewestBundle: a node restarted after the bundle
// it installed has expired runs on that bundle (as a running node would), not
// on the older bundle file, which would undo the revocations installed since.
func TestRestartAfterExpiryKeepsNewestBundle(t *testing.T) {
	f := newTrustFixture(t)
	f.v1.ExpiresAt = time.Now().UTC().Add(24 * time.Hour)
	dir := t.TempDir()
	n := f.open(t, dir)
	v2 := *f.v1
	v2.Version = 2
	v2.ExpiresAt = time.Now().UTC().Add(time.Hour)
	v2.Revocations = []auth.Revocation{{Subject: "jti:leaked", Before: time.Now().UTC()}}
	if _, err := n.InstallBundle(context.Background(), f.sign(t, &v2, f.root), "test"); err != nil {
		t.Fatal(err)
	}
	n.Close()
	later := time.Now().Add(2 * time.Hour)
	n = f.openWith(t, dir, func(c *Config) { c.Now = func() time.Time { return later } })
	defer n.Close()
	if got := n.Bundle().Version; got < 2 {
		t.Fatalf("restart runs on v%d, older than the v2 installed", got)
	}
	if !n.Bundle().Revoked("jti:leaked", later.Add(-3*time.Hour)) {
		t.Fatal("the revocation of v2 is lost after the restart")
	}
}

// TestOpenRefusesOlderThanStored: a stored bundle that cannot be used (here:
// of another federation than the configured file) stops Open rather than
// letting the node run on an older bundle than the one it installed.
func TestOpenRefusesOlderThanStored(t *testing.T) {
	f := newTrustFixture(t)
	dir := t.TempDir()
	n := f.open(t, dir)
	v2 := *f.v1
	v2.Version = 2
	if _, err := n.InstallBundle(context.Background(), f.sign(t, &v2, f.root), "test"); err != nil {
		t.Fatal(err)
	}
	n.Close()
	other := *f.v1
	other.Federation = "other"
	cfg := DefaultConfig("tianjin", dir)
	cfg.RecordKey = f.rec
	cfg.Bundle, cfg.BundleSigned = &other, f.sign(t, &other, f.root)
	n, err := Open(cfg)
	if err == nil {
		n.Close()
		t.Fatalf("opened on v%d of %q over the stored v2 of %q", n.Bundle().Version, n.Bundle().Federation, v2.Federation)
	}
}

// TestVerifyBundleAllowExpired: an expired bundle passes with expired set only
// when everything else verifies; expiry does not excuse a missing signature,
// an unpinned signer or a rollback.
func TestVerifyBundleAllowExpired(t *testing.T) {
	f := newTrustFixture(t)
	stranger, _ := auth.GenerateKey("root")
	later := time.Now().Add(2 * time.Hour) // v1 has expired by then
	parse := func(data []byte) *auth.SignedBundle {
		sb, err := auth.ParseSignedBundle(data)
		if err != nil {
			t.Fatal(err)
		}
		return sb
	}
	v2 := *f.v1
	v2.Version = 2
	cases := []struct {
		name        string
		signed      []byte
		trusted     *auth.Bundle
		now         time.Time
		roots       []string
		wantExpired bool
		wantErr     error
	}{
		{"valid", f.sign(t, f.v1, f.root), nil, time.Now(), nil, false, nil},
		{"expired", f.sign(t, f.v1, f.root), nil, later, []string{f.root.ID}, true, nil},
		{"expired successor", f.sign(t, &v2, f.root), f.v1, later, nil, true, nil},
		{"expired, unsigned", f.sign(t, f.v1), nil, later, nil, false, auth.ErrTooFewSignatures},
		{"expired, signed by a stranger", f.sign(t, f.v1, stranger), f.v1, later, nil, false, auth.ErrTooFewSignatures},
		{"expired, root not pinned", f.sign(t, f.v1, f.root), nil, later, []string{stranger.ID}, false, auth.ErrBundleUntrusted},
		{"expired rollback", f.sign(t, f.v1, f.root), &v2, later, nil, false, auth.ErrRollback},
	}
	for _, tc := range cases {
		b, expired, err := VerifyBundleAllowExpired(parse(tc.signed), tc.trusted, tc.now, tc.roots...)
		if tc.wantErr != nil {
			if !errors.Is(err, tc.wantErr) || b != nil {
				t.Errorf("%s: %v, %v; want %v", tc.name, b, err, tc.wantErr)
			}
			continue
		}
		if err != nil || b == nil || expired != tc.wantExpired {
			t.Errorf("%s: %v, expired %v, %v; want expired %v", tc.name, b, expired, err, tc.wantExpired)
		}
	}
}

// TestRestartAfterSignerHandover: an installed version may hand the signer
// role to a new key (signed by the old one, as its predecessor requires): it
// does not verify against its own signers alone, and a restart must still run
// on it rather than refuse to start or fall back to the older file.
func TestRestartAfterSignerHandover(t *testing.T) {
	f := newTrustFixture(t)
	dir := t.TempDir()
	n := f.open(t, dir)
	root2, err := auth.GenerateKey("root")
	if err != nil {
		t.Fatal(err)
	}
	v2 := *f.v1
	v2.Version = 2
	v2.Signers = []auth.Key{root2.BundleKey(time.Now().UTC().Add(-time.Hour))}
	if _, err := n.InstallBundle(context.Background(), f.sign(t, &v2, f.root), "test"); err != nil {
		t.Fatal(err)
	}
	n.Close()
	cfg := DefaultConfig("tianjin", dir)
	cfg.RecordKey = f.rec
	cfg.Bundle, cfg.BundleSigned = f.v1, f.sign(t, f.v1, f.root)
	n2, err := Open(cfg)
	if err != nil {
		t.Fatalf("restart after an installed signer handover: %v", err)
	}
	defer n2.Close()
	if got := n2.Bundle().Version; got != 2 {
		t.Fatalf("restarted on v%d, want the installed v2", got)
	}
}
