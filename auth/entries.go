package auth

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"liandong/schema"
)

// SignEntry signs e's canonical bytes with k. e.KeyID must name k.
func SignEntry(k *KeyPair, e *schema.Entry) error {
	if k == nil || len(k.Private) != ed25519.PrivateKeySize {
		return errors.New("sign entry: no private key")
	}
	if e.KeyID != k.ID {
		return fmt.Errorf("sign entry %s/%d: entry names key %q, signing key is %q", e.Origin, e.Seq, e.KeyID, k.ID)
	}
	if len(e.Raw) == 0 {
		return fmt.Errorf("sign entry %s/%d: no canonical bytes (build it with schema.NewEntry)", e.Origin, e.Seq)
	}
	e.Sig = ed25519.Sign(k.Private, e.Raw)
	return nil
}

// KeyResolver finds the record-signing key an origin used at a time. *Bundle
// implements it; its errors wrap ErrUnknownKey, ErrKeyRevoked or ErrKeyNotValidAt.
type KeyResolver interface {
	RecordKey(origin, kid string, at time.Time) (ed25519.PublicKey, error)
}

var _ KeyResolver = (*Bundle)(nil)

// VerifyEntry checks e's signature with the key e names, as valid when e was signed.
// Errors are *ChainError (Index 0) so callers can count them by reason.
func VerifyEntry(r KeyResolver, e *schema.Entry) error {
	pub, reason, err := resolveEntryKey(r, e)
	if err != nil {
		return &ChainError{Origin: e.Origin, Seq: e.Seq, Reason: reason, Err: err}
	}
	if !verifySig(pub, e) {
		return &ChainError{Origin: e.Origin, Seq: e.Seq, Reason: ReasonBadSignature, Err: errBadSig(e)}
	}
	return nil
}

func resolveEntryKey(r KeyResolver, e *schema.Entry) (ed25519.PublicKey, ChainReason, error) {
	pub, err := r.RecordKey(e.Origin, e.KeyID, e.SignedAt)
	if err != nil {
		switch {
		case errors.Is(err, ErrKeyRevoked):
			return nil, ReasonRevokedKey, err
		case errors.Is(err, ErrKeyNotValidAt):
			return nil, ReasonKeyNotValidAtTime, err
		default:
			return nil, ReasonUnknownKey, err
		}
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, ReasonUnknownKey, fmt.Errorf("%w: key %q is not an ed25519 public key", ErrUnknownKey, e.KeyID)
	}
	return pub, "", nil
}

func verifySig(pub ed25519.PublicKey, e *schema.Entry) bool {
	return len(e.Sig) == ed25519.SignatureSize && ed25519.Verify(pub, e.Raw, e.Sig)
}

func errBadSig(e *schema.Entry) error {
	return fmt.Errorf("signature does not verify with key %q", e.KeyID)
}

// VerifyMode says which signatures VerifyChain checks.
type VerifyMode int

const (
	// VerifyEverySignature checks each entry's signature.
	VerifyEverySignature VerifyMode = iota
	// VerifyBatchSignature checks the signature of the last entry of each run of
	// entries under one key; the hash chain binds the others to it. Each entry's
	// key must still be known, unrevoked and valid when the entry says it signed.
	VerifyBatchSignature
)

func (m VerifyMode) String() string {
	switch m {
	case VerifyEverySignature:
		return "every-signature"
	case VerifyBatchSignature:
		return "batch-signature"
	}
	return fmt.Sprintf("VerifyMode(%d)", int(m))
}

// ChainReason says why an entry was refused. The values are stable: metrics
// label rejected entries with them.
type ChainReason string

// Reasons for refusing an entry.
const (
	ReasonGap               ChainReason = "gap"
	ReasonReorder           ChainReason = "reorder"
	ReasonDuplicate         ChainReason = "duplicate"
	ReasonBadPrevHash       ChainReason = "bad-prev-hash"
	ReasonBadSignature      ChainReason = "bad-signature"
	ReasonUnknownKey        ChainReason = "unknown-key"
	ReasonRevokedKey        ChainReason = "revoked-key"
	ReasonKeyNotValidAtTime ChainReason = "key-not-valid-at-time"
	ReasonWrongOrigin       ChainReason = "wrong-origin"
	ReasonWrongEpoch        ChainReason = "wrong-epoch"
)

// ChainReasons lists every reason, for metrics that want all label values up front.
var ChainReasons = []ChainReason{
	ReasonGap, ReasonReorder, ReasonDuplicate, ReasonBadPrevHash, ReasonBadSignature,
	ReasonUnknownKey, ReasonRevokedKey, ReasonKeyNotValidAtTime, ReasonWrongOrigin, ReasonWrongEpoch,
}

