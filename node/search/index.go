package search

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"liandong/node/store"
	"liandong/schema"
)

// Sentinel errors.
var (
	ErrClosed     = errors.New("search index closed")
	ErrEmptyQuery = errors.New("the query has no searchable words")
)

// Source is what the index reads of the node's state: *store.Store satisfies it.
type Source interface {
	// Changes returns changes after since in feed order (see store.Store.Changes).
	Changes(since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error)
	LastPosition() (uint64, error)
	Get(id string) (*schema.Record, error)
	Changed() <-chan struct{}
}

// layoutVersion of the index file; a file of another layout is rebuilt.
// Layout 1 had one key per posting (term \x00 id); layout 2 has document
// ordinals and postings blocks (postings.go, docs.go); layout 3 indexes the
// last character of each CJK run alone too (analyzeInto), which a file of
// layout 2 lacks; layout 4 keeps each doc's expiry (encodeDoc), so that a need
// past it is not found as open.
const layoutVersion = 4

// Buckets of the index file. Functions named unsafe… need a held transaction.
var (
	bucketMeta  = []byte("meta")  // layout, position, fingerprint, next ordinal
	bucketDocs  = []byte("docs")  // id → ordinal and Doc (encodeDoc)
	bucketTerms = []byte("terms") // ordinal → the doc's distinct terms, \x00-separated
	bucketPost  = []byte("post")  // term \x00 first ordinal → postings block

	keyLayout      = []byte("layout")
	keyPosition    = []byte("position")
	keyFingerprint = []byte("fingerprint")
	keyNext        = []byte("next")
)

// Options configure an index.
type Options struct {
	Logger *slog.Logger
	// Batch is how many feed changes one index transaction applies (default 1000).
	Batch int
	// Coalesce is how long Run waits after a change before indexing, so a burst
	// of writes is indexed in one transaction (default 20 ms). Searches never
	// wait for it: they bring the index up to date first.
	Coalesce time.Duration
	// BusyCoalesce is the least time between two of Run's catch-ups while
	// changes keep coming (default 200 ms). An index transaction costs
	// mostly per page it rewrites, so per record it is several times cheaper
	// in batches of hundreds than of the few dozen a 20 ms window holds under
	// steady writes (the index was a fifth of the write path's CPU).
	BusyCoalesce time.Duration
}

// Index is a full-text index of a node's records, kept in its own bbolt file
// beside the state file. It follows the store's change feed: it records the
// feed position it has applied and a fingerprint of the change at that
// position, so it catches up after a restart and rebuilds itself when its file
// is missing, of another layout, or from another history than the store's
// (after a state file was restored or rebuilt).
type Index struct {
	path string
	src  Source
	opts Options
	log  *slog.Logger

	// syncMu serialises catching up; mu guards db and the doc table: queries
	// hold it shared, index transactions exclusively while they update the
	// table. Lock order: syncMu, then mu. Only apply (holding syncMu) and
	// Open change the table, so apply reads it without mu.
	syncMu sync.Mutex
	mu     sync.RWMutex
	db     *bbolt.DB
	// docs is the doc table by ordinal (nil: dead or not in use), ids the
	// ordinal of each id, live how many docs there are, next the next
	// ordinal, sumLen the sum of the docs' field lengths.
	docs   []*Doc
	ids    map[string]uint32
	live   int
	next   uint64
	sumLen [numFields]uint64
	// attrs holds the shared DocAttrs, by stored form.
	attrs map[string]*DocAttrs
	pos   atomic.Uint64
	// torn is set when a query met a malformed postings block (the file is
	// not fsynced, so a power cut can tear it); the next Sync rebuilds the
	// index. rebuildCh wakes Run for that, and after any reset, which a
	// query's catch-up leaves to Run (syncForQuery).
	torn      atomic.Bool
	rebuildCh chan struct{}
	// spare is the last batch's postings tables, kept for the next (apply,
	// under syncMu); Run drops them after spareIdle without a change.
	spare     *batchWriter
	spareIdle time.Duration

	// afterCommit, when set (by tests), runs in apply between its commit and
	// the update of the doc table.
	afterCommit func()
}

