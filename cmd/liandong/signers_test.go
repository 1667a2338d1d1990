package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liandong/auth"
	"liandong/node/server"
)

// cli runs liandong in-process and fails t unless the exit code is code and
// the output holds every string of want.
func cli(t *testing.T, code int, want []string, args ...string) string {
	t.Helper()
	got, out := runCLI(t, 30*time.Second, args...)
	if got != code {
		t.Fatalf("liandong %s: exit %d, want %d\n%s", strings.Join(args, " "), got, code, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("liandong %s: output lacks %q:\n%s", strings.Join(args, " "), w, out)
		}
	}
	return out
}

// newSigner makes a key with keygen in dir and returns its file, its public
// half (KEY.pub) and the key.
func newSigner(t *testing.T, dir, name string) (keyFile, pubFile string, k *auth.KeyPair) {
	t.Helper()
	keyFile = filepath.Join(dir, name+".key")
	cli(t, 0, []string{keyFile + ".pub"}, "keygen", "--out", keyFile, "--prefix", name)
	k, err := auth.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return keyFile, keyFile + ".pub", k
}

// TestFederationSignersRefusesUnusable: `federation signers` refuses every
// change that would leave a bundle no one can sign, saying what to do, and
// a public key file whose id is not its key's.
func TestFederationSignersRefusesUnusable(t *testing.T) {
	dir, hq := initHQ(t)
	v1 := filepath.Join(hq, "bundle.json")
	root, err := auth.LoadKey(filepath.Join(hq, "keys", "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	_, pub2, _ := newSigner(t, dir, "root2")
	forged := filepath.Join(dir, "forged.pub")
	data, err := os.ReadFile(pub2)
	if err != nil {
		t.Fatal(err)
	}
	// A public key file naming another key's id: it would list one key
	// under the name of another signer.
	idx := strings.Index(string(data), `"id": "`)
	end := strings.Index(string(data)[idx+7:], `"`)
	if err := os.WriteFile(forged, []byte(string(data)[:idx+7]+root.ID+string(data)[idx+7+end:]), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "v2.json")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"no change", nil, []string{"say what changes", "--add", "--remove", "--threshold"}},
		{"threshold 0", []string{"--threshold", "0"}, []string{"--threshold 0", "1 or more"}},
		{"threshold above the signers", []string{"--threshold", "2"}, []string{"only 1 signer", "--add"}},
		{"remove the last signer", []string{"--remove", root.ID}, []string{"without a signer", "--add"}},
		{"remove one that is not a signer", []string{"--remove", "root-00000000"}, []string{"not a signer of v1", root.ID}},
		{"add one already a signer", []string{"--add", filepath.Join(hq, "keys", "root.key")}, []string{"already a signer of v1"}},
		{"add one twice", []string{"--add", pub2, "--add", pub2}, []string{"each signer needs a key of its own"}},
		{"threshold unchanged", []string{"--threshold", "1"}, []string{"nothing changes"}},
		{"remove leaving too few for the threshold", []string{"--add", pub2, "--threshold", "2", "--remove", root.ID}, []string{"only 1 signer"}},
		{"forged id", []string{"--add", forged}, []string{"does not match the public key"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := 2
			if tc.name == "forged id" {
				code = 1
			}
			cli(t, code, tc.want, append([]string{"federation", "signers", "--bundle", v1, "--out", out}, tc.args...)...)
			if _, err := os.Stat(out); err == nil {
				t.Fatalf("a refused change wrote %s", out)
			}
		})
	}

	// A revoked key is never counted as a signer's: adding it is refused.
	revoked := filepath.Join(dir, "revoked.json")
	_, pub3, k3 := newSigner(t, dir, "root3")
	cli(t, 0, nil, "federation", "revoke", "--bundle", v1, "--subject", "key:"+k3.ID, "--out", revoked)
	cli(t, 0, nil, "federation", "sign", "--bundle", revoked, "--key", filepath.Join(hq, "keys", "root.key"))
	cli(t, 2, []string{"revoked in v2", "keygen"}, "federation", "signers", "--bundle", revoked, "--add", pub3, "--out", out)
}

