package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func newVerifier(b *Bundle) *TokenVerifier {
	return &TokenVerifier{Federation: testFederation, Bundle: func() *Bundle { return b }, Now: func() time.Time { return t0 }}
}

func TestIssueAndVerify(t *testing.T) {
	f := newFixture(t)
	iss := &TokenIssuer{Centre: "tianjin", Federation: testFederation, Key: f.tok["tianjin"]}
	tok, err := iss.Issue("tju-tto", []Scope{ScopeRead, ScopePII, ScopeRead}, time.Hour, t0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := newVerifier(f.bundle).Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Anonymous || p.Centre != "tianjin" || p.Subject != "tju-tto" || p.TokenID == "" ||
		!p.IssuedAt.Equal(t0) || !p.ExpiresAt.Equal(t0.Add(time.Hour)) || len(p.Scopes) != 2 ||
		!p.Has(ScopeRead) || !p.Has(ScopePII) || p.Has(ScopeWrite) {
		t.Fatalf("principal = %+v", p)
	}
	// The header names the key and the algorithm.
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if !strings.Contains(string(hdr), `"kid":"`+f.tok["tianjin"].ID+`"`) || !strings.Contains(string(hdr), `"alg":"EdDSA"`) {
		t.Fatalf("header %s", hdr)
	}
	// Any member's node accepts it: the verifier has no notion of "this centre".
	// Two tokens never share a jti.
	tok2, _ := iss.Issue("tju-tto", []Scope{ScopeRead}, time.Hour, t0)
	p2, err := newVerifier(f.bundle).Verify(tok2)
	if err != nil || p2.TokenID == p.TokenID {
		t.Fatalf("second token: %v, jti %q vs %q", err, p2.TokenID, p.TokenID)
	}
	// Refused inputs to Issue.
	for name, fn := range map[string]func() error{
		"unknown scope": func() error { _, err := iss.Issue("x", []Scope{"superuser"}, time.Hour, t0); return err },
		"empty sub":     func() error { _, err := iss.Issue("", nil, time.Hour, t0); return err },
		"sub with space": func() error {
			_, err := iss.Issue("a b", nil, time.Hour, t0)
			return err
		},
		"zero ttl": func() error { _, err := iss.Issue("x", nil, 0, t0); return err },
		"no key": func() error {
			_, err := (&TokenIssuer{Centre: "tianjin", Federation: "f"}).Issue("x", nil, time.Hour, t0)
			return err
		},
		"bad centre": func() error {
			_, err := (&TokenIssuer{Centre: "Tianjin", Federation: "f", Key: f.tok["tianjin"]}).Issue("x", nil, time.Hour, t0)
			return err
		},
	} {
		if fn() == nil {
			t.Errorf("Issue with %s: no error", name)
		}
	}
}

// claims returns valid claims for a tianjin token at t0; edit before signing.
func baseClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss":   "tianjin",
		"sub":   "tju-tto",
		"aud":   []string{testFederation},
		"iat":   t0.Unix(),
		"nbf":   t0.Unix(),
		"exp":   t0.Add(time.Hour).Unix(),
		"jti":   "tok-1",
		"scope": "read",
	}
}