// ErrChain is matched (errors.Is) by every *ChainError.
var ErrChain = errors.New("chain verification failed")

// ChainError names the first entry of a batch that failed verification and why.
// Nothing in a batch that fails should be applied.
type ChainError struct {
	Origin string
	Seq    uint64 // the seq the refused entry carries
	Index  int    // its index in the batch
	Reason ChainReason
	Err    error
}

func (e *ChainError) Error() string {
	msg := fmt.Sprintf("%v: entry %s/%d (index %d): %s", ErrChain, e.Origin, e.Seq, e.Index, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error (for instance one wrapping ErrKeyRevoked).
func (e *ChainError) Unwrap() error { return e.Err }

// Is reports true for ErrChain.
func (e *ChainError) Is(target error) bool { return target == ErrChain }

// VerifyChain checks that entries, all of one origin, continue that origin's log
// from prev, the head the caller holds (prev.Seq == 0 and a zero hash for an
// empty log):
//
//   - every entry's origin is prev.Origin (or, if that is empty, the first entry's);
//   - every entry carries the epoch prev.Epoch when prev.Seq > 0 or prev.Epoch is
//     set, and otherwise the first entry's epoch;
//   - seqs run prev.Seq+1, prev.Seq+2, … without gaps;
//   - each prev_hash is the hash of the entry before (prev.Hash for the first);
//   - each entry's key is known, unrevoked and valid at its signed_at;
//   - signatures verify: all of them, or in VerifyBatchSignature mode the last of
//     each run of entries with the same key id.
//
// It stops at the first failure and returns a *ChainError for it. A seq that
// jumps ahead is a gap, unless the expected seq comes later in the batch (then
// the batch is out of order: reorder); a seq equal to the one just before or at
// or below prev.Seq is a duplicate; any other lower seq is a reorder.
func VerifyChain(r KeyResolver, prev schema.Head, entries []*schema.Entry, mode VerifyMode) error {
	if len(entries) == 0 {
		return nil
	}
	origin := prev.Origin
	if origin == "" {
		origin = entries[0].Origin
	}
	epoch, epochSet := prev.Epoch, prev.Seq > 0 || prev.Epoch != ""
	prevHash := prev.Hash
	if prev.Seq == 0 {
		prevHash = schema.ZeroHash
	}
	expected := prev.Seq + 1
	fail := func(i int, reason ChainReason, err error) error {
		return &ChainError{Origin: origin, Seq: entries[i].Seq, Index: i, Reason: reason, Err: err}
	}
	for i, e := range entries {
		if e == nil {
			return &ChainError{Origin: origin, Seq: expected, Index: i, Reason: ReasonGap, Err: errors.New("nil entry")}
		}
		if e.Origin != origin {
			return fail(i, ReasonWrongOrigin, fmt.Errorf("entry origin %q in a batch of %q", e.Origin, origin))
		}
		if !epochSet {
			epoch, epochSet = e.Epoch, true
		} else if e.Epoch != epoch {
			return fail(i, ReasonWrongEpoch, fmt.Errorf("epoch %q, want %q", e.Epoch, epoch))
		}
		if e.Seq != expected {
			return fail(i, seqReason(prev.Seq, expected, entries, i), fmt.Errorf("seq %d, want %d", e.Seq, expected))
		}
		if e.PrevHash != prevHash {
			return fail(i, ReasonBadPrevHash, fmt.Errorf("prev_hash %s, want %s", e.PrevHash, prevHash))
		}
		pub, reason, err := resolveEntryKey(r, e)
		if err != nil {
			return fail(i, reason, err)
		}
		check := mode != VerifyBatchSignature || i == len(entries)-1 || entries[i+1] == nil || entries[i+1].KeyID != e.KeyID
		if len(e.Sig) != ed25519.SignatureSize || check && !ed25519.Verify(pub, e.Raw, e.Sig) {
			return fail(i, ReasonBadSignature, errBadSig(e))
		}
		prevHash = e.Hash()
		expected++
	}
	return nil
}

// seqReason classifies entries[i], whose seq is not the expected one.
func seqReason(held, expected uint64, entries []*schema.Entry, i int) ChainReason {
	seq := entries[i].Seq
	if seq > expected {
		for _, later := range entries[i+1:] {
			if later != nil && later.Seq == expected {
				return ReasonReorder
			}
		}
		return ReasonGap
	}
	if seq == expected-1 || seq <= held {
		return ReasonDuplicate
	}
	return ReasonReorder
}
