package node

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"liandong/auth"
	"liandong/node/store"
	"liandong/schema"
)

// ErrBundleRefused wraps every reason a node refuses a trust bundle offered to
// it (too few signatures, rollback, another federation, expired, malformed).
var ErrBundleRefused = errors.New("trust bundle refused")

// VerifyBundleAllowExpired is auth.VerifyBundle without the expiry check: the
// signatures, threshold, pinned roots and upgrade rules all apply, but an
// expired bundle is returned with expired set instead of refused. A node uses
// it for the bundles it already relies on (its file and the one it installed):
// a running node keeps its bundle after expiry, and a restart must not drop it
// for an older one, nor a lapse stop a node that has nothing newer.
func VerifyBundleAllowExpired(sb *auth.SignedBundle, trusted *auth.Bundle, now time.Time, rootKeyIDs ...string) (b *auth.Bundle, expired bool, err error) {
	b, err = auth.VerifyBundle(sb, trusted, now, rootKeyIDs...)
	if err == nil || !errors.Is(err, auth.ErrBundleExpired) {
		return b, false, err
	}
	// Expiry is VerifyBundle's last check: every other one has passed.
	// TestVerifyBundleAllowExpired holds it to that.
	if b, err = sb.Bundle(); err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// SignedBundle returns the signed trust bundle the node runs on, as distributed
// (JSON of auth.SignedBundle); nil if the node was started without its bytes.
func (n *Node) SignedBundle() []byte {
	if p := n.bundleSigned.Load(); p != nil {
		return *p
	}
	return nil
}

// InstallBundle verifies a signed trust bundle against the one the node holds
// and, when it is newer, installs it at every replica of the centre through
// raft. The same version again returns the held bundle and changes nothing.
// Only the leader installs (ErrNotLeader otherwise). actor names who offered it
// (a token subject, or "sync:<peer>") for the audit log.
func (n *Node) InstallBundle(ctx context.Context, signed []byte, actor string) (*auth.Bundle, error) {
	sb, err := auth.ParseSignedBundle(signed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBundleRefused, err)
	}
	cur := n.Bundle()
	next, err := auth.VerifyBundle(sb, cur, n.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBundleRefused, err)
	}
	if cur != nil && next.Version == cur.Version {
		return cur, nil
	}
	if !n.IsLeader() {
		return nil, ErrNotLeader
	}
	data, err := sb.MarshalJSON()
	if err != nil {
		return nil, err
	}
	_, err = n.propose(ctx, &store.Command{Bundle: &store.BundleCommand{Version: next.Version, Signed: data}})
	if errors.Is(err, store.ErrStaleBundle) {
		// Another path (sync, a second publish) installed it or a newer one first.
		return n.Bundle(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("install trust bundle v%d: %w", next.Version, err)
	}
	from := uint64(0)
	if cur != nil {
		from = cur.Version
	}
	n.log.Info("trust bundle installed", "version", next.Version, "from", from, "by", actor)
	n.auditBestEffort(ctx, actor, "bundle.install", fmt.Sprintf("v%d replaces v%d; %s", next.Version, from, summarizeBundleChange(cur, next)))
	return next, nil
}

// adoptBundle makes an applied BundleCommand the node's bundle, unless the node
// already runs on that version or a newer one (a file placed by the operator).
// The leader verified it before proposing; the raft log is as trusted as the
// state file, so replicas do not verify again.
func (n *Node) adoptBundle(c *store.BundleCommand) {
	sb, err := auth.ParseSignedBundle(c.Signed)
	if err != nil {
		n.log.Error("installed trust bundle does not parse; keeping the held one", "version", c.Version, "err", err)
		return
	}
	b, err := sb.Bundle()
	if err != nil {
		n.log.Error("installed trust bundle is invalid; keeping the held one", "version", c.Version, "err", err)
		return
	}
	n.bundleMu.Lock()
	defer n.bundleMu.Unlock()
	if cur := n.Bundle(); cur != nil && cur.Version >= b.Version {
		return
	}
	signed := []byte(c.Signed)
	n.bundle.Store(b)
	n.bundleSigned.Store(&signed)
}

