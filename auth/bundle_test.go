package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestBundleThreshold(t *testing.T) {
	f := newFixture(t)
	a, b, c := f.roots[0], f.roots[1], f.roots[2]
	next := clone(t, f.bundle)
	next.Version = 2

	stranger := fixedKey(t, "hq-root", "stranger")
	// A signature entry for a signer's id made with someone else's key.
	forged := func(sb *SignedBundle) {
		k := *stranger
		k.ID = b.ID
		if err := sb.Sign(&k); err != nil {
			t.Fatal(err)
		}
	}
	dup := func(sb *SignedBundle) { sb.Signatures = append(sb.Signatures, sb.Signatures[0]) }
	// A trusted bundle listing a's key a second time, under another id, as
	// Validate now refuses but an older build accepted.
	twice := clone(t, f.bundle)
	aAgain := twice.Signers[0]
	aAgain.ID = "hq-root-again"
	twice.Signers = append(twice.Signers, aAgain)
	sameKeyOtherID := func(sb *SignedBundle) {
		sb.Signatures = append(sb.Signatures, BundleSignature{KeyID: aAgain.ID, Sig: sb.Signatures[0].Sig})
	}

	tests := []struct {
		name    string
		signers []*KeyPair
		mutate  func(*SignedBundle)
		trusted *Bundle
		wantErr error
	}{
		{name: "one of three refused", signers: []*KeyPair{a}, wantErr: ErrTooFewSignatures},
		{name: "two of three accepted", signers: []*KeyPair{a, c}},
		{name: "three of three accepted", signers: []*KeyPair{a, b, c}},
		{name: "duplicate signature counts once", signers: []*KeyPair{a}, mutate: dup, wantErr: ErrTooFewSignatures},
		{name: "signing twice replaces", signers: []*KeyPair{a, a}, wantErr: ErrTooFewSignatures},
		{name: "one key under two signer ids counts once", signers: []*KeyPair{a}, mutate: sameKeyOtherID, trusted: twice, wantErr: ErrTooFewSignatures},
		{name: "one key under two signer ids, threshold met by another", signers: []*KeyPair{a, c}, mutate: sameKeyOtherID, trusted: twice},
		{name: "non-signer ignored", signers: []*KeyPair{a, f.tok["hq"]}, wantErr: ErrTooFewSignatures},
		{name: "non-signer ignored, threshold met", signers: []*KeyPair{a, stranger, c}},
		{name: "forged signature under a signer id", signers: []*KeyPair{a}, mutate: forged, wantErr: ErrTooFewSignatures},
		{name: "no signatures", wantErr: ErrTooFewSignatures},
		{name: "signer revoked in trusted bundle", signers: []*KeyPair{a, b}, trusted: withRevocation(t, f.bundle, "key:"+b.ID), wantErr: ErrTooFewSignatures},
		{name: "signer retired in trusted bundle", signers: []*KeyPair{a, b}, trusted: withSignerNotAfter(t, f.bundle, 1, t0.Add(-time.Hour)), wantErr: ErrTooFewSignatures},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sb := signBundle(t, next, tc.signers...)
			if tc.mutate != nil {
				tc.mutate(sb)
			}
			trusted := tc.trusted
			if trusted == nil {
				trusted = f.bundle
			}
			got, err := VerifyBundle(sb, trusted, t0)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("got %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Version != 2 {
				t.Fatalf("version %d", got.Version)
			}
		})
	}
}

func withRevocation(t *testing.T, b *Bundle, subject string) *Bundle {
	c := clone(t, b)
	c.Revocations = append(c.Revocations, Revocation{Subject: subject, Before: t0.Add(-time.Hour)})
	return c
}

func withSignerNotAfter(t *testing.T, b *Bundle, i int, at time.Time) *Bundle {
	c := clone(t, b)
	c.Signers[i].NotAfter = ptr(at)
	return c
}

