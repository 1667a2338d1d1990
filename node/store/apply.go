package store

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/bbolt"

	"liandong/schema"
)

// Op is the kind of a local write.
type Op string

// Local write operations.
const (
	OpCreate Op = "create" // new record; the id must not exist
	OpPut    Op = "put"    // create or update
	OpDelete Op = "delete" // tombstone
)

// WriteCommand is a change to one of this centre's records, as the leader proposes
// it. Everything that varies between replicas (time, the new id, the epoch) is
// decided by the leader and carried here, so applying is deterministic.
type WriteCommand struct {
	Op      Op     `json:"op"`
	ID      string `json:"id"`
	IfMatch uint64 `json:"if_match,omitempty"`
	// IfAbsent, on OpPut, makes the write fail (ErrExists) when the record
	// is live: it creates the record, or revives a tombstone, and never
	// replaces. A build from before it ignores the member and would replace,
	// so the leader proposes it only once every replica announces
	// FeatureIfAbsent (node.Node.PutIfAbsent).
	IfAbsent bool           `json:"if_absent,omitempty"`
	Record   *schema.Record `json:"record,omitempty"`
	At       time.Time      `json:"at"`
	// Epoch is used only when this centre's log has none yet.
	Epoch string `json:"epoch"`
	// KeyID names the record key to sign with (the leader's choice during a
	// key rotation); empty: the Signer's default.
	KeyID string `json:"kid,omitempty"`
	// Canonical says the proposer put Record.Body, and SharedBody, in canonical
	// form (PrepareWrite), so applying copies them into the signed entry
	// instead of parsing them again: the state machine is one goroutine and
	// the slowest stage of the write path, the proposers are many. A replica
	// of an older build ignores both members and computes the same entry the
	// long way, so a centre's replicas can be upgraded one at a time.
	Canonical bool `json:"canonical,omitempty"`
	// SharedBody, with Canonical, is the body as the federation sees it
	// (schema.StripPersonal's); nil when it is Record.Body itself.
	SharedBody json.RawMessage `json:"shared_body,omitempty"`

	// KeepCatalogue, on OpPut, makes the write fail (ErrCatalogueMove) when
	// the record is live in another catalogue than Record's. The proposer
	// checked the catalogue against what it read, but the record may have
	// been deleted and created again in another catalogue before this write
	// is applied: written over it, the record would leave that catalogue
	// without the tombstone its mirrors need (review 108). A build from
	// before it ignores the member and would write, so the leader sets it
	// only once every replica announces FeatureKeepCatalogue (node.Node.Put).
	KeepCatalogue bool `json:"keep_catalogue,omitempty"`

	// prepared says PrepareWrite made the bodies canonical in this process,
	// so the command's encoder splices them without walking them again.
	// Canonical cannot say it: it comes from outside too (a decoded
	// command, one built by hand), and the encoder's walk is then what
	// keeps a body that is not even JSON out of the raft log.
	prepared bool
}

// PrepareWrite does, before w is proposed, the work on its record that does
// not depend on the state: it canonicalises the body and strips the personal
// data the federation must not see, so the state machine does neither.
func PrepareWrite(w *WriteCommand) error {
	if w.Record == nil || w.Canonical {
		return nil
	}
	// A body the API marked canonical (what its own check found) is kept as
	// it is, and so is the record, which its one caller (node.writeCommand)
	// holds a copy of for this write alone: two copies of the record a write
	// fewer. Any other is canonicalised in a copy (AsCanonical may return
	// its input).
	rec := w.Record
	body := rec.Body
	if !rec.BodyCanonical() {
		rec = rec.Clone()
		var err error
		if body, err = schema.AsCanonical(rec.Body); err != nil {
			return fmt.Errorf("prepare write of %s: %w", w.ID, err)
		}
		rec.Body = body
	}
	w.Record, w.SharedBody, w.Canonical, w.prepared = rec, nil, true, true
	if schema.NamesNoPersonal(body) {
		return nil // what StripPersonalCanonical would give is the body itself
	}
	shared, err := schema.StripPersonalCanonical(rec)
	if err != nil {
		return fmt.Errorf("prepare write of %s: %w", w.ID, err)
	}
	if !bytes.Equal(shared.Body, body) {
		w.SharedBody = shared.Body
	}
	return nil
}

