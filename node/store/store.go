// Package store owns a centre's state file: one bbolt database holding the records,
// the per-origin signed logs with their heads, the local change feed, secondary
// indexes, counters for metrics and the last applied raft index.
//
// The store is the deterministic half of the raft state machine: Apply takes a batch
// of commands and writes them in one bbolt transaction, so every replica that
// applies the same commands ends with the same bytes. It knows nothing of raft
// itself; node/ adapts it to raft.FSM.
//
// Buckets (see bucket.go) carry a schema version in meta; a file written by a newer
// layout is refused at Open rather than misread.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"liandong/schema"
)

// Sentinel errors callers branch on.
var (
	ErrNotFound        = errors.New("record not found")
	ErrDeleted         = errors.New("record deleted")
	ErrVersionConflict = errors.New("version conflict")
	ErrExists          = errors.New("record exists")
	ErrNotOrigin       = errors.New("record belongs to another centre")
	ErrFork            = errors.New("log fork")
	ErrChainGap        = errors.New("entries do not continue the local head")
	ErrCorrupt         = errors.New("state file corrupt")
	ErrNewerLayout     = errors.New("state file written by a newer liandong")
	ErrClosed          = errors.New("store closed")
)

// ErrCatalogueMove refuses a write (WriteCommand.KeepCatalogue) that would
// move a live record to another catalogue.
var ErrCatalogueMove = errors.New("a live record keeps its catalogue")

// layoutVersion is the on-disk layout this build writes. 2: feed values may
// carry a 'V' mark (Change.Was), which builds of layout 1 read as damage; a
// file of layout 1 is raised to 2 when this build opens it, so that they
// refuse it whole (ErrNewerLayout) rather than fail at the first mark.
const layoutVersion = 2

// MmapReserve is the address space a bbolt file of this node maps at open
// (bbolt's InitialMmapSize; etcd reserves 10 GB the same way). It costs no
// memory: only pages read are resident. Without it bbolt maps the file at its
// size and maps it again each time it outgrows the map, doubling: every remap
// first copies every node the writing transaction holds out of the old map
// (a catch-up transaction holds tens of MB, and 12 % of a catch-up's CPU went
// there), and waits for every open read transaction to end. Past the reserve
// bbolt grows the map 1 GB at a time. With the map larger than the file,
// bbolt grows the file in sparse 16 MB steps (AllocSize): a new file shows
// 16 MB in ls and holds on disk what du says. (On Windows bbolt would make the
// file 1 GB at once; liandong is built for Linux.)
const MmapReserve = 1 << 30

// PageSize is the page size of the state file and the raft log when this node
// creates them (a file keeps the size it was made with). bbolt writes each dirty
// page with a pwrite of its own, and these files grow at their ends (the log,
// the feed, records with time-ordered ids): with the OS's 4 KB pages a 50k-entry
// catch-up made a pwrite per 4 KB and spent a tenth of its CPU in those calls.
// With 16 KB pages a 50k catch-up ran 13–17 % faster (BENCHMARKS.md, session 8).
// The search index keeps the OS's page size: it rewrites scattered blocks,
// where a larger page writes more for each (its benchmarks were mixed).
const PageSize = 16 << 10

// Options configure a Store.
type Options struct {
	// Centre is this node's centre id: the origin of records written here.
	Centre string
	// Signer signs entries appended to this centre's log. Every replica of a
	// centre holds the same record key, and ed25519 is deterministic, so every
	// replica produces the same entry bytes.
	Signer Signer
	// NoSync skips fsync of the state file. Safe only when the raft log is durable,
	// because the applied index is in the same transaction and raft replays the rest.
	NoSync bool
	// OpenTimeout bounds waiting for the file lock held by another process.
	OpenTimeout time.Duration
}

// Signer signs log entries of this centre. auth.KeyPair satisfies it through a
// small adapter in node/.
type Signer interface {
	KeyID() string
	Sign(e *schema.Entry) error
	// SignBytes signs msg (an audit event) with the key keyID names, as Sign
	// does for entries; with the default key when keyID is empty.
	SignBytes(keyID string, msg []byte) ([]byte, error)
}