// Open opens or creates the index file at path and checks it against src. It
// does not catch up: Sync or Run does, and every search catches up first
// (within QueryCatchUp).
func Open(path string, src Source, opts Options) (*Index, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	if opts.BusyCoalesce <= 0 {
		opts.BusyCoalesce = 200 * time.Millisecond
	}
	if opts.Coalesce <= 0 {
		opts.Coalesce = 20 * time.Millisecond
	}
	ix := &Index{path: path, src: src, opts: opts, log: opts.Logger, rebuildCh: make(chan struct{}, 1), spareIdle: spareIdle}
	db, err := openDB(path)
	if err != nil {
		// The index is derived data: a file that does not open is rebuilt.
		ix.log.Warn("search index unreadable; rebuilding it from the store", "path", path, "err", err)
		if rerr := os.Remove(path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return nil, fmt.Errorf("open search index: %w (and removing it failed: %v)", err, rerr)
		}
		if db, err = openDB(path); err != nil {
			return nil, fmt.Errorf("open search index: %w", err)
		}
	}
	ix.db = db
	if err := ix.load(); err != nil {
		db.Close()
		return nil, err
	}
	if err := ix.checkSource(); err != nil {
		db.Close()
		return nil, err
	}
	return ix, nil
}

func openDB(path string) (db *bbolt.DB, err error) {
	defer func() {
		if v := recover(); v != nil {
			if db != nil {
				db.Close()
			}
			db, err = nil, fmt.Errorf("corrupt: %v", v)
		}
	}()
	// No fsync: the index is derived from the state file and checked against it
	// at every open (position and fingerprint); a file torn by a power cut is
	// detected here or in load and rebuilt. Fsyncing it would put a second
	// writer's fsyncs on the disk raft's log depends on.
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second, NoSync: true, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType,
		InitialMmapSize: store.MmapReserve})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketDocs, bucketTerms, bucketPost} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// load reads the position and the docs; a file of another layout, or one
// that does not read, is emptied.
func (ix *Index) load() error {
	var layout uint64
	err := ix.db.View(func(tx *bbolt.Tx) (err error) {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("search index torn: %v", v)
			}
		}()
		meta := tx.Bucket(bucketMeta)
		if layout = getU64(meta, keyLayout); layout != layoutVersion {
			return nil
		}
		next := getU64(meta, keyNext)
		if next > maxOrdinal+1 {
			return fmt.Errorf("search index: next ordinal %d", next)
		}
		ix.pos.Store(getU64(meta, keyPosition))
		ix.clearDocs(next)
		return tx.Bucket(bucketDocs).ForEach(func(k, v []byte) error {
			ord, d, err := decodeDoc(string(k), v, ix.internAttrs)
			if err != nil {
				return fmt.Errorf("doc %q: %w", k, err)
			}
			if uint64(ord) >= next || ix.docs[ord] != nil {
				return fmt.Errorf("doc %q: ordinal %d (next %d) twice or too large", k, ord, next)
			}
			ix.setDoc(ord, d)
			return nil
		})
	})
	if err != nil || layout != layoutVersion {
		if err != nil {
			ix.log.Warn("search index unreadable; rebuilding it", "err", err)
		} else if layout != 0 {
			ix.log.Info("search index of another layout; rebuilding it", "layout", layout, "want", layoutVersion)
		}
		return ix.reset()
	}
	return nil
}

// reset empties the index, to be rebuilt from the beginning of the feed. The
// caller holds ix.mu, or is Open.
func (ix *Index) reset() error {
	err := ix.db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketMeta, bucketDocs, bucketTerms, bucketPost} {
			if err := tx.DeleteBucket(b); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		return putU64(tx.Bucket(bucketMeta), keyLayout, layoutVersion)
	})
	if err != nil {
		return fmt.Errorf("reset search index: %w", err)
	}
	ix.clearDocs(0)
	ix.pos.Store(0)
	ix.torn.Store(false) // whatever tore it is gone with the old contents
	ix.wakeRun()
	return nil
}