// RemoteCommand applies verified entries of another origin's log, or, with
// Recover, entries of this centre's own log that peers kept after this centre
// lost its state.
type RemoteCommand struct {
	Origin  string
	Entries []*schema.Entry
	Recover bool
}

// Replica is one server of this centre's raft group, as the group records it so
// that every replica can reach the others' APIs (followers forward writes).
type Replica struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTP     string `json:"http"`
	PeerID   string `json:"peer_id,omitempty"`
	// Features is what the replica's build announced on its /healthz, as its
	// group's leader last heard it (sorted, comma-separated, so that a
	// Replica stays comparable): the leader uses a feature only once every
	// replica's record lists it. Kept in the replicated state, so a new
	// leader knows it without asking replicas that are down. A build from
	// before it drops the member when it records a replica, which takes
	// the features away again, the safe way.
	Features string `json:"features,omitempty"`
	// AddBackAt is set while the replica is taken out of raft's
	// configuration to be added back at this raft address (a move to a new
	// address, or a voter given its recorded name: node's addVoterAt). It
	// is written before the removal is asked for, so that the intent
	// outlives the leader that began it: a leader that finds the replica
	// missing from the configuration adds it back (node.AddBackMoved),
	// where a replica removed on purpose (RemoveReplica) never has it. A
	// build from before it drops the member, as for Features: a leader of
	// that build leaves the replica out, as it always did.
	AddBackAt string `json:"add_back_at,omitempty"`
}

// SameAddresses reports whether r and o name the same server at the same
// addresses, whatever features each lists.
func (r Replica) SameAddresses(o Replica) bool {
	r.Features, o.Features = "", ""
	return r == o
}

// ReplicaCommand records (or, with Remove, forgets) a replica.
type ReplicaCommand struct {
	Replica Replica `json:"replica"`
	Remove  bool    `json:"remove,omitempty"`
	// FeedEpoch, when set, names this state's change feed if it has no name
	// yet (the first one applied stays): see Store.FeedEpoch. It rides on
	// this command because older builds decode it and ignore the field,
	// where a new kind of command would stop them.
	FeedEpoch string `json:"feed_epoch,omitempty"`
}

// Command is the payload of one raft log entry.
type Command struct {
	Write   *WriteCommand
	Remote  *RemoteCommand
	Replica *ReplicaCommand
	Bundle  *BundleCommand
	Audit   *AuditCommand
	Purge   *PurgeCommand
}

const (
	cmdWrite   = 'W'
	cmdRemote  = 'R'
	cmdReplica = 'M'
	cmdBundle  = 'B'
	cmdAudit   = 'A'
	cmdRecover = 'O' // a RemoteCommand of the own origin, in the same encoding
	cmdPurge   = 'P'
	// cmdPurgeChunk is a PurgeCommand with a Limit, in the same encoding: a
	// kind of its own, which builds from before it refuse (see PurgeCommand).
	cmdPurgeChunk = 'Q'
)

