package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"go.etcd.io/bbolt"
)

// BackupInfo describes a copy of a state file: what Backup wrote, or what
// Inspect found in a file.
type BackupInfo struct {
	Centre string `json:"centre"`
	// Size is the copy's length in bytes.
	Size int64 `json:"size"`
	// AppliedIndex is the raft index the copy had applied: a backup of a
	// follower may be behind its leader by a few entries.
	AppliedIndex uint64 `json:"applied_index"`
	// OwnSeq is the head of the centre's own signed log in the copy.
	OwnSeq uint64 `json:"own_seq"`
	// Records counts live records of every origin.
	Records uint64 `json:"records"`
}

// Backup writes a consistent copy of the state file to w, as of one read
// transaction: writes go on meanwhile, since bbolt readers do not block its
// writer. The transaction holds the store's lock, which Close and a snapshot
// install wait for: w should be local (node.Backup copies to a file first).
// started is called, before the first byte, with what the copy holds; an
// error from it ends the backup before anything is written.
func (s *Store) Backup(w io.Writer, started func(BackupInfo) error) (int64, error) {
	var n int64
	err := s.view(func(tx *bbolt.Tx) error {
		info, err := unsafeBackupInfo(tx)
		if err != nil {
			return err
		}
		info.Size = tx.Size()
		if started != nil {
			if err := started(info); err != nil {
				return err
			}
		}
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

func unsafeBackupInfo(tx *bbolt.Tx) (BackupInfo, error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return BackupInfo{}, fmt.Errorf("%w: no meta bucket: not a liandong state file", ErrCorrupt)
	}
	info := BackupInfo{Centre: string(meta.Get(keyCentre))}
	info.AppliedIndex, _ = unsafeAppliedIndex(tx)
	if info.Centre != "" {
		h, err := unsafeHead(tx, info.Centre)
		if err != nil {
			return info, err
		}
		info.OwnSeq = h.Seq
	}
	if counts := tx.Bucket(bucketCounts); counts != nil {
		if err := counts.ForEach(func(_, v []byte) error {
			if len(v) == 8 {
				info.Records += binary.BigEndian.Uint64(v)
			}
			return nil
		}); err != nil {
			return info, err
		}
	}
	return info, nil
}

// ErrNotBackup is a file that is not a usable copy of a liandong state file.
var ErrNotBackup = errors.New("not a usable liandong state file")

// Inspect checks the state file at path page by page and value by value, as
// a start after an unclean stop does, without writing to it, and says what it
// holds. A copy that fails is ErrNotBackup (and ErrCorrupt or ErrNewerLayout).
func Inspect(path string) (BackupInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return BackupInfo{}, err
	}
	if fi.Size() == 0 {
		return BackupInfo{}, fmt.Errorf("%w: %s is empty", ErrNotBackup, path)
	}
	if err := checkBoltFile(path, 5*time.Second); err != nil {
		return BackupInfo{}, fmt.Errorf("%w: %w", ErrNotBackup, err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return BackupInfo{}, fmt.Errorf("%w: %w", ErrNotBackup, err)
	}
	defer db.Close()
	var info BackupInfo
	err = db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || meta.Get(keyCentre) == nil {
			return fmt.Errorf("%w: no centre recorded", ErrCorrupt)
		}
		if err := checkMeta(meta, string(meta.Get(keyCentre))); err != nil {
			return err
		}
		for _, name := range allBuckets {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("%w: no %s bucket", ErrCorrupt, name)
			}
		}
		if info, err = unsafeBackupInfo(tx); err != nil {
			return err
		}
		info.Size = tx.Size()
		return nil
	})
	if err != nil {
		return info, fmt.Errorf("%w: %w", ErrNotBackup, err)
	}
	return info, nil
}

// PrepareRestore makes the state file at path, a backup of centre, the
// state of a new raft group. The copy was taken at some raft index of the
// old group, and the new group's log counts from one: an applied index left
// in place would have the state machine skip every command up to it as
// already applied. The replicas recorded are the old group's, not the new
// one's (each registers itself again). The change feed loses its name, so
// that the group names it anew and partners whose cursors went past the
// backup read it again from the start rather than skip what the backup
// lacks (FeedEpoch). Nothing else changes: records, logs, heads and the
// installed trust bundle stay as they were.
func PrepareRestore(path, centre string) (BackupInfo, error) {
	info, err := Inspect(path)
	if err != nil {
		return info, err
	}
	if info.Centre != centre {
		return info, fmt.Errorf("%w: the backup is of centre %q, not %q", ErrNotBackup, info.Centre, centre)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType, PageSize: PageSize})
	if err != nil {
		return info, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if err := meta.Delete(keyFeedEpoch); err != nil {
			return err
		}
		if err := meta.Delete(keyFeedNamedAt); err != nil {
			return err
		}
		// The new group starts from a snapshot of this file at raft index 1,
		// term 1 (node.Restore): the old group's position would have the
		// state machine skip the new group's entries as applied.
		if err := putU64(meta, keyAppliedIndex, 1); err != nil {
			return err
		}
		if err := putU64(meta, keyAppliedTerm, 1); err != nil {
			return err
		}
		if err := tx.DeleteBucket(bucketReplicas); err != nil {
			return err
		}
		_, err := tx.CreateBucket(bucketReplicas)
		return err
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return info, fmt.Errorf("prepare %s for a new raft group: %w", path, err)
	}
	info.AppliedIndex = 1
	return info, nil
}
