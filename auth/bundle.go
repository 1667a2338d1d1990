package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"liandong/schema"
)

// Key is a public key in the trust bundle, valid from NotBefore until NotAfter
// (open-ended when nil). Retired keys keep their entry, with NotAfter set, so
// what they signed while valid still verifies.
type Key struct {
	ID        string     `json:"id"`
	Public    []byte     `json:"public"` // 32 bytes, base64 in JSON
	NotBefore time.Time  `json:"not_before"`
	NotAfter  *time.Time `json:"not_after,omitempty"`
}

// ValidAt reports whether at falls in [NotBefore, NotAfter).
func (k *Key) ValidAt(at time.Time) bool {
	return !at.Before(k.NotBefore) && (k.NotAfter == nil || at.Before(*k.NotAfter))
}

// Peer is one libp2p host of a member.
type Peer struct {
	ID    string   `json:"id"`    // libp2p peer id string
	Addrs []string `json:"addrs"` // multiaddrs
}

// Member is one centre of the federation.
type Member struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	NameZH     string   `json:"name_zh"`
	Roles      []string `json:"roles,omitempty"`
	RecordKeys []Key    `json:"record_keys"`
	TokenKeys  []Key    `json:"token_keys"`
	Peers      []Peer   `json:"peers"`
	HTTP       []string `json:"http,omitempty"`
	// Removed marks a centre that left. Its peers and tokens are refused from then
	// on; entries it signed before Removed still verify.
	Removed *time.Time `json:"removed,omitempty"`
}

// Revocation refuses everything Subject issued or signed before Before (NATS
// semantics). Subject is "jti:<id>", "sub:<centre>/<partner>", "key:<kid>" or
// "peer:<id>".
type Revocation struct {
	Subject string    `json:"subject"`
	Before  time.Time `json:"before"`
	Reason  string    `json:"reason,omitempty"`
}

// Revocation subject prefixes.
const (
	RevokeTokenID = "jti:"
	RevokeSubject = "sub:"
	RevokeKey     = "key:"
	RevokePeer    = "peer:"
)

// Bundle is the trust bundle: who belongs to the federation, with which keys,
// and what is revoked.
type Bundle struct {
	Federation  string       `json:"federation"`
	Version     uint64       `json:"version"`
	IssuedAt    time.Time    `json:"issued_at"`
	ExpiresAt   time.Time    `json:"expires_at"`
	Signers     []Key        `json:"signers"`
	Threshold   int          `json:"threshold"`
	Members     []Member     `json:"members"`
	Revocations []Revocation `json:"revocations,omitempty"`
}

// BundleSignature is one signer's ed25519 signature over a bundle payload.
type BundleSignature struct {
	KeyID string `json:"kid"`
	Sig   []byte `json:"sig"`
}

// SignedBundle is the bundle as distributed: the canonical payload and signatures
// over exactly those bytes.
type SignedBundle struct {
	Payload    json.RawMessage   `json:"payload"` // canonical JSON of Bundle
	Signatures []BundleSignature `json:"signatures"`
}

// Errors about bundles and the keys in them.
var (
	ErrRollback             = errors.New("trust bundle version is older than the one held")
	ErrSameVersionDifferent = errors.New("trust bundle has the held version but different content")
	ErrWrongFederation      = errors.New("trust bundle is for another federation")
	ErrTooFewSignatures     = errors.New("trust bundle lacks enough valid signatures")
	ErrBundleExpired        = errors.New("trust bundle expired")
	ErrBundleInvalid        = errors.New("trust bundle invalid")
	ErrBundleUntrusted      = errors.New("trust bundle not signed by a pinned root key")

	ErrUnknownKey    = errors.New("unknown key")
	ErrKeyRevoked    = errors.New("key revoked")
	ErrKeyNotValidAt = errors.New("key not valid at that time")
)

// Limits on bundles received from outside.
const (
	MaxBundleBytes      = 1 << 20
	MaxBundleSignatures = 64
)

