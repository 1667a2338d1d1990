// Package exchangetest provides fakes for testing liandong/sync/exchange and its
// callers without a real node: an in-memory Node with real append and fork
// checks, an Author that builds and signs log entries, and a Federation fixture
// with record keys, libp2p identities and a trust bundle for a set of centres.
//
// It imports neither raft nor bbolt, nor the exchange itself (so the exchange's
// own tests can use it).
package exchangetest

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/auth"
	"liandong/schema"
)

// Errors of the fake node's ApplyEntries.
var (
	ErrNotLeader = errors.New("fake node: not the leader")
	ErrFork      = errors.New("fake node: held entry has another hash (fork)")
	ErrGap       = errors.New("fake node: entries do not continue the head")
	ErrOwnOrigin = errors.New("fake node: entries of the node's own origin")
)

// Node is an in-memory node: one log per origin. It is safe for concurrent use.
type Node struct {
	centre     string
	bundle     atomic.Pointer[auth.Bundle]
	signed     atomic.Pointer[[]byte]
	canApply   atomic.Bool
	recovering atomic.Bool
	onCommit   atomic.Pointer[func()]
	applies    atomic.Int64

	mu   sync.Mutex
	logs map[string][]*schema.Entry

	// ApplyHook, if set before use, runs at the start of ApplyEntries; an error
	// from it is returned as ApplyEntries' own.
	ApplyHook func(origin string, entries []*schema.Entry) error
}

// NewNode returns an empty node of centre that can apply, trusting b.
func NewNode(centre string, b *auth.Bundle) *Node {
	n := &Node{centre: centre, logs: make(map[string][]*schema.Entry)}
	n.bundle.Store(b)
	n.canApply.Store(true)
	return n
}

// SetBundle replaces the trust bundle (and forgets its signed form).
func (n *Node) SetBundle(b *auth.Bundle) {
	n.bundle.Store(b)
	n.signed.Store(nil)
}

// SetSignedBundle replaces the trust bundle with a signed one, as publishing to
// a real node does, without verifying it.
func (n *Node) SetSignedBundle(signed []byte) error {
	sb, err := auth.ParseSignedBundle(signed)
	if err != nil {
		return err
	}
	b, err := sb.Bundle()
	if err != nil {
		return err
	}
	n.bundle.Store(b)
	n.signed.Store(&signed)
	return nil
}

// SetRecovering puts the node in own-log recovery (it takes entries of its own
// origin) until EndRecovery.
func (n *Node) SetRecovering(v bool) { n.recovering.Store(v) }

// Recovering reports whether the node is recovering its own log.
func (n *Node) Recovering() bool { return n.recovering.Load() }

// EndRecovery ends own-log recovery.
func (n *Node) EndRecovery(uint64, int) { n.recovering.Store(false) }

// SignedBundle returns the bundle's signed form, if the node has one.
func (n *Node) SignedBundle() []byte {
	if p := n.signed.Load(); p != nil {
		return *p
	}
	return nil
}

// InstallBundle verifies signed against the held bundle, as the real node does,
// and adopts it when newer.
func (n *Node) InstallBundle(_ context.Context, signed []byte, _ string) (*auth.Bundle, error) {
	sb, err := auth.ParseSignedBundle(signed)
	if err != nil {
		return nil, err
	}
	cur := n.bundle.Load()
	b, err := auth.VerifyBundle(sb, cur, time.Now())
	if err != nil {
		return nil, err
	}
	if cur == nil || b.Version > cur.Version {
		n.bundle.Store(b)
		n.signed.Store(&signed)
	}
	return n.bundle.Load(), nil
}

// SetCanApply makes the node a leader (true) or a follower.
func (n *Node) SetCanApply(v bool) { n.canApply.Store(v) }

// OnCommit sets a function called after every append and apply (the exchange's
// Notify, as the real node does).
func (n *Node) OnCommit(f func()) { n.onCommit.Store(&f) }

// ApplyCalls counts ApplyEntries calls.
func (n *Node) ApplyCalls() int64 { return n.applies.Load() }

