package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTokenIssueChecksKey: `token issue` refuses to print a token every node
// would refuse (another centre's key, a centre that is not a member, a record
// key, a key not active yet), saying what to do, and issues with a good key.
func TestTokenIssueChecksKey(t *testing.T) {
	dir := t.TempDir()
	hq, zgc := filepath.Join(dir, "hq"), filepath.Join(dir, "zgc")
	root := filepath.Join(hq, "keys", "root.key")
	ok := func(args ...string) {
		t.Helper()
		if code, out := runCLI(t, 30*time.Second, args...); code != 0 {
			t.Fatalf("liandong %s: exit %d\n%s", strings.Join(args, " "), code, out)
		}
	}
	ok("federation", "init", "--data", hq, "--centre", "hq")
	member := filepath.Join(dir, "zgc.json")
	ok("federation", "member", "--data", zgc, "--centre", "zgc", "--out", member)
	v2 := filepath.Join(dir, "v2.json")
	ok("federation", "add-centre", "--bundle", filepath.Join(hq, "bundle.json"), "--member", member, "--out", v2)
	ok("federation", "sign", "--bundle", v2, "--key", root)
	// v3 lists a second hq token key that becomes valid in an hour.
	later := filepath.Join(dir, "hq-tok-2.key")
	ok("keygen", "--out", later, "--prefix", "hq-tok")
	v3 := filepath.Join(dir, "v3.json")
	ok("federation", "rotate-key", "--bundle", v2, "--centre", "hq", "--kind", "token", "--key", later, "--activate-in", "1h", "--out", v3)
	ok("federation", "sign", "--bundle", v3, "--key", root)

	hqTok := filepath.Join(hq, "keys", "token.key")
	cases := []struct {
		name string
		args []string
		want []string // empty: success
	}{
		{"another centre's key", []string{"--key", hqTok, "--centre", "zgc"}, []string{"belongs to centre hq", "--centre hq", "every node would refuse"}},
		{"not a member", []string{"--key", hqTok, "--centre", "nowhere"}, []string{`--centre "nowhere" is not a member`}},
		{"record key", []string{"--key", filepath.Join(hq, "keys", "record.key"), "--centre", "hq"}, []string{"record-signing key of hq", "keys/token.key"}},
		{"record key, no centre", []string{"--key", filepath.Join(hq, "keys", "record.key")}, []string{"not listed in the bundle"}},
		{"key not active yet", []string{"--key", later}, []string{"is valid from", "wait until then"}},
		{"good key", []string{"--key", hqTok, "--centre", "hq"}, nil},
		{"good key, centre from the bundle", []string{"--key", filepath.Join(zgc, "keys", "token.key")}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"token", "issue", "--bundle", v3, "--sub", "partner"}, tc.args...)
			code, out := runCLI(t, 30*time.Second, args...)
			if len(tc.want) == 0 {
				if code != 0 || strings.Count(strings.TrimSpace(out), ".") != 2 {
					t.Fatalf("exit %d, want a token:\n%s", code, out)
				}
				return
			}
			if code == 0 {
				t.Fatalf("exit 0, want a refusal:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