// SignBundle encodes b and signs it with each key in turn, as signers do with
// `federation sign`.
func SignBundle(b *Bundle, keys ...*KeyPair) (*SignedBundle, error) {
	sb, err := EncodeBundle(b)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if err := sb.Sign(k); err != nil {
			return nil, err
		}
	}
	return sb, nil
}

// EncodeBundle validates b and returns it as an unsigned SignedBundle.
func EncodeBundle(b *Bundle) (*SignedBundle, error) {
	if err := b.Validate(); err != nil {
		return nil, err
	}
	payload, err := canonicalBundle(b)
	if err != nil {
		return nil, err
	}
	return &SignedBundle{Payload: payload}, nil
}

func canonicalBundle(b *Bundle) ([]byte, error) {
	js, err := json.Marshal(b)
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	out, err := schema.Canonical(js)
	if err != nil {
		return nil, fmt.Errorf("encode bundle: %w", err)
	}
	return out, nil
}

// Sign adds k's signature over the payload, replacing any earlier one by k.
// Signatures are kept sorted by key id so the encoding does not depend on the
// order in which signers signed.
func (sb *SignedBundle) Sign(k *KeyPair) error {
	if k == nil || len(k.Private) != ed25519.PrivateKeySize || !validKeyID(k.ID) {
		return errors.New("sign bundle: incomplete key pair")
	}
	if err := schema.CheckCanonical(sb.Payload); err != nil {
		return fmt.Errorf("sign bundle: payload: %w", err)
	}
	sig := ed25519.Sign(k.Private, sb.Payload)
	sb.Signatures = slices.DeleteFunc(sb.Signatures, func(s BundleSignature) bool { return s.KeyID == k.ID })
	sb.Signatures = append(sb.Signatures, BundleSignature{KeyID: k.ID, Sig: sig})
	slices.SortStableFunc(sb.Signatures, func(a, b BundleSignature) int { return strings.Compare(a.KeyID, b.KeyID) })
	return nil
}

// UnmarshalJSON decodes strictly, as ParseSignedBundle does, so a bundle carried
// inside another message gets the same checks.
func (sb *SignedBundle) UnmarshalJSON(data []byte) error {
	p, err := ParseSignedBundle(data)
	if err != nil {
		return err
	}
	*sb = *p
	return nil
}

// signedBundleWire mirrors SignedBundle for strict decoding.
type signedBundleWire struct {
	Payload    json.RawMessage   `json:"payload"`
	Signatures []BundleSignature `json:"signatures"`
}

// MarshalJSON encodes sb without HTML escaping, so the payload's bytes travel
// unchanged and stay canonical. (An outer json.Marshal escapes them again;
// ParseSignedBundle undoes exactly that.)
func (sb *SignedBundle) MarshalJSON() ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	sigs := sb.Signatures
	if sigs == nil {
		sigs = []BundleSignature{}
	}
	if err := enc.Encode(signedBundleWire{Payload: sb.Payload, Signatures: sigs}); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ParseSignedBundle decodes a distributed bundle strictly: at most 1 MiB, one