func (n *Node) Centre() string       { return n.centre }
func (n *Node) CanApply() bool       { return n.canApply.Load() }
func (n *Node) Bundle() *auth.Bundle { return n.bundle.Load() }
func (n *Node) committed() {
	if f := n.onCommit.Load(); f != nil && *f != nil {
		(*f)()
	}
}

// Heads returns the head of every origin held.
func (n *Node) Heads(ctx context.Context) ([]schema.Head, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([]schema.Head, 0, len(n.logs))
	for origin := range n.logs {
		out = append(out, n.headLocked(origin))
	}
	return out, nil
}

func (n *Node) headLocked(origin string) schema.Head {
	log := n.logs[origin]
	if len(log) == 0 {
		return schema.Head{Origin: origin}
	}
	last := log[len(log)-1]
	return schema.Head{Origin: origin, Epoch: last.Epoch, Seq: last.Seq, Hash: last.Hash()}
}

// Head returns origin's head.
func (n *Node) Head(origin string) schema.Head {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.headLocked(origin)
}

// Len returns the number of entries of origin held.
func (n *Node) Len(origin string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.logs[origin])
}

// Log returns a copy of origin's log.
func (n *Node) Log(origin string) []*schema.Entry {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*schema.Entry(nil), n.logs[origin]...)
}

// ReadRangeRaw is ReadRange with each entry's payload zero but for Origin and
// Seq, as the real store returns it, so that a serving path that reads more
// fails in these tests.
func (n *Node) ReadRangeRaw(ctx context.Context, origin string, fromSeq uint64, limit int) ([]*schema.Entry, error) {
	es, err := n.ReadRange(ctx, origin, fromSeq, limit)
	for i, e := range es {
		es[i] = &schema.Entry{EntryPayload: schema.EntryPayload{Origin: e.Origin, Seq: e.Seq}, Raw: e.Raw, Sig: e.Sig}
	}
	return es, err
}

// ReadRange returns up to limit entries of origin from fromSeq on.
func (n *Node) ReadRange(ctx context.Context, origin string, fromSeq uint64, limit int) ([]*schema.Entry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if fromSeq == 0 || limit < 0 {
		return nil, fmt.Errorf("fake node: read range from %d limit %d", fromSeq, limit)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	log := n.logs[origin]
	if fromSeq > uint64(len(log)) {
		return nil, nil
	}
	end := min(uint64(len(log)), fromSeq-1+uint64(limit))
	return append([]*schema.Entry(nil), log[fromSeq-1:end]...), nil
}

// ApplyEntries appends entries of a remote origin, skipping held ones with the
// same hash; a held seq with another hash is ErrFork. It checks seq, epoch and
// prev_hash links (signatures are the exchange's job).
func (n *Node) ApplyEntries(ctx context.Context, origin string, entries []*schema.Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if !n.CanApply() {
		return ErrNotLeader
	}
	if origin == n.centre && !n.Recovering() {
		return ErrOwnOrigin
	}
	if h := n.ApplyHook; h != nil {
		if err := h(origin, entries); err != nil {
			return err
		}
	}
	n.applies.Add(1)
	if err := n.append(origin, entries); err != nil {
		return err
	}
	n.committed()
	return nil
}

// Append adds entries (of any origin: the node's own as its author, or others to
// preload a log) with the same checks as ApplyEntries, then notifies.
func (n *Node) Append(entries ...*schema.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	if err := n.append(entries[0].Origin, entries); err != nil {
		return err
	}
	n.committed()
	return nil
}

func (n *Node) append(origin string, entries []*schema.Entry) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	log := n.logs[origin]
	for _, e := range entries {
		if e.Origin != origin {
			return fmt.Errorf("fake node: entry of %s in a batch of %s", e.Origin, origin)
		}
		if e.Seq >= 1 && e.Seq <= uint64(len(log)) {
			if log[e.Seq-1].Hash() != e.Hash() {
				return fmt.Errorf("%w: %s/%d", ErrFork, origin, e.Seq)
			}
			continue
		}
		if e.Seq != uint64(len(log))+1 {
			return fmt.Errorf("%w: %s/%d after head %d", ErrGap, origin, e.Seq, len(log))
		}
		prev := schema.ZeroHash
		if len(log) > 0 {
			last := log[len(log)-1]
			if e.Epoch != last.Epoch {
				return fmt.Errorf("%w: %s/%d epoch %q after %q", ErrGap, origin, e.Seq, e.Epoch, last.Epoch)
			}
			prev = last.Hash()
		}
		if e.PrevHash != prev {
			return fmt.Errorf("%w: %s/%d prev_hash does not match", ErrGap, origin, e.Seq)
		}
		log = append(log, e)
	}
	n.logs[origin] = log
	return nil
}