// EncodeCommand encodes c for the raft log.
func EncodeCommand(c *Command) ([]byte, error) {
	switch {
	case c.Write != nil:
		// Sized once: grown from one byte, the buffer was copied and
		// reallocated nine times a write. The members besides the bodies
		// take ~400 bytes.
		n := 512 + len(c.Write.SharedBody)
		if c.Write.Record != nil {
			n += len(c.Write.Record.Body)
		}
		if out, ok := appendWriteCommand(append(make([]byte, 0, n), cmdWrite), c.Write); ok {
			return out, nil
		}
		// JSON, although decoding it scans the body once more: a binary
		// encoding saved ~8 µs of the state machine's ~100 a write, but a replica of an
		// older build would fail to decode it and skip the write, forking the
		// centre's log during a rolling upgrade. Without HTML escaping, which
		// would turn a canonical body's '<' into \u003c: no longer canonical.
		var buf bytes.Buffer
		buf.WriteByte(cmdWrite)
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(c.Write); err != nil {
			return nil, fmt.Errorf("encode write command: %w", err)
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
	case c.Replica != nil:
		js, err := json.Marshal(c.Replica)
		if err != nil {
			return nil, fmt.Errorf("encode replica command: %w", err)
		}
		return append([]byte{cmdReplica}, js...), nil
	case c.Bundle != nil:
		js, err := json.Marshal(c.Bundle)
		if err != nil {
			return nil, fmt.Errorf("encode bundle command: %w", err)
		}
		return append([]byte{cmdBundle}, js...), nil
	case c.Purge != nil:
		js, err := json.Marshal(c.Purge)
		if err != nil {
			return nil, fmt.Errorf("encode purge command: %w", err)
		}
		if c.Purge.Limit != 0 {
			return append([]byte{cmdPurgeChunk}, js...), nil
		}
		return append([]byte{cmdPurge}, js...), nil
	case c.Audit != nil:
		js, err := json.Marshal(c.Audit)
		if err != nil {
			return nil, fmt.Errorf("encode audit command: %w", err)
		}
		return append([]byte{cmdAudit}, js...), nil
	case c.Remote != nil:
		// Entries go in their stored form: no JSON or base64 round trip on the hot
		// catch-up path.
		n := 1 + binary.MaxVarintLen64 + len(c.Remote.Origin)
		for _, e := range c.Remote.Entries {
			n += binary.MaxVarintLen64 + len(e.Sig) + len(e.Raw)
		}
		out := make([]byte, 0, n)
		if c.Remote.Recover {
			out = append(out, cmdRecover)
		} else {
			out = append(out, cmdRemote)
		}
		out = binary.AppendUvarint(out, uint64(len(c.Remote.Origin)))
		out = append(out, c.Remote.Origin...)
		for _, e := range c.Remote.Entries {
			if len(e.Sig) != schema.SignatureSize {
				return nil, fmt.Errorf("encode remote command: entry %s/%d unsigned", e.Origin, e.Seq)
			}
			out = binary.AppendUvarint(out, uint64(len(e.Sig)+len(e.Raw)))
			out = append(out, e.Sig...)
			out = append(out, e.Raw...)
		}
		return out, nil
	}
	return nil, errors.New("encode command: empty")
}

// DecodeCommand decodes a raft log payload.
func DecodeCommand(b []byte) (*Command, error) {
	if len(b) == 0 {
		return nil, errors.New("decode command: empty")
	}
	switch b[0] {
	case cmdWrite:
		var w WriteCommand
		if decodeWriteFast(b[1:], &w) {
			return &Command{Write: &w}, nil
		}
		if err := json.Unmarshal(b[1:], &w); err != nil {
			return nil, fmt.Errorf("decode write command: %w", err)
		}
		return &Command{Write: &w}, nil
	case cmdReplica:
		var m ReplicaCommand
		if err := json.Unmarshal(b[1:], &m); err != nil {
			return nil, fmt.Errorf("decode replica command: %w", err)
		}
		return &Command{Replica: &m}, nil
	case cmdBundle:
		var bc BundleCommand
		if err := json.Unmarshal(b[1:], &bc); err != nil {
			return nil, fmt.Errorf("decode bundle command: %w", err)
		}
		return &Command{Bundle: &bc}, nil
	case cmdPurge, cmdPurgeChunk:
		var pc PurgeCommand
		if err := json.Unmarshal(b[1:], &pc); err != nil {
			return nil, fmt.Errorf("decode purge command: %w", err)
		}
		if b[0] == cmdPurge {
			// A build from before chunks reads no limit here, and purges all.
			pc.Limit = 0
		} else if pc.Limit == 0 {
			return nil, errors.New("decode purge command: a chunk without a limit")
		}
		return &Command{Purge: &pc}, nil
	case cmdAudit:
		var ac AuditCommand
		if err := json.Unmarshal(b[1:], &ac); err != nil {
			return nil, fmt.Errorf("decode audit command: %w", err)
		}
		return &Command{Audit: &ac}, nil
	case cmdRemote, cmdRecover:
		rest := b[1:]
		n, k := binary.Uvarint(rest)
		if k <= 0 || uint64(len(rest)-k) < n {
			return nil, errors.New("decode remote command: bad origin")
		}
		rc := &RemoteCommand{Origin: string(rest[k : k+int(n)]), Recover: b[0] == cmdRecover}
		rest = rest[k+int(n):]
		for len(rest) > 0 {
			n, k := binary.Uvarint(rest)
			if k <= 0 || uint64(len(rest)-k) < n {
				return nil, errors.New("decode remote command: truncated entry")
			}
			e, err := decodeStoredEntry(rest[k : k+int(n)])
			if err != nil {
				return nil, fmt.Errorf("decode remote command: %w", err)
			}
			if e.Record == nil {
				// Every entry carries a record; a damaged log (or a broken
				// leader) fails the batch here rather than panic the apply.
				return nil, fmt.Errorf("decode remote command: entry %d of %s carries no record", e.Seq, rc.Origin)
			}
			rc.Entries = append(rc.Entries, e)
			rest = rest[k+int(n):]
		}
		return &Command{Remote: rc}, nil
	}
	return nil, fmt.Errorf("decode command: unknown kind %q", b[0])
}

// Log is one committed raft log entry handed to Apply.
type Log struct {
	Index, Term uint64
	Data        []byte
}

// Result is the outcome of one command.
type Result struct {
	// Record is the record as stored after a local write.
	Record *schema.Record
	// Position is the change-feed position of the last change the command made.
	Position uint64
	// Applied counts remote entries appended, or records a purge made
	// tombstones; Skipped remote entries already held.
	Applied, Skipped int
	// More says a purge with a Limit left records of its origin live: the
	// leader proposes another.
	More bool
	// Entry is the log entry a local write appended, if any.
	Entry *schema.Entry
	// Bundle is the trust bundle a BundleCommand installed.
	Bundle *BundleCommand
	// Audit is the event an AuditCommand appended.
	Audit *AuditEvent
	// Err is the command's own failure (conflict, fork …), decided the same way
	// on every replica.
	Err error
}

// Apply applies a batch of committed commands in one transaction. Logs at or below
// the applied index are skipped, so a restart re-applies nothing. An error returned
// here (not in a Result) means the transaction failed: the state file is unchanged
// and the caller must stop applying.
func (s *Store) Apply(logs []Log) ([]Result, error) {
	results := make([]Result, len(logs))
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, ErrClosed
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		applied, _ := unsafeAppliedIndex(tx)
		var last Log
		for i, l := range logs {
			if l.Index != 0 && l.Index <= applied {
				results[i].Err = errAlreadyApplied
				continue
			}
			last = l
			cmd, err := DecodeCommand(l.Data)
			if err != nil {
				// A committed command this build cannot read (a newer
				// leader's kind during an upgrade, a damaged log entry):
				// skipping it would leave this replica without a change the
				// others made. Fail the batch, so the replica stops applying.
				return fmt.Errorf("decode command at index %d: %w", l.Index, err)
			}
			switch {
			case cmd.Write != nil:
				results[i], err = s.unsafeApplyWrite(tx, cmd.Write)
			case cmd.Remote != nil:
				results[i], err = s.unsafeApplyRemote(tx, cmd.Remote)
			case cmd.Replica != nil:
				err = unsafeApplyReplica(tx, cmd.Replica)
			case cmd.Bundle != nil:
				results[i], err = unsafeApplyBundle(tx, cmd.Bundle)
			case cmd.Audit != nil:
				results[i], err = s.unsafeApplyAudit(tx, cmd.Audit)
			case cmd.Purge != nil:
				results[i], err = s.unsafeApplyPurge(tx, cmd.Purge)
			}
			if err != nil {
				return err
			}
		}
		if last.Index != 0 {
			meta := tx.Bucket(bucketMeta)
			if err := putU64(meta, keyAppliedIndex, last.Index); err != nil {
				return err
			}
			return putU64(meta, keyAppliedTerm, last.Term)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("apply batch of %d: %w", len(logs), err)
	}
	s.notify()
	return results, nil
}

var errAlreadyApplied = errors.New("already applied")

// IsAlreadyApplied reports whether a Result was skipped as a replay.
func IsAlreadyApplied(err error) bool { return errors.Is(err, errAlreadyApplied) }

// internalError marks failures that must abort the transaction, as opposed to a
// command's own refusal.
type internalError struct{ err error }

func (e internalError) Error() string { return e.err.Error() }
func (e internalError) Unwrap() error { return e.err }

func (s *Store) unsafeApplyWrite(tx *bbolt.Tx, w *WriteCommand) (Result, error) {
	origin, _, err := schema.SplitID(w.ID)
	if err != nil {
		return Result{Err: err}, nil
	}
	if origin != s.opts.Centre {
		return Result{Err: fmt.Errorf("%w: %s is %s's", ErrNotOrigin, w.ID, origin)}, nil
	}
	existing, err := unsafeGetRecord(tx, w.ID)
	switch {
	case errors.Is(err, ErrNotFound):
		existing = nil
	case err != nil:
		return Result{}, err
	}
	live := existing != nil && !existing.Deleted
	switch w.Op {
	case OpCreate:
		if existing != nil {
			return Result{Err: fmt.Errorf("%w: %s", ErrExists, w.ID)}, nil
		}
	case OpPut:
		if w.IfAbsent && live {
			return Result{Err: fmt.Errorf("%w: %s is at version %d", ErrExists, w.ID, existing.Version)}, nil
		}
		if w.IfMatch != 0 && (!live || existing.Version != w.IfMatch) {
			return Result{Err: conflict(w.ID, w.IfMatch, existing)}, nil
		}
		if w.KeepCatalogue && live && w.Record != nil && w.Record.Catalogue != existing.Catalogue {
			return Result{Err: fmt.Errorf("%w: %s is a %s record, not a %s one", ErrCatalogueMove, w.ID, existing.Catalogue, w.Record.Catalogue)}, nil
		}
	case OpDelete:
		if !live {
			return Result{Err: fmt.Errorf("%w: %s", ErrNotFound, w.ID)}, nil
		}
		if w.IfMatch != 0 && existing.Version != w.IfMatch {
			return Result{Err: conflict(w.ID, w.IfMatch, existing)}, nil
		}
	default:
		return Result{Err: fmt.Errorf("unknown write op %q", w.Op)}, nil
	}

	var rec *schema.Record
	if w.Op == OpDelete {
		rec = existing.Clone()
		rec.Deleted = true
		rec.Body = json.RawMessage("{}") // a tombstone keeps no personal data
	} else {
		if w.Record == nil {
			return Result{Err: errors.New("write without record")}, nil
		}
		// w was decoded from this log entry's bytes for this apply alone
		// (Apply, the one caller; its bodies are copies, not the raft
		// log's): the record is this write's to change, and a copy was a
		// copy of the body for nothing.
		rec = w.Record
		rec.Deleted = false
		rec.Broker = ""
		rec.CreatedAt = w.At.UTC()
		if existing != nil {
			rec.CreatedAt = existing.CreatedAt
		}
	}
	rec.ID, rec.Origin = w.ID, s.opts.Centre
	rec.UpdatedAt = w.At.UTC()
	rec.Version = 1
	if existing != nil {
		rec.Version = existing.Version + 1
	}
	if rec.Schema == 0 {
		rec.Schema = schema.CurrentSchema
	}

	res := Result{Record: rec}
	if res.Position, err = s.unsafePutRecord(tx, existing, rec); err != nil {
		return Result{}, err
	}

	// What the federation sees: the record without personal data, or a withdrawal
	// when a shared record turns private. Absence never means deletion.
	// prepared says the logged body is canonical (checked once, here, by
	// every replica alike: the leader's too, for what its HTTP layer checked
	// is not what a follower can see, and a replica that skipped a check its
	// followers make would apply the same log differently), so the entry is
	// built by splicing it in.
	var logged *schema.Record
	prepared := false
	switch {
	case rec.Shared():
		if prepared = w.Canonical && canonical(rec.Body, w.SharedBody); prepared {
			rec.MarkBodyCanonical() // for the API's answer
			// What StripPersonal gives, prepared before the command was
			// proposed. It shares the body with rec (bodies are never
			// changed in place) and takes w's shared body, as rec took
			// w's record.
			l := *rec
			logged = &l
			logged.Broker = rec.Origin
			if w.SharedBody != nil {
				logged.Body = w.SharedBody
			}
		} else if logged, err = schema.StripPersonal(rec); err != nil {
			return Result{}, internalError{fmt.Errorf("strip personal data of %s: %w", rec.ID, err)}
		}
	case existing != nil && existing.Shared() && !existing.Deleted:
		logged = rec.Clone()
		logged.Deleted = true
		logged.Body = json.RawMessage("{}")
		logged.Broker = rec.Origin
		prepared = true // "{}" is canonical
	}
	if logged != nil {
		if res.Entry, err = s.unsafeAppendOwn(tx, logged, w, prepared); err != nil {
			return Result{}, err
		}
	}
	return res, nil
}

// canonical checks what a command claims canonical before it is spliced into
// a signed entry, as it will be checked at every peer: a walk of a few
// microseconds, against an entry every peer refuses and a log that stops
// spreading should an encoding on the way have changed a byte.
func canonical(bodies ...[]byte) bool {
	for _, b := range bodies {
		if b != nil && schema.CheckCanonical(b) != nil {
			return false
		}
	}
	return true
}

func conflict(id string, want uint64, existing *schema.Record) error {
	if existing == nil || existing.Deleted {
		return fmt.Errorf("%w: %s: If-Match %d but the record does not exist", ErrVersionConflict, id, want)
	}
	return fmt.Errorf("%w: %s: If-Match %d but the current version is %d", ErrVersionConflict, id, want, existing.Version)
}

func (s *Store) unsafeAppendOwn(tx *bbolt.Tx, rec *schema.Record, w *WriteCommand, canonicalBody bool) (*schema.Entry, error) {
	if s.opts.Signer == nil {
		return nil, internalError{errors.New("no record-signing key configured")}
	}
	meta := tx.Bucket(bucketMeta)
	epoch := string(meta.Get(keyEpoch))
	if epoch == "" {
		if w.Epoch == "" {
			return nil, internalError{errors.New("first local write carries no epoch")}
		}
		epoch = w.Epoch
		if err := meta.Put(keyEpoch, []byte(epoch)); err != nil {
			return nil, err
		}
	}
	head, err := unsafeHead(tx, s.opts.Centre)
	if err != nil {
		return nil, err
	}
	newEntry := schema.NewEntry
	if canonicalBody {
		newEntry = schema.NewEntryCanonicalBody
	}
	e, err := newEntry(schema.EntryPayload{
		Origin:   s.opts.Centre,
		Epoch:    epoch,
		Seq:      head.Seq + 1,
		PrevHash: head.Hash,
		KeyID:    cmp.Or(w.KeyID, s.opts.Signer.KeyID()),
		SignedAt: w.At,
		Record:   rec,
	})
	if err != nil {
		return nil, internalError{err}
	}
	if err := s.opts.Signer.Sign(e); err != nil {
		return nil, internalError{fmt.Errorf("sign entry %d: %w", e.Seq, err)}
	}
	head, err = unsafeAppendEntry(tx, e)
	if err != nil {
		return nil, err
	}
	if err := unsafePutHead(tx, head); err != nil {
		return nil, err
	}
	return e, nil
}

// unsafeAppendEntry stores e in its origin's log and returns the head it makes.
// The caller records the head (unsafePutHead), once per batch.
func unsafeAppendEntry(tx *bbolt.Tx, e *schema.Entry) (schema.Head, error) {
	b, err := tx.Bucket(bucketLogs).CreateBucketIfNotExists([]byte(e.Origin))
	if err != nil {
		return schema.Head{}, err
	}
	// Sequential keys: fill pages completely rather than splitting them half-empty.
	b.FillPercent = 1.0
	if err := b.Put(u64(e.Seq), encodeStoredEntry(e)); err != nil {
		return schema.Head{}, err
	}
	if err := unsafeIndexHistory(tx, e); err != nil {
		return schema.Head{}, err
	}
	return schema.Head{Origin: e.Origin, Epoch: e.Epoch, Seq: e.Seq, Hash: e.Hash()}, nil
}

func unsafePutHead(tx *bbolt.Tx, h schema.Head) error {
	js, err := schema.AppendHeadJSON(make([]byte, 0, 160), h)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketHeads).Put([]byte(h.Origin), js)
}