// The threshold and signers that count are the trusted bundle's: a new bundle
// cannot lower its own bar or bring its own signers.
func TestBundleSignersComeFromTrusted(t *testing.T) {
	f := newFixture(t)
	a, b, c := f.roots[0], f.roots[1], f.roots[2]
	d := fixedKey(t, "hq-root", "root-d")

	// v2 drops signer a, adds d, threshold 1.
	v2 := clone(t, f.bundle)
	v2.Version = 2
	v2.Signers = []Key{b.BundleKey(t0.Add(-time.Hour)), c.BundleKey(t0.Add(-time.Hour)), d.BundleKey(t0.Add(-time.Hour))}
	v2.Threshold = 1
	if _, err := VerifyBundle(signBundle(t, v2, d), f.bundle, t0); !errors.Is(err, ErrTooFewSignatures) {
		t.Fatalf("v2 signed only by its own new signer: %v", err)
	}
	if _, err := VerifyBundle(signBundle(t, v2, b), f.bundle, t0); !errors.Is(err, ErrTooFewSignatures) {
		t.Fatalf("v2 lowering its own threshold: %v", err)
	}
	trusted, err := VerifyBundle(signBundle(t, v2, a, b), f.bundle, t0)
	if err != nil {
		t.Fatal(err)
	}
	// v3 signed by the removed signer a is refused; by d (now trusted) accepted.
	v3 := clone(t, trusted)
	v3.Version = 3
	if _, err := VerifyBundle(signBundle(t, v3, a), trusted, t0); !errors.Is(err, ErrTooFewSignatures) {
		t.Fatalf("v3 signed by a signer removed in v2: %v", err)
	}
	if _, err := VerifyBundle(signBundle(t, v3, d), trusted, t0); err != nil {
		t.Fatalf("v3 signed by a v2 signer: %v", err)
	}
}

