package api

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"liandong/auth"
)

// A key revoked only for what it signed before a time (federation revoke
// --subject key:KID --before T) still signs tokens the node accepts, issued
// after T. The JWKS leaves the key out ("tokens under them are refused
// anyway"), so a partner verifying tokens with the JWKS refuses every token the
// node accepts under that key.
func TestJWKSKeepsKeyRevokedOnlyBeforeAPastTime(t *testing.T) {
	e := newFakeEnv(t, &fakeService{})
	tok := e.token(t, "tianjin", auth.ScopeRead)
	hdr, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var h struct {
		Kid string `json:"kid"`
	}
	json.Unmarshal(hdr, &h)
	e.bundle.Revocations = append(e.bundle.Revocations, auth.Revocation{
		Subject: auth.RevokeKey + h.Kid, Before: time.Now().Add(-time.Minute), Reason: "tokens of a stolen laptop"})

	wantStatus(t, e.do(t, req{method: "GET", path: "/v1/records", token: tok}), http.StatusOK)
	r := e.do(t, req{method: "GET", path: "/.well-known/jwks.json"})
	wantStatus(t, r, http.StatusOK)
	var doc struct {
		Keys []struct {
			Kid           string `json:"kid"`
			RevokedBefore *int64 `json:"revoked_before"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	for _, k := range doc.Keys {
		if k.Kid == h.Kid {
			if k.RevokedBefore == nil || *k.RevokedBefore != e.bundle.Revocations[len(e.bundle.Revocations)-1].Before.Unix() {
				t.Fatalf("key %s published without its revoked_before: %s", h.Kid, r.body)
			}
			// Revoked before a time to come: nothing it signed is accepted now.
			e.bundle.Revocations[len(e.bundle.Revocations)-1].Before = time.Now().Add(time.Hour)
			r := e.do(t, req{method: "GET", path: "/.well-known/jwks.json"})
			if strings.Contains(string(r.body), h.Kid) {
				t.Fatalf("a key revoked outright is published: %s", r.body)
			}
			return
		}
	}
	t.Fatalf("the node accepts a token signed by %s (issued after the revocation's before), but the JWKS leaves the key out: %s", h.Kid, r.body)
}
