package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"liandong/schema"
)

// Scope is one OAuth-style permission carried by a token.
type Scope string

// Scopes. See the package documentation for what each allows.
const (
	ScopeRead  Scope = "read"
	ScopePII   Scope = "pii"
	ScopeWrite Scope = "write"
	ScopeAdmin Scope = "admin"
)

// AllScopes lists the known scopes.
var AllScopes = []Scope{ScopeRead, ScopePII, ScopeWrite, ScopeAdmin}

// Valid reports whether s is a known scope.
func (s Scope) Valid() bool { return slices.Contains(AllScopes, s) }

// ParseScopes parses a space-separated scope list ("read pii"), refusing unknown
// scopes (ErrTokenScope). Duplicates are dropped; order is kept.
func ParseScopes(s string) ([]Scope, error) {
	var out []Scope
	for _, f := range strings.Fields(s) {
		sc := Scope(f)
		if !sc.Valid() {
			return nil, fmt.Errorf("%w %q (known: read, pii, write, admin)", ErrTokenScope, f)
		}
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out, nil
}

// FormatScopes joins scopes with spaces.
func FormatScopes(scopes []Scope) string {
	parts := make([]string, len(scopes))
	for i, s := range scopes {
		parts[i] = string(s)
	}
	return strings.Join(parts, " ")
}

// Claims are the claims of a liandong token.
type Claims struct {
	jwt.RegisteredClaims
	Scope string `json:"scope"` // space-separated, OAuth style
}

// MaxTokenBytes bounds a token; longer ones are refused before any parsing.
const MaxTokenBytes = 8 << 10

// DefaultLeeway is the clock skew TokenVerifier allows when Leeway is 0.
const DefaultLeeway = 30 * time.Second

// Token errors. Every refusal wraps ErrTokenInvalid and one of the others;
// ErrTokenNotYetValid and ErrTokenScope also wrap ErrTokenClaims.
var (
	ErrTokenInvalid     = errors.New("invalid token")
	ErrTokenMalformed   = fmt.Errorf("%w: malformed", ErrTokenInvalid)
	ErrTokenAlgorithm   = fmt.Errorf("%w: signing algorithm not allowed (only EdDSA)", ErrTokenInvalid)
	ErrTokenUnknownKey  = fmt.Errorf("%w: unknown signing key", ErrTokenInvalid)
	ErrTokenSignature   = fmt.Errorf("%w: bad signature", ErrTokenInvalid)
	ErrTokenIssuer      = fmt.Errorf("%w: issuer is not a federation member", ErrTokenInvalid)
	ErrTokenExpired     = fmt.Errorf("%w: expired", ErrTokenInvalid)
	ErrTokenRevoked     = fmt.Errorf("%w: revoked", ErrTokenInvalid)
	ErrTokenClaims      = fmt.Errorf("%w: bad claims", ErrTokenInvalid)
	ErrTokenNotYetValid = fmt.Errorf("%w: not valid yet", ErrTokenClaims)
	ErrTokenScope       = fmt.Errorf("%w: unknown scope", ErrTokenClaims)
)

// TokenIssuer issues tokens with one of its centre's token keys.
type TokenIssuer struct {
	Centre, Federation string
	Key                *KeyPair
}

// Issue returns a signed token for partner sub: iss = Centre, aud = Federation,
// iat = nbf = now, exp = now + ttl, a random jti, and the key id in the header.
func (i *TokenIssuer) Issue(sub string, scopes []Scope, ttl time.Duration, now time.Time) (string, error) {
	switch {
	case i.Key == nil || len(i.Key.Private) != ed25519.PrivateKeySize:
		return "", errors.New("issue token: no token key")
	case !schema.ValidCentreID(i.Centre):
		return "", fmt.Errorf("issue token: centre %q is not a centre id", i.Centre)
	case i.Federation == "":
		return "", errors.New("issue token: no federation id")
	case !validSubject(sub):
		return "", fmt.Errorf("issue token: subject %q: want 1-128 printable characters without spaces", sub)
	case ttl <= 0:
		return "", fmt.Errorf("issue token: ttl %v must be positive", ttl)
	}
	var uniq []Scope
	for _, s := range scopes {
		if !s.Valid() {
			return "", fmt.Errorf("issue token: %w %q", ErrTokenScope, s)
		}
		if !slices.Contains(uniq, s) {
			uniq = append(uniq, s)
		}
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	claims := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    i.Centre,
			Subject:   sub,
			Audience:  jwt.ClaimStrings{i.Federation},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        base64.RawURLEncoding.EncodeToString(id[:]),
		},
		Scope: FormatScopes(uniq),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	t.Header["kid"] = i.Key.ID
	s, err := t.SignedString(i.Key.Private)
	if err != nil {
		return "", fmt.Errorf("issue token: %w", err)
	}
	return s, nil
}

func validSubject(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// Principal is who a request acts for.
type Principal struct {
	Anonymous bool
	Centre    string // iss: the centre that issued the token
	Subject   string // sub: the partner system
	Scopes    []Scope
	TokenID   string // jti
	IssuedAt  time.Time
	ExpiresAt time.Time
	// validFrom is the later of iat and nbf: a TokenCache must not serve the
	// token to a clock that has since been set back before it.
	validFrom time.Time
}

// AnonymousPrincipal is the principal of a request without a token.
func AnonymousPrincipal() *Principal { return &Principal{Anonymous: true} }

// Has reports whether the token carries scope s itself. Which scopes imply which
// depends on where the token is used; the Authorizer applies that.
func (p *Principal) Has(s Scope) bool {
	return p != nil && !p.Anonymous && slices.Contains(p.Scopes, s)
}

func (p *Principal) String() string {
	if p == nil || p.Anonymous {
		return "anonymous"
	}
	return p.Centre + "/" + p.Subject
}

// TokenVerifier checks tokens against the current trust bundle.
type TokenVerifier struct {
	Federation string         // expected aud; the bundle's federation if empty
	Bundle     func() *Bundle // the current trust bundle
	Leeway     time.Duration  // clock skew allowed; DefaultLeeway if 0
	Now        func() time.Time
	// Cache, when set, remembers tokens that verified, so a partner's every
	// request does not pay an ed25519 verification.
	Cache *TokenCache
}

// TokenCache holds verified tokens. An entry is used only while the bundle it
// was verified against is still the current one (a new bundle may revoke) and
// the token has not expired; it is safe for concurrent use.
type TokenCache struct {
	// Size bounds the entries; DefaultTokenCacheSize if 0.
	Size    int
	mu      sync.Mutex
	entries map[string]cachedToken
}

// DefaultTokenCacheSize bounds a TokenCache with no Size.
const DefaultTokenCacheSize = 10000

type cachedToken struct {
	p      *Principal
	bundle *Bundle
}

func (c *TokenCache) get(token string, b *Bundle, now time.Time, leeway time.Duration) *Principal {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[token]
	if !ok {
		return nil
	}
	// A clock set back (or skewed) since the token was verified may now see it
	// as not yet valid; verify again rather than answer otherwise than verify.
	if e.bundle != b || !now.Before(e.p.ExpiresAt) || now.Add(leeway).Before(e.p.validFrom) {
		delete(c.entries, token)
		return nil
	}
	return e.p
}

func (c *TokenCache) put(token string, b *Bundle, p *Principal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	size := c.Size
	if size <= 0 {
		size = DefaultTokenCacheSize
	}
	if c.entries == nil {
		c.entries = make(map[string]cachedToken)
	}
	if len(c.entries) >= size {
		// Drop an arbitrary tenth: cheap, and a hot token is verified again at once.
		n := max(1, size/10)
		for k := range c.entries {
			if n == 0 {
				break
			}
			delete(c.entries, k)
			n--
		}
	}
	c.entries[token] = cachedToken{p: p, bundle: b}
}

// Verify checks token, or finds it in the cache (see TokenCache), and returns
// its principal; see verify for what it refuses.
func (v *TokenVerifier) Verify(token string) (*Principal, error) {
	if v.Cache == nil || v.Bundle == nil {
		return v.verify(token)
	}
	b := v.Bundle()
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if p := v.Cache.get(token, b, now(), v.leeway()); p != nil {
		cp := *p
		return &cp, nil
	}
	p, err := v.verify(token)
	if err == nil && b != nil {
		cp := *p
		v.Cache.put(token, b, &cp)
	}
	return p, err
}

// verify checks token and returns its principal. It refuses, with an error
// wrapping ErrTokenInvalid: tokens over MaxTokenBytes or not of three parts
// (ErrTokenMalformed); any algorithm but EdDSA (ErrTokenAlgorithm); a missing
// kid header or a kid the issuer does not hold, or held but not valid at iat
// (ErrTokenUnknownKey); an issuer that is not a member, or was removed
// (ErrTokenIssuer); a bad signature (ErrTokenSignature); exp missing or past
// (ErrTokenExpired, beyond the leeway); nbf or iat in the future
// (ErrTokenNotYetValid); iss, sub, aud, iat or jti missing, aud without the
// federation (ErrTokenClaims); unknown scopes (ErrTokenScope); and revoked
// "jti:<jti>", "sub:<iss>/<sub>" or "key:<kid>" subjects, compared with iat
// (ErrTokenRevoked).
func (v *TokenVerifier) verify(token string) (*Principal, error) {
	if len(token) > MaxTokenBytes {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrTokenMalformed, MaxTokenBytes)
	}
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("%w: want three dot-separated parts", ErrTokenMalformed)
	}
	var b *Bundle
	if v.Bundle != nil {
		b = v.Bundle()
	}
	if b == nil {
		return nil, fmt.Errorf("%w: no trust bundle loaded", ErrTokenUnknownKey)
	}
	fed := v.Federation
	if fed == "" {
		fed = b.Federation
	}
	now := v.Now
	if now == nil {
		now = time.Now
	}
	leeway := v.leeway()

	var claims Claims
	var keyErr error
	var kid string
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithAudience(fed),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(now),
		jwt.WithStrictDecoding(),
	)
	tok, err := parser.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		var pub ed25519.PublicKey
		pub, kid, keyErr = tokenKey(b, t, &claims)
		if keyErr != nil {
			return nil, keyErr
		}
		return pub, nil
	})
	if keyErr != nil {
		return nil, keyErr
	}
	if err != nil {
		return nil, classifyJWTError(tok, err, &claims, now(), leeway)
	}

	c := &claims.RegisteredClaims
	switch {
	case c.Subject == "":
		return nil, fmt.Errorf("%w: sub missing", ErrTokenClaims)
	case c.ID == "":
		return nil, fmt.Errorf("%w: jti missing", ErrTokenClaims)
	}
	iat := c.IssuedAt.Time
	for _, subject := range []string{RevokeTokenID + c.ID, RevokeSubject + c.Issuer + "/" + c.Subject, RevokeKey + kid} {
		if b.Revoked(subject, iat) {
			return nil, fmt.Errorf("%w: %s (ask %s for a new token)", ErrTokenRevoked, subject, c.Issuer)
		}
	}
	scopes, err := ParseScopes(claims.Scope)
	if err != nil {
		return nil, err
	}
	validFrom := iat
	if c.NotBefore != nil && c.NotBefore.After(validFrom) {
		validFrom = c.NotBefore.Time
	}
	return &Principal{
		Centre:    c.Issuer,
		Subject:   c.Subject,
		Scopes:    scopes,
		TokenID:   c.ID,
		IssuedAt:  iat,
		ExpiresAt: c.ExpiresAt.Time,
		validFrom: validFrom,
	}, nil
}

