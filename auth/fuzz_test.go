package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The seed corpora live in testdata/fuzz/<Name>/, so plain `go test` runs them.
// Regenerate them with: go test ./auth -run TestWriteFuzzSeeds -write-fuzz-seeds
var writeFuzzSeeds = flag.Bool("write-fuzz-seeds", false, "rewrite the fuzz seed corpora in testdata/fuzz")

func FuzzVerifyToken(f *testing.F) {
	fx := newFixture(f)
	v := newVerifier(fx.bundle)
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(token)
		if err != nil {
			if p != nil {
				t.Fatal("principal returned with an error")
			}
			if !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("refusal does not wrap ErrTokenInvalid: %v", err)
			}
			return
		}
		if m, ok := fx.bundle.Member(p.Centre); !ok || m.Removed != nil {
			t.Fatalf("accepted a token from %q", p.Centre)
		}
		for _, s := range p.Scopes {
			if !s.Valid() {
				t.Fatalf("accepted unknown scope %q", s)
			}
		}
		if p.Subject == "" || p.TokenID == "" || p.ExpiresAt.IsZero() {
			t.Fatalf("accepted incomplete claims: %+v", p)
		}
	})
}

func FuzzParseSignedBundle(f *testing.F) {
	fx := newFixture(f)
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sb, err := ParseSignedBundle(data)
		if err != nil {
			if !errors.Is(err, ErrBundleInvalid) {
				t.Fatalf("refusal does not wrap ErrBundleInvalid: %v", err)
			}
			return
		}
		// Re-encoding is stable, both directly and inside another value.
		enc1, err := sb.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		sb2, err := ParseSignedBundle(enc1)
		if err != nil {
			t.Fatalf("re-encoded bundle does not parse: %v\n%s", err, enc1)
		}
		enc2, _ := sb2.MarshalJSON()
		if !bytes.Equal(enc1, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc1, enc2)
		}
		outer, err := json.Marshal(map[string]*SignedBundle{"bundle": sb})
		if err != nil {
			t.Fatal(err)
		}
		var back map[string]*SignedBundle
		if err := json.Unmarshal(outer, &back); err != nil {
			t.Fatalf("bundle inside another value: %v", err)
		}
		if enc3, _ := back["bundle"].MarshalJSON(); !bytes.Equal(enc1, enc3) {
			t.Fatalf("encoding changed inside another value:\n%s\n%s", enc1, enc3)
		}
		// Verification never panics, with or without a trusted bundle.
		VerifyBundle(sb, nil, t0)
		VerifyBundle(sb, fx.bundle, t0, "hq-root-00000000")
	})
}

// TestWriteFuzzSeeds writes the seed corpora when run with -write-fuzz-seeds.
func TestWriteFuzzSeeds(t *testing.T) {
	if !*writeFuzzSeeds {
		t.Skip("run with -write-fuzz-seeds to rewrite testdata/fuzz")
	}
	fx := newFixture(t)
	tk := fx.tok["tianjin"]
	iss := &TokenIssuer{Centre: "tianjin", Federation: testFederation, Key: tk}
	valid, err := iss.Issue("tju-tto", []Scope{ScopeRead, ScopePII}, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	expired, _ := iss.Issue("tju-tto", []Scope{ScopeRead}, time.Minute, t0.Add(-time.Hour))
	hqTok, _ := (&TokenIssuer{Centre: "hq", Federation: testFederation, Key: fx.tok["hq"]}).Issue("fund-platform", []Scope{ScopeRead, ScopeWrite, ScopeAdmin}, time.Hour, t0)
	kid := map[string]any{"kid": tk.ID}
	tokens := map[string]string{
		"valid":       valid,
		"valid-hq":    hqTok,
		"expired":     expired,
		"alg-none":    signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, baseClaims()),
		"hs256":       signToken(t, jwt.SigningMethodHS256, []byte(tk.Public), kid, baseClaims()),
		"no-kid":      signToken(t, jwt.SigningMethodEdDSA, tk.Private, nil, baseClaims()),
		"bad-scope":   signToken(t, jwt.SigningMethodEdDSA, tk.Private, kid, func() jwt.MapClaims { c := baseClaims(); c["scope"] = "read root"; return c }()),
		"dots":        strings.Repeat(".", 64),
		"garbage":     "eyJhbGciOiJFZERTQSJ9.e30.AAAA",
		"three-empty": "..",
	}
	for name, tok := range tokens {
		writeSeed(t, "FuzzVerifyToken", name, fmt.Sprintf("string(%q)", tok))
	}

	sb := signBundle(t, fx.bundle, fx.roots[0], fx.roots[1])
	good, _ := sb.MarshalJSON()
	html := clone(t, fx.bundle)
	html.Members[0].Name = "<R&D> centre \u2028"
	escaped, _ := json.Marshal(signBundle(t, html, fx.roots[2]))
	unsigned, _ := signBundle(t, fx.bundle).MarshalJSON()
	bundles := map[string][]byte{
		"signed":        good,
		"html-escaped":  escaped,
		"unsigned":      unsigned,
		"empty-payload": []byte(`{"payload":{},"signatures":[]}`),
		"duplicate":     []byte(`{"payload":{},"payload":{},"signatures":null}`),
		"short-sig":     []byte(`{"payload":{"version":1},"signatures":[{"kid":"a","sig":"AAAA"}]}`),
	}
	for name, b := range bundles {
		writeSeed(t, "FuzzParseSignedBundle", name, fmt.Sprintf("[]byte(%q)", b))
	}
	writeKeySeeds(t)
}

func writeSeed(t *testing.T, fuzzName, name, value string) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", fuzzName)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n"+value+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// The seeds must reach the accepting paths, or the fuzzers start far from them.
func TestFuzzSeedsReachAcceptance(t *testing.T) {
	fx := newFixture(t)
	tok := readSeed(t, "FuzzVerifyToken", "valid", "string(")
	if _, err := newVerifier(fx.bundle).Verify(tok); err != nil {
		t.Fatalf("valid token seed refused: %v", err)
	}
	for _, name := range []string{"signed", "html-escaped"} {
		sb, err := ParseSignedBundle([]byte(readSeed(t, "FuzzParseSignedBundle", name, "[]byte(")))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, err := VerifyBundle(sb, nil, t0); name == "signed" && err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
}

func readSeed(t *testing.T, fuzzName, name, prefix string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "fuzz", fuzzName, name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(strings.TrimPrefix(string(data), "go test fuzz v1\n"))
	s = strings.TrimSuffix(strings.TrimPrefix(s, prefix), ")")
	v, err := strconv.Unquote(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
