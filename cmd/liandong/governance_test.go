package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liandong/node/server"
)

// TestGovernanceFiles walks the bundle's life on files alone: every change
// makes an unsigned next version that a signer reads (show) and signs, and the
// result verifies; mistakes get an exit code and a message.
func TestGovernanceFiles(t *testing.T) {
	dir := t.TempDir()
	hq := filepath.Join(dir, "hq")
	ok := func(args ...string) string {
		t.Helper()
		code, out := runCLI(t, 30*time.Second, args...)
		if code != 0 {
			t.Fatalf("liandong %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		return out
	}
	fail := func(want string, args ...string) {
		t.Helper()
		code, out := runCLI(t, 30*time.Second, args...)
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("liandong %s: exit %d, want failure saying %q:\n%s", strings.Join(args, " "), code, want, out)
		}
	}
	ok("federation", "init", "--data", hq, "--centre", "hq")
	v1 := filepath.Join(hq, "bundle.json")
	root := filepath.Join(hq, "keys", "root.key")

	// A new centre's member entry, then the version that adds it.
	member := filepath.Join(dir, "zgc.json")
	ok("federation", "member", "--data", filepath.Join(dir, "zgc"), "--centre", "zgc", "--name-zh", "中关村", "--out", member)
	v2 := filepath.Join(dir, "v2.json")
	if out := ok("federation", "add-centre", "--bundle", v1, "--member", member, "--out", v2); !strings.Contains(out, "v2") || !strings.Contains(out, "unsigned") {
		t.Errorf("add-centre said: %s", out)
	}
	if out := ok("federation", "show", "--bundle", v2); !strings.Contains(out, `"zgc"`) || !strings.Contains(out, "not yet valid") {
		t.Errorf("show of the unsigned v2: %s", out)
	}
	fail("the base of a change must be a fully signed bundle", "federation", "add-centre", "--bundle", v2, "--member", member, "--out", filepath.Join(dir, "x.json"))
	ok("federation", "sign", "--bundle", v2, "--key", root)
	b2, err := server.LoadBundle(v2, nil, time.Now())
	if err != nil || b2.Version != 2 {
		t.Fatalf("signed v2: %v", err)
	}
	if _, ok := b2.Member("zgc"); !ok {
		t.Fatal("v2 lacks zgc")
	}
	fail("already a member", "federation", "add-centre", "--bundle", v2, "--member", member, "--out", filepath.Join(dir, "x.json"))

	// Rotate hq's record key, revoke a partner, remove zgc: each builds on the last.
	newKey := filepath.Join(dir, "hq-rec-2.key")
	ok("keygen", "--out", newKey, "--prefix", "hq-rec")
	v3 := filepath.Join(dir, "v3.json")
	ok("federation", "rotate-key", "--bundle", v2, "--centre", "hq", "--kind", "record", "--key", newKey, "--out", v3, "--activate-in", "1m", "--retire-after", "2h")
	ok("federation", "sign", "--bundle", v3, "--key", root)
	v4 := filepath.Join(dir, "v4.json")
	fail("want jti:, sub:, key: or peer:", "federation", "revoke", "--bundle", v3, "--subject", "partner-x", "--out", v4)
	ok("federation", "revoke", "--bundle", v3, "--subject", "sub:hq/partner-x", "--reason", "leaked", "--out", v4)
	ok("federation", "sign", "--bundle", v4, "--key", root)
	v5 := filepath.Join(dir, "v5.json")
	ok("federation", "remove-centre", "--bundle", v4, "--centre", "zgc", "--out", v5)
	ok("federation", "sign", "--bundle", v5, "--key", root)
	b5, err := server.LoadBundle(v5, nil, time.Now())
	if err != nil || b5.Version != 5 {
		t.Fatalf("signed v5: %v", err)
	}
	now := time.Now()
	hqm, _ := b5.Member("hq")
	if len(hqm.RecordKeys) != 2 || hqm.RecordKeys[0].NotAfter == nil || !hqm.RecordKeys[1].NotBefore.After(now) {
		t.Errorf("rotation: %+v", hqm.RecordKeys)
	}
	if !b5.Revoked("sub:hq/partner-x", now.Add(-time.Minute)) || b5.Revoked("sub:hq/partner-y", now.Add(-time.Minute)) {
		t.Error("revocation missing or too broad")
	}
	if z, _ := b5.Member("zgc"); z.Removed == nil {
		t.Error("zgc not marked removed")
	}
	fail("already removed", "federation", "remove-centre", "--bundle", v5, "--centre", "zgc", "--out", filepath.Join(dir, "x.json"))
	fail("--node URL", "federation", "publish", "--bundle", v5)
}