// TestFederationSignersRaisesThreshold walks a handover to 2 of 3 signers:
// nodes holding v1 install v2 on v1's root alone, but v2 read on its own
// needs 2 of its 3, and is no base for the next change until it has them;
// sign --current takes the new signers' keys and says which threshold is met.
func TestFederationSignersRaisesThreshold(t *testing.T) {
	dir, hq := initHQ(t)
	v1 := filepath.Join(hq, "bundle.json")
	rootFile := filepath.Join(hq, "keys", "root.key")
	root, err := auth.LoadKey(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	key2, pub2, k2 := newSigner(t, dir, "root2")
	key3, pub3, k3 := newSigner(t, dir, "root3")
	stranger, _, _ := newSigner(t, dir, "stranger")

	v2 := filepath.Join(dir, "v2.json")
	cli(t, 0, []string{
		"add signer " + k2.ID, "add signer " + k3.ID, "threshold 2 (was 1)",
		"it needs 1 signature(s) of: " + root.ID,                               // nodes holding v1
		"it needs 2 signature(s) of: " + root.ID + ", " + k2.ID + ", " + k3.ID, // read on its own
		"no change can be built on it", "--current " + v1,
	}, "federation", "signers", "--bundle", v1, "--add", pub2, "--add", pub3, "--threshold", "2", "--out", v2)

	// A key neither version lists is refused, as before.
	cli(t, 2, []string{"neither", root.ID, k2.ID}, "federation", "sign", "--bundle", v2, "--key", stranger, "--current", v1)
	// A new signer signs first: v2's own count rises, v1's does not.
	cli(t, 0, []string{"0 of 1 of the current v1's signers", "1 of 2 of v2's own", "nodes holding v1 refuse it until it carries 1 more of: " + root.ID},
		"federation", "sign", "--bundle", v2, "--key", key2, "--current", v1)
	// v1's root, also one of v2's three, meets both.
	cli(t, 0, []string{"1 of 1 of the current v1's signers", "2 of 2 of v2's own", "ready"},
		"federation", "sign", "--bundle", v2, "--key", rootFile, "--current", v1)
	checkInstall(t, v1, v2)
	if _, err := server.LoadBundle(v2, nil, time.Now()); err != nil {
		t.Errorf("v2, read on its own with 2 of its 3 signers' signatures: %v", err)
	}

	// v3 drops root: v2's 2-of-3 sign it. With root's signature alone, nodes
	// holding v2 refuse it, and sign says so.
	v3 := filepath.Join(dir, "v3.json")
	cli(t, 0, []string{"remove signer " + root.ID, "it needs 2 signature(s) of: " + k2.ID + ", " + k3.ID},
		"federation", "signers", "--bundle", v2, "--remove", root.ID, "--out", v3)
	cli(t, 0, []string{"1 of 2 of the current v2's signers", "0 of 2 of v3's own", "nodes holding v2 refuse it"},
		"federation", "sign", "--bundle", v3, "--key", rootFile, "--current", v2)
	cli(t, 0, []string{"nodes holding v2 install it once published", "not yet a base for the next change", "1 more of: " + k3.ID},
		"federation", "sign", "--bundle", v3, "--key", key2, "--current", v2)
	cli(t, 1, []string{"fully signed", "have more of them sign this file"}, "federation", "signers", "--bundle", v3, "--threshold", "1", "--out", filepath.Join(dir, "x.json"))
	cli(t, 0, []string{"ready"}, "federation", "sign", "--bundle", v3, "--key", key3, "--current", v2)
	checkInstall(t, v2, v3)
	cli(t, 0, nil, "federation", "signers", "--bundle", v3, "--threshold", "1", "--out", filepath.Join(dir, "v4.json"))
}

// checkInstall fails t unless a node holding the bundle in heldFile would
// install the one in nextFile.
func checkInstall(t *testing.T, heldFile, nextFile string) {
	t.Helper()
	held, _, _, err := server.LoadSignedBundleAllowExpired(heldFile, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(nextFile)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := auth.ParseSignedBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.VerifyBundle(sb, held, time.Now()); err != nil {
		t.Errorf("a node holding v%d refuses %s: %v", held.Version, nextFile, err)
	}
}

// TestSignRefusesSignerKeyNodesSkip: nodes skip the signature of a signer
// whose key is outside its window or revoked, so sign refuses to add it, and
// says why; with --current, a key that counts for neither version is refused
// too.
func TestSignRefusesSignerKeyNodesSkip(t *testing.T) {
	dir, hq := initHQ(t)
	rootFile := filepath.Join(hq, "keys", "root.key")
	root, err := auth.LoadKey(rootFile)
	if err != nil {
		t.Fatal(err)
	}
	key2, _, k2 := newSigner(t, dir, "root2")
	now := time.Now().UTC().Truncate(time.Second)
	retired, future := now.Add(-time.Minute), now.Add(time.Hour)
	// base returns a bundle file signed by root listing root2 as a second
	// signer with the window given, and the unsigned next version built on it.
	base := func(t *testing.T, s auth.Key, revoke bool) (cur, next string) {
		t.Helper()
		b, err := server.LoadBundle(filepath.Join(hq, "bundle.json"), nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		b.Version, b.IssuedAt = 2, now
		b.Signers = append(b.Signers, s)
		if revoke {
			b.Revocations = append(b.Revocations, auth.Revocation{Subject: "key:" + k2.ID, Before: now.Add(-time.Hour), Reason: "leaked"})
		}
		d := t.TempDir()
		cur, next = filepath.Join(d, "cur.json"), filepath.Join(d, "next.json")
		if _, err := server.SignNewBundle(cur, b, root); err != nil {
			t.Fatal(err)
		}
		cli(t, 0, nil, "federation", "revoke", "--bundle", cur, "--subject", "sub:hq/x", "--out", next)
		return cur, next
	}
	cases := []struct {
		name   string
		signer auth.Key
		revoke bool
		want   string
	}{
		{"retired", auth.Key{ID: k2.ID, Public: k2.Public, NotBefore: now.Add(-2 * time.Hour), NotAfter: &retired}, false, "retired at"},
		{"not valid yet", auth.Key{ID: k2.ID, Public: k2.Public, NotBefore: future}, false, "valid only from"},
		{"revoked", auth.Key{ID: k2.ID, Public: k2.Public, NotBefore: now.Add(-2 * time.Hour)}, true, "revoked in v3"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cur, next := base(t, tc.signer, tc.revoke)
			cli(t, 2, []string{tc.want, "no node reading this version counts", root.ID}, "federation", "sign", "--bundle", next, "--key", key2)
			// The same key counts for neither version with --current.
			cli(t, 2, []string{tc.want, "no node counts its signature"}, "federation", "sign", "--bundle", next, "--key", key2, "--current", cur)
			cli(t, 0, []string{"counted: 1 of its signers' signatures, 1 required"}, "federation", "sign", "--bundle", next, "--key", rootFile)
		})
	}
}

// TestSignWarnsOfAnOlderCurrent: `sign --current` tallies against the file it
// is given. Given an older version than the one v3 succeeds (v1, whose only
// signer v2 removed), its "ready" holds only for nodes still on v1, and it
// says so (review 101; not refused: a version between may never have been
// published).
func TestSignWarnsOfAnOlderCurrent(t *testing.T) {
	dir, hq := initHQ(t)
	v1 := filepath.Join(hq, "bundle.json")
	rootFile := filepath.Join(hq, "keys", "root.key")
	key2, pub2, _ := newSigner(t, dir, "root2")
	key3, pub3, _ := newSigner(t, dir, "root3")
	root := keyIDOf(t, rootFile)

	v2 := filepath.Join(dir, "v2.json")
	cli(t, 0, nil, "federation", "signers", "--bundle", v1, "--add", pub2, "--remove", root, "--out", v2)
	cli(t, 0, nil, "federation", "sign", "--bundle", v2, "--key", rootFile, "--current", v1)
	cli(t, 0, []string{"ready"}, "federation", "sign", "--bundle", v2, "--key", key2, "--current", v1)
	checkInstall(t, v1, v2)

	v3 := filepath.Join(dir, "v3.json")
	cli(t, 0, nil, "federation", "signers", "--bundle", v2, "--add", pub3, "--remove", keyIDOf(t, key2), "--out", v3)
	cli(t, 0, []string{"warning: --current is v1 and this is v3", "give that as --current instead"}, "federation", "sign", "--bundle", v3, "--key", rootFile, "--current", v1)
	cli(t, 0, nil, "federation", "sign", "--bundle", v3, "--key", key3, "--current", v2)
}

func keyIDOf(t *testing.T, path string) string {
	t.Helper()
	k, err := auth.LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return k.ID
}