// Author writes an origin's log: each Next builds, links and signs one entry.
// It is not safe for concurrent use.
type Author struct {
	Origin string
	Epoch  string
	Key    *auth.KeyPair
	// Now stamps signed_at and the record times; nil means time.Now.
	Now func() time.Time
	// BodyBytes pads record bodies to about this size (default ~300 bytes).
	BodyBytes int

	seq  uint64
	prev schema.Hash
}

// NewAuthor returns an author of origin's log, epoch "e1", signing with key.
func NewAuthor(origin string, key *auth.KeyPair) *Author {
	return &Author{Origin: origin, Epoch: "e1", Key: key}
}

// Head is the head after the last entry made.
func (a *Author) Head() schema.Head {
	return schema.Head{Origin: a.Origin, Epoch: a.Epoch, Seq: a.seq, Hash: a.prev}
}

var titles = []string{
	"高镍三元正极材料连续化制备技术", "风电齿轮箱轴承寿命预测", "工业机器人高精度减速器",
	"细胞治疗药物冻存工艺", "氢燃料电池双极板涂层", "航空发动机叶片增材修复", "信创数据库迁移工具",
}

var industries = []string{"new-materials", "high-end-equipment", "intelligent-tech", "biomedicine", "new-energy", "aerospace"}

// Next makes the next entry of the log: a supply record, signed.
func (a *Author) Next() (*schema.Entry, error) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	at := now().UTC().Truncate(time.Millisecond)
	seq := a.seq + 1
	pad := a.BodyBytes - 300
	body := map[string]any{
		"title":          fmt.Sprintf("%s（%d）", titles[seq%uint64(len(titles))], seq),
		"summary":        "面向京津冀产业链的科技成果，可许可或联合开发。" + strings.Repeat("成", max(pad, 0)/3),
		"industry":       industries[seq%uint64(len(industries))],
		"keywords":       []string{"京津冀", "成果转化"},
		"trl":            1 + seq%9,
		"transfer_modes": []string{"license", "joint-development"},
		"owner_org":      "天津大学",
		"disruptive":     seq%7 == 0,
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	rec := &schema.Record{
		ID: fmt.Sprintf("%s:item-%08d", a.Origin, seq), Catalogue: schema.CatalogueSupply, Origin: a.Origin,
		Version: 1, Visibility: schema.VisibilityFederation, Schema: schema.CurrentSchema,
		CreatedAt: at, UpdatedAt: at, Broker: a.Origin, Body: raw,
	}
	e, err := a.Sign(schema.EntryPayload{Origin: a.Origin, Epoch: a.Epoch, Seq: seq, PrevHash: a.prev, SignedAt: at, Record: rec})
	if err != nil {
		return nil, err
	}
	a.seq, a.prev = seq, e.Hash()
	return e, nil
}

