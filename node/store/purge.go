package store

import (
	"bytes"
	"encoding/json"
	"fmt"

	"go.etcd.io/bbolt"
)

// PurgeCommand stops serving the records of an origin that left the
// federation: each becomes a tombstone (the change feed tells partners to drop
// it) and later entries of that origin are logged but not made records again.
// The signed log itself is kept, so sync neither loops nor forks and the
// history stays verifiable; purge is about what this node serves.
type PurgeCommand struct {
	Origin string `json:"origin"`
}

func purgedKey(origin string) []byte { return []byte("purged:" + origin) }

func unsafePurged(tx *bbolt.Tx, origin string) bool {
	return tx.Bucket(bucketMeta).Get(purgedKey(origin)) != nil
}

func (s *Store) unsafeApplyPurge(tx *bbolt.Tx, c *PurgeCommand) (Result, error) {
	if c.Origin == s.opts.Centre {
		return Result{Err: fmt.Errorf("%w: a centre does not purge its own records", ErrNotOrigin)}, nil
	}
	if err := tx.Bucket(bucketMeta).Put(purgedKey(c.Origin), []byte{1}); err != nil {
		return Result{}, err
	}
	prefix := indexPrefix(FieldOrigin, c.Origin)
	var ids []string
	cur := tx.Bucket(bucketIndex).Cursor()
	for k, _ := cur.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		ids = append(ids, string(k[len(prefix):]))
	}
	var res Result
	for _, id := range ids {
		existing, err := unsafeGetRecord(tx, id)
		if err != nil {
			return res, err
		}
		if existing.Deleted {
			continue
		}
		gone := existing.Clone()
		gone.Deleted = true
		gone.Body = json.RawMessage("{}")
		if res.Position, err = s.unsafePutRecord(tx, existing, gone); err != nil {
			return res, err
		}
		res.Applied++
	}
	return res, nil
}

// Purged reports whether this node purged origin's records.
func (s *Store) Purged(origin string) (purged bool, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		purged = unsafePurged(tx, origin)
		return nil
	})
	return purged, err
}
