// Package auth owns liandong's keys, signatures, trust bundle, tokens and scopes.
//
// It imports only schema of ours, so node, sync and cmd can all depend on it.
//
// # Keys (keys.go)
//
// Every key is ed25519 and has an id, prefix + "-" + the first 8 hex digits of the
// SHA-256 of its public key ("tianjin-rec-1a2b3c4d"). Key files are JSON, written
// atomically with mode 0600, never overwritten, and refused when group- or
// world-readable. Eight hex digits are a name, not a security boundary: pin keys
// with KeyFingerprint (the full SHA-256) where an attacker might grind an id.
//
// # Signed log entries (entries.go)
//
// An origin signs each entry's canonical bytes (schema.Entry.Raw). VerifyEntry
// checks one entry against the key that was valid when it was signed; VerifyChain
// checks a contiguous batch of one origin's entries against the head the receiver
// holds, either every signature or one per run of entries under the same key (the
// hash chain, which covers every earlier signature, binds the rest). Callers must
// hand in entries whose decoded fields are the view of Raw, as schema.NewEntry,
// schema.DecodeEntryPayload and Entry.UnmarshalJSON produce them; VerifyChain
// checks seq, prev_hash and epoch on those decoded fields.
//
// # Trust bundle (bundle.go)
//
// The trust bundle is the federation's membership: centres, their record and
// token keys with validity windows, libp2p peers, and revocations, signed m-of-n
// by the federation root. Its payload is canonical JSON (schema.Canonical) and
// the signatures cover exactly those bytes. A node bootstraps from a bundle whose
// signers it pins (VerifyBundle with trusted == nil and root key ids or
// fingerprints), then accepts only bundles signed by a threshold of the signers
// of the bundle it already trusts, with a higher version (CheckUpgrade).
//
// Revocations follow NATS: a revocation of subject S with time T refuses
// everything S issued or signed before T. Subjects are "jti:<token id>",
// "sub:<centre>/<partner>", "key:<key id>" and "peer:<libp2p peer id>". Since a
// compromised key can sign any time it likes, revoking a key outright means a
// "key:" revocation whose Before lies after the key's NotAfter (or far in the
// future); a bundle signer with any "key:" revocation is never counted.
//
// # Tokens and scopes (tokens.go, authz.go)
//
// Partner systems hold JWTs (EdDSA only, with a kid header) issued by a centre's
// token key, with iss = centre, aud = federation, sub = partner and an OAuth-style
// space-separated scope of read, pii, write and admin. Any member node accepts a
// token from any member (federated trust); the Authorizer decides what it allows:
//
//   - no token: public records, read only, when anonymous access is on (else 401);
//   - read: federation and public records anywhere, private records only at their
//     origin with a token that origin issued;
//   - pii: nothing by itself, but unredacts personal data when the token was issued
//     by this node's centre and the record's origin is this centre;
//   - write: create and change records of this centre, only at this centre's node
//     and only with a token this centre issued;
//   - admin: everything above (including pii and write) at the issuing centre's
//     node, nothing at any other node.
package auth
