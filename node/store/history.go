package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"go.etcd.io/bbolt"

	"liandong/schema"
)

// The version history of records: which entry of its origin's signed log carried
// each version. It is written in the transaction that appends the entry (own
// writes and remote entries alike), so it is as durable and as deterministic as
// the log itself, and travels in snapshots with it. Versions that never entered a
// log (a record while private) have no history entry.
//
// Entries appended by a build without this index are not listed.
var bucketHistory = []byte("history") // id \0 version (8 bytes BE) → origin seq (8 bytes BE)

func historyPrefix(id string) []byte {
	k := make([]byte, 0, len(id)+9)
	k = append(k, id...)
	return append(k, 0)
}

// unsafeIndexHistory records that e carries its record's version.
func unsafeIndexHistory(tx *bbolt.Tx, e *schema.Entry) error {
	if e.Record == nil {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(bucketHistory)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucketHistory, err)
	}
	key := append(historyPrefix(e.Record.ID), u64(e.Record.Version)...)
	setHistoryFill(b, key, e.Origin)
	return b.Put(key, u64(e.Seq))
}

// historyInsertFill is the history bucket's FillPercent in a transaction
// that puts a key in the middle of an origin's range: about bbolt's default,
// but apart from it (DefaultFillPercent is also what the bucket starts each
// transaction with), so that a later append in the same transaction knows
// that the pages must not split full.
const historyInsertFill = bbolt.DefaultFillPercent + 0.05

// setHistoryFill sets how full b's pages split in this transaction, before
// key is put. A new record's first version (its id growing with time) lands
// at the end of its origin's range, as in the records bucket: pages split
// full (at the default half, a catch-up left this bucket half empty and
// wrote twice its pages). A later version of an older record lands in the
// middle of the range, and there a full page splits into a full one and one
// holding the key or two past the split: nothing is ever deleted here for
// bbolt to merge those, so steady updates left pages 7 % full (the file a
// third larger, CPU per update up half, BenchmarkUpdates). FillPercent holds
// for the whole transaction's splits, so one such key keeps it near the
// default.
func setHistoryFill(b *bbolt.Bucket, key []byte, origin string) {
	if b.FillPercent == historyInsertFill {
		return
	}
	next, _ := b.Cursor().Seek(key)
	if next == nil || !bytes.HasPrefix(next, []byte(origin+":")) {
		b.FillPercent = 1.0
		return
	}
	b.FillPercent = historyInsertFill
}

// History returns up to limit log entries that carried versions of the record
// id, newest version first, starting below version before (0: from the newest).
// Each entry is as stored: verified against the trust bundle when it was
// received, or signed by this centre. more reports whether older entries remain.
func (s *Store) History(id string, before uint64, limit int) (entries []*schema.Entry, more bool, err error) {
	origin, _, err := schema.SplitID(id)
	if err != nil {
		return nil, false, err
	}
	if limit <= 0 {
		limit = 50
	}
	err = s.view(func(tx *bbolt.Tx) error {
		hb := tx.Bucket(bucketHistory)
		logs := tx.Bucket(bucketLogs).Bucket([]byte(origin))
		if hb == nil || logs == nil {
			return nil
		}
		prefix := historyPrefix(id)
		c := hb.Cursor()
		// Seek to the first key after the wanted range, then step back.
		seek := append(bytes.Clone(prefix[:len(prefix)-1]), 1) // past every key of id
		if before != 0 {
			seek = append(bytes.Clone(prefix), u64(before)...)
		}
		var k, v []byte
		if k, _ = c.Seek(seek); k == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			if len(k) != len(prefix)+8 || len(v) != 8 {
				return fmt.Errorf("%w: history key %q", ErrCorrupt, k)
			}
			if len(entries) == limit {
				more = true
				return nil
			}
			seq := binary.BigEndian.Uint64(v)
			raw := logs.Get(u64(seq))
			if raw == nil {
				return fmt.Errorf("%w: history of %s names %s seq %d, which is not in the log", ErrCorrupt, id, origin, seq)
			}
			e, err := decodeStoredEntry(raw)
			if err != nil {
				return fmt.Errorf("%w: entry %s/%d: %v", ErrCorrupt, origin, seq, err)
			}
			entries = append(entries, e)
		}
		return nil
	})
	return entries, more, err
}