// Store is a centre's state file.
type Store struct {
	opts Options
	path string

	// mu guards db against Restore swapping the file; readers hold it shared.
	mu sync.RWMutex
	db *bbolt.DB

	// watch is closed and replaced after every commit, to wake long-polls.
	watchMu sync.Mutex
	watch   chan struct{}

	// purged holds every origin whose purge mark a read transaction may
	// see (see unsafePurged), so that a read of another centre's record
	// looks the mark up in bbolt only for an origin ever purged. Replaced
	// whole, never changed in place.
	purged atomic.Pointer[map[string]struct{}]

	// epoch caches this centre's log epoch once db holds one: it is set by
	// the first own entry (or a recovery) and never changes in that file, so
	// only a file replaced (Restore) or closed clears it, under mu. Every
	// write asked for it with a read transaction of its own.
	epoch atomic.Pointer[string]
}

// Open opens or creates the state file at path.
func Open(path string, opts Options) (*Store, error) {
	if !schema.ValidCentreID(opts.Centre) {
		return nil, fmt.Errorf("open store: invalid centre id %q", opts.Centre)
	}
	if opts.OpenTimeout == 0 {
		opts.OpenTimeout = 5 * time.Second
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	s := &Store{opts: opts, path: path, watch: make(chan struct{})}
	db, err := s.openDB()
	if err != nil {
		return nil, err
	}
	if err := s.loadPurged(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state file %s: %w", path, err)
	}
	s.db = db
	return s, nil
}

func (s *Store) openDB() (db *bbolt.DB, err error) {
	// bbolt asserts (panics) on pages that do not identify themselves, which is
	// what a torn or overwritten file looks like: report it as corruption.
	defer func() {
		if v := recover(); v != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, fmt.Errorf("open state file %s: %w: %v (move it aside and restore from a snapshot or a peer)", s.path, ErrCorrupt, v)
		}
	}()
	// bbolt rebuilds its free list at open by walking every page, and a page a
	// flipped byte damaged can end the process there (a fault, or a panic in a
	// goroutine of its own): walk the file read-only first, where damage is an error.
	if err := precheckFile(s.path, s.opts.OpenTimeout); err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open state file %s: locked by another process (is another liandong running on this data directory?): %w", s.path, err)
		}
		if errors.Is(err, ErrNoAccess) {
			return nil, fmt.Errorf("open state file: %w", err)
		}
		return nil, fmt.Errorf("open state file %s: %w (move it aside and restore from a snapshot or a peer)", s.path, err)
	}
	db, err = bbolt.Open(s.path, 0o600, &bbolt.Options{
		Timeout:         s.opts.OpenTimeout,
		NoSync:          s.opts.NoSync,
		NoFreelistSync:  true,
		FreelistType:    bbolt.FreelistMapType,
		InitialMmapSize: MmapReserve,
		PageSize:        PageSize,
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open state file %s: locked by another process (is another liandong running on this data directory?): %w", s.path, err)
		}
		// A file this user may read but not write passes the read-only
		// precheck and is refused here: that is no damage, and calling it
		// ErrCorrupt would have it moved aside and rebuilt after an unclean stop.
		if err := accessError(s.path, err); errors.Is(err, ErrNoAccess) {
			return nil, fmt.Errorf("open state file: %w", err)
		}
		return nil, fmt.Errorf("open state file %s: %w (%w: move it aside and restore from a snapshot or a peer)", s.path, err, ErrCorrupt)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return unsafeInitBuckets(tx, s.opts.Centre) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state file %s: %w", s.path, err)
	}
	return db, nil
}

// Close closes the state file.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	var err error
	if s.opts.NoSync {
		// A clean stop is trusted at the next start (no check, no rebuild,
		// raft replays nothing below the applied index), also after the
		// machine restarts: what the file holds must be on the disk first.
		// bbolt's Close does not sync.
		err = s.db.Sync()
	}
	err = errors.Join(err, s.db.Close())
	s.db = nil
	s.epoch.Store(nil)
	return err
}

// Path returns the state file's path.
func (s *Store) Path() string { return s.path }

// Centre returns this store's centre id.
func (s *Store) Centre() string { return s.opts.Centre }

func (s *Store) view(fn func(tx *bbolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return ErrClosed
	}
	return s.db.View(fn)
}

// Changed returns a channel closed at the next commit.
func (s *Store) Changed() <-chan struct{} {
	s.watchMu.Lock()
	defer s.watchMu.Unlock()
	return s.watch
}

