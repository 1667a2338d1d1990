package node

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"time"

	"github.com/hashicorp/raft"

	"liandong/node/store"
	"liandong/schema"
)

// Create stores a new record of this centre under a fresh id.
func (n *Node) Create(ctx context.Context, rec *schema.Record) (*schema.Record, error) {
	now := n.cfg.Now()
	rec = rec.Clone()
	rec.ID = n.cfg.Centre + ":" + newULID(now)
	return n.write(ctx, store.OpCreate, rec.ID, rec, 0)
}

// Put creates or updates the record id. ifMatch, when not 0, must equal the
// current version. A record live in another catalogue than rec's when the
// write is applied is not written over (store.ErrCatalogueMove), once every
// replica is known to check that (groupHas): the caller decided the write on
// what it read, and the record may have been deleted and created again in
// another catalogue since. Until then it is written as before the check.
func (n *Node) Put(ctx context.Context, id string, rec *schema.Record, ifMatch uint64) (*schema.Record, error) {
	rec = rec.Clone()
	rec.ID = id
	return n.writeCommand(ctx, &store.WriteCommand{Op: store.OpPut, ID: id, IfMatch: ifMatch, Record: rec,
		KeepCatalogue: n.groupHas(FeatureKeepCatalogue)})
}

// ErrGroupLacksFeature refuses a write the group cannot yet apply alike on
// every replica: a replica has not announced a build that checks it.
var ErrGroupLacksFeature = errors.New("a replica of this centre has not announced a build that can apply this write")

// PutIfAbsent creates the record id, or revives it over its tombstone, but
// never replaces a live one (store.ErrExists, which no retry will change).
//
// What the leader reads decides the operation. A live record is refused here,
// before anything is proposed. An absent id is created with OpCreate, which
// every build checks. Only a tombstone needs store.WriteCommand.IfAbsent, and
// only once every replica is known to check it (groupHas); until then reviving
// it is refused (ErrGroupLacksFeature). A replica of a build that ignores
// IfAbsent (one rolled back, or down since it announced the feature) would
// otherwise apply over a live record a write every other replica refused,
// signing it into the centre's log: a fork every partner receives.
func (n *Node) PutIfAbsent(ctx context.Context, id string, rec *schema.Record) (*schema.Record, error) {
	rec = rec.Clone()
	rec.ID = id
	if err := n.awaitTermApplied(ctx); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		_, err := n.st.Get(id)
		switch {
		case err == nil:
			return nil, fmt.Errorf("create %s: %w", id, store.ErrExists)
		case errors.Is(err, store.ErrDeleted):
			if !n.groupHas(FeatureIfAbsent) {
				return nil, fmt.Errorf("create %s over its tombstone: %w; retry once every replica runs this build", id, ErrGroupLacksFeature)
			}
			return n.writeCommand(ctx, &store.WriteCommand{Op: store.OpPut, ID: id, IfAbsent: true, Record: rec})
		case !errors.Is(err, store.ErrNotFound):
			return nil, err
		}
		out, err := n.write(ctx, store.OpCreate, id, rec.Clone(), 0)
		if errors.Is(err, store.ErrExists) && attempt == 0 {
			continue // created meanwhile, and perhaps deleted since: read again
		}
		return out, err
	}
}

// Delete tombstones the record id.
func (n *Node) Delete(ctx context.Context, id string, ifMatch uint64) (*schema.Record, error) {
	return n.write(ctx, store.OpDelete, id, nil, ifMatch)
}

func (n *Node) write(ctx context.Context, op store.Op, id string, rec *schema.Record, ifMatch uint64) (*schema.Record, error) {
	return n.writeCommand(ctx, &store.WriteCommand{Op: op, ID: id, IfMatch: ifMatch, Record: rec})
}