func (s *Store) unsafeApplyRemote(tx *bbolt.Tx, rc *RemoteCommand) (res Result, err error) {
	if (rc.Origin == s.opts.Centre) != rc.Recover {
		if rc.Recover {
			res.Err = fmt.Errorf("%w: recovery of %s's log at %s", ErrNotOrigin, rc.Origin, s.opts.Centre)
		} else {
			res.Err = fmt.Errorf("%w: entries of this centre's own log come only from this centre", ErrFork)
		}
		return res, nil
	}
	if rc.Recover && len(rc.Entries) > 0 {
		// The own log's epoch is the recovered one; a local write later continues it.
		meta := tx.Bucket(bucketMeta)
		switch epoch := string(meta.Get(keyEpoch)); {
		case epoch == "":
			if err := meta.Put(keyEpoch, []byte(rc.Entries[0].Epoch)); err != nil {
				return res, err
			}
		case epoch != rc.Entries[0].Epoch:
			res.Err = fmt.Errorf("%w: recovered entries of epoch %q, this log is %q", ErrFork, rc.Entries[0].Epoch, epoch)
			return res, nil
		}
	}
	head, err := unsafeHead(tx, rc.Origin)
	if err != nil {
		return res, err
	}
	// The head is written once, for whatever part of the batch was appended
	// (a batch refused part-way keeps the entries before the refusal).
	defer func() {
		if err == nil && res.Applied > 0 {
			err = unsafePutHead(tx, head)
		}
	}()
	logs := tx.Bucket(bucketLogs).Bucket([]byte(rc.Origin))
	purged := s.unsafePurged(tx, rc.Origin)
	for _, e := range rc.Entries {
		if e.Origin != rc.Origin {
			res.Err = fmt.Errorf("%w: entry of %s in a batch of %s", ErrChainGap, e.Origin, rc.Origin)
			return res, nil
		}
		if e.Seq <= head.Seq {
			var held []byte
			if logs != nil {
				held = logs.Get(u64(e.Seq))
			}
			if held != nil && bytes.Equal(held, encodeStoredEntry(e)) {
				res.Skipped++
				continue
			}
			res.Err = fmt.Errorf("%w: %s seq %d differs from the entry held", ErrFork, e.Origin, e.Seq)
			return res, nil
		}
		if e.Seq != head.Seq+1 || e.PrevHash != head.Hash {
			res.Err = fmt.Errorf("%w: %s seq %d after local head %d", ErrChainGap, e.Origin, e.Seq, head.Seq)
			return res, nil
		}
		if head.Seq > 0 && e.Epoch != head.Epoch {
			res.Err = fmt.Errorf("%w: %s epoch %q after %q", ErrFork, e.Origin, e.Epoch, head.Epoch)
			return res, nil
		}
		if idOrigin, _, err := schema.SplitID(e.Record.ID); err != nil || idOrigin != e.Origin {
			res.Err = fmt.Errorf("%w: %s seq %d carries record %q of another origin", ErrChainGap, e.Origin, e.Seq, e.Record.ID)
			return res, nil
		}
		if head, err = unsafeAppendEntry(tx, e); err != nil {
			return res, err
		}
		if logs == nil {
			logs = tx.Bucket(bucketLogs).Bucket([]byte(rc.Origin))
		}
		res.Applied++

		if purged {
			continue // logged, not served: see PurgeCommand
		}
		// The entry was decoded for this command alone (DecodeCommand), and
		// nothing keeps its record past the transaction: stored as it is,
		// without a copy (a catch-up's every entry), and copied only to be
		// changed.
		rec := e.Record
		if !rec.Shared() {
			// A withdrawal: the record is no longer the federation's to see.
			rec = rec.Clone()
			rec.Deleted = true
			rec.Body = json.RawMessage("{}")
		}
		existing, err := unsafeGetRecord(tx, rec.ID)
		switch {
		case errors.Is(err, ErrNotFound):
			existing = nil
		case err != nil:
			return res, err
		}
		if existing != nil && existing.Version >= rec.Version {
			continue // a higher version always wins
		}
		if res.Position, err = s.unsafePutRecord(tx, existing, rec); err != nil {
			return res, err
		}
	}
	return res, nil
}