// Expiry returns when v starts refusing p's token as expired: its exp plus
// the leeway. What holds on to a verified principal beyond one request (a
// change stream) must stop acting for it then, or the token outlives itself.
// Zero for the anonymous principal, which has no token to expire.
func (v *TokenVerifier) Expiry(p *Principal) time.Time {
	if p == nil || p.Anonymous || p.ExpiresAt.IsZero() {
		return time.Time{}
	}
	return p.ExpiresAt.Add(v.leeway())
}

// leeway is the clock skew the verifier allows.
func (v *TokenVerifier) leeway() time.Duration {
	switch {
	case v.Leeway == 0:
		return DefaultLeeway
	case v.Leeway < 0:
		return 0
	}
	return v.Leeway
}

// tokenKey runs inside the parser, after the algorithm check and before the
// signature check: the claims are decoded but not yet authentic.
func tokenKey(b *Bundle, t *jwt.Token, claims *Claims) (ed25519.PublicKey, string, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, "", fmt.Errorf("%w: crit header not supported", ErrTokenMalformed)
	}
	kid, _ := t.Header["kid"].(string)
	switch {
	case kid == "":
		return nil, "", fmt.Errorf("%w: kid header missing", ErrTokenUnknownKey)
	case claims.Issuer == "":
		return nil, "", fmt.Errorf("%w: iss missing", ErrTokenClaims)
	case claims.IssuedAt == nil:
		return nil, "", fmt.Errorf("%w: iat missing", ErrTokenClaims)
	}
	m, ok := b.Member(claims.Issuer)
	if !ok {
		return nil, "", fmt.Errorf("%w: %q", ErrTokenIssuer, claims.Issuer)
	}
	if m.Removed != nil {
		return nil, "", fmt.Errorf("%w: %s left the federation", ErrTokenIssuer, m.ID)
	}
	pub, err := b.TokenKey(claims.Issuer, kid, claims.IssuedAt.Time)
	if err != nil {
		if errors.Is(err, ErrKeyRevoked) {
			return nil, "", fmt.Errorf("%w: %v", ErrTokenRevoked, err)
		}
		return nil, "", fmt.Errorf("%w: %v", ErrTokenUnknownKey, err)
	}
	return pub, kid, nil
}