// writeCommand validates w's record and proposes w, with what the leader
// decides for every replica: the time, the epoch, the signing key.
func (n *Node) writeCommand(ctx context.Context, w *store.WriteCommand) (*schema.Record, error) {
	id, rec := w.ID, w.Record
	origin, _, err := schema.SplitID(id)
	if err != nil {
		return nil, &schema.ValidationError{Errors: []schema.FieldError{{Path: "id", Rule: "format", Message: err.Error()}}}
	}
	if origin != n.cfg.Centre {
		return nil, fmt.Errorf("%w: %s is written at %s", store.ErrNotOrigin, id, origin)
	}
	if n.recovering.Load() {
		return nil, ErrRecovering
	}
	if err := n.awaitTermApplied(ctx); err != nil {
		return nil, err
	}
	if rec != nil {
		rec.Origin = n.cfg.Centre
		if rec.Version == 0 {
			rec.Version = 1 // the store assigns the real one; validation wants ≥ 1
		}
		if err := schema.ValidateRecord(rec, schema.ValidateOptions{Strict: true}); err != nil {
			return nil, err
		}
	}
	epoch, err := n.st.Epoch()
	if err != nil {
		return nil, err
	}
	if epoch == "" {
		epoch = newULID(n.cfg.Now())
	}
	if err := store.PrepareWrite(w); err != nil {
		return nil, err
	}
	wait, err := n.enqueueWrite(ctx, w, epoch)
	if err != nil {
		return nil, err
	}
	res, err := wait()
	if err != nil {
		return nil, err
	}
	return res.Record, nil
}

// enqueueWrite dates w, picks its signing key and hands it to raft, one write
// of a record at a time: raft's log keeps the order writes are handed over
// in, so a record's versions are dated in the order they take effect (see
// writeTime). Writes of different records are not serialised (one lock for
// all cost a tenth of the write throughput): two may enter the log in the
// other order than their times by the time it takes to encode one, well under
// the precision updated_since is good for (the change feed is exact).
func (n *Node) enqueueWrite(ctx context.Context, w *store.WriteCommand, epoch string) (func() (store.Result, error), error) {
	mu := &n.writeLocks[maphash.String(n.writeSeed, w.ID)%uint64(len(n.writeLocks))]
	mu.Lock()
	defer mu.Unlock()
	at := n.writeTime(w.ID, w.Op != store.OpCreate)
	keyID, err := n.signingKey(at)
	if err != nil {
		return nil, err
	}
	w.At, w.Epoch, w.KeyID = at, epoch, keyID
	wait, err := n.enqueue(ctx, &store.Command{Write: w})
	if err != nil {
		return nil, err
	}
	n.wroteAt(at)
	return wait, nil
}

// awaitTermApplied returns once this leader has applied every entry of its
// log, once per raft term. A new leader applies the entries of earlier terms
// only after its own first entry commits: until then its state file lacks
// writes the old leader acknowledged, and what the leader decides from it
// before proposing (a record's last version for its write time, whether a
// record is live for a create-only write) would be wrong: a version dated
// before the one it replaces, a deleted record refused as existing.
//
// One barrier runs per term, in a goroutine of its own; every caller waits
// for it or for its own ctx, whichever ends first. Nothing has been proposed
// for the caller's write, so a barrier that lost leadership is ErrNotLeader,
// not the unknown outcome raftError gives an Apply.
func (n *Node) awaitTermApplied(ctx context.Context) error {
	term := n.raft.CurrentTerm()
	if n.termApplied.Load() == term {
		return nil
	}
	if err := n.fsm.disk.refuse(); err != nil {
		return err
	}
	if err := n.fsm.failure(); err != nil {
		return err
	}
	n.termMu.Lock()
	tb := n.termBarrier
	if tb == nil || tb.term != term || tb.finished() && tb.err != nil {
		tb = &termBarrier{term: term, done: make(chan struct{})}
		n.termBarrier = tb
		go func() {
			defer close(tb.done)
			err := n.raft.Barrier(n.cfg.ApplyTimeout).Error()
			switch {
			case err == nil:
				n.termApplied.Store(term)
			case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
				tb.err = fmt.Errorf("%w (the write was not proposed: retry): %w", ErrNotLeader, err)
			default:
				tb.err = n.raftError("apply a new leader's log", err)
			}
		}()
	}
	n.termMu.Unlock()
	select {
	case <-tb.done:
		return tb.err
	case <-ctx.Done():
		return fmt.Errorf("%w: a new leader's log is not applied yet (the write was not proposed): %w", ErrTimeout, ctx.Err())
	}
}