func (s *Store) notify() {
	s.watchMu.Lock()
	close(s.watch)
	s.watch = make(chan struct{})
	s.watchMu.Unlock()
}

// Get returns the record with id, including personal data. Deleted records are
// returned with ErrDeleted alongside the tombstone.
func (s *Store) Get(id string) (*schema.Record, error) {
	var rec *schema.Record
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		if rec, err = unsafeGetRecord(tx, id); err != nil {
			return err
		}
		if !rec.Deleted && rec.Origin != s.opts.Centre && s.unsafePurged(tx, rec.Origin) {
			// Purged, the chunk that makes it a tombstone still to come
			// (PurgeCommand.Limit): served as that tombstone already, as
			// Changes and List do, so that no reader sees an origin half
			// purged.
			rec.Deleted, rec.Body = true, json.RawMessage("{}")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if rec.Deleted {
		return rec, ErrDeleted
	}
	return rec, nil
}

// AppliedIndex returns the last raft index applied to the state.
func (s *Store) AppliedIndex() (index, term uint64, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		index, term = unsafeAppliedIndex(tx)
		return nil
	})
	return index, term, err
}

// Epoch returns this centre's log epoch, or "" before the first local write.
func (s *Store) Epoch() (string, error) {
	if e := s.epoch.Load(); e != nil {
		return *e, nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return "", ErrClosed
	}
	var epoch string
	err := s.db.View(func(tx *bbolt.Tx) error {
		epoch = string(tx.Bucket(bucketMeta).Get(keyEpoch))
		return nil
	})
	if err == nil && epoch != "" {
		// Under mu: a Restore or Close, which clear it, waits for this.
		s.epoch.Store(&epoch)
	}
	return epoch, err
}

// FeedEpoch names this state's change feed, or "" before its group named it.
// Feed positions count from one in a state built from scratch: a centre that
// lost its disk and recovered from its peers numbers its changes anew, so a
// partner's cursor from before would silently skip changes. The name, chosen
// at random by the group's leader and applied through raft (every replica,
// snapshot and replay agrees on it), tells one life of the feed from another.
func (s *Store) FeedEpoch() (string, error) {
	var epoch string
	err := s.view(func(tx *bbolt.Tx) error {
		epoch = string(tx.Bucket(bucketMeta).Get(keyFeedEpoch))
		return nil
	})
	return epoch, err
}

// HoldsOrigin reports whether this state holds a record of origin, live or a
// tombstone: a centre whose records are here stays a valid filter (the API's
// origin=) after the trust bundle stopped listing it. One seek of the records
// bucket, whose keys begin with the origin's id.
func (s *Store) HoldsOrigin(origin string) (held bool, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		prefix := []byte(origin + ":")
		k, _ := tx.Bucket(bucketRecords).Cursor().Seek(prefix)
		held = k != nil && bytes.HasPrefix(k, prefix)
		return nil
	})
	return held, err
}

// FeedNamedAt is the change feed's newest position when this state applied
// the feed's name (FeedEpoch), and false for a feed not named, or named by a
// build that did not record it. A cursor without a name is issued only for a
// position this state had applied before it took the name (by a replica yet
// to apply it, an older build, or before the naming), so an unnamed cursor
// past this position is of another life of the feed, however far the feed
// has grown since.
func (s *Store) FeedNamedAt() (pos uint64, named bool, err error) {
	err = s.view(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta.Get(keyFeedEpoch) == nil || meta.Get(keyFeedNamedAt) == nil {
			return nil
		}
		pos, named = getU64(meta, keyFeedNamedAt), true
		return nil
	})
	return pos, named, err
}

// Heads returns the head of every origin log this node holds.
func (s *Store) Heads() ([]schema.Head, error) {
	var heads []schema.Head
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketHeads).ForEach(func(k, v []byte) error {
			var h schema.Head
			if err := schema.UnmarshalHead(v, &h); err != nil {
				return fmt.Errorf("%w: head of %s: %v", ErrCorrupt, k, err)
			}
			heads = append(heads, h)
			return nil
		})
	})
	return heads, err
}

// Head returns the head of origin's log (zero Seq when none is held).
func (s *Store) Head(origin string) (schema.Head, error) {
	var h schema.Head
	err := s.view(func(tx *bbolt.Tx) error {
		var err error
		h, err = unsafeHead(tx, origin)
		return err
	})
	return h, err
}