// loadStoredBundle adopts the bundle installed through raft when it is newer
// than the one the node was started with. It was verified when it was
// installed, against the bundle it succeeded (InstallBundle), and the state
// file is as trusted as the raft log (adoptBundle applies it unverified): it is
// not verified again against its own signers, which a version may
// legitimately not satisfy on its own (it hands the signer role to a new key,
// a signer's window has ended, a signer was revoked). It must parse, be
// valid, and be of the configured bundle's federation.
//
// Its expiry is not checked: a running node keeps its bundle after expiry, and
// dropping it at a restart for the older configured file would undo every
// revocation, removal and key rotation installed since, with no way back in
// (the installed version could not be offered again once expired). An error
// means the node would run on an older bundle than it installed.
func (n *Node) loadStoredBundle() error {
	signed, version, err := n.st.Bundle()
	if err != nil || signed == nil {
		return err
	}
	if cur := n.Bundle(); cur != nil && cur.Version >= version {
		return nil
	}
	sb, err := auth.ParseSignedBundle(signed)
	if err != nil {
		return fmt.Errorf("stored trust bundle v%d: %w", version, err)
	}
	b, err := sb.Bundle()
	if err != nil {
		return fmt.Errorf("stored trust bundle v%d: %w", version, err)
	}
	if cur := n.Bundle(); cur != nil && cur.Federation != b.Federation {
		return fmt.Errorf("stored trust bundle v%d is for federation %q, the configured one for %q", version, b.Federation, cur.Federation)
	}
	n.adoptBundle(&store.BundleCommand{Version: version, Signed: signed})
	n.log.Info("running on the trust bundle installed earlier", "version", version)
	if now := n.cfg.Now(); !b.ExpiresAt.IsZero() && now.After(b.ExpiresAt) {
		n.log.Error("THE TRUST BUNDLE HAS EXPIRED: running on it because it is the newest this node holds; ask the federation's signers for a new version and publish it",
			"version", version, "expired_at", b.ExpiresAt.UTC().Format(time.RFC3339), "ago", now.Sub(b.ExpiresAt).Round(time.Second).String())
	}
	return nil
}

// Audit appends an event to the centre's signed audit log through raft.
func (n *Node) Audit(ctx context.Context, actor, action, detail string) error {
	at := n.cfg.Now().UTC()
	keyID, err := n.signingKey(at)
	if err != nil {
		// The audit log stays at this centre: the configured key will do
		// where no key is valid now (see signingKey).
		keyID = n.cfg.RecordKey.ID
	}
	_, err = n.propose(ctx, &store.Command{Audit: &store.AuditCommand{At: at, Actor: actor, Action: action, Detail: detail, KeyID: keyID}})
	if err != nil {
		return fmt.Errorf("audit %s: %w", action, err)
	}
	return nil
}

// auditBestEffort records an event of an action that has already happened: its
// failure is logged, not returned, because the action cannot be undone.
func (n *Node) auditBestEffort(ctx context.Context, actor, action, detail string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Second)
	defer cancel()
	if err := n.Audit(ctx, actor, action, detail); err != nil {
		n.log.Warn("audit event not recorded", "action", action, "err", err)
	}
}

// AuditLog returns up to limit events of the audit log from seq from on.
func (n *Node) AuditLog(_ context.Context, from uint64, limit int) ([]store.AuditEvent, error) {
	return n.st.Audit(from, limit)
}

// VerifyAudit checks that events continue prev (the Hash of the event before
// the first; zero for the start of the log), follow each other by seq, and
// carry valid signatures of the centre's record keys in bundle at their time.
func VerifyAudit(bundle *auth.Bundle, prev schema.Hash, events []store.AuditEvent) error {
	for i := range events {
		ev := &events[i]
		if ev.Prev != prev {
			return fmt.Errorf("audit event %d: does not follow the event before it", ev.Seq)
		}
		if i > 0 && ev.Seq != events[i-1].Seq+1 {
			return fmt.Errorf("audit event %d: follows %d", ev.Seq, events[i-1].Seq)
		}
		pub, err := bundle.RecordKey(ev.Centre, ev.KeyID, ev.At)
		if err != nil {
			return fmt.Errorf("audit event %d: %w", ev.Seq, err)
		}
		msg, err := ev.SignedBytes()
		if err != nil {
			return fmt.Errorf("audit event %d: %w", ev.Seq, err)
		}
		if !ed25519.Verify(pub, msg, ev.Sig) {
			return fmt.Errorf("audit event %d: bad signature", ev.Seq)
		}
		if prev, err = ev.Hash(); err != nil {
			return err
		}
	}
	return nil
}