// wakeRun asks Run for a Sync now rather than at the next write.
func (ix *Index) wakeRun() {
	select {
	case ix.rebuildCh <- struct{}{}:
	default:
	}
}

// fingerprint identifies a change: the hash of the record as the feed holds it.
func fingerprint(r *schema.Record) []byte {
	js, _ := json.Marshal(r)
	h := sha256.Sum256(js)
	return h[:]
}

// checkSource empties the index when its position is not in the store's feed
// history: past the feed's end, or holding another change.
func (ix *Index) checkSource() error {
	pos := ix.pos.Load()
	if pos == 0 {
		return nil
	}
	last, err := ix.src.LastPosition()
	if err != nil {
		return fmt.Errorf("search index: read the store's feed: %w", err)
	}
	if ix.db == nil {
		return ErrClosed
	}
	var fp []byte
	ix.db.View(func(tx *bbolt.Tx) error {
		fp = bytes.Clone(tx.Bucket(bucketMeta).Get(keyFingerprint))
		return nil
	})
	stale := last < pos
	if !stale {
		ch, _, err := ix.src.Changes(pos-1, 1, nil)
		if err != nil {
			return fmt.Errorf("search index: read the store's feed: %w", err)
		}
		stale = len(ch) != 1 || ch[0].Position != pos || !bytes.Equal(fingerprint(ch[0].Record), fp)
	}
	if stale {
		ix.log.Warn("search index is not from this state file's history; rebuilding it", "index_position", pos, "feed_position", last)
		ix.mu.Lock()
		defer ix.mu.Unlock()
		return ix.reset()
	}
	return nil
}

// Position returns the feed position the index has applied.
func (ix *Index) Position() uint64 { return ix.pos.Load() }

// Len returns the number of records indexed.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.live
}

// QueryCatchUp is the most feed changes a query waits for the index to take
// in before it answers. Within it a query finds every record written before it
// (a client reading its own writes); beyond it (a centre taking in a peer's
// backlog, which the index follows at a few thousand records a second) a
// query answers at once from what is indexed, and says how far behind that is,
// instead of waiting for the whole backlog.
const QueryCatchUp = 2000

// syncForQuery brings the index up to the feed position of the moment, when
// that is at most QueryCatchUp changes away, and returns that position: the
// query says how far behind it the index it read was (unsafeBehind).
//
// A query does not rebuild the index: when the state file went back, or its
// catch-up finds the index torn and empties it (apply's reset), the query
// answers from the empty index, Behind saying so, while Run, woken by the
// reset, rebuilds at its own pace. Rebuilding here would keep a client waiting
// for the whole feed.
func (ix *Index) syncForQuery() (last uint64, err error) {
	last, err = ix.src.LastPosition()
	if err != nil {
		return 0, err
	}
	pos := ix.pos.Load()
	switch {
	case last == pos:
		return last, nil
	case last < pos:
		// The state file went back (restored from an older snapshot): empty
		// the index for Run to rebuild.
		ix.syncMu.Lock()
		defer ix.syncMu.Unlock()
		return last, ix.checkSource()
	case last-pos > QueryCatchUp:
		return last, nil
	}
	ix.syncMu.Lock()
	defer ix.syncMu.Unlock()
	start := ix.pos.Load()
	for pos := start; pos < last; pos = ix.pos.Load() {
		if pos < start {
			break // reset: Run rebuilds
		}
		changes, _, err := ix.src.Changes(pos, ix.opts.Batch, nil)
		if err != nil {
			return 0, fmt.Errorf("search index: read changes after %d: %w", pos, err)
		}
		if len(changes) == 0 {
			break
		}
		if err := ix.apply(changes); err != nil {
			return 0, err
		}
	}
	return last, nil
}

// unsafeBehind is how many changes short of the feed position last the index
// is as a query holding ix.mu sees it. The position is read under the lock,
// not from the query's transaction: apply commits a batch's postings (and
// its position) before it adds the batch's documents to the doc table under
// ix.mu, and a query skips postings of documents the table does not hold.
func (ix *Index) unsafeBehind(last uint64) uint64 {
	if pos := ix.pos.Load(); pos < last {
		return last - pos
	}
	return 0
}