// ReadRange returns up to limit entries of origin's log starting at fromSeq.
func (s *Store) ReadRange(origin string, fromSeq uint64, limit int) ([]*schema.Entry, error) {
	var out []*schema.Entry
	err := s.scanLog(origin, fromSeq, limit, func(k, v []byte) error {
		e, err := decodeStoredEntry(v)
		if err != nil {
			return fmt.Errorf("%w: entry %s/%d: %v", ErrCorrupt, origin, binary.BigEndian.Uint64(k), err)
		}
		out = append(out, e)
		return nil
	})
	return out, err
}

// ReadRangeRaw is ReadRange for sending entries on, as a peer's range request
// or a push does: each entry holds Origin, Seq (from its key), Raw and Sig,
// as stored, and the rest of its payload is zero. The stored bytes were
// verified when they were received or signed here; decoding them again was
// most of what serving a range cost a holder.
func (s *Store) ReadRangeRaw(origin string, fromSeq uint64, limit int) ([]*schema.Entry, error) {
	var out []*schema.Entry
	err := s.scanLog(origin, fromSeq, limit, func(k, v []byte) error {
		if len(k) != 8 || len(v) <= schema.SignatureSize {
			return fmt.Errorf("%w: entry %s/%x of %d bytes", ErrCorrupt, origin, k, len(v))
		}
		buf := bytes.Clone(v) // bbolt's bytes live only as long as the transaction
		e := &schema.Entry{Sig: buf[:schema.SignatureSize:schema.SignatureSize], Raw: buf[schema.SignatureSize:]}
		e.Origin, e.Seq = origin, binary.BigEndian.Uint64(k)
		out = append(out, e)
		return nil
	})
	return out, err
}

// scanLog calls fn with the key and stored bytes of origin's log entries from
// fromSeq on (1 if 0), at most limit, inside one read transaction.
func (s *Store) scanLog(origin string, fromSeq uint64, limit int, fn func(k, v []byte) error) error {
	if fromSeq == 0 {
		fromSeq = 1
	}
	return s.view(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketLogs).Bucket([]byte(origin))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		n := 0
		for k, v := c.Seek(u64(fromSeq)); k != nil && n < limit; k, v = c.Next() {
			if err := fn(k, v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
}

// Change is one position of the local change feed.
type Change struct {
	Position uint64
	Record   *schema.Record
	// Withdrawn marks the change that turned a shared record private: to
	// everyone but the origin's own readers it is a deletion.
	Withdrawn bool
	// Was is the visibility the record had before this change narrowed who
	// may read it (public to federation, or a shared record turned private):
	// to the readers it leaves behind, the change is a deletion. "" when the
	// change narrowed nothing, or was applied by an older build (which marked
	// only its own centre's withdrawals, with Withdrawn).
	Was string
}

// ChangeFilter selects feed changes.
type ChangeFilter func(c *Change) bool

// Feed values are the record JSON, or one of these markers before it.
const (
	// feedWithdrawn marked a withdrawal of this centre's (older builds).
	feedWithdrawn = 'W'
	// feedNarrowed is followed by the visibility the change narrowed from.
	feedNarrowed = 'V'
)

// Changes returns up to limit changes after position since, in apply order.
// match, when set, filters changes (the position still advances past those it
// skips); it is told whether the change is a withdrawal.
func (s *Store) Changes(since uint64, limit int, match ChangeFilter) (changes []Change, last uint64, err error) {
	if since == math.MaxUint64 {
		// No position follows; since+1 would wrap to the feed's start, and
		// a stream read from a crafted cursor would resend it in a loop.
		return nil, since, nil
	}
	err = s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketFeed).Cursor()
		purged := map[string]bool{}
		last = since
		scanned := 0
		for k, v := c.Seek(u64(since + 1)); k != nil && len(changes) < limit && scanned < limit*64; k, v = c.Next() {
			scanned++
			pos := binary.BigEndian.Uint64(k)
			last = pos
			var ch Change
			switch {
			case len(v) > 0 && v[0] == feedWithdrawn:
				ch.Withdrawn, v = true, v[1:]
			case len(v) > 0 && v[0] == feedNarrowed:
				i := bytes.IndexByte(v, '{')
				if i < 2 {
					return fmt.Errorf("%w: feed %d: bad narrowing mark", ErrCorrupt, pos)
				}
				ch.Was, v = string(v[1:i]), v[i:]
			}
			var r schema.Record
			if err := schema.UnmarshalRecord(v, &r); err != nil {
				return fmt.Errorf("%w: feed %d: %v", ErrCorrupt, pos, err)
			}
			if !r.Deleted && r.Origin != s.opts.Centre && s.purgedOrigin(tx, purged, r.Origin) {
				// Purged since: served as the tombstone it became, as Get
				// does, not with the body this position recorded (later
				// entries of the origin make no records).
				r.Deleted, r.Body = true, json.RawMessage("{}")
			}
			ch.Position, ch.Record = pos, &r
			ch.Withdrawn = ch.Withdrawn || ch.Was != "" && !r.Shared()
			if match != nil && !match(&ch) {
				continue
			}
			changes = append(changes, ch)
		}
		return nil
	})
	return changes, last, err
}