// signToken signs claims with method and key, with header fields set (nil value: delete).
func signToken(t testing.TB, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		if v == nil {
			delete(tok.Header, k)
		} else {
			tok.Header[k] = v
		}
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestVerifyRefusals(t *testing.T) {
	f := newFixture(t)
	tk := f.tok["tianjin"]
	kid := map[string]any{"kid": tk.ID}
	ed := func(edit func(jwt.MapClaims)) string {
		c := baseClaims()
		if edit != nil {
			edit(c)
		}
		return signToken(t, jwt.SigningMethodEdDSA, tk.Private, kid, c)
	}
	del := func(keys ...string) func(jwt.MapClaims) {
		return func(c jwt.MapClaims) {
			for _, k := range keys {
				delete(c, k)
			}
		}
	}
	set := func(k string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[k] = v } }

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	valid := ed(nil)
	parts := strings.Split(valid, ".")

	// Bundle with revocations, a removed member and a retired key.
	b := clone(t, f.bundle)
	b.Revocations = []Revocation{
		{Subject: "jti:revoked-jti", Before: t0.Add(time.Second)},
		{Subject: "sub:tianjin/revoked-partner", Before: t0.Add(time.Second)},
	}
	b.Members[2].Removed = ptr(t0.Add(-time.Hour)) // hebei
	retired := fixedKey(t, "tianjin-tok", "retired")
	b.Members[1].TokenKeys = append(b.Members[1].TokenKeys, Key{ID: retired.ID, Public: retired.Public,
		NotBefore: t0.Add(-48 * time.Hour), NotAfter: ptr(t0.Add(-time.Hour))})
	revokedKey := fixedKey(t, "tianjin-tok", "revoked")
	b.Members[1].TokenKeys = append(b.Members[1].TokenKeys, Key{ID: revokedKey.ID, Public: revokedKey.Public, NotBefore: t0.Add(-48 * time.Hour)})
	b.Revocations = append(b.Revocations, Revocation{Subject: "key:" + revokedKey.ID, Before: t0.Add(time.Hour)})

	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"alg none", signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, kid, baseClaims()), ErrTokenAlgorithm},
		{"alg none, hand-made", b64(`{"alg":"none","kid":"`+tk.ID+`"}`) + "." + parts[1] + ".", ErrTokenAlgorithm},
		{"HS256 keyed with the public key", signToken(t, jwt.SigningMethodHS256, []byte(tk.Public), kid, baseClaims()), ErrTokenAlgorithm},
		{"HS256 keyed with the base64 public key", signToken(t, jwt.SigningMethodHS256, []byte(base64.StdEncoding.EncodeToString(tk.Public)), kid, baseClaims()), ErrTokenAlgorithm},
		{"RS256", signToken(t, jwt.SigningMethodRS256, rsaKey, kid, baseClaims()), ErrTokenAlgorithm},
		{"ES256", signToken(t, jwt.SigningMethodES256, ecKey, kid, baseClaims()), ErrTokenAlgorithm},
		{"alg missing", b64(`{"kid":"`+tk.ID+`"}`) + "." + parts[1] + "." + parts[2], ErrTokenAlgorithm},
		{"alg unknown", b64(`{"alg":"Ed448","kid":"`+tk.ID+`"}`) + "." + parts[1] + "." + parts[2], ErrTokenAlgorithm},
		{"unknown kid", signToken(t, jwt.SigningMethodEdDSA, tk.Private, map[string]any{"kid": "tianjin-tok-00000000"}, baseClaims()), ErrTokenUnknownKey},
		{"kid of another member", signToken(t, jwt.SigningMethodEdDSA, f.tok["hq"].Private, map[string]any{"kid": f.tok["hq"].ID}, baseClaims()), ErrTokenUnknownKey},
		{"kid of a record key", signToken(t, jwt.SigningMethodEdDSA, f.rec["tianjin"].Private, map[string]any{"kid": f.rec["tianjin"].ID}, baseClaims()), ErrTokenUnknownKey},
		{"missing kid", signToken(t, jwt.SigningMethodEdDSA, tk.Private, nil, baseClaims()), ErrTokenUnknownKey},
		{"kid not a string", signToken(t, jwt.SigningMethodEdDSA, tk.Private, map[string]any{"kid": 7}, baseClaims()), ErrTokenUnknownKey},
		{"retired key, iat after not_after", signToken(t, jwt.SigningMethodEdDSA, retired.Private, map[string]any{"kid": retired.ID}, baseClaims()), ErrTokenUnknownKey},
		{"revoked key", signToken(t, jwt.SigningMethodEdDSA, revokedKey.Private, map[string]any{"kid": revokedKey.ID}, baseClaims()), ErrTokenRevoked},
		{"signed by another key under this kid", signToken(t, jwt.SigningMethodEdDSA, f.tok["hq"].Private, kid, baseClaims()), ErrTokenSignature},
		{"signature truncated", valid[:len(valid)-4], ErrTokenInvalid},
		{"payload swapped", parts[0] + "." + b64(fmt.Sprintf(`{"iss":"tianjin","sub":"x","aud":["jjj-nti"],"iat":%d,"exp":%d,"jti":"y","scope":"admin"}`, t0.Unix(), t0.Add(time.Hour).Unix())) + "." + parts[2], ErrTokenSignature},
		{"crit header", signToken(t, jwt.SigningMethodEdDSA, tk.Private, map[string]any{"kid": tk.ID, "crit": []string{"x"}, "x": 1}, baseClaims()), ErrTokenMalformed},
		{"missing exp", ed(del("exp")), ErrTokenClaims},
		{"missing iss", ed(del("iss")), ErrTokenClaims},
		{"missing aud", ed(del("aud")), ErrTokenClaims},
		{"missing iat", ed(del("iat")), ErrTokenClaims},
		{"missing sub", ed(del("sub")), ErrTokenClaims},
		{"missing jti", ed(del("jti")), ErrTokenClaims},
		{"wrong aud", ed(set("aud", []string{"other-fed"})), ErrTokenClaims},
		{"aud as a string, wrong", ed(set("aud", "other-fed")), ErrTokenClaims},
		{"exp not a number", ed(set("exp", "tomorrow")), ErrTokenMalformed},
		{"expired beyond leeway", ed(set("exp", t0.Add(-31*time.Second).Unix())), ErrTokenExpired},
		{"nbf in future", ed(set("nbf", t0.Add(time.Minute).Unix())), ErrTokenNotYetValid},
		{"iat in future", ed(set("iat", t0.Add(time.Minute).Unix())), ErrTokenNotYetValid},
		{"revoked jti", ed(set("jti", "revoked-jti")), ErrTokenRevoked},
		{"revoked sub", ed(set("sub", "revoked-partner")), ErrTokenRevoked},
		{"removed member", signToken(t, jwt.SigningMethodEdDSA, f.tok["hebei"].Private, map[string]any{"kid": f.tok["hebei"].ID}, func() jwt.MapClaims { c := baseClaims(); c["iss"] = "hebei"; return c }()), ErrTokenIssuer},
		{"issuer not a member", ed(set("iss", "langfang")), ErrTokenIssuer},
		{"unknown scope", ed(set("scope", "read superuser")), ErrTokenScope},
		{"scope not a string", ed(set("scope", []string{"read"})), ErrTokenMalformed},
		{"10k-dot header", strings.Repeat(".", 10000), ErrTokenMalformed},
		{"8k-dot header, under the size limit", strings.Repeat(".", MaxTokenBytes), ErrTokenMalformed},
		{"10k-dot header after a valid start", parts[0] + strings.Repeat(".", 10000) + parts[1], ErrTokenMalformed},
		{"over 8 KiB", ed(set("pad", strings.Repeat("x", MaxTokenBytes))), ErrTokenMalformed},
		{"four parts", valid + ".x", ErrTokenMalformed},
		{"empty", "", ErrTokenMalformed},
		{"header not base64", "!!." + parts[1] + "." + parts[2], ErrTokenMalformed},
		{"header not json", b64("nope") + "." + parts[1] + "." + parts[2], ErrTokenMalformed},
		{"padded segments", parts[0] + "=." + parts[1] + "." + parts[2], ErrTokenMalformed},
	}
	v := newVerifier(b)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := v.Verify(tc.token)
			if err == nil {
				t.Fatalf("accepted: %+v", p)
			}
			if !errors.Is(err, tc.want) || !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			t.Log(err)
		})
	}

	// What the refusals are measured against is accepted.
	for name, tok := range map[string]string{
		"valid":                         valid,
		"expired within leeway":         ed(set("exp", t0.Add(-29*time.Second).Unix())),
		"iat within leeway":             ed(set("iat", t0.Add(29*time.Second).Unix())),
		"aud as a string":               ed(set("aud", testFederation)),
		"aud among several":             ed(set("aud", []string{"x", testFederation})),
		"no nbf":                        ed(del("nbf")),
		"empty scope":                   ed(set("scope", "")),
		"revoked jti issued after":      ed(func(c jwt.MapClaims) { c["jti"] = "revoked-jti"; c["iat"] = t0.Add(time.Second).Unix() }),
		"retired key, iat before":       signToken(t, jwt.SigningMethodEdDSA, retired.Private, map[string]any{"kid": retired.ID}, func() jwt.MapClaims { c := baseClaims(); c["iat"] = t0.Add(-2 * time.Hour).Unix(); return c }()),
		"other member's token, own key": signToken(t, jwt.SigningMethodEdDSA, f.tok["hq"].Private, map[string]any{"kid": f.tok["hq"].ID}, func() jwt.MapClaims { c := baseClaims(); c["iss"] = "hq"; return c }()),
		"revoked key, issued after time": signToken(t, jwt.SigningMethodEdDSA, revokedKey.Private, map[string]any{"kid": revokedKey.ID}, func() jwt.MapClaims {
			c := baseClaims()
			c["iat"] = t0.Add(time.Hour).Unix()
			c["nbf"] = c["iat"]
			c["exp"] = t0.Add(2 * time.Hour).Unix()
			return c
		}()),
	} {
		vv := v
		if strings.HasPrefix(name, "revoked key") {
			vv = &TokenVerifier{Federation: testFederation, Bundle: v.Bundle, Now: func() time.Time { return t0.Add(time.Hour) }}
		}
		if _, err := vv.Verify(tok); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestVerifyConfiguration(t *testing.T) {
	f := newFixture(t)
	iss := &TokenIssuer{Centre: "tianjin", Federation: testFederation, Key: f.tok["tianjin"]}
	tok, _ := iss.Issue("p", []Scope{ScopeRead}, time.Hour, t0)
	if _, err := (&TokenVerifier{Now: func() time.Time { return t0 }}).Verify(tok); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("no bundle: %v", err)
	}
	if _, err := (&TokenVerifier{Bundle: func() *Bundle { return nil }}).Verify(tok); !errors.Is(err, ErrTokenInvalid) {
		t.Fatalf("nil bundle: %v", err)
	}
	// Federation defaults to the bundle's.
	if _, err := (&TokenVerifier{Bundle: func() *Bundle { return f.bundle }, Now: func() time.Time { return t0 }}).Verify(tok); err != nil {
		t.Fatalf("federation from bundle: %v", err)
	}
	// A verifier for another federation refuses it.
	if _, err := (&TokenVerifier{Federation: "other", Bundle: func() *Bundle { return f.bundle }, Now: func() time.Time { return t0 }}).Verify(tok); !errors.Is(err, ErrTokenClaims) {
		t.Fatalf("other federation: %v", err)
	}
	// Leeway is configurable; negative means none.
	late := func() time.Time { return t0.Add(time.Hour + 10*time.Second) }
	if _, err := (&TokenVerifier{Bundle: func() *Bundle { return f.bundle }, Now: late}).Verify(tok); err != nil {
		t.Fatalf("default leeway: %v", err)
	}
	if _, err := (&TokenVerifier{Bundle: func() *Bundle { return f.bundle }, Now: late, Leeway: -1}).Verify(tok); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("no leeway: %v", err)
	}
}