// Sync brings the index up to the store's last feed position.
func (ix *Index) Sync() error {
	if ix.torn.Load() {
		if err := ix.rebuildTorn(); err != nil {
			return err
		}
	}
	last, err := ix.src.LastPosition()
	if err != nil {
		return err
	}
	if last == ix.pos.Load() {
		return nil
	}
	ix.syncMu.Lock()
	defer ix.syncMu.Unlock()
	if last < ix.pos.Load() {
		// The state file went back (restored from an older snapshot): rebuild.
		if err := ix.checkSource(); err != nil {
			return err
		}
	}
	for {
		pos := ix.pos.Load()
		changes, last, err := ix.src.Changes(pos, ix.opts.Batch, nil)
		if err != nil {
			return fmt.Errorf("search index: read changes after %d: %w", pos, err)
		}
		if last <= pos || len(changes) == 0 {
			return nil
		}
		if err := ix.apply(changes); err != nil {
			return err
		}
	}
}

// Run keeps the index up to date until ctx ends, indexing each burst of writes
// shortly after it is applied.
func (ix *Index) Run(ctx context.Context) error {
	for {
		wake := ix.src.Changed()
		synced := time.Now()
		if err := ix.Sync(); err != nil {
			if errors.Is(err, ErrClosed) {
				return nil
			}
			if errors.Is(err, store.ErrClosed) {
				// The state file is being replaced (a snapshot restore): wait.
				ix.log.Debug("search index: state file closed; retrying", "err", err)
			} else {
				ix.log.Warn("search index: catch up failed; retrying", "err", err)
			}
			wake = nil
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
				continue
			}
		}
		if !ix.awaitChange(ctx, wake) {
			return nil
		}
		// The first change after a quiet spell is indexed Coalesce later;
		// steady changes every BusyCoalesce.
		wait := max(ix.opts.Coalesce, ix.opts.BusyCoalesce-time.Since(synced))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// spareIdle is how long Run waits for a change before it lets go of the
// postings tables the last batch kept for the next (takeWriter): a catch-up
// reuses them batch after batch, an idle index need not hold them.
const spareIdle = 5 * time.Second

// awaitChange waits until wake is closed or a rebuild is asked for, and
// reports false if ctx ended first. Waiting longer than spareIdle, it
// drops the kept postings tables.
func (ix *Index) awaitChange(ctx context.Context, wake <-chan struct{}) bool {
	idle := time.NewTimer(ix.spareIdle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-wake:
			return true
		case <-ix.rebuildCh:
			return true
		case <-idle.C:
			ix.syncMu.Lock()
			ix.spare = nil
			ix.syncMu.Unlock()
		}
	}
}

// noteTorn records that a query met a malformed postings block: the query
// skipped it, and the index is rebuilt at the next Sync (Run's at once).
func (ix *Index) noteTorn() {
	if !ix.torn.CompareAndSwap(false, true) {
		return
	}
	ix.log.Warn("search index: a query met malformed postings (a torn file?); rebuilding it")
	ix.wakeRun()
}

// rebuildTorn empties the index noteTorn found torn, for Sync to rebuild.
func (ix *Index) rebuildTorn() error {
	ix.syncMu.Lock()
	defer ix.syncMu.Unlock()
	if !ix.torn.Load() {
		return nil // another Sync did it
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.db == nil {
		return ErrClosed
	}
	return ix.reset()
}

// Close closes the index file.
func (ix *Index) Close() error {
	ix.syncMu.Lock()
	defer ix.syncMu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.db == nil {
		return nil
	}
	// Written without fsync; after a clean stop it is trusted at the next
	// start, also after the machine restarts, so it must be on the disk.
	err := errors.Join(ix.db.Sync(), ix.db.Close())
	ix.db = nil
	return err
}

func getU64(b *bbolt.Bucket, key []byte) uint64 {
	v := b.Get(key)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func putU64(b *bbolt.Bucket, key []byte, v uint64) error {
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], v)
	return b.Put(key, buf[:])
}