// purgedOrigin is s.unsafePurged(tx, origin), remembered in seen for one read.
func (s *Store) purgedOrigin(tx *bbolt.Tx, seen map[string]bool, origin string) bool {
	p, ok := seen[origin]
	if !ok {
		p = s.unsafePurged(tx, origin)
		seen[origin] = p
	}
	return p
}

// LastPosition returns the newest change-feed position.
func (s *Store) LastPosition() (uint64, error) {
	var pos uint64
	err := s.view(func(tx *bbolt.Tx) error {
		pos = getU64(tx.Bucket(bucketMeta), keyFeedSeq)
		return nil
	})
	return pos, err
}

// Count is the number of live records with one catalogue, origin and visibility.
type Count struct {
	Catalogue, Origin, Visibility string
	N                             int64
}

// Counts returns live record counts for metrics.
func (s *Store) Counts() ([]Count, error) {
	var out []Count
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketCounts).ForEach(func(k, v []byte) error {
			parts := strings.SplitN(string(k), "\x00", 3)
			if len(parts) != 3 || len(v) != 8 {
				return fmt.Errorf("%w: count key %q", ErrCorrupt, k)
			}
			out = append(out, Count{Catalogue: parts[0], Origin: parts[1], Visibility: parts[2], N: int64(binary.BigEndian.Uint64(v))})
			return nil
		})
	})
	return out, err
}

// Replicas returns the replicas the group has recorded.
func (s *Store) Replicas() ([]Replica, error) {
	var out []Replica
	err := s.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketReplicas).ForEach(func(k, v []byte) error {
			var r Replica
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("%w: replica %s: %v", ErrCorrupt, k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	return out, err
}

// Size returns the state file size in bytes.
func (s *Store) Size() (int64, error) {
	var n int64
	err := s.view(func(tx *bbolt.Tx) error {
		n = tx.Size()
		return nil
	})
	return n, err
}

// WriteSnapshot streams a consistent copy of the state file to w. It holds one
// read transaction for the length of the copy.
func (s *Store) WriteSnapshot(w io.Writer) error {
	return s.view(func(tx *bbolt.Tx) error {
		_, err := tx.WriteTo(w)
		return err
	})
}

// Restore replaces the state with a snapshot read from r. The new file is written
// and synced beside the old one, checked, and renamed over it, so a crash leaves
// one or the other.
func (s *Store) Restore(r io.Reader) error {
	tmp := s.path + ".restore"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("restore: copy snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("restore: sync: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: %w", err)
	}
	// Every check the reopen makes runs here, before the state file is
	// closed and replaced: a snapshot refused after the rename would leave
	// the store closed and the old state gone.
	if err := s.checkSnapshotFile(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("restore: snapshot: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			return fmt.Errorf("restore: close state: %w", err)
		}
		s.db = nil
	}
	s.epoch.Store(nil) // the snapshot's, read again when asked
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if d, err := os.Open(filepath.Dir(s.path)); err == nil {
		d.Sync()
		d.Close()
	}
	db, err := s.openDB()
	if err != nil {
		return fmt.Errorf("restore: reopen: %w", err)
	}
	// The snapshot's purges replace the old state's: an origin purged only
	// in the snapshot would otherwise be read unpurged. (No reader runs
	// while s.mu is held.)
	if err := s.loadPurged(db); err != nil {
		db.Close()
		return fmt.Errorf("restore: reopen: %w", err)
	}
	s.db = db
	s.notify()
	return nil
}

// checkSnapshotFile makes the checks openDB makes of the state file, on a
// snapshot about to replace it: size, pages and every key (checkBoltFile), and
// a meta bucket of a layout this build reads and of this centre.
func (s *Store) checkSnapshotFile(path string) (err error) {
	if err := checkBoltFile(path, time.Second); err != nil {
		return err
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, v)
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return fmt.Errorf("%w: no meta bucket", ErrCorrupt)
		}
		return checkMeta(meta, s.opts.Centre)
	})
}