// NextN makes n entries.
func (a *Author) NextN(n int) ([]*schema.Entry, error) {
	out := make([]*schema.Entry, 0, n)
	for range n {
		e, err := a.Next()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// Sign builds and signs an entry from p as given (KeyID set to the author's key),
// without advancing the author: for crafting forks and other bad entries.
func (a *Author) Sign(p schema.EntryPayload) (*schema.Entry, error) {
	p.KeyID = a.Key.ID
	e, err := schema.NewEntry(p)
	if err != nil {
		return nil, err
	}
	if err := auth.SignEntry(a.Key, e); err != nil {
		return nil, err
	}
	return e, nil
}

// Member is one centre of a test federation.
type Member struct {
	ID        string
	RecordKey *auth.KeyPair
	// Identities are the libp2p keys of the member's hosts, one per replica.
	Identities []crypto.PrivKey
	PeerIDs    []peer.ID
}

// Federation is a test federation: members with keys and identities, and the
// trust bundle listing them.
type Federation struct {
	ID      string
	Root    *auth.KeyPair
	Members map[string]*Member
	Bundle  *auth.Bundle
}

// NewFederation creates a federation whose members have the given ids, each
// with one libp2p identity, and its bundle (version 1, valid from an hour ago
// for a year). Peer addresses are left empty: tests connect explicitly.
func NewFederation(ids ...string) (*Federation, error) {
	f := &Federation{ID: "jjj-test", Members: make(map[string]*Member)}
	root, err := auth.GenerateKey("root")
	if err != nil {
		return nil, err
	}
	f.Root = root
	for _, id := range ids {
		if _, err := f.AddMember(id, 1); err != nil {
			return nil, err
		}
	}
	if err := f.Rebuild(); err != nil {
		return nil, err
	}
	return f, nil
}

// AddMember adds a member with replicas libp2p identities (call Rebuild after).
func (f *Federation) AddMember(id string, replicas int) (*Member, error) {
	k, err := auth.GenerateKey(id + "-rec")
	if err != nil {
		return nil, err
	}
	m := &Member{ID: id, RecordKey: k}
	for range replicas {
		if _, err := m.AddIdentity(); err != nil {
			return nil, err
		}
	}
	f.Members[id] = m
	return m, nil
}

// AddIdentity gives m one more libp2p identity (call Federation.Rebuild after).
func (m *Member) AddIdentity() (crypto.PrivKey, error) {
	sk, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, err
	}
	pid, err := peer.IDFromPrivateKey(sk)
	if err != nil {
		return nil, err
	}
	m.Identities = append(m.Identities, sk)
	m.PeerIDs = append(m.PeerIDs, pid)
	return sk, nil
}

// Rebuild makes a new bundle (one version up) from the members.
func (f *Federation) Rebuild() error {
	epoch := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	version := uint64(1)
	if f.Bundle != nil {
		version = f.Bundle.Version + 1
	}
	b := &auth.Bundle{
		Federation: f.ID, Version: version, IssuedAt: epoch, ExpiresAt: epoch.Add(365 * 24 * time.Hour),
		Signers: []auth.Key{f.Root.BundleKey(epoch)}, Threshold: 1,
	}
	for _, id := range slices.Sorted(maps.Keys(f.Members)) {
		m := f.Members[id]
		bm := auth.Member{ID: id, Name: id, NameZH: id, RecordKeys: []auth.Key{m.RecordKey.BundleKey(epoch)}}
		for _, pid := range m.PeerIDs {
			bm.Peers = append(bm.Peers, auth.Peer{ID: pid.String()})
		}
		b.Members = append(b.Members, bm)
	}
	if err := b.Validate(); err != nil {
		return err
	}
	f.Bundle = b
	return nil
}

// Author returns a new author of member id's log.
func (f *Federation) Author(id string) *Author { return NewAuthor(id, f.Members[id].RecordKey) }

// Identity returns member id's first libp2p identity.
func (f *Federation) Identity(id string) crypto.PrivKey { return f.Members[id].Identities[0] }

// Digest is a short fingerprint of a log, for comparing logs in test failures.
func Digest(log []*schema.Entry) string {
	h := sha256.New()
	for _, e := range log {
		x := e.Hash()
		h.Write(x[:])
	}
	return fmt.Sprintf("%d:%x", len(log), h.Sum(nil)[:6])
}
