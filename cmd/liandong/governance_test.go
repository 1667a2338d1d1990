package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/auth"
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

// TestChangesRenewExpiredBundle: every change builds on a bundle that has
// expired (which still authorises its successor) and takes --ttl to renew the
// expiry; without --ttl it says to give one, and an expired base must still be
// fully signed.
func TestChangesRenewExpiredBundle(t *testing.T) {
	dir := t.TempDir()
	hq := filepath.Join(dir, "hq")
	run := func(args ...string) (int, string) {
		t.Helper()
		return runCLI(t, 30*time.Second, args...)
	}
	if code, out := run("federation", "init", "--data", hq, "--centre", "hq"); code != 0 {
		t.Fatalf("init: %s", out)
	}
	member := filepath.Join(dir, "zgc.json")
	if code, out := run("federation", "member", "--data", filepath.Join(dir, "zgc"), "--centre", "zgc", "--out", member); code != 0 {
		t.Fatalf("member: %s", out)
	}
	root, err := auth.LoadKey(filepath.Join(hq, "keys", "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := server.LoadBundle(filepath.Join(hq, "bundle.json"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The bundle lapsed: v1 expired a minute ago. Sign it as the root did.
	cur.IssuedAt = time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Second)
	cur.ExpiresAt = time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	lapsed := filepath.Join(dir, "lapsed.json")
	if _, err := server.SignNewBundle(lapsed, cur, root); err != nil {
		t.Fatal(err)
	}
	unsigned := filepath.Join(dir, "unsigned.json")
	sb, err := auth.EncodeBundle(cur)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.WriteSignedBundle(unsigned, sb); err != nil {
		t.Fatal(err)
	}
	newKey := filepath.Join(dir, "hq-tok-2.key")
	if code, out := run("keygen", "--out", newKey, "--prefix", "hq-tok"); code != 0 {
		t.Fatalf("keygen: %s", out)
	}
	changes := []struct {
		name string
		args []string
	}{
		{"add-centre", []string{"--member", member}},
		{"remove-centre", []string{"--centre", "hq"}},
		{"rotate-key", []string{"--centre", "hq", "--kind", "token", "--key", newKey}},
		{"revoke", []string{"--subject", "jti:leaked"}},
		// Nothing else due: the expiry alone (LiandongBundleExpiring's runbook).
		{"renew", nil},
	}
	for _, c := range changes {
		t.Run(c.name, func(t *testing.T) {
			next := filepath.Join(t.TempDir(), "next.json")
			base := append([]string{"federation", c.name, "--out", next}, c.args...)
			if code, out := run(append(base, "--bundle", unsigned, "--ttl", "720h")...); code == 0 || !strings.Contains(out, "fully signed") {
				t.Errorf("on an unsigned expired base: exit %d\n%s", code, out)
			}
			if code, out := run(append(base, "--bundle", lapsed)...); code == 0 || !strings.Contains(out, "--ttl") {
				t.Errorf("without --ttl on an expired base: exit %d, want a hint at --ttl\n%s", code, out)
			}
			before := time.Now()
			if code, out := run(append(base, "--bundle", lapsed, "--ttl", "720h")...); code != 0 {
				t.Fatalf("with --ttl on an expired base: exit %d\n%s", code, out)
			}
			if code, out := run("federation", "sign", "--bundle", next, "--key", filepath.Join(hq, "keys", "root.key")); code != 0 {
				t.Fatalf("sign: %s", out)
			}
			b, err := server.LoadBundle(next, nil, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			if want := before.Add(720 * time.Hour); b.Version != 2 || b.ExpiresAt.Before(want.Add(-time.Second)) || b.ExpiresAt.After(want.Add(time.Minute)) {
				t.Errorf("v%d expires %s, want v2 expiring 720h from now", b.Version, b.ExpiresAt)
			}
			if c.name == "renew" {
				same := *cur
				same.Version, same.IssuedAt, same.ExpiresAt = b.Version, b.IssuedAt, b.ExpiresAt
				want, _ := json.Marshal(same)
				got, _ := json.Marshal(b)
				if string(got) != string(want) {
					t.Errorf("renew changed more than the expiry:\n got %s\nwant %s", got, want)
				}
			}
		})
	}
}

// TestRevokeKeyDefaultsToForEver: `revoke --subject key:K` without --before
// refuses everything K signed, whenever dated: a token a thief mints with a
// leaked key, dated after the revocation, does not verify (JWKS already
// leaves such a key out). With --before T, only what K signed before T is
// refused (the NATS rule, auth/doc.go).
func TestRevokeKeyDefaultsToForEver(t *testing.T) {
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
	ok("federation", "init", "--data", hq, "--centre", "hq")
	tokKey, err := auth.LoadKey(filepath.Join(hq, "keys", "token.key"))
	if err != nil {
		t.Fatal(err)
	}
	revoked := func(name string, extra ...string) *auth.Bundle {
		t.Helper()
		out := filepath.Join(dir, name)
		ok(append([]string{"federation", "revoke", "--bundle", filepath.Join(hq, "bundle.json"), "--subject", "key:" + tokKey.ID,
			"--reason", "key leaked", "--out", out}, extra...)...)
		ok("federation", "sign", "--bundle", out, "--key", filepath.Join(hq, "keys", "root.key"))
		b, err := server.LoadBundle(out, nil, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	verifies := func(b *auth.Bundle, issued time.Time) bool {
		iss := auth.TokenIssuer{Centre: "hq", Federation: b.Federation, Key: tokKey}
		tok, err := iss.Issue("thief", []auth.Scope{auth.ScopeAdmin}, time.Hour, issued)
		if err != nil {
			t.Fatal(err)
		}
		v := auth.TokenVerifier{Bundle: func() *auth.Bundle { return b }, Now: func() time.Time { return issued.Add(time.Minute) }}
		_, err = v.Verify(tok)
		return err == nil
	}
	forever := revoked("forever.json")
	if verifies(forever, time.Now().Add(time.Hour)) {
		t.Error("a token minted an hour after `revoke --subject key:…` with the leaked key verifies")
	}
	if verifies(forever, time.Now().Add(-time.Hour)) {
		t.Error("a token the leaked key signed before the revocation verifies, though the revocation names no time")
	}
	cut := time.Now().UTC().Add(10 * time.Minute).Truncate(time.Second)
	until := revoked("until.json", "--before", cut.Format(time.RFC3339))
	if verifies(until, cut.Add(-5*time.Minute)) || !verifies(until, cut.Add(time.Second)) {
		t.Errorf("revoke --before %s: want tokens issued before it refused and after it valid", cut.Format(time.RFC3339))
	}
}

// TestRotateKeyRefusesNegativeDurations: a negative --retire-after would
// retire the old keys in the past, and a negative --activate-in would date the
// new key before now.
func TestRotateKeyRefusesNegativeDurations(t *testing.T) {
	dir, hq := initHQ(t)
	newKey := filepath.Join(dir, "hq-rec-2.key")
	if code, out := runCLI(t, 30*time.Second, "keygen", "--out", newKey, "--prefix", "hq-rec"); code != 0 {
		t.Fatal(out)
	}
	for _, flag := range []string{"--retire-after", "--activate-in"} {
		code, out := runCLI(t, 30*time.Second, "federation", "rotate-key", "--bundle", filepath.Join(hq, "bundle.json"), "--centre", "hq",
			"--kind", "record", "--key", newKey, "--out", filepath.Join(dir, "v2.json"), flag, "-50m")
		if code != 2 || !strings.Contains(out, "zero or more") {
			t.Errorf("rotate-key %s -50m: exit %d, want 2 and a message asking for zero or more\n%s", flag, code, out)
		}
	}
}

// TestRevokeRecordKeyNeedsAChoice: a record key signed its centre's log, and
// refusing everything it signed refuses that log from its first entry at every
// centre that does not hold it yet: without --before or --forever the
// revocation is refused, saying both.
func TestRevokeRecordKeyNeedsAChoice(t *testing.T) {
	dir, hq := initHQ(t)
	rec, err := auth.LoadKey(filepath.Join(hq, "keys", "record.key"))
	if err != nil {
		t.Fatal(err)
	}
	revoke := func(extra ...string) (int, string) {
		return runCLI(t, 30*time.Second, append([]string{"federation", "revoke", "--bundle", filepath.Join(hq, "bundle.json"),
			"--subject", "key:" + rec.ID, "--out", filepath.Join(dir, "v2.json")}, extra...)...)
	}
	if code, out := revoke(); code != 2 || !strings.Contains(out, "--before") || !strings.Contains(out, "--forever") {
		t.Errorf("revoke of a record key without --before or --forever: exit %d, want 2 and both named\n%s", code, out)
	}
	if code, out := revoke("--forever", "--before", "2026-01-01T00:00:00Z"); code != 2 {
		t.Errorf("--forever with --before: exit %d, want 2\n%s", code, out)
	}
	if code, out := revoke("--forever"); code != 0 || !strings.Contains(out, "outright") {
		t.Errorf("revoke --forever of a record key: exit %d\n%s", code, out)
	}
}

// TestSignRefusesAKeyNotASigner: a signature by a key the bundle does not
// list as a signer would be carried and look counted, and no node counts it.
func TestSignRefusesAKeyNotASigner(t *testing.T) {
	dir, hq := initHQ(t)
	next := filepath.Join(dir, "v2.json")
	if code, out := runCLI(t, 30*time.Second, "federation", "revoke", "--bundle", filepath.Join(hq, "bundle.json"), "--subject", "sub:hq/x", "--out", next); code != 0 {
		t.Fatal(out)
	}
	code, out := runCLI(t, 30*time.Second, "federation", "sign", "--bundle", next, "--key", filepath.Join(hq, "keys", "record.key"))
	if code != 2 || !strings.Contains(out, "not one of the bundle's signers") {
		t.Errorf("federation sign with hq's record key: exit %d, want 2 naming the signers\n%s", code, out)
	}
	if code, out := runCLI(t, 30*time.Second, "federation", "sign", "--bundle", next, "--key", filepath.Join(hq, "keys", "root.key")); code != 0 {
		t.Errorf("federation sign with the root key: exit %d\n%s", code, out)
	}
}

// TestTokenIssueWithRetiredKeySaysSo: a retired token key is not advised to
// wait for its window to start.
func TestTokenIssueWithRetiredKeySaysSo(t *testing.T) {
	dir, hq := initHQ(t)
	newKey := filepath.Join(dir, "tok2.key")
	if code, out := runCLI(t, 30*time.Second, "keygen", "--out", newKey, "--prefix", "hq-tok"); code != 0 {
		t.Fatal(out)
	}
	v2 := filepath.Join(dir, "v2.json")
	for _, args := range [][]string{
		{"federation", "rotate-key", "--bundle", filepath.Join(hq, "bundle.json"), "--centre", "hq", "--kind", "token", "--key", newKey, "--activate-in", "0s", "--retire-after", "0s", "--out", v2},
		{"federation", "sign", "--bundle", v2, "--key", filepath.Join(hq, "keys", "root.key")},
	} {
		if code, out := runCLI(t, 30*time.Second, args...); code != 0 {
			t.Fatal(out)
		}
	}
	time.Sleep(1100 * time.Millisecond) // the new key's window opens at the next whole second, and the old one's closes
	code, out := runCLI(t, 30*time.Second, "token", "issue", "--sub", "p", "--scope", "read", "--key", filepath.Join(hq, "keys", "token.key"), "--bundle", v2)
	if code == 0 || !strings.Contains(out, "retired at") || strings.Contains(out, "wait until") {
		t.Errorf("token issue with the retired key: exit %d\n%s", code, out)
	}
}

// TestSignAVersionThatChangesTheSigners: nodes count the signatures of the
// signers of the bundle they hold. For a version that replaces its signers,
// sign takes the current one's key given --current, and the new signer's too
// (a node starting from the new file alone counts it), saying that nodes
// holding the current version still need the current signers'.
func TestSignAVersionThatChangesTheSigners(t *testing.T) {
	dir, hq := initHQ(t)
	next := filepath.Join(dir, "v2.json")
	if code, out := runCLI(t, 30*time.Second, "federation", "revoke", "--bundle", filepath.Join(hq, "bundle.json"), "--subject", "sub:hq/x", "--out", next); code != 0 {
		t.Fatal(out)
	}
	data, err := os.ReadFile(next)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := auth.ParseSignedBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := sb.Bundle()
	root2, _ := auth.GenerateKey("root")
	b.Signers = []auth.Key{{ID: root2.ID, Public: root2.Public, NotBefore: time.Now().Add(-time.Hour)}}
	sb2, err := auth.EncodeBundle(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := server.WriteSignedBundle(next, sb2); err != nil {
		t.Fatal(err)
	}
	k2 := filepath.Join(dir, "root2.key")
	if err := auth.SaveKey(k2, root2); err != nil {
		t.Fatal(err)
	}
	current := filepath.Join(hq, "bundle.json")
	if code, out := runCLI(t, 30*time.Second, "federation", "sign", "--bundle", next, "--key", k2, "--current", current); code != 0 || !strings.Contains(out, "nodes holding v1 refuse it") {
		t.Errorf("sign with the incoming signer, --current given: exit %d, want 0 and a warning that nodes holding v1 refuse it yet\n%s", code, out)
	}
	if code, out := runCLI(t, 30*time.Second, "federation", "sign", "--bundle", next, "--key", filepath.Join(hq, "keys", "root.key")); code != 2 || !strings.Contains(out, "--current") {
		t.Errorf("sign with the current signer, without --current: exit %d, want 2 pointing at --current\n%s", code, out)
	}
	if code, out := runCLI(t, 30*time.Second, "federation", "sign", "--bundle", next, "--key", filepath.Join(hq, "keys", "root.key"), "--current", current); code != 0 {
		t.Fatalf("sign with the current signer, --current given: exit %d\n%s", code, out)
	}
	cur, _, _, err := server.LoadSignedBundleAllowExpired(current, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	signed, _ := os.ReadFile(next)
	s2, _ := auth.ParseSignedBundle(signed)
	if _, err := auth.VerifyBundle(s2, cur, time.Now()); err != nil {
		t.Errorf("a node holding v1 refuses v2 signed with v1's signer: %v", err)
	}
}

// initHQ makes a one-centre federation (hq) in a temporary directory with
// federation init, and returns the directory and hq's data directory in it.
func initHQ(t *testing.T) (dir, hq string) {
	t.Helper()
	dir = t.TempDir()
	hq = filepath.Join(dir, "hq")
	if code, out := runCLI(t, 30*time.Second, "federation", "init", "--data", hq, "--centre", "hq"); code != 0 {
		t.Fatal(out)
	}
	return dir, hq
}

// TestFederationAddPeer lists a new replica's peer id for its centre: without
// it the leader refuses the replica ("not listed ... in the trust bundle") and
// the CLI had no way to list one. Mistakes are refused before anything is written.
func TestFederationAddPeer(t *testing.T) {
	dir, hq := initHQ(t)
	v1 := filepath.Join(hq, "bundle.json")
	b1, err := server.LoadBundle(v1, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hqm, _ := b1.Member("hq")
	listed := hqm.Peers[0].ID
	newPeer := func(name string) string {
		t.Helper()
		code, out := runCLI(t, 30*time.Second, "keygen", "--p2p", "--out", filepath.Join(dir, name))
		id, ok := strings.CutPrefix(strings.TrimSpace(out), "peer id ")
		if code != 0 || !ok {
			t.Fatalf("keygen --p2p: exit %d: %s", code, out)
		}
		return strings.Fields(id)[0]
	}
	peer2 := newPeer("hq-2.p2p.key")
	peer3, peer4 := newPeer("hq-3.p2p.key"), newPeer("hq-4.p2p.key")
	// A revoked peer id is refused for good: listing it again admits nothing.
	revoked := newPeer("old.p2p.key")
	vr := filepath.Join(dir, "vr.json")
	if code, out := runCLI(t, 30*time.Second, "federation", "revoke", "--bundle", v1, "--subject", "peer:"+revoked, "--out", vr); code != 0 {
		t.Fatal(out)
	}
	if code, out := runCLI(t, 30*time.Second, "federation", "sign", "--bundle", vr, "--key", filepath.Join(hq, "keys", "root.key")); code != 0 {
		t.Fatal(out)
	}

	// libp2p also reads a peer id written as a CID (bafz…), but the bundle
	// is matched against the base58 form (12D3KooW…): a CID listed as given
	// would admit nothing, and slip past the checks for listed and revoked ids.
	asCID := func(id string) string {
		t.Helper()
		pid, err := peer.Decode(id)
		if err != nil {
			t.Fatal(err)
		}
		return peer.ToCid(pid).String()
	}
	for _, tc := range []struct {
		name, base string
		args       []string
		want       string
	}{
		{"no peer id", v1, []string{"--centre", "hq"}, "--peer-id ID is required"},
		{"already listed, as a CID", v1, []string{"--centre", "hq", "--peer-id", asCID(listed)}, "is already listed for hq"},
		{"revoked, as a CID", vr, []string{"--centre", "hq", "--peer-id", asCID(revoked)}, "is revoked in bundle v2"},
		// The nodes dial no address that names another peer: the replica
		// would be listed and never reached.
		{"address of another peer", v1, []string{"--centre", "hq", "--peer-id", peer2, "--addr", "/ip4/10.0.2.12/tcp/8712/p2p/" + listed}, "names peer " + listed},
		{"not a peer id", v1, []string{"--centre", "hq", "--peer-id", "hq-2"}, "is not a libp2p peer id"},
		{"unknown centre", v1, []string{"--centre", "zgc", "--peer-id", peer2}, `--centre "zgc" is not a member`},
		{"already listed", v1, []string{"--centre", "hq", "--peer-id", listed}, "is already listed for hq"},
		{"bad address", v1, []string{"--centre", "hq", "--peer-id", peer2, "--addr", "10.0.2.12:8712"}, `--addr "10.0.2.12:8712"`},
		{"revoked", vr, []string{"--centre", "hq", "--peer-id", revoked}, "is revoked in bundle v2"},
		// Several at once are all or nothing: each one checked as one
		// alone is, the first refusal writes nothing.
		{"several, one already listed", v1, []string{"--centre", "hq", "--peer-id", peer2, "--peer-id", listed}, "is already listed for hq"},
		{"several, one revoked", vr, []string{"--centre", "hq", "--peer-id", peer2 + "," + asCID(revoked)}, "is revoked in bundle v2"},
		{"several, one not a peer id", v1, []string{"--centre", "hq", "--peer-id", peer2 + ",hq-3"}, `--peer-id "hq-3" is not a libp2p peer id`},
		{"several, one twice", v1, []string{"--centre", "hq", "--peer-id", peer2, "--peer-id", asCID(peer2)}, "is given twice"},
		{"several, an empty one", v1, []string{"--centre", "hq", "--peer-id", peer2 + ","}, "an empty id"},
		{"several, an address of none", v1, []string{"--centre", "hq", "--peer-id", peer2 + "," + peer3, "--addr", "/ip4/10.0.2.12/tcp/8712"}, "end it in /p2p/ID"},
		{"several, an address of another", v1, []string{"--centre", "hq", "--peer-id", peer2 + "," + peer3, "--addr", "/ip4/10.0.2.12/tcp/8712/p2p/" + listed}, "names peer " + listed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".json")
			args := append([]string{"federation", "add-peer", "--bundle", tc.base, "--out", out}, tc.args...)
			code, said := runCLI(t, 30*time.Second, args...)
			if code != 2 || !strings.Contains(said, tc.want) {
				t.Errorf("exit %d, want 2 saying %q:\n%s", code, tc.want, said)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("a refused change wrote %s", out)
			}
		})
	}

	v2 := filepath.Join(dir, "v2.json")
	addrs := "/ip4/10.0.2.12/tcp/8712,/ip4/10.0.2.12/udp/8712/quic-v1"
	code, out := runCLI(t, 30*time.Second, "federation", "add-peer", "--bundle", v1, "--centre", "hq", "--peer-id", asCID(peer2), "--addr", addrs, "--out", v2)
	if code != 0 || !strings.Contains(out, "v2") || !strings.Contains(out, "unsigned") {
		t.Fatalf("add-peer: exit %d: %s", code, out)
	}
	if code, out := runCLI(t, 30*time.Second, "federation", "sign", "--bundle", v2, "--key", filepath.Join(hq, "keys", "root.key")); code != 0 {
		t.Fatal(out)
	}
	b2, err := server.LoadBundle(v2, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.CheckUpgrade(b1, b2); err != nil {
		t.Errorf("nodes holding v1 would refuse v2: %v", err)
	}
	if m, ok := b2.PeerAllowed(peer2); !ok || m != "hq" {
		t.Errorf("v2 admits the new peer as %q, %v; want hq", m, ok)
	}
	hq2, _ := b2.Member("hq")
	if len(hq2.Peers) != 2 || hq2.Peers[0].ID != listed || strings.Join(hq2.Peers[1].Addrs, ",") != addrs {
		t.Errorf("hq's peers in v2: %+v", hq2.Peers)
	}

	// Two more replicas in one version (one signing round), each with its
	// own addresses, named by their /p2p/ part; one given as a CID.
	v3 := filepath.Join(dir, "v3.json")
	a3, a4 := "/ip4/10.0.2.13/tcp/8712/p2p/"+peer3, "/ip4/10.0.2.14/tcp/8712/p2p/"+peer4
	code, out = runCLI(t, 30*time.Second, "federation", "add-peer", "--bundle", v2, "--centre", "hq", "--peer-id", peer3, "--peer-id", asCID(peer4), "--addr", a4+","+a3, "--out", v3)
	if code != 0 || !strings.Contains(out, "v3") || !strings.Contains(out, peer3+", "+peer4) {
		t.Fatalf("add-peer of two: exit %d: %s", code, out)
	}
	if code, out := runCLI(t, 30*time.Second, "federation", "sign", "--bundle", v3, "--key", filepath.Join(hq, "keys", "root.key")); code != 0 {
		t.Fatal(out)
	}
	b3, err := server.LoadBundle(v3, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.CheckUpgrade(b2, b3); err != nil {
		t.Errorf("nodes holding v2 would refuse v3: %v", err)
	}
	hq3, _ := b3.Member("hq")
	if len(hq3.Peers) != 4 || hq3.Peers[2].ID != peer3 || hq3.Peers[3].ID != peer4 ||
		strings.Join(hq3.Peers[2].Addrs, ",") != a3 || strings.Join(hq3.Peers[3].Addrs, ",") != a4 {
		t.Errorf("hq's peers in v3: %+v", hq3.Peers)
	}
}

// TestRenewRefusesToShorten: renew counts --ttl from now, so --ttl 1h on a
// bundle with a year left wrote one that lapsed within the hour, silently.
// It is refused, with a message that says what to give, unless --shorten
// says it is meant; a --ttl past the current expiry renews as before.
func TestRenewRefusesToShorten(t *testing.T) {
	dir, hq := initHQ(t)
	v1 := filepath.Join(hq, "bundle.json")
	b1, err := server.LoadBundle(v1, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(b1.ExpiresAt); left < 300*24*time.Hour {
		t.Fatalf("premise: init's bundle has %v left, want about a year", left)
	}
	next := filepath.Join(dir, "next.json")
	code, out := runCLI(t, 30*time.Second, "federation", "renew", "--bundle", v1, "--ttl", "1h", "--out", next)
	if code != 2 {
		t.Fatalf("renew --ttl 1h of a bundle with a year left: exit %d, want 2\n%s", code, out)
	}
	for _, want := range []string{"before v1's own expiry", b1.ExpiresAt.UTC().Format(time.RFC3339), "--shorten", "longer than"} {
		if !strings.Contains(out, want) {
			t.Errorf("refusal does not say %q:\n%s", want, out)
		}
	}
	if _, err := os.Stat(next); err == nil {
		t.Errorf("a refused renewal wrote %s", next)
	}
	expiry := func(args ...string) time.Time {
		t.Helper()
		os.Remove(next)
		args = append([]string{"federation", "renew", "--bundle", v1, "--out", next}, args...)
		if code, out := runCLI(t, 30*time.Second, args...); code != 0 {
			t.Fatalf("liandong %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
		sb, err := os.ReadFile(next)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Payload struct {
				ExpiresAt time.Time `json:"expires_at"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(sb, &doc); err != nil || doc.Payload.ExpiresAt.IsZero() {
			t.Fatalf("read %s: %v\n%s", next, err, sb)
		}
		return doc.Payload.ExpiresAt
	}
	if got := expiry("--ttl", "1h", "--shorten"); got.After(time.Now().Add(2 * time.Hour)) {
		t.Errorf("renew --ttl 1h --shorten expires at %s, want within the hour", got)
	}
	if got := expiry("--ttl", "17520h"); !got.After(b1.ExpiresAt) {
		t.Errorf("renew --ttl 17520h expires at %s, not after v1's %s", got, b1.ExpiresAt)
	}
}