// checkFileSize refuses a bbolt file shorter than its meta pages say it is.
// Layout (bbolt v1): page header of 16 bytes, then magic, version, page size,
// flags (4 bytes each), root bucket (16), freelist page id (8), high-water page id (8).
func checkFileSize(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	var hdr [64]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return fmt.Errorf("%w: %d-byte file has no meta page", ErrCorrupt, fi.Size())
	}
	const magic = 0xED0CDAED
	if binary.LittleEndian.Uint32(hdr[16:]) != magic {
		return fmt.Errorf("%w: not a bbolt file", ErrCorrupt)
	}
	pageSize := int64(binary.LittleEndian.Uint32(hdr[24:]))
	if pageSize < 512 || pageSize > 1<<20 {
		return fmt.Errorf("%w: page size %d", ErrCorrupt, pageSize)
	}
	// A meta page torn by a power cut fails its checksum, and bbolt opens the
	// file from the other one: only the pages it would use count.
	var highWater uint64
	valid := 0
	for i := int64(0); i < 2; i++ {
		m := make([]byte, 80)
		if _, err := f.ReadAt(m, i*pageSize); err != nil || !validMeta(m, pageSize) {
			continue
		}
		valid++
		highWater = max(highWater, binary.LittleEndian.Uint64(m[56:]))
	}
	if valid == 0 {
		return fmt.Errorf("%w: both meta pages are damaged", ErrCorrupt)
	}
	if highWater > uint64(fi.Size())/uint64(pageSize) {
		return fmt.Errorf("%w: file of %d bytes is truncated: its meta pages name %d pages of %d bytes", ErrCorrupt, fi.Size(), highWater, pageSize)
	}
	return nil
}

// Check reads every page of the open state file. bbolt's own tx.Check runs in a
// goroutine of its own, where a torn page's assertion would crash the process;
// this walk runs here, where the assertion is recovered and reported.
func (s *Store) Check() error {
	return s.view(walkAll)
}

// walkAll visits every key and value of every bucket, recovering bbolt's page
// assertions as ErrCorrupt.
func walkAll(tx *bbolt.Tx) (err error) {
	// A flipped byte can point a key or value outside the mapped file: let that
	// fault panic here, where it is recovered, rather than end the process.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, v)
		}
	}()
	var walk func(path string, b *bbolt.Bucket) error
	walk = func(path string, b *bbolt.Bucket) error {
		var prev []byte
		return b.ForEach(func(k, v []byte) error {
			// Keys out of order are what a flipped byte in a key or a page
			// pointer looks like; bbolt's own check would report them from a
			// goroutine where its report panics the process.
			if prev != nil && bytes.Compare(prev, k) >= 0 {
				return fmt.Errorf("%w: bucket %s: keys out of order", ErrCorrupt, path)
			}
			prev = append(prev[:0], k...)
			if v == nil {
				if sub := b.Bucket(k); sub != nil {
					return walk(path+"/"+string(k), sub)
				}
			}
			return nil
		})
	}
	return tx.ForEach(func(name []byte, b *bbolt.Bucket) error { return walk(string(name), b) })
}

// AppliedIndexOf returns the raft index applied in the state file at path,
// opened read-only: a snapshot's copy, which may hold entries past the index
// raft named the snapshot after (the copy is taken while raft applies on).
func AppliedIndexOf(path string) (index uint64, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("%w: %v", ErrCorrupt, v)
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			return fmt.Errorf("%w: no meta bucket", ErrCorrupt)
		}
		index, _ = unsafeAppliedIndex(tx)
		return nil
	})
	return index, err
}