// unsafePutRecord stores rec over existing (nil when new), keeps indexes and counts
// in step, and appends the change to the feed, marked with the visibility it
// narrowed from when it narrows who may read the record (a shared record
// withdrawn, here or at its origin; a public one made federation-only), so
// that feeds can tell the readers it leaves behind.
func (s *Store) unsafePutRecord(tx *bbolt.Tx, existing, rec *schema.Record) (uint64, error) {
	js, err := encodeRecord(rec)
	if err != nil {
		return 0, internalError{fmt.Errorf("encode record %s: %w", rec.ID, err)}
	}
	recs := tx.Bucket(bucketRecords)
	// A centre's ids grow with time (a ULID after the origin), so records
	// arrive at the end of each origin's range: split pages full rather than
	// half empty (the default left the bucket 60 % full, a third more pages
	// written by every catch-up).
	recs.FillPercent = 1.0
	if err := recs.Put([]byte(rec.ID), js); err != nil {
		return 0, err
	}
	if existing != nil {
		if err := unsafeIndex(tx, existing, false); err != nil {
			return 0, err
		}
	}
	if err := unsafeIndex(tx, rec, true); err != nil {
		return 0, err
	}
	meta := tx.Bucket(bucketMeta)
	pos := getU64(meta, keyFeedSeq) + 1
	if err := putU64(meta, keyFeedSeq, pos); err != nil {
		return 0, err
	}
	feed := tx.Bucket(bucketFeed)
	feed.FillPercent = 1.0
	val := js
	if existing != nil && !existing.Deleted && visibilityRank(rec.Visibility) < visibilityRank(existing.Visibility) {
		val = append(append([]byte{feedNarrowed}, existing.Visibility...), js...)
	}
	if err := feed.Put(u64(pos), val); err != nil {
		return 0, err
	}
	return pos, nil
}

