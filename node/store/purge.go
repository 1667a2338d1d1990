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
//
// Without Limit the command makes every record of the origin a tombstone in
// one transaction: at 100,000 records it held the state machine (so every
// write of the centre) for 3.7 s and grew the heap by 221 MiB (at 1,000,000:
// 38 s and 2.4 GiB), as the transaction holds every page it dirtied and every
// value it wrote until its commit (BenchmarkPurge). With
// Limit it makes at most Limit of them tombstones and marks the origin purged:
// the leader proposes such commands one after another until one reports no
// more (Result.More), so writes go between them and each transaction stays
// small. What is left is the state itself (the origin's index holds only live
// records), so a purge cut short by a crash or a change of leader continues
// from the state on any replica, and every replica tombstones the same records
// in the same order. Readers see the origin purged whole from the first chunk
// on: Get and List serve a record of a purged origin as the tombstone it is
// to become, as Changes does (and search, which reads its hits with Get). It
// travels as a kind of its own (cmdPurgeChunk): a build
// from before it would stop applying at it rather than purge everything at
// once and number the feed differently from the others, and the leader
// proposes it only once every replica announces node.FeaturePurgeChunks.
type PurgeCommand struct {
	Origin string `json:"origin"`
	Limit  int    `json:"limit,omitempty"`
}

// MaxPurgeChunk bounds PurgeCommand.Limit, so that no chunk, however it came
// to be proposed, holds the state machine for long (10,000: some 0.3 s and
// 22 MiB of heap).
const MaxPurgeChunk = 10_000

const purgedPrefix = "purged:"

func purgedKey(origin string) []byte { return []byte(purgedPrefix + origin) }

// unsafePurged reports whether origin is marked purged in tx. Most reads of
// another centre's record ask, and most origins were never purged: s.purged
// answers those without the bbolt lookup (which cost a Get 360 bytes and 7
// allocations, BenchmarkGetRemote). It may name an origin tx does not hold
// marked (a purge whose transaction rolled back, or not yet committed), so
// the mark decides for those it names.
//
// It never lacks one tx holds marked: the mark's apply adds the origin
// (markPurged) before its transaction commits, and a reader looks at
// s.purged only inside a transaction begun after that, and Open and Restore
// load it from the file before any reader runs.
func (s *Store) unsafePurged(tx *bbolt.Tx, origin string) bool {
	if m := s.purged.Load(); m == nil {
		return false
	} else if _, ok := (*m)[origin]; !ok {
		return false
	}
	return tx.Bucket(bucketMeta).Get(purgedKey(origin)) != nil
}

// markPurged adds origin to s.purged, in the transaction that marks it.
func (s *Store) markPurged(origin string) {
	old := s.purged.Load()
	if old != nil {
		if _, ok := (*old)[origin]; ok {
			return
		}
	}
	m := make(map[string]struct{}, 1)
	if old != nil {
		for o := range *old {
			m[o] = struct{}{}
		}
	}
	m[origin] = struct{}{}
	// Only Apply calls this, one at a time (bbolt's writer lock), so no
	// other writer's origin is lost between Load and Store.
	s.purged.Store(&m)
}

// loadPurged sets s.purged to the origins db marks purged.
func (s *Store) loadPurged(db *bbolt.DB) error {
	m := map[string]struct{}{}
	err := db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketMeta).Cursor()
		prefix := []byte(purgedPrefix)
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			m[string(k[len(prefix):])] = struct{}{}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("read purged origins: %w", err)
	}
	s.purged.Store(&m)
	return nil
}

func (s *Store) unsafeApplyPurge(tx *bbolt.Tx, c *PurgeCommand) (Result, error) {
	if c.Origin == s.opts.Centre {
		return Result{Err: fmt.Errorf("%w: a centre does not purge its own records", ErrNotOrigin)}, nil
	}
	if c.Limit < 0 || c.Limit > MaxPurgeChunk {
		return Result{Err: fmt.Errorf("purge of %s: limit %d outside 0..%d", c.Origin, c.Limit, MaxPurgeChunk)}, nil
	}
	s.markPurged(c.Origin)
	if err := tx.Bucket(bucketMeta).Put(purgedKey(c.Origin), []byte{1}); err != nil {
		return Result{}, err
	}
	// The origin's index holds its live records only (unsafeIndex), so
	// what a chunk leaves there is what the next one takes.
	prefix := indexPrefix(FieldOrigin, c.Origin)
	var ids []string
	cur := tx.Bucket(bucketIndex).Cursor()
	k, _ := cur.Seek(prefix)
	for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = cur.Next() {
		if c.Limit > 0 && len(ids) == c.Limit {
			break
		}
		ids = append(ids, string(k[len(prefix):]))
	}
	var res Result
	res.More = k != nil && bytes.HasPrefix(k, prefix)
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

// UnfinishedPurges lists the origins purged here whose purge, proposed in
// chunks (PurgeCommand.Limit), left records live: a leader that stopped
// proposing them (a crash, a change of leader) before one reported no more.
func (s *Store) UnfinishedPurges() (origins []string, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		mc := tx.Bucket(bucketMeta).Cursor()
		idx := tx.Bucket(bucketIndex).Cursor()
		prefix := []byte(purgedPrefix)
		for k, _ := mc.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = mc.Next() {
			origin := string(k[len(prefix):])
			live := indexPrefix(FieldOrigin, origin)
			if ik, _ := idx.Seek(live); ik != nil && bytes.HasPrefix(ik, live) {
				origins = append(origins, origin)
			}
		}
		return nil
	})
	return origins, err
}

// Purged reports whether this node purged origin's records.
func (s *Store) Purged(origin string) (purged bool, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		purged = s.unsafePurged(tx, origin)
		return nil
	})
	return purged, err
}
