package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"liandong/schema"
)

// BundleCommand installs a signed trust bundle at every replica of the centre.
// The leader verified it against the bundle it held; applying only refuses a
// version that is not newer than the one stored, so a replayed command is a no-op.
type BundleCommand struct {
	Version uint64          `json:"version"`
	Signed  json.RawMessage `json:"signed"` // auth.SignedBundle as distributed
}

// AuditCommand appends one event to the centre's audit log.
type AuditCommand struct {
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Action string    `json:"action"`
	Detail string    `json:"detail,omitempty"`
	// KeyID is the record key the event is signed with, chosen by the
	// leader as for writes: each replica's own default key could differ
	// during a key rotation, and with it the replicated audit chain.
	// Commands of older builds carry none and use the default key.
	KeyID string `json:"key_id,omitempty"`
}

// AuditEvent is one entry of the append-only audit log. Events form a hash chain
// (Prev is the Hash of the one before) and each is signed by the centre's record
// key over the canonical JSON of every field but Sig, so an event cannot be
// changed or dropped from the middle without the chain showing it.
type AuditEvent struct {
	Seq    uint64      `json:"seq"`
	At     time.Time   `json:"at"`
	Centre string      `json:"centre"`
	Actor  string      `json:"actor"`
	Action string      `json:"action"`
	Detail string      `json:"detail,omitempty"`
	Prev   schema.Hash `json:"prev"`
	KeyID  string      `json:"kid"`
	Sig    []byte      `json:"sig,omitempty"`
}

// SignedBytes returns the canonical bytes an event's signature covers.
func (e *AuditEvent) SignedBytes() ([]byte, error) {
	c := *e
	c.Sig = nil
	js, err := json.Marshal(&c)
	if err != nil {
		return nil, err
	}
	return schema.Canonical(js)
}

// Hash is the sha256 of the signed bytes followed by the signature.
func (e *AuditEvent) Hash() (schema.Hash, error) {
	b, err := e.SignedBytes()
	if err != nil {
		return schema.Hash{}, err
	}
	return sha256.Sum256(append(b, e.Sig...)), nil
}

var (
	bucketAudit      = []byte("audit") // seq (8 bytes BE) → AuditEvent JSON
	keyBundle        = []byte("bundle")
	keyBundleVersion = []byte("bundle_version")
	keyAuditHead     = []byte("audit_head")
)

// ErrStaleBundle is the result of a BundleCommand whose version is not newer
// than the stored bundle's.
var ErrStaleBundle = errors.New("trust bundle not newer than the one installed")

func unsafeApplyBundle(tx *bbolt.Tx, c *BundleCommand) (Result, error) {
	meta := tx.Bucket(bucketMeta)
	if held := getU64(meta, keyBundleVersion); c.Version <= held {
		return Result{Err: fmt.Errorf("%w: v%d, holding v%d", ErrStaleBundle, c.Version, held)}, nil
	}
	if err := meta.Put(keyBundle, bytes.Clone(c.Signed)); err != nil {
		return Result{}, err
	}
	if err := putU64(meta, keyBundleVersion, c.Version); err != nil {
		return Result{}, err
	}
	return Result{Applied: 1, Bundle: c}, nil
}

func (s *Store) unsafeApplyAudit(tx *bbolt.Tx, c *AuditCommand) (Result, error) {
	if s.opts.Signer == nil {
		return Result{}, internalError{errors.New("no record-signing key configured")}
	}
	b := tx.Bucket(bucketAudit)
	meta := tx.Bucket(bucketMeta)
	ev := AuditEvent{At: c.At.UTC(), Centre: s.opts.Centre, Actor: c.Actor, Action: c.Action, Detail: c.Detail,
		KeyID: c.KeyID}
	if ev.KeyID == "" {
		ev.KeyID = s.opts.Signer.KeyID()
	}
	if k, _ := b.Cursor().Last(); k != nil {
		ev.Seq = binary.BigEndian.Uint64(k) + 1
	} else {
		ev.Seq = 1
	}
	copy(ev.Prev[:], meta.Get(keyAuditHead))
	msg, err := ev.SignedBytes()
	if err != nil {
		return Result{}, internalError{fmt.Errorf("encode audit event: %w", err)}
	}
	if ev.Sig, err = s.opts.Signer.SignBytes(ev.KeyID, msg); err != nil {
		return Result{}, internalError{fmt.Errorf("sign audit event: %w", err)}
	}
	h, err := ev.Hash()
	if err != nil {
		return Result{}, internalError{err}
	}
	js, err := json.Marshal(&ev)
	if err != nil {
		return Result{}, internalError{err}
	}
	b.FillPercent = 1.0
	if err := b.Put(u64(ev.Seq), js); err != nil {
		return Result{}, err
	}
	if err := meta.Put(keyAuditHead, h[:]); err != nil {
		return Result{}, err
	}
	return Result{Audit: &ev}, nil
}

// Bundle returns the signed trust bundle installed through raft, and its
// version; nil and 0 when none was (the node runs on its configured file).
func (s *Store) Bundle() (signed []byte, version uint64, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		signed = bytes.Clone(meta.Get(keyBundle))
		version = getU64(meta, keyBundleVersion)
		return nil
	})
	return signed, version, err
}

// Audit returns up to limit audit events from seq from on, in order.
func (s *Store) Audit(from uint64, limit int) ([]AuditEvent, error) {
	var out []AuditEvent
	err := s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(u64(from)); k != nil && len(out) < limit; k, v = c.Next() {
			var ev AuditEvent
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("%w: audit event %d: %v", ErrCorrupt, binary.BigEndian.Uint64(k), err)
			}
			out = append(out, ev)
		}
		return nil
	})
	return out, err
}
