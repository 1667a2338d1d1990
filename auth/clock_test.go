package auth

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestTokenClockSkew: what a partner sees at a node whose clock is off. Within
// the leeway (30 s by default) a token is accepted; beyond it a token issued
// now is refused 401 as not yet valid when the node's clock is behind, or as
// expired when it is ahead past exp, and the message sets the token's times
// beside the node's clock. A token the cache already holds gets the same
// answer as a fresh verification.
func TestTokenClockSkew(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	k, err := GenerateKey("tianjin-tok")
	if err != nil {
		t.Fatal(err)
	}
	member := Member{ID: "tianjin", TokenKeys: []Key{{ID: k.ID, Public: k.Public, NotBefore: now.Add(-time.Hour)}}}
	b := &Bundle{Federation: "jjj", Version: 1, Members: []Member{member}}
	iss := TokenIssuer{Centre: "tianjin", Federation: "jjj", Key: k}
	tok, err := iss.Issue("partner", []Scope{ScopeRead}, 5*time.Minute, now) // iat = nbf = now, exp = now+5m
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		skew time.Duration
		want error // nil: accepted
	}{
		{-10 * time.Minute, ErrTokenNotYetValid},
		{-31 * time.Second, ErrTokenNotYetValid},
		{-29 * time.Second, nil},
		{-2 * time.Second, nil},
		{2 * time.Second, nil},
		{5*time.Minute + 29*time.Second, nil},
		{5*time.Minute + 31*time.Second, ErrTokenExpired},
		{10 * time.Minute, ErrTokenExpired},
	}
	for _, c := range cases {
		for _, cached := range []bool{false, true} {
			clock := now.Add(c.skew)
			v := &TokenVerifier{Bundle: func() *Bundle { return b }, Now: func() time.Time { return clock }}
			if cached {
				// Verified (and cached) while the clock was right, then set off.
				v.Cache = &TokenCache{}
				clock = now
				if _, err := v.Verify(tok); err != nil {
					t.Fatal(err)
				}
				clock = now.Add(c.skew)
			}
			_, err := v.Verify(tok)
			switch {
			case c.want == nil && err != nil:
				t.Errorf("clock %v off (cached %v): refused: %v", c.skew, cached, err)
			case c.want != nil && !errors.Is(err, c.want):
				t.Errorf("clock %v off (cached %v): %v, want %v", c.skew, cached, err, c.want)
			case c.want != nil && !strings.Contains(err.Error(), "this node's clock reads "+clock.Format(time.RFC3339)):
				t.Errorf("clock %v off: the message does not show the node's clock: %v", c.skew, err)
			}
		}
	}
}
