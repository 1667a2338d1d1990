package store

import (
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"liandong/schema"
)

// The registry of buckets. Functions named unsafe… need a transaction the caller holds.
var (
	bucketMeta     = []byte("meta")     // layout, centre, epoch, applied index/term, feed seq and epoch
	bucketRecords  = []byte("records")  // id → record JSON (with personal data for own records)
	bucketLogs     = []byte("logs")     // origin → sub-bucket: seq (8 bytes BE) → sig ‖ canonical payload
	bucketHeads    = []byte("heads")    // origin → schema.Head JSON
	bucketFeed     = []byte("feed")     // position (8 bytes BE) → record JSON as applied
	bucketIndex    = []byte("index")    // field \0 value \0 id → empty
	bucketReplicas = []byte("replicas") // replica id → Replica JSON
	bucketCounts   = []byte("counts")   // catalogue \0 origin \0 visibility → live count (8 bytes BE)

	allBuckets = [][]byte{bucketMeta, bucketRecords, bucketLogs, bucketHeads, bucketFeed, bucketIndex, bucketCounts, bucketReplicas, bucketAudit}

	keyLayout       = []byte("layout")
	keyCentre       = []byte("centre")
	keyEpoch        = []byte("epoch")
	keyAppliedIndex = []byte("applied_index")
	keyAppliedTerm  = []byte("applied_term")
	keyFeedSeq      = []byte("feed_seq")
	keyFeedEpoch    = []byte("feed_epoch")
	// keyFeedNamedAt is the feed's newest position when this state applied
	// its name (FeedNamedAt); absent in a state named by an older build.
	keyFeedNamedAt = []byte("feed_named_at")
)

func unsafeInitBuckets(tx *bbolt.Tx, centre string) error {
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	if err := checkMeta(meta, centre); err != nil {
		return err
	}
	if getU64(meta, keyLayout) < layoutVersion {
		// Everything of an older layout reads as it did: raising the
		// number is the whole migration.
		if err := putU64(meta, keyLayout, layoutVersion); err != nil {
			return err
		}
	}
	if meta.Get(keyCentre) == nil {
		return meta.Put(keyCentre, []byte(centre))
	}
	return nil
}

// checkMeta refuses a state file of a newer layout or of another centre; a
// file that names neither (new) passes.
func checkMeta(meta *bbolt.Bucket, centre string) error {
	if v := meta.Get(keyLayout); v != nil && len(v) != 8 {
		return fmt.Errorf("%w: layout version", ErrCorrupt)
	} else if v != nil && binary.BigEndian.Uint64(v) > layoutVersion {
		return fmt.Errorf("%w: layout %d, this build reads up to %d: upgrade liandong", ErrNewerLayout, binary.BigEndian.Uint64(v), layoutVersion)
	}
	if c := meta.Get(keyCentre); c != nil && string(c) != centre {
		return fmt.Errorf("%w: the state file belongs to centre %q, not %q: check the data directory and config", ErrCorrupt, c, centre)
	}
	return nil
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func getU64(b *bbolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putU64(b *bbolt.Bucket, key []byte, v uint64) error { return b.Put(key, u64(v)) }

func unsafeAppliedIndex(tx *bbolt.Tx) (index, term uint64) {
	meta := tx.Bucket(bucketMeta)
	return getU64(meta, keyAppliedIndex), getU64(meta, keyAppliedTerm)
}

func unsafeGetRecord(tx *bbolt.Tx, id string) (*schema.Record, error) {
	v := tx.Bucket(bucketRecords).Get([]byte(id))
	if v == nil {
		return nil, ErrNotFound
	}
	var r schema.Record
	if err := schema.UnmarshalRecord(v, &r); err != nil {
		return nil, fmt.Errorf("%w: record %s: %v", ErrCorrupt, id, err)
	}
	return &r, nil
}

func unsafeHead(tx *bbolt.Tx, origin string) (schema.Head, error) {
	v := tx.Bucket(bucketHeads).Get([]byte(origin))
	if v == nil {
		return schema.Head{Origin: origin}, nil
	}
	var h schema.Head
	if err := schema.UnmarshalHead(v, &h); err != nil {
		return h, fmt.Errorf("%w: head of %s: %v", ErrCorrupt, origin, err)
	}
	return h, nil
}

// encodeStoredEntry lays an entry out as its signature followed by its canonical
// payload: the bytes that were hashed, with nothing to re-encode on the way out.
func encodeStoredEntry(e *schema.Entry) []byte {
	out := make([]byte, 0, len(e.Sig)+len(e.Raw))
	out = append(out, e.Sig...)
	return append(out, e.Raw...)
}

func decodeStoredEntry(v []byte) (*schema.Entry, error) {
	if len(v) < schema.SignatureSize {
		return nil, fmt.Errorf("stored entry of %d bytes", len(v))
	}
	e := &schema.Entry{
		Sig: append([]byte(nil), v[:schema.SignatureSize]...),
		Raw: append([]byte(nil), v[schema.SignatureSize:]...),
	}
	// The payload was checked canonical before it was stored; decode without the
	// second canonical pass.
	if err := schema.UnmarshalPayload(e.Raw, &e.EntryPayload); err != nil {
		return nil, err
	}
	return e, nil
}