// classifyJWTError maps the parser's refusal to this package's errors. A token
// refused for its times (checked only once its signature verified) names them
// beside this node's clock: a clock off by more than the leeway refuses good
// tokens, and the operator should be able to see that from the message.
func classifyJWTError(tok *jwt.Token, err error, c *Claims, now time.Time, leeway time.Duration) error {
	if tok == nil || errors.Is(err, jwt.ErrTokenMalformed) {
		return fmt.Errorf("%w: %v", ErrTokenMalformed, err)
	}
	if alg, _ := tok.Header["alg"].(string); alg != jwt.SigningMethodEdDSA.Alg() {
		return fmt.Errorf("%w: alg %q", ErrTokenAlgorithm, alg)
	}
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return fmt.Errorf("%w: %v", ErrTokenSignature, err)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: %v%s", ErrTokenExpired, err, clockHint(c, now, leeway))
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fmt.Errorf("%w: %v%s", ErrTokenNotYetValid, err, clockHint(c, now, leeway))
	default:
		return fmt.Errorf("%w: %v", ErrTokenClaims, err)
	}
}

// clockHint sets a token's times beside this node's clock, for a refusal for time.
func clockHint(c *Claims, now time.Time, leeway time.Duration) string {
	var times []string
	for _, t := range []struct {
		name string
		at   *jwt.NumericDate
	}{{"iat", c.IssuedAt}, {"nbf", c.NotBefore}, {"exp", c.ExpiresAt}} {
		if t.at != nil {
			times = append(times, t.name+" "+t.at.UTC().Format(time.RFC3339))
		}
	}
	return fmt.Sprintf(" (token %s; this node's clock reads %s and allows %v of skew: if the token should be valid, check this node's clock and the issuer's)",
		strings.Join(times, ", "), now.UTC().Format(time.RFC3339), leeway)
}