// TestVerifierExpiry: Expiry is the first instant Verify refuses the token as
// expired, leeway included, so a stream ends exactly when a new request with
// the token would be refused.
func TestVerifierExpiry(t *testing.T) {
	f := newFixture(t)
	iss := &TokenIssuer{Centre: "tianjin", Federation: testFederation, Key: f.tok["tianjin"]}
	tok, _ := iss.Issue("p", []Scope{ScopeRead}, time.Hour, t0)
	for _, leeway := range []time.Duration{0, -1, 5 * time.Second} {
		v := &TokenVerifier{Bundle: func() *Bundle { return f.bundle }, Leeway: leeway, Now: func() time.Time { return t0 }}
		p, err := v.Verify(tok)
		if err != nil {
			t.Fatal(err)
		}
		end := v.Expiry(p)
		v.Now = func() time.Time { return end.Add(-time.Second) }
		if _, err := v.Verify(tok); err != nil {
			t.Errorf("leeway %v: refused a second before Expiry %v: %v", leeway, end, err)
		}
		v.Now = func() time.Time { return end.Add(time.Second) }
		if _, err := v.Verify(tok); !errors.Is(err, ErrTokenExpired) {
			t.Errorf("leeway %v: a second after Expiry %v: %v, want expired", leeway, end, err)
		}
	}
	if !(&TokenVerifier{}).Expiry(AnonymousPrincipal()).IsZero() {
		t.Error("the anonymous principal expires")
	}
}