// AwaitTermApplied returns once this replica, as leader, has applied its
// predecessors' log (awaitTermApplied), waiting no longer than the apply
// timeout: the API judges a token whose issuer or key its bundle lacks only
// then (the bundle listing a centre just added may be among those entries).
// ErrNotLeader at a follower.
func (n *Node) AwaitTermApplied(ctx context.Context) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	return n.awaitTermApplied(ctx)
}

// termBarrier is the barrier awaitTermApplied runs for a term; err is set
// before done closes.
type termBarrier struct {
	term uint64
	done chan struct{}
	err  error
}

func (tb *termBarrier) finished() bool {
	select {
	case <-tb.done:
		return true
	default:
		return false
	}
}

// maxWriteTimeFloor bounds how far ahead of the leader's clock writeTime
// follows earlier writes. Clocks stepped back by NTP, or a new leader's clock
// a little behind, are within it; a clock that once ran wild ahead (a year)
// must not date every later write of its records, or refuse them for want of
// a key valid then, until that time comes.
const maxWriteTimeFloor = 5 * time.Minute

// writeTime is the time the leader gives a write of record id: its clock,
// but not before the record's last version nor before the last write this
// node proposed, when those are at most maxWriteTimeFloor ahead. A clock
// stepped back would otherwise give an update an updated_at before the version
// it replaces, and before its created_at, and a partner listing with
// updated_since at the newest time it had seen would miss it.
//
// readRecord false skips the record's last version, for a create: the state
// machine refuses a create of an id that exists (live or a tombstone), so
// its time never dates a version after another. The read was a bbolt read
// transaction for every POST, of an id just made at random.
func (n *Node) writeTime(id string, readRecord bool) time.Time {
	now := n.cfg.Now().UTC()
	at := now
	follow := func(t time.Time) {
		if t.After(at) && t.Sub(now) <= maxWriteTimeFloor {
			at = t.UTC()
		}
	}
	if last := n.lastWriteAt.Load(); last != 0 {
		follow(time.Unix(0, last))
	}
	if !readRecord {
		return at
	}
	// A tombstone counts too: Get returns it with ErrDeleted.
	if cur, _ := n.st.Get(id); cur != nil {
		follow(cur.UpdatedAt)
	}
	return at
}

// wroteAt records that a write dated at was handed to raft: later writes are
// not dated before it.
func (n *Node) wroteAt(at time.Time) {
	t := at.UnixNano()
	for {
		last := n.lastWriteAt.Load()
		if last >= t || n.lastWriteAt.CompareAndSwap(last, t) {
			return
		}
	}
}

// Get returns a record as stored here (with personal data for own records).
func (n *Node) Get(_ context.Context, id string) (*schema.Record, error) {
	return n.st.Get(id)
}

// List returns one page of records.
func (n *Node) List(_ context.Context, q store.Query) ([]*schema.Record, string, error) {
	return n.st.List(q)
}

// Changes returns changes after position since; see store.Changes.
func (n *Node) Changes(_ context.Context, since uint64, limit int, match store.ChangeFilter) ([]store.Change, uint64, error) {
	return n.st.Changes(since, limit, match)
}

// FeedHead returns the newest position of the change feed.
func (n *Node) FeedHead() (uint64, error) { return n.st.LastPosition() }

// FeedNamedAt is the change feed's newest position when this replica
// applied its name (store.Store.FeedNamedAt).
func (n *Node) FeedNamedAt() (uint64, bool, error) { return n.st.FeedNamedAt() }

