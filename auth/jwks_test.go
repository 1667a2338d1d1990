package auth

import (
	"testing"
	"time"
)

// TestJWKSSaysWhenAKeyWasRevokedBefore: a key revoked only before a past time
// is published with revoked_before, so that a verifier refuses the tokens it
// signed earlier, which every node refuses.
func TestJWKSSaysWhenAKeyWasRevokedBefore(t *testing.T) {
	f := newFixture(t)
	b := clone(t, f.bundle)
	cut := t0.Add(-time.Hour)
	b.Revocations = []Revocation{{Subject: "key:" + f.tok["tianjin"].ID, Before: cut}}
	set := b.JWKS("tianjin", t0)
	if len(set.Keys) != 1 || set.Keys[0].RevokedBefore == nil || *set.Keys[0].RevokedBefore != cut.Unix() {
		t.Fatalf("key revoked before %s: %+v, want it with revoked_before", cut.Format(time.RFC3339), set)
	}
}