// visibilityRank orders visibilities by who may read a record.
func visibilityRank(v string) int {
	switch v {
	case schema.VisibilityPublic:
		return 3
	case schema.VisibilityFederation:
		return 2
	case schema.VisibilityPrivate:
		return 1
	}
	return 0
}

// encodeRecord is json.Marshal(r) but for the body, which is copied as it is
// rather than compacted and escaped by encoding/json, a scan of most of the
// record: every body reaching the state machine was validated (a local write)
// or verified canonical (an entry). Readers decode the stored form, so the
// HTML escapes encoding/json would add make no difference.
//
// Both ways below copy the body as it is, so the fast one need not walk it to
// see whether encoding/json would keep it (AppendRecordJSONCanonicalBody):
// that walk, once a record stored, decided only which way the same bytes went.
func encodeRecord(r *schema.Record) ([]byte, error) {
	// Sized once: growing from nil took a fifth of AppendRecordJSON's time in
	// a catch-up's profile. The members besides the body take ~300 bytes.
	if out, ok := schema.AppendRecordJSONCanonicalBody(make([]byte, 0, len(r.Body)+512), r); ok {
		return out, nil
	}
	if len(r.Body) == 0 {
		return json.Marshal(r)
	}
	env := *r
	env.Body = nil
	js, err := json.Marshal(&env)
	if err != nil {
		return nil, err
	}
	const null = `null}` // Body is the last member and is never omitted
	if !bytes.HasSuffix(js, []byte(`"body":`+null)) {
		return json.Marshal(r)
	}
	out := make([]byte, 0, len(js)-len(null)+len(r.Body)+1)
	out = append(out, js[:len(js)-len(null)]...)
	out = append(out, r.Body...)
	return append(out, '}'), nil
}

func unsafeApplyReplica(tx *bbolt.Tx, m *ReplicaCommand) error {
	if meta := tx.Bucket(bucketMeta); m.FeedEpoch != "" && meta.Get(keyFeedEpoch) == nil {
		if err := meta.Put(keyFeedEpoch, []byte(m.FeedEpoch)); err != nil {
			return err
		}
		// Where the name begins: every cursor issued after this carries
		// it, so an unnamed cursor past this position is of no life of
		// this feed (FeedNamedAt). Every replica applies the naming at
		// the same point of the log, so all record the same position.
		if err := putU64(meta, keyFeedNamedAt, getU64(meta, keyFeedSeq)); err != nil {
			return err
		}
	}
	b := tx.Bucket(bucketReplicas)
	if m.Remove {
		return b.Delete([]byte(m.Replica.ID))
	}
	js, err := json.Marshal(m.Replica)
	if err != nil {
		return internalError{err}
	}
	return b.Put([]byte(m.Replica.ID), js)
}