// JSON object without unknown or duplicate members, a canonical payload that
// decodes as a Bundle (again without unknown members), at most 64 signatures of
// 64 bytes each. It does not check signatures; see VerifyBundle.
func ParseSignedBundle(data []byte) (*SignedBundle, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("parse trust bundle: %w: %s", ErrBundleInvalid, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxBundleBytes {
		return nil, bad("%d bytes, limit %d", len(data), MaxBundleBytes)
	}
	// The canonical parser refuses duplicate names, invalid UTF-8 and deep nesting,
	// which encoding/json lets through.
	if _, err := schema.Canonical(data); err != nil {
		return nil, bad("%v", err)
	}
	var w signedBundleWire
	if err := decodeStrict(data, &w); err != nil {
		return nil, bad("%v", err)
	}
	if len(w.Payload) == 0 || w.Payload[0] != '{' {
		return nil, bad("payload is not a JSON object")
	}
	payload, err := canonicalPayload(w.Payload)
	if err != nil {
		return nil, bad("payload: %v", err)
	}
	w.Payload = payload
	if _, err := decodeBundle(w.Payload); err != nil {
		return nil, bad("payload: %v", err)
	}
	if len(w.Signatures) > MaxBundleSignatures {
		return nil, bad("%d signatures, limit %d", len(w.Signatures), MaxBundleSignatures)
	}
	for i, s := range w.Signatures {
		if !validKeyID(s.KeyID) || len(s.Sig) != ed25519.SignatureSize {
			return nil, bad("signature %d: want a key id and %d bytes", i, ed25519.SignatureSize)
		}
	}
	if w.Signatures == nil {
		w.Signatures = []BundleSignature{}
	}
	return &SignedBundle{Payload: slices.Clone(w.Payload), Signatures: w.Signatures}, nil
}

// canonicalPayload returns payload if it is canonical. It also accepts the one
// other rendering canonical bytes get in transit: a SignedBundle marshalled inside
// another value by encoding/json has its payload HTML-escaped by the outer encoder
// ('<' as \u003c, U+2028 as \u2028, …). Then it returns the canonical bytes, which
// are what was signed.
func canonicalPayload(payload []byte) ([]byte, error) {
	err := schema.CheckCanonical(payload)
	if err == nil || !errors.Is(err, schema.ErrNotCanonical) || bytes.IndexByte(payload, '\\') < 0 {
		return payload, err
	}
	c, cerr := schema.Canonical(payload)
	if cerr != nil {
		return nil, err
	}
	var esc bytes.Buffer
	json.HTMLEscape(&esc, c)
	if !bytes.Equal(esc.Bytes(), payload) {
		return nil, err
	}
	return c, nil
}

func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the top-level value")
	}
	return nil
}