func TestBundleUpgradeRules(t *testing.T) {
	f := newFixture(t)
	a, b := f.roots[0], f.roots[1]
	v2 := clone(t, f.bundle)
	v2.Version = 2
	v2.IssuedAt = t0

	v2b := clone(t, v2)
	v2b.Members[1].HTTP = []string{"https://tj.example.org"}
	other := clone(t, v2)
	other.Federation = "other-fed"
	v3 := clone(t, v2)
	v3.Version = 3

	tests := []struct {
		name          string
		current, next *Bundle
		want          error
	}{
		{"higher version", f.bundle, v2, nil},
		{"same bundle again", v2, clone(t, v2), nil},
		{"rollback", v3, v2, ErrRollback},
		{"rollback to v1", v2, f.bundle, ErrRollback},
		{"same version, different content", v2, v2b, ErrSameVersionDifferent},
		{"other federation", f.bundle, other, ErrWrongFederation},
		{"nothing held", nil, v2, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckUpgrade(tc.current, tc.next); !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("CheckUpgrade: got %v, want %v", err, tc.want)
			}
			if tc.current == nil {
				return
			}
			// VerifyBundle applies the same rule, even with enough signatures.
			_, err := VerifyBundle(signBundle(t, tc.next, a, b), tc.current, t0)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("VerifyBundle: got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestBundleExpiry(t *testing.T) {
	f := newFixture(t)
	a, b := f.roots[0], f.roots[1]
	sb := signBundle(t, f.bundle, a, b)
	if _, err := VerifyBundle(sb, nil, f.bundle.ExpiresAt.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyBundle(sb, nil, f.bundle.ExpiresAt); !errors.Is(err, ErrBundleExpired) {
		t.Fatalf("at expiry: %v", err)
	}
	if d := f.bundle.ExpiresIn(t0); d != 90*24*time.Hour {
		t.Fatalf("ExpiresIn = %v", d)
	}
	// An expired trusted bundle still authorises its successor.
	v2 := clone(t, f.bundle)
	v2.Version = 2
	v2.ExpiresAt = f.bundle.ExpiresAt.Add(90 * 24 * time.Hour)
	if _, err := VerifyBundle(signBundle(t, v2, a, b), f.bundle, f.bundle.ExpiresAt.Add(time.Hour)); err != nil {
		t.Fatalf("successor of an expired bundle: %v", err)
	}
}

func TestBundleBootstrap(t *testing.T) {
	f := newFixture(t)
	a, b, c := f.roots[0], f.roots[1], f.roots[2]
	sb := signBundle(t, f.bundle, a, b)

	tests := []struct {
		name string
		sb   *SignedBundle
		pins []string
		want error
	}{
		{"no pins", sb, nil, nil},
		{"pinned by id", sb, []string{"hq-root-00000000", b.ID}, nil},
		{"pinned by fingerprint", sb, []string{KeyFingerprint(a.Public)}, nil},
		{"pinned key did not sign", sb, []string{c.ID}, ErrBundleUntrusted},
		{"pin of a stranger", sb, []string{KeyFingerprint(f.tok["hq"].Public)}, ErrBundleUntrusted},
		{"below its own threshold", signBundle(t, f.bundle, a), []string{a.ID}, ErrTooFewSignatures},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := VerifyBundle(tc.sb, nil, t0, tc.pins...)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestSignedBundleEncoding(t *testing.T) {
	f := newFixture(t)
	a, b := f.roots[0], f.roots[1]
	ab := signBundle(t, f.bundle, a, b)
	ba := signBundle(t, f.bundle, b, a)
	j1, err := json.Marshal(ab)
	if err != nil {
		t.Fatal(err)
	}
	j2, _ := json.Marshal(ba)
	if !bytes.Equal(j1, j2) {
		t.Fatal("encoding depends on signing order")
	}
	if bytes.Contains(j1, []byte(`\u003c`)) {
		t.Fatal("HTML escaping in encoding")
	}
	sb, err := ParseSignedBundle(j1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyBundle(sb, nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckUpgrade(f.bundle, got); err != nil {
		t.Fatalf("round trip changed the bundle: %v", err)
	}
	if m, ok := got.Member("tianjin"); !ok || m.NameZH != "京津冀国家技术创新中心天津中心" {
		t.Fatalf("member lost in round trip: %+v", m)
	}
	// A payload with characters encoding/json would escape survives unchanged.
	html := clone(t, f.bundle)
	html.Members[0].Name = "<R&D> centre"
	hb := signBundle(t, html, a, b)
	hj, _ := json.Marshal(hb)
	if _, err := VerifyBundle(mustParse(t, hj), nil, t0); err != nil {
		t.Fatalf("bundle with <&>: %v", err)
	}
}

func mustParse(t *testing.T, data []byte) *SignedBundle {
	t.Helper()
	sb, err := ParseSignedBundle(data)
	if err != nil {
		t.Fatal(err)
	}
	return sb
}

func TestParseSignedBundleStrict(t *testing.T) {
	f := newFixture(t)
	sb := signBundle(t, f.bundle, f.roots[0], f.roots[1])
	good, _ := json.Marshal(sb)
	payload := string(sb.Payload)
	sig := func(i int) string { s, _ := json.Marshal(sb.Signatures[i]); return string(s) }

	tests := []struct {
		name string
		data string
	}{
		{"too large", `{"payload":` + payload + `,"signatures":[],"x":"` + strings.Repeat("a", MaxBundleBytes) + `"}`},
		{"not json", `payload`},
		{"unknown envelope field", `{"payload":` + payload + `,"signatures":[],"extra":1}`},
		{"duplicate envelope field", `{"payload":` + payload + `,"payload":` + payload + `,"signatures":[]}`},
		{"trailing data", string(good) + `{}`},
		{"payload not canonical", `{"payload":` + strings.Replace(payload, `{`, `{ `, 1) + `,"signatures":[]}`},
		{"payload not an object", `{"payload":"x","signatures":[]}`},
		{"payload null", `{"payload":null,"signatures":[]}`},
		{"payload missing", `{"signatures":[]}`},
		{"unknown payload field", `{"payload":` + strings.Replace(payload, `{"expires_at"`, `{"a":1,"expires_at"`, 1) + `,"signatures":[]}`},
		{"short signature", `{"payload":` + payload + `,"signatures":[{"kid":"hq-root-x","sig":"AAAA"}]}`},
		{"signature without kid", `{"payload":` + payload + `,"signatures":[{"kid":"","sig":"` + strings.Repeat("A", 86) + `=="}]}`},
		{"too many signatures", `{"payload":` + payload + `,"signatures":[` + strings.TrimSuffix(strings.Repeat(sig(0)+",", MaxBundleSignatures+1), ",") + `]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseSignedBundle([]byte(tc.data)); !errors.Is(err, ErrBundleInvalid) {
				t.Fatalf("got %v, want ErrBundleInvalid", err)
			}
		})
	}
	if _, err := ParseSignedBundle([]byte(" \n" + string(good) + "\n")); err != nil {
		t.Fatalf("white space around the document: %v", err)
	}
	// Any change to the payload breaks every signature.
	tampered := strings.Replace(string(good), `"version":1`, `"version":9`, 1)
	if _, err := VerifyBundle(mustParse(t, []byte(tampered)), nil, t0); !errors.Is(err, ErrTooFewSignatures) {
		t.Fatalf("tampered payload: %v", err)
	}
}

func TestBundleValidate(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		mutate func(b *Bundle)
	}{
		{"no federation", func(b *Bundle) { b.Federation = "" }},
		{"version 0", func(b *Bundle) { b.Version = 0 }},
		{"expires before issued", func(b *Bundle) { b.ExpiresAt = b.IssuedAt }},
		{"no signers", func(b *Bundle) { b.Signers = nil }},
		{"threshold 0", func(b *Bundle) { b.Threshold = 0 }},
		{"threshold above signers", func(b *Bundle) { b.Threshold = 4 }},
		{"signer key 31 bytes", func(b *Bundle) { b.Signers[0].Public = b.Signers[0].Public[:31] }},
		{"duplicate signer", func(b *Bundle) { b.Signers[1] = b.Signers[0] }},
		{"one signer key under two ids", func(b *Bundle) { b.Signers[1].Public = b.Signers[0].Public }},
		{"member id not a centre id", func(b *Bundle) { b.Members[0].ID = "HQ" }},
		{"member id empty", func(b *Bundle) { b.Members[0].ID = "" }},
		{"duplicate member", func(b *Bundle) { b.Members[1].ID = "hq" }},
		{"record key 33 bytes", func(b *Bundle) { b.Members[1].RecordKeys[0].Public = append(b.Members[1].RecordKeys[0].Public, 0) }},
		{"token key id reused", func(b *Bundle) { b.Members[1].TokenKeys[0].ID = b.Members[2].RecordKeys[0].ID }},
		{"key id with space", func(b *Bundle) { b.Members[1].TokenKeys[0].ID = "tianjin tok" }},
		{"key window ends before start", func(b *Bundle) { b.Members[1].TokenKeys[0].NotAfter = ptr(b.Members[1].TokenKeys[0].NotBefore) }},
		{"key without not_before", func(b *Bundle) { b.Members[1].TokenKeys[0].NotBefore = time.Time{} }},
		{"peer listed twice", func(b *Bundle) { b.Members[1].Peers[0].ID = b.Members[2].Peers[0].ID }},
		{"revocation subject unknown", func(b *Bundle) { b.Revocations = []Revocation{{Subject: "user:x", Before: t0}} }},
		{"revocation sub without partner", func(b *Bundle) { b.Revocations = []Revocation{{Subject: "sub:tianjin", Before: t0}} }},
		{"revocation without time", func(b *Bundle) { b.Revocations = []Revocation{{Subject: "jti:x"}} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := clone(t, f.bundle)
			tc.mutate(b)
			if err := b.Validate(); !errors.Is(err, ErrBundleInvalid) {
				t.Fatalf("got %v, want ErrBundleInvalid", err)
			}
			if _, err := EncodeBundle(b); err == nil {
				t.Fatal("EncodeBundle accepted an invalid bundle")
			}
		})
	}
}

func TestBundleKeys(t *testing.T) {
	f := newFixture(t)
	b := clone(t, f.bundle)
	tj := f.rec["tianjin"]
	old := b.Members[1].RecordKeys[0] // NotBefore t0-30d
	retired := fixedKey(t, "tianjin-rec", "retired")
	b.Members[1].RecordKeys = append(b.Members[1].RecordKeys, Key{ID: retired.ID, Public: retired.Public, NotBefore: t0.Add(-60 * 24 * time.Hour), NotAfter: ptr(t0.Add(-30 * 24 * time.Hour))})
	b.Members[2].Removed = ptr(t0)
	b.Revocations = []Revocation{{Subject: "key:" + f.rec["xiongan"].ID, Before: t0}}

	tests := []struct {
		name        string
		origin, kid string
		at          time.Time
		want        error
	}{
		{"valid", "tianjin", tj.ID, t0, nil},
		{"at not_before", "tianjin", tj.ID, old.NotBefore, nil},
		{"before not_before", "tianjin", tj.ID, old.NotBefore.Add(-time.Nanosecond), ErrKeyNotValidAt},
		{"retired key, inside its window", "tianjin", retired.ID, t0.Add(-31 * 24 * time.Hour), nil},
		{"retired key, at not_after", "tianjin", retired.ID, t0.Add(-30 * 24 * time.Hour), ErrKeyNotValidAt},
		{"unknown origin", "langfang", tj.ID, t0, ErrUnknownKey},
		{"unknown kid", "tianjin", "tianjin-rec-00000000", t0, ErrUnknownKey},
		{"another member's key", "tianjin", f.rec["hebei"].ID, t0, ErrUnknownKey},
		{"token key as record key", "tianjin", f.tok["tianjin"].ID, t0, ErrUnknownKey},
		{"removed member, before removal", "hebei", f.rec["hebei"].ID, t0.Add(-time.Second), nil},
		{"removed member, at removal", "hebei", f.rec["hebei"].ID, t0, ErrKeyNotValidAt},
		{"revoked, signed before", "xiongan", f.rec["xiongan"].ID, t0.Add(-time.Second), ErrKeyRevoked},
		{"revoked, signed at revocation time", "xiongan", f.rec["xiongan"].ID, t0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pub, err := b.RecordKey(tc.origin, tc.kid, tc.at)
			if tc.want == nil {
				if err != nil || len(pub) != 32 {
					t.Fatalf("got %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := b.TokenKey("tianjin", f.tok["tianjin"].ID, t0); err != nil {
		t.Fatalf("TokenKey: %v", err)
	}
	if _, err := b.TokenKey("tianjin", tj.ID, t0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("record key as token key: %v", err)
	}
}

func TestBundlePeersAndRevocations(t *testing.T) {
	f := newFixture(t)
	b := clone(t, f.bundle)
	tjPeer, hbPeer, xaPeer := b.Members[1].Peers[0].ID, b.Members[2].Peers[0].ID, b.Members[3].Peers[0].ID
	b.Members[2].Removed = ptr(t0)
	b.Revocations = []Revocation{
		{Subject: "peer:" + xaPeer, Before: t0},
		{Subject: "jti:abc", Before: t0},
	}
	if m, ok := b.PeerAllowed(tjPeer); !ok || m != "tianjin" {
		t.Errorf("tianjin peer: %q %v", m, ok)
	}
	for _, p := range []string{hbPeer, xaPeer, "12D3KooWStranger", ""} {
		if m, ok := b.PeerAllowed(p); ok {
			t.Errorf("peer %q allowed as %s", p, m)
		}
	}
	if !b.Revoked("jti:abc", t0.Add(-time.Second)) {
		t.Error("issued before Before: not revoked")
	}
	if b.Revoked("jti:abc", t0) || b.Revoked("jti:abc", t0.Add(time.Second)) {
		t.Error("issued at or after Before: revoked")
	}
	if b.Revoked("jti:abd", t0.Add(-time.Second)) {
		t.Error("other subject revoked")
	}
	var nilBundle *Bundle
	if _, ok := nilBundle.PeerAllowed(tjPeer); ok || nilBundle.Revoked("jti:abc", t0) {
		t.Error("nil bundle allows")
	}
}

func TestJWKS(t *testing.T) {
	f := newFixture(t)
	b := clone(t, f.bundle)
	set := b.JWKS("tianjin", t0)
	if len(set.Keys) != 1 || set.Keys[0].KeyID != f.tok["tianjin"].ID || set.Keys[0].Curve != "Ed25519" || set.Keys[0].Alg != "EdDSA" {
		t.Fatalf("JWKS = %+v", set)
	}
	// A retired key stays listed: tokens it issued before retiring still verify.
	retired := t0.Add(-time.Minute)
	m, _ := b.Member("tianjin")
	m.TokenKeys[0].NotAfter = &retired
	if set := b.JWKS("tianjin", t0); len(set.Keys) != 1 {
		t.Fatalf("retired key not published: %+v", set)
	}
	// Revoked before a time to come: nothing it signed is accepted now.
	b.Revocations = []Revocation{{Subject: "key:" + f.tok["tianjin"].ID, Before: t0.Add(time.Hour)}}
	if set := b.JWKS("tianjin", t0); len(set.Keys) != 0 {
		t.Fatalf("revoked key published: %+v", set)
	}
	// Revoked only before a past time: what it signs after is accepted.
	b.Revocations = []Revocation{{Subject: "key:" + f.tok["tianjin"].ID, Before: t0.Add(-time.Hour)}}
	if set := b.JWKS("tianjin", t0); len(set.Keys) != 1 {
		t.Fatalf("key revoked before a past time not published: %+v", set)
	}
	if js, _ := json.Marshal(b.JWKS("nowhere", t0)); string(js) != `{"keys":[]}` {
		t.Fatalf("unknown member: %s", js)
	}
}