// summarizeBundleChange says in a line what next changes against cur, for the
// audit log and the operator's log.
func summarizeBundleChange(cur, next *auth.Bundle) string {
	if cur == nil {
		return fmt.Sprintf("%d members", len(next.Members))
	}
	var parts []string
	for _, m := range next.Members {
		old, ok := cur.Member(m.ID)
		switch {
		case !ok:
			parts = append(parts, "added "+m.ID)
		case m.Removed != nil && old.Removed == nil:
			parts = append(parts, "removed "+m.ID)
		case len(m.RecordKeys) != len(old.RecordKeys) || len(m.TokenKeys) != len(old.TokenKeys):
			parts = append(parts, "keys of "+m.ID)
		}
	}
	if d := len(next.Revocations) - len(cur.Revocations); d > 0 {
		parts = append(parts, fmt.Sprintf("%d revocations", d))
	}
	if !next.ExpiresAt.Equal(cur.ExpiresAt) {
		parts = append(parts, "expires "+next.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if len(parts) == 0 {
		return "no member change"
	}
	return fmt.Sprint(parts)
}

// ErrNotRemoved refuses a purge of an origin that is still a member.
var ErrNotRemoved = errors.New("origin is not a removed member")

// PurgeOrigin stops serving the records of a centre that the trust bundle says
// has left: they become tombstones here (partners' feeds drop them) and later
// entries of it are logged but not served. Other centres decide for themselves.
// It returns how many records this call made tombstones: asked again, it
// finishes a purge cut short (and counts only what it finished).
func (n *Node) PurgeOrigin(ctx context.Context, origin, actor string) (int, error) {
	m, ok := n.Bundle().Member(origin)
	if !ok || m.Removed == nil {
		return 0, fmt.Errorf("%w: %q (remove it from the federation first: `liandong federation remove-centre`)", ErrNotRemoved, origin)
	}
	if err := n.lockPurges(ctx); err != nil {
		return 0, fmt.Errorf("purge %s: %w", origin, err)
	}
	defer func() { <-n.purgeLock }()
	purged, _, begun, err := n.purge(ctx, origin, -1)
	if err != nil {
		// Some chunks may have been applied: they stay (the origin is
		// marked purged), and ResumePurges or a second call finishes.
		// From the first chunk on every reader sees the origin purged
		// whole, and the leader finishes it unasked: the audit log says
		// so now, or it never would.
		if begun {
			n.auditBestEffort(ctx, actor, "origin.purge", fmt.Sprintf("%s: purge begun, %d records withdrawn from service by this call, then: %v (what was applied stays; the leader resumes a purge in chunks, or purge-origin again finishes it)", origin, purged, err))
		}
		return purged, fmt.Errorf("purge %s: %w", origin, err)
	}
	n.auditBestEffort(ctx, actor, "origin.purge", fmt.Sprintf("%s: %d records withdrawn from service", origin, purged))
	return purged, nil
}

// lockPurges takes purgeLock, waiting while another purge of this leader's
// runs (ResumePurges: up to its maxChunks chunks) until ctx ends. A free lock
// is taken without reading ctx, as a sync.Mutex was.
func (n *Node) lockPurges(ctx context.Context) error {
	select {
	case n.purgeLock <- struct{}{}:
		return nil
	default:
	}
	select {
	case n.purgeLock <- struct{}{}:
		return nil
	case <-ctx.Done():
		// Nothing was proposed: no purge of this call's began.
		return fmt.Errorf("%w: another purge of this leader's (a purge cut short, resumed) still runs; nothing was proposed, try again: %w", ErrTimeout, ctx.Err())
	}
}

// PurgeChunk is how many records one purge command makes tombstones, when
// every replica of the group takes purges in chunks (FeaturePurgeChunks): a
// chunk's transaction took 23 ms and a few MiB of heap, where a whole purge
// of 100,000 records took 3.7-4.6 s, during which no write was applied, and
// 221 MiB (node/store BenchmarkPurge, on the project's 2-core machine).
const PurgeChunk = 1000

// purge proposes the purge of origin: in chunks of PurgeChunk, at most
// maxChunks of them (-1: until none is left), when every replica takes
// chunks; otherwise, with maxChunks -1 only, as one command, which a build
// from before chunks applies alike. It returns the records made tombstones,
// whether some are left, and whether a command was or may yet be applied
// (begun: one committed, or one's outcome is unknown, outcomeUnknown; not
// merely handed to raft, which may refuse it). The caller holds purgeLock.
func (n *Node) purge(ctx context.Context, origin string, maxChunks int) (purged int, more, begun bool, err error) {
	if !n.groupHas(FeaturePurgeChunks) {
		if maxChunks >= 0 {
			// Bounded (ResumePurges): never the whole, which is not.
			return 0, true, false, nil
		}
		wait, err := n.enqueue(ctx, &store.Command{Purge: &store.PurgeCommand{Origin: origin}})
		if err != nil {
			return 0, true, false, err
		}
		res, err := wait()
		if err == nil {
			err = res.Err
		}
		return res.Applied, err != nil, err == nil || outcomeUnknown(err), err
	}
	for i := 0; maxChunks < 0 || i < maxChunks; i++ {
		wait, err := n.enqueue(ctx, &store.Command{Purge: &store.PurgeCommand{Origin: origin, Limit: PurgeChunk}})
		if err != nil {
			return purged, true, begun, err
		}
		res, err := wait()
		if err == nil {
			err = res.Err
		}
		if err != nil {
			return purged, true, begun || outcomeUnknown(err), err
		}
		begun = true
		purged += res.Applied
		if !res.More {
			return purged, false, begun, nil
		}
	}
	return purged, true, begun, nil
}

// outcomeUnknown reports whether a proposal that failed with err may yet be
// applied (a purge it carried has then begun): a timeout of the caller's, a
// leadership lost after the entry was appended, a disk that filled while it
// was applied, a shutdown after it committed (raft answers ErrRaftShutdown to
// a committed entry the state machine had yet to take). Not so a refusal of
// the state machine (res.Err), raft's ErrNotLeader (leadership moving
// included) or enqueue timeout, or a log that could not store the entry:
// raft never took those, and no purge began.
func outcomeUnknown(err error) bool {
	switch {
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return false
	case errors.Is(err, ErrTimeout), errors.Is(err, ErrShutdown):
		return true
	}
	return false
}

// ResumePurges continues, as leader, the purges whose chunks stopped before
// the last (the leader that proposed them crashed or lost leadership), at most
// maxChunks chunks per call, so that the caller (the leader's membership
// loop) is not held for the whole of a large one. It does nothing while a
// PurgeOrigin runs here, nor while a replica of the group is not known to
// take chunks (FeaturePurgeChunks: rolled back, or its record missing): the
// one whole purge it would then propose holds the state machine, and every
// write of the centre, for the whole of what is left (38 s at 1,000,000
// records), which an operator's purge-origin does knowingly and this loop
// must not do unasked. It returns the records it made tombstones. A purge it
// finishes is audited (origin.purge) with this replica as actor,
// "replica:<id>", as no operator's call finished it.
func (n *Node) ResumePurges(ctx context.Context, maxChunks int) (int, error) {
	maxChunks = max(maxChunks, 1)
	if !n.IsLeader() {
		return 0, ErrNotLeader
	}
	select {
	case n.purgeLock <- struct{}{}:
	default:
		return 0, nil
	}
	defer func() { <-n.purgeLock }()
	origins, err := n.st.UnfinishedPurges()
	if err != nil {
		return 0, fmt.Errorf("resume purges: %w", err)
	}
	if len(origins) > 0 && !n.groupHas(FeaturePurgeChunks) {
		// Said once per wait, not at every tick of the caller's loop.
		if !n.purgeWaiting.Swap(true) {
			n.log.Warn("a purge cut short waits until every replica announces "+FeaturePurgeChunks+" (or purge-origin again purges the rest whole)", "origins", origins)
		}
		return 0, nil
	}
	n.purgeWaiting.Store(false)
	if len(origins) > 0 {
		// A new leader may not have applied its predecessor's last chunks
		// yet (they apply once its own first entry commits): decide on what
		// is committed, or it would propose a chunk that finds nothing and
		// audit a purge as finished by it that another replica finished.
		if err := n.Barrier(ctx); err != nil {
			return 0, fmt.Errorf("resume purges: %w", err)
		}
		if origins, err = n.st.UnfinishedPurges(); err != nil {
			return 0, fmt.Errorf("resume purges: %w", err)
		}
	}
	total := 0
	for _, origin := range origins {
		purged, more, _, err := n.purge(ctx, origin, maxChunks)
		total += purged
		if err != nil {
			return total, fmt.Errorf("resume the purge of %s: %w", origin, err)
		}
		if !more {
			n.log.Info("finished a purge cut short", "origin", origin, "records", purged)
			// The operator's event says the purge began (PurgeOrigin);
			// this one says which replica, unasked, finished it.
			n.auditBestEffort(ctx, "replica:"+n.cfg.ReplicaID, "origin.purge", fmt.Sprintf("%s: a purge cut short finished by the leader; its last resumption withdrew %d records from service", origin, purged))
		}
		if maxChunks -= (purged + PurgeChunk - 1) / PurgeChunk; maxChunks <= 0 {
			break
		}
	}
	return total, nil
}