func decodeBundle(payload []byte) (*Bundle, error) {
	var b Bundle
	if err := decodeStrict(payload, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// Bundle decodes and validates the payload, without checking signatures.
func (sb *SignedBundle) Bundle() (*Bundle, error) {
	b, err := decodeBundle(sb.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBundleInvalid, err)
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b, nil
}

// VerifyBundle checks sb and returns the bundle it carries.
//
// With a trusted bundle, sb needs trusted.Threshold valid signatures from distinct
// keys among trusted.Signers that are valid now and carry no "key:" revocation in
// trusted; signatures by anyone else are ignored. sb must also be an upgrade of
// trusted (CheckUpgrade: same federation, not older, same content if the same
// version). An expired trusted bundle still authorises its successor, so a node
// that ran on a cached bundle can recover.
//
// With trusted == nil (bootstrap), sb is checked against its own signers and
// threshold, and when rootKeyIDs are given, at least one of the counted signers
// must match one of them, by key id or by KeyFingerprint. Key ids carry only 32
// bits of the key hash: pin fingerprints where forgery matters.
//
// In both cases the bundle must be valid (Validate) and not expired at now.
func VerifyBundle(sb *SignedBundle, trusted *Bundle, now time.Time, rootKeyIDs ...string) (*Bundle, error) {
	if sb == nil {
		return nil, fmt.Errorf("verify trust bundle: %w: nothing to verify", ErrBundleInvalid)
	}
	payload, err := canonicalPayload(sb.Payload)
	if err != nil {
		return nil, fmt.Errorf("verify trust bundle: %w: payload: %v", ErrBundleInvalid, err)
	}
	next, err := (&SignedBundle{Payload: payload}).Bundle()
	if err != nil {
		return nil, fmt.Errorf("verify trust bundle: %w", err)
	}
	threshold, authority := next.Threshold, next
	if trusted != nil {
		if err := CheckUpgrade(trusted, next); err != nil {
			return nil, fmt.Errorf("verify trust bundle v%d: %w", next.Version, err)
		}
		threshold, authority = trusted.Threshold, trusted
	}
	if threshold < 1 {
		threshold = 1
	}
	counted, refused := countSignatures(payload, sb.Signatures, authority, now)
	if len(counted) < threshold {
		msg := fmt.Sprintf("verify trust bundle v%d: %v: %d of %d required", next.Version, ErrTooFewSignatures, len(counted), threshold)
		if len(refused) > 0 {
			msg += "; not counted: " + strings.Join(refused, ", ")
		}
		return nil, &wrapped{msg: msg, err: ErrTooFewSignatures}
	}
	if trusted == nil && len(rootKeyIDs) > 0 {
		pinned := slices.ContainsFunc(counted, func(k *Key) bool {
			return slices.Contains(rootKeyIDs, k.ID) || slices.Contains(rootKeyIDs, KeyFingerprint(k.Public))
		})
		if !pinned {
			return nil, fmt.Errorf("verify trust bundle v%d: %w (pinned: %s)", next.Version, ErrBundleUntrusted, strings.Join(rootKeyIDs, ", "))
		}
	}
	if !now.Before(next.ExpiresAt) {
		return nil, fmt.Errorf("verify trust bundle v%d: %w at %s; ask the federation root for a new one",
			next.Version, ErrBundleExpired, next.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return next, nil
}

// CountSignatures reports which of sb's signatures authority's signers
// count at now, exactly as VerifyBundle counts them when authority is the
// bundle a node holds (or, for a bundle read on its own, the bundle sb
// carries): by key ids counted, and the others with the reason. It says
// nothing about the threshold, the upgrade rules or the expiry.
func (sb *SignedBundle) CountSignatures(authority *Bundle, now time.Time) (counted, notCounted []string) {
	if sb == nil || authority == nil {
		return nil, nil
	}
	payload, err := canonicalPayload(sb.Payload)
	if err != nil {
		for _, s := range sb.Signatures {
			notCounted = append(notCounted, s.KeyID+" (payload not canonical)")
		}
		return nil, notCounted
	}
	keys, notCounted := countSignatures(payload, sb.Signatures, authority, now)
	for _, k := range keys {
		counted = append(counted, k.ID)
	}
	return counted, notCounted
}

// countSignatures returns the keys among signers whose signatures over payload
// count at now: one per key, valid now, carrying no "key:" revocation in
// authority, with a good signature; and the other signatures, with why.
func countSignatures(payload []byte, sigs []BundleSignature, authority *Bundle, now time.Time) (counted []*Key, refused []string) {
	for _, s := range sigs {
		k := findKey(authority.Signers, s.KeyID)
		switch {
		case k == nil:
			refused = append(refused, s.KeyID+" (not a signer)")
		case slices.ContainsFunc(counted, func(c *Key) bool { return bytes.Equal(c.Public, k.Public) }):
			// A second signature by one key counts once, also under another id:
			// the threshold counts key holders. Validate refuses a bundle that
			// lists one key twice, so a trusted bundle parsed from bytes cannot;
			// this keeps the count honest for one built in memory. A federation
			// whose bundle lists a key twice must republish it before upgrading:
			// the node refuses to load it, saying which signers share the key.
			if !slices.Contains(counted, k) {
				refused = append(refused, s.KeyID+" (same key as a counted signer)")
			}
		case !k.ValidAt(now):
			refused = append(refused, s.KeyID+" (signer key not valid now)")
		case authority.hasRevocation(RevokeKey, s.KeyID):
			refused = append(refused, s.KeyID+" (signer key revoked)")
		case len(k.Public) != ed25519.PublicKeySize || len(s.Sig) != ed25519.SignatureSize ||
			!ed25519.Verify(k.Public, payload, s.Sig):
			refused = append(refused, s.KeyID+" (bad signature)")
		default:
			counted = append(counted, k)
		}
	}
	return counted, refused
}

// wrapped is an error with a prepared message that wraps err.
type wrapped struct {
	msg string
	err error
}

func (w *wrapped) Error() string { return w.msg }
func (w *wrapped) Unwrap() error { return w.err }

// CheckUpgrade reports whether next may replace current: same federation
// (ErrWrongFederation), not an older version (ErrRollback), and, at the same
// version, the same content (ErrSameVersionDifferent). The same bundle again is
// not an error.
func CheckUpgrade(current, next *Bundle) error {
	if current == nil {
		return nil
	}
	if next == nil {
		return fmt.Errorf("%w: no bundle", ErrBundleInvalid)
	}
	if next.Federation != current.Federation {
		return fmt.Errorf("%w: %q, this node belongs to %q", ErrWrongFederation, next.Federation, current.Federation)
	}
	if next.Version < current.Version {
		return fmt.Errorf("%w: offered v%d, holding v%d", ErrRollback, next.Version, current.Version)
	}
	if next.Version == current.Version {
		a, err := canonicalBundle(current)
		if err != nil {
			return err
		}
		b, err := canonicalBundle(next)
		if err != nil {
			return err
		}
		if !bytes.Equal(a, b) {
			return fmt.Errorf("%w: v%d", ErrSameVersionDifferent, next.Version)
		}
	}
	return nil
}

// ExpiresIn returns how long b stays valid after now (negative once expired).
func (b *Bundle) ExpiresIn(now time.Time) time.Duration { return b.ExpiresAt.Sub(now) }

// Member returns the member with id.
func (b *Bundle) Member(id string) (*Member, bool) {
	if b == nil {
		return nil, false
	}
	for i := range b.Members {
		if b.Members[i].ID == id {
			return &b.Members[i], true
		}
	}
	return nil, false
}

func findKey(keys []Key, kid string) *Key {
	for i := range keys {
		if keys[i].ID == kid {
			return &keys[i]
		}
	}
	return nil
}

// RecordKey returns the record-signing key kid of origin if it was valid at at:
// listed for origin (ErrUnknownKey), not revoked by a "key:<kid>" revocation with
// Before after at (ErrKeyRevoked), at in [NotBefore, NotAfter) and before the
// member's Removed time, if any (ErrKeyNotValidAt).
func (b *Bundle) RecordKey(origin, kid string, at time.Time) (ed25519.PublicKey, error) {
	return b.memberKey(origin, kid, at, "record", func(m *Member) []Key { return m.RecordKeys })
}

// TokenKey is RecordKey for token-signing keys.
func (b *Bundle) TokenKey(issuer, kid string, at time.Time) (ed25519.PublicKey, error) {
	return b.memberKey(issuer, kid, at, "token", func(m *Member) []Key { return m.TokenKeys })
}

func (b *Bundle) memberKey(member, kid string, at time.Time, kind string, keys func(*Member) []Key) (ed25519.PublicKey, error) {
	m, ok := b.Member(member)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not a federation member", ErrUnknownKey, member)
	}
	k := findKey(keys(m), kid)
	if k == nil {
		return nil, fmt.Errorf("%w: %s has no %s key %q", ErrUnknownKey, member, kind, kid)
	}
	if len(k.Public) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: %s key %q is not 32 bytes", ErrUnknownKey, kind, kid)
	}
	if b.Revoked(RevokeKey+kid, at) {
		return nil, fmt.Errorf("%w: %s key %q is revoked for %s", ErrKeyRevoked, kind, kid, at.UTC().Format(time.RFC3339))
	}
	if !k.ValidAt(at) {
		return nil, fmt.Errorf("%w: %s key %q is valid %s, not at %s", ErrKeyNotValidAt, kind, kid, window(k), at.UTC().Format(time.RFC3339))
	}
	if m.Removed != nil && !at.Before(*m.Removed) {
		return nil, fmt.Errorf("%w: %s left the federation at %s", ErrKeyNotValidAt, member, m.Removed.UTC().Format(time.RFC3339))
	}
	return ed25519.PublicKey(k.Public), nil
}

func window(k *Key) string {
	s := "from " + k.NotBefore.UTC().Format(time.RFC3339)
	if k.NotAfter != nil {
		s += " until " + k.NotAfter.UTC().Format(time.RFC3339)
	}
	return s
}

// PeerAllowed reports whether peerID belongs to a member that has not been
// removed, and which. Any "peer:<id>" revocation refuses the peer: a connection
// has no issue time to compare with.
func (b *Bundle) PeerAllowed(peerID string) (member string, ok bool) {
	if b == nil || peerID == "" || b.hasRevocation(RevokePeer, peerID) {
		return "", false
	}
	for i := range b.Members {
		m := &b.Members[i]
		if m.Removed != nil {
			continue
		}
		for _, p := range m.Peers {
			if p.ID == peerID {
				return m.ID, true
			}
		}
	}
	return "", false
}

// Revoked reports whether a revocation of subject has Before after issuedAt.
func (b *Bundle) Revoked(subject string, issuedAt time.Time) bool {
	if b == nil {
		return false
	}
	for i := range b.Revocations {
		r := &b.Revocations[i]
		if r.Subject == subject && r.Before.After(issuedAt) {
			return true
		}
	}
	return false
}

// RevokedBefore returns the latest time before which subject's tokens or
// entries are refused, and whether any revocation names subject. A key revoked
// before a time in the future (or outright) has signed nothing a node accepts
// now; one revoked before a past time still signs what is dated after it.
func (b *Bundle) RevokedBefore(subject string) (before time.Time, ok bool) {
	if b == nil {
		return time.Time{}, false
	}
	for i := range b.Revocations {
		if r := &b.Revocations[i]; r.Subject == subject && (!ok || r.Before.After(before)) {
			before, ok = r.Before, true
		}
	}
	return before, ok
}

// hasRevocation reports whether any revocation names prefix+id, whatever its time.
func (b *Bundle) hasRevocation(prefix, id string) bool {
	for i := range b.Revocations {
		s := b.Revocations[i].Subject
		if len(s) == len(prefix)+len(id) && strings.HasPrefix(s, prefix) && s[len(prefix):] == id {
			return true
		}
	}
	return false
}

// Validate checks the bundle's structure: federation id, version, times; signer
// keys and threshold; member ids (schema.ValidCentreID) unique; keys 32 bytes
// with well-formed ids unique across the bundle's member keys and validity
// windows that end after they begin; peer ids unique; revocation subjects
// well-formed.
func (b *Bundle) Validate() error {
	if b == nil {
		return fmt.Errorf("%w: no bundle", ErrBundleInvalid)
	}
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }

	if b.Federation == "" || len(b.Federation) > 64 || !validKeyID(b.Federation) {
		bad("federation %q: want 1-64 letters, digits, '-', '_' or '.'", b.Federation)
	}
	if b.Version == 0 {
		bad("version must be at least 1")
	}
	if b.IssuedAt.IsZero() {
		bad("issued_at missing")
	}
	if !b.ExpiresAt.After(b.IssuedAt) {
		bad("expires_at must be after issued_at")
	}
	if len(b.Signers) == 0 {
		bad("no signers")
	}
	if b.Threshold < 1 || b.Threshold > len(b.Signers) {
		bad("threshold %d: want 1..%d (the number of signers)", b.Threshold, len(b.Signers))
	}
	signerIDs := map[string]bool{}
	signerKeys := map[string]int{}
	for i := range b.Signers {
		k := &b.Signers[i]
		checkKey(k, fmt.Sprintf("signers[%d]", i), signerIDs, bad)
		// One key under two ids would let its holder alone meet an m-of-n
		// threshold.
		if j, ok := signerKeys[string(k.Public)]; ok && len(k.Public) > 0 {
			bad("signers[%d]: key %s has the public key of signers[%d] (%s): each signer needs a key of its own", i, k.ID, j, b.Signers[j].ID)
		} else {
			signerKeys[string(k.Public)] = i
		}
	}
	memberIDs := map[string]bool{}
	keyIDs := map[string]bool{}
	peerIDs := map[string]bool{}
	for i := range b.Members {
		m := &b.Members[i]
		where := fmt.Sprintf("members[%d] (%s)", i, m.ID)
		if !schema.ValidCentreID(m.ID) {
			bad("%s: id is not a centre id (1-32 of a-z, 0-9, '-', starting with a letter)", where)
		} else if memberIDs[m.ID] {
			bad("%s: duplicate member id", where)
		}
		memberIDs[m.ID] = true
		for j := range m.RecordKeys {
			checkKey(&m.RecordKeys[j], fmt.Sprintf("%s.record_keys[%d]", where, j), keyIDs, bad)
		}
		for j := range m.TokenKeys {
			checkKey(&m.TokenKeys[j], fmt.Sprintf("%s.token_keys[%d]", where, j), keyIDs, bad)
		}
		for j, p := range m.Peers {
			if p.ID == "" || len(p.ID) > 128 {
				bad("%s.peers[%d]: peer id missing or too long", where, j)
			} else if peerIDs[p.ID] {
				bad("%s.peers[%d]: peer id %s listed twice", where, j, p.ID)
			}
			peerIDs[p.ID] = true
		}
	}
	for i, r := range b.Revocations {
		prefix, id, _ := strings.Cut(r.Subject, ":")
		switch {
		case id == "" || !slices.Contains([]string{"jti", "sub", "key", "peer"}, prefix):
			bad("revocations[%d]: subject %q: want jti:, sub:, key: or peer: and an id", i, r.Subject)
		case prefix == "sub" && !strings.Contains(id, "/"):
			bad("revocations[%d]: subject %q: want sub:<centre>/<partner>", i, r.Subject)
		case r.Before.IsZero():
			bad("revocations[%d]: before missing", i)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrBundleInvalid, strings.Join(errs, "; "))
	}
	return nil
}

func checkKey(k *Key, where string, seen map[string]bool, bad func(string, ...any)) {
	if !validKeyID(k.ID) {
		bad("%s: key id %q: want 1-128 letters, digits, '-', '_' or '.'", where, k.ID)
	} else if seen[k.ID] {
		bad("%s: key id %q listed twice", where, k.ID)
	}
	seen[k.ID] = true
	if len(k.Public) != ed25519.PublicKeySize {
		bad("%s: public key is %d bytes, want %d", where, len(k.Public), ed25519.PublicKeySize)
	}
	if k.NotBefore.IsZero() {
		bad("%s: not_before missing", where)
	}
	if k.NotAfter != nil && !k.NotAfter.After(k.NotBefore) {
		bad("%s: not_after must be after not_before", where)
	}
}

// JWK is one public key in a JSON Web Key Set (RFC 8037 OKP form).
type JWK struct {
	KeyType string `json:"kty"`
	Curve   string `json:"crv"`
	X       string `json:"x"`
	KeyID   string `json:"kid"`
	Use     string `json:"use"`
	Alg     string `json:"alg"`
	// RevokedBefore (seconds since the epoch): tokens the key signed with
	// an iat before it are revoked, and a verifier must refuse them.
	RevokedBefore *int64 `json:"revoked_before,omitempty"`
}

// JWKS is the document served at /.well-known/jwks.json.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// JWKS returns member's token keys for partners who check tokens themselves:
// the current ones, the next ones (not valid yet, so partners hold them before
// the switch) and the retired ones, because a token issued before its key
// retired stays valid until it expires. A key revoked before a time after now
// (or outright) is left out: nothing it signed is accepted now. One revoked
// only before a past time is kept, as nodes accept what it signs after.
func (b *Bundle) JWKS(member string, now time.Time) JWKS {
	set := JWKS{Keys: []JWK{}}
	m, ok := b.Member(member)
	if !ok || m.Removed != nil {
		return set
	}
	for _, k := range m.TokenKeys {
		if jwk, ok := b.TokenJWK(k, now); ok {
			set.Keys = append(set.Keys, jwk)
		}
	}
	return set
}

// TokenJWK is token key k as a JWK, and false when it is not to be published:
// revoked before a time after now (outright), so that nothing it signed is
// accepted now. A key revoked only before a past time carries RevokedBefore.
func (b *Bundle) TokenJWK(k Key, now time.Time) (JWK, bool) {
	before, revoked := b.RevokedBefore(RevokeKey + k.ID)
	if revoked && before.After(now) || len(k.Public) != ed25519.PublicKeySize {
		return JWK{}, false
	}
	jwk := JWK{KeyType: "OKP", Curve: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.Public), KeyID: k.ID, Use: "sig", Alg: "EdDSA"}
	if revoked {
		rb := before.Unix()
		jwk.RevokedBefore = &rb
	}
	return jwk, true
}