func TestParseScopes(t *testing.T) {
	got, err := ParseScopes(" read  pii read write admin ")
	if err != nil || FormatScopes(got) != "read pii write admin" {
		t.Fatalf("got %v %v", got, err)
	}
	if _, err := ParseScopes("read Read"); !errors.Is(err, ErrTokenScope) {
		t.Fatalf("case matters: %v", err)
	}
	var p *Principal
	if p.Has(ScopeRead) || AnonymousPrincipal().Has(ScopeRead) || p.String() != "anonymous" {
		t.Fatal("nil or anonymous principal has a scope")
	}
}

// TestTokenCache: a cached token is answered without verifying again, but never
// past its expiry or across a bundle change (which may revoke it).
func TestTokenCache(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	k, err := GenerateKey("tianjin-tok")
	if err != nil {
		t.Fatal(err)
	}
	member := Member{ID: "tianjin", TokenKeys: []Key{{ID: k.ID, Public: k.Public, NotBefore: now.Add(-time.Hour)}}}
	b1 := &Bundle{Federation: "jjj", Version: 1, Members: []Member{member}}
	current := b1
	clock := now
	v := &TokenVerifier{Bundle: func() *Bundle { return current }, Now: func() time.Time { return clock }, Cache: &TokenCache{Size: 4}}
	iss := TokenIssuer{Centre: "tianjin", Federation: "jjj", Key: k}
	tok, err := iss.Issue("partner", []Scope{ScopeRead}, time.Minute, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	if v.Cache.get(tok, b1, clock, DefaultLeeway) == nil {
		t.Fatal("verified token not cached")
	}
	// A new bundle revoking the token: the cache must not answer for it.
	b2 := &Bundle{Federation: "jjj", Version: 2, Members: []Member{member},
		Revocations: []Revocation{{Subject: RevokeSubject + "tianjin/partner", Before: now.Add(time.Hour)}}}
	current = b2
	if _, err := v.Verify(tok); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("revoked by a new bundle, got %v", err)
	}
	// Expiry applies to cached tokens too.
	current = b1
	if _, err := v.Verify(tok); err != nil {
		t.Fatal(err)
	}
	clock = now.Add(2 * time.Minute)
	if _, err := v.Verify(tok); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("expired token answered from cache: %v", err)
	}
	// The cache stays bounded.
	clock = now
	for i := 0; i < 20; i++ {
		t2, _ := iss.Issue(fmt.Sprint("p", i), []Scope{ScopeRead}, time.Minute, now)
		v.Verify(t2)
	}
	if n := len(v.Cache.entries); n > 4 {
		t.Fatalf("cache holds %d entries, bound 4", n)
	}
}