// HoldsOrigin reports whether this replica holds a record of origin, live or
// a tombstone (store.Store.HoldsOrigin).
func (n *Node) HoldsOrigin(origin string) (bool, error) { return n.st.HoldsOrigin(origin) }

// Changed returns a channel closed at the next applied batch.
func (n *Node) Changed() <-chan struct{} { return n.st.Changed() }

// Heads returns the local head of every origin's log.
func (n *Node) Heads(_ context.Context) ([]schema.Head, error) { return n.st.Heads() }

// ReadRange returns entries of origin's log, decoded.
func (n *Node) ReadRange(_ context.Context, origin string, fromSeq uint64, limit int) ([]*schema.Entry, error) {
	return n.st.ReadRange(origin, fromSeq, limit)
}

// ReadRangeRaw serves entries of origin's log to peers, as stored (see
// store.ReadRangeRaw).
func (n *Node) ReadRangeRaw(_ context.Context, origin string, fromSeq uint64, limit int) ([]*schema.Entry, error) {
	return n.st.ReadRangeRaw(origin, fromSeq, limit)
}

// CanApply reports whether this replica may apply remote entries: only the leader
// pulls, so the group does not propose the same entries several times.
//
// A leader still replaying its raft log (CaughtUp) may not: it would verify
// peers' entries against the trust bundle of an older state, and take its
// partial heads for how far each origin's log goes here.
func (n *Node) CanApply() bool { return n.IsLeader() && n.CaughtUp() == nil }

// ErrFork and ErrChainGap are the store's, re-exported for the exchange's callers.
var (
	ErrFork     = store.ErrFork
	ErrChainGap = store.ErrChainGap
)

// Limits of one raft command of remote entries, keeping raft log entries (and so
// replication messages between replicas) to a comfortable size.
const (
	MaxEntriesPerCommand = 512
	MaxBytesPerCommand   = 4 << 20
)

// ApplyEntries applies verified entries of one origin through raft. Entries the
// node already holds are skipped; a held seq with another hash is a fork.
func (n *Node) ApplyEntries(ctx context.Context, origin string, entries []*schema.Entry) error {
	recover := origin == n.cfg.Centre
	if recover && !n.recovering.Load() {
		return fmt.Errorf("%w: refusing entries of this centre's own log from a peer", store.ErrFork)
	}
	// Every command is enqueued before the first is waited for, so raft writes
	// them to its log together (one fsync) and the state machine applies
	// them back to back. A command that fails (a gap, a fork) makes the ones
	// after it fail the same way: each checks that it continues the log.
	type pending struct {
		n    int
		wait func() (store.Result, error)
	}
	var queued []pending
	var firstErr error
	for len(entries) > 0 && firstErr == nil {
		k, size := 0, 0
		for k < len(entries) && k < MaxEntriesPerCommand && (k == 0 || size+len(entries[k].Raw) <= MaxBytesPerCommand) {
			size += len(entries[k].Raw) + len(entries[k].Sig)
			k++
		}
		chunk := entries[:k]
		entries = entries[k:]
		wait, err := n.enqueue(ctx, &store.Command{Remote: &store.RemoteCommand{Origin: origin, Entries: chunk, Recover: recover}})
		if err != nil {
			firstErr = fmt.Errorf("apply %d entries of %s: %w", len(chunk), origin, err)
			break
		}
		queued = append(queued, pending{len(chunk), wait})
	}
	for _, q := range queued {
		res, err := q.wait()
		if err != nil {
			if firstErr == nil {
				firstErr = fmt.Errorf("apply %d entries of %s: %w", q.n, origin, err)
			}
			continue
		}
		n.metrics.remoteApplied.WithLabelValues(origin).Add(float64(res.Applied))
	}
	return firstErr
}

// IsNotFound reports whether err means the record does not exist (or is deleted).
func IsNotFound(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrDeleted)
}
