package store

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"liandong/auth"
	"liandong/schema"
)

type keySigner struct{ k *auth.KeyPair }

func (s keySigner) KeyID() string              { return s.k.ID }
func (s keySigner) Sign(e *schema.Entry) error { return auth.SignEntry(s.k, e) }
func (s keySigner) SignBytes(kid string, msg []byte) ([]byte, error) {
	if kid != "" && kid != s.k.ID {
		return nil, fmt.Errorf("no key %s", kid)
	}
	return ed25519.Sign(s.k.Private, msg), nil
}

// keyring resolves record keys of test centres.
type keyring map[string]*auth.KeyPair

func (r keyring) RecordKey(origin, kid string, _ time.Time) (ed25519.PublicKey, error) {
	k, ok := r[origin]
	if !ok || k.ID != kid {
		return nil, fmt.Errorf("unknown key %s/%s", origin, kid)
	}
	return k.Public, nil
}

func mustKey(t testing.TB, centre string) *auth.KeyPair {
	t.Helper()
	k, err := auth.GenerateKey(centre + "-rec")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustOpen(t testing.TB, centre string, k *auth.KeyPair) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{Centre: centre, Signer: keySigner{k}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var t0 = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

func supply(title, visibility string) *schema.Record {
	body, _ := json.Marshal(map[string]any{
		"title": title, "summary": "连续化制备工艺", "industry": "new-materials",
		"keywords": []string{"正极材料"}, "trl": 6, "owner_org": "天津大学",
		"contact": map[string]string{"person": "王老师", "phone": "022-23456789"},
	})
	return &schema.Record{Catalogue: schema.CatalogueSupply, Visibility: visibility, Schema: 1, Body: body}
}

// applier feeds commands to a store with rising raft indexes, as raft would.
type applier struct {
	t     testing.TB
	s     *Store
	index uint64
}

func (a *applier) apply(cmds ...*Command) []Result {
	a.t.Helper()
	logs := make([]Log, len(cmds))
	for i, c := range cmds {
		data, err := EncodeCommand(c)
		if err != nil {
			a.t.Fatal(err)
		}
		a.index++
		logs[i] = Log{Index: a.index, Term: 1, Data: data}
	}
	res, err := a.s.Apply(logs)
	if err != nil {
		a.t.Fatal(err)
	}
	return res
}

func (a *applier) write(op Op, id string, rec *schema.Record, ifMatch uint64) Result {
	a.t.Helper()
	return a.apply(&Command{Write: &WriteCommand{Op: op, ID: id, IfMatch: ifMatch, Record: rec, At: t0.Add(time.Duration(a.index) * time.Second), Epoch: "E1"}})[0]
}

func TestWriteVersionsAndConflicts(t *testing.T) {
	k := mustKey(t, "tianjin")
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}

	r := a.write(OpCreate, "tianjin:a1", supply("v1", schema.VisibilityFederation), 0)
	if r.Err != nil || r.Record.Version != 1 || r.Entry == nil || r.Entry.Seq != 1 {
		t.Fatalf("create: %+v", r)
	}
	if r := a.write(OpCreate, "tianjin:a1", supply("again", schema.VisibilityFederation), 0); !errors.Is(r.Err, ErrExists) {
		t.Fatalf("second create: %v", r.Err)
	}
	if r := a.write(OpPut, "tianjin:a1", supply("v2", schema.VisibilityFederation), 5); !errors.Is(r.Err, ErrVersionConflict) {
		t.Fatalf("stale If-Match: %v", r.Err)
	}
	got, err := a.s.Get("tianjin:a1")
	if err != nil || got.Version != 1 || !bytes.Contains(got.Body, []byte(`"v1"`)) {
		t.Fatalf("stale write changed the record: %+v %v", got, err)
	}
	r = a.write(OpPut, "tianjin:a1", supply("v2", schema.VisibilityFederation), 1)
	if r.Err != nil || r.Record.Version != 2 || !r.Record.CreatedAt.Equal(got.CreatedAt) || r.Entry.Seq != 2 {
		t.Fatalf("update: %+v", r)
	}
	if r := a.write(OpPut, "hebei:x", supply("x", schema.VisibilityFederation), 0); !errors.Is(r.Err, ErrNotOrigin) {
		t.Fatalf("foreign id: %v", r.Err)
	}
	r = a.write(OpDelete, "tianjin:a1", nil, 0)
	if r.Err != nil || !r.Record.Deleted || r.Record.Version != 3 || r.Entry == nil || !r.Entry.Record.Deleted {
		t.Fatalf("delete: %+v", r)
	}
	if _, err := a.s.Get("tianjin:a1"); !errors.Is(err, ErrDeleted) {
		t.Fatalf("get deleted: %v", err)
	}
	if r := a.write(OpDelete, "tianjin:a1", nil, 0); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("delete twice: %v", r.Err)
	}
	if r := a.write(OpDelete, "tianjin:nope", nil, 0); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("delete missing: %v", r.Err)
	}
}

// TestPutIfAbsent: a put with IfAbsent creates a record, revives a tombstone,
// and never replaces a live record, whatever the proposer read before.
func TestPutIfAbsent(t *testing.T) {
	k := mustKey(t, "tianjin")
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}
	putIfAbsent := func(id, title string) Result {
		t.Helper()
		return a.apply(&Command{Write: &WriteCommand{Op: OpPut, ID: id, IfAbsent: true, Record: supply(title, schema.VisibilityFederation),
			At: t0.Add(time.Duration(a.index) * time.Second), Epoch: "E1"}})[0]
	}
	if r := putIfAbsent("tianjin:n", "v1"); r.Err != nil || r.Record.Version != 1 || r.Entry == nil {
		t.Fatalf("create: %+v", r)
	}
	r := putIfAbsent("tianjin:n", "v2")
	if !errors.Is(r.Err, ErrExists) || r.Entry != nil || !strings.Contains(r.Err.Error(), "version 1") {
		t.Fatalf("over a live record: %+v", r)
	}
	if got, err := a.s.Get("tianjin:n"); err != nil || got.Version != 1 || !bytes.Contains(got.Body, []byte(`"v1"`)) {
		t.Fatalf("the refused write changed the record: %+v %v", got, err)
	}
	if r := a.write(OpDelete, "tianjin:n", nil, 0); r.Err != nil || r.Record.Version != 2 {
		t.Fatalf("delete: %+v", r)
	}
	r = putIfAbsent("tianjin:n", "v3")
	if r.Err != nil || r.Record.Version != 3 || r.Record.Deleted || r.Entry == nil || r.Entry.Record.Deleted {
		t.Fatalf("over a tombstone: %+v", r)
	}
	if r := putIfAbsent("tianjin:n", "v4"); !errors.Is(r.Err, ErrExists) {
		t.Fatalf("over the revived record: %+v", r)
	}
}

// TestPutKeepCatalogue: a put with KeepCatalogue does not write over a
// record live in another catalogue, whatever the proposer read before (it
// may have read the record before it was deleted and created again in the
// other catalogue); it writes over one of its own catalogue and over a
// tombstone of any. Without the member (an older build's proposal) the put
// writes as it always did.
func TestPutKeepCatalogue(t *testing.T) {
	k := mustKey(t, "tianjin")
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}
	put := func(id string, rec *schema.Record, keep bool) Result {
		t.Helper()
		return a.apply(&Command{Write: &WriteCommand{Op: OpPut, ID: id, KeepCatalogue: keep, Record: rec,
			At: t0.Add(time.Duration(a.index) * time.Second), Epoch: "E1"}})[0]
	}
	need := expert(schema.VisibilityFederation) // any catalogue but supply
	if r := put("tianjin:k", supply("v1", schema.VisibilityFederation), true); r.Err != nil || r.Record.Version != 1 {
		t.Fatalf("create: %+v", r)
	}
	if r := put("tianjin:k", supply("v2", schema.VisibilityFederation), true); r.Err != nil || r.Record.Version != 2 {
		t.Fatalf("same catalogue: %+v", r)
	}
	r := put("tianjin:k", need, true)
	if !errors.Is(r.Err, ErrCatalogueMove) || r.Entry != nil || r.Record != nil {
		t.Fatalf("into another catalogue: %+v, want ErrCatalogueMove", r)
	}
	if got, err := a.s.Get("tianjin:k"); err != nil || got.Version != 2 || got.Catalogue != schema.CatalogueSupply {
		t.Fatalf("the refused write changed the record: %+v %v", got, err)
	}
	if r := a.write(OpDelete, "tianjin:k", nil, 0); r.Err != nil || r.Record.Version != 3 {
		t.Fatalf("delete: %+v", r)
	}
	if r := put("tianjin:k", need, true); r.Err != nil || r.Record.Version != 4 || r.Record.Catalogue != need.Catalogue {
		t.Fatalf("over a supply tombstone: %+v", r)
	}
	if r := put("tianjin:k", supply("v5", schema.VisibilityFederation), false); r.Err != nil || r.Record.Catalogue != schema.CatalogueSupply {
		t.Fatalf("without KeepCatalogue, as an older build proposes: %+v", r)
	}
}

func TestLogCarriesNoPersonalDataAndNoPrivateRecords(t *testing.T) {
	k := mustKey(t, "tianjin")
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}

	if r := a.write(OpPut, "tianjin:p", supply("内部", schema.VisibilityPrivate), 0); r.Err != nil || r.Entry != nil {
		t.Fatalf("private write: %+v", r)
	}
	r := a.write(OpPut, "tianjin:f", supply("共享", schema.VisibilityFederation), 0)
	if r.Err != nil || r.Entry == nil {
		t.Fatalf("shared write: %+v", r)
	}
	if bytes.Contains(r.Entry.Raw, []byte("王老师")) || bytes.Contains(r.Entry.Raw, []byte("contact")) {
		t.Fatalf("entry carries personal data: %s", r.Entry.Raw)
	}
	if r.Entry.Record.Broker != "tianjin" {
		t.Fatalf("broker = %q", r.Entry.Record.Broker)
	}
	stored, _ := a.s.Get("tianjin:f")
	if !bytes.Contains(stored.Body, []byte("王老师")) {
		t.Fatal("origin lost the contact block")
	}
	// Turning it private leaves a withdrawal in the log.
	r = a.write(OpPut, "tianjin:f", supply("共享", schema.VisibilityPrivate), 0)
	if r.Entry == nil || !r.Entry.Record.Deleted || r.Entry.Record.Visibility != schema.VisibilityPrivate || string(r.Entry.Record.Body) != "{}" {
		t.Fatalf("withdrawal entry: %+v", r.Entry)
	}
	entries, err := a.s.ReadRange("tianjin", 1, 100)
	if err != nil || len(entries) != 2 {
		t.Fatalf("log: %d entries, %v", len(entries), err)
	}
	for _, e := range entries {
		if e.Record.ID == "tianjin:p" {
			t.Fatal("private record in the log")
		}
	}
	if err := auth.VerifyChain(keyring{"tianjin": k}, schema.Head{Origin: "tianjin"}, entries, auth.VerifyEverySignature); err != nil {
		t.Fatalf("own log does not verify: %v", err)
	}
}

// ownLog writes n shared records at a fresh store of origin and returns its entries.
func ownLog(t *testing.T, origin string, k *auth.KeyPair, n int) []*schema.Entry {
	return ownLogVariant(t, origin, k, n, "")
}

// ownLogVariant is ownLog with variant appended to titles from the second entry
// on: the same origin and key writing a different history (a fork).
func ownLogVariant(t *testing.T, origin string, k *auth.KeyPair, n int, variant string) []*schema.Entry {
	t.Helper()
	a := &applier{t: t, s: mustOpen(t, origin, k)}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("%s:r%d", origin, i%3)
		title := fmt.Sprintf("第%d版", i)
		if i > 0 {
			title += variant
		}
		if r := a.write(OpPut, id, supply(title, schema.VisibilityFederation), 0); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	entries, err := a.s.ReadRange(origin, 1, n)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func TestApplyRemote(t *testing.T) {
	hk := mustKey(t, "hebei")
	entries := ownLog(t, "hebei", hk, 9)
	a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}

	r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries[:5]}})[0]
	if r.Err != nil || r.Applied != 5 {
		t.Fatalf("first batch: %+v", r)
	}
	// Overlap is skipped, the rest applied.
	r = a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries[3:]}})[0]
	if r.Err != nil || r.Applied != 4 || r.Skipped != 2 {
		t.Fatalf("overlapping batch: %+v", r)
	}
	head, _ := a.s.Head("hebei")
	if head.Seq != 9 || head.Hash != entries[8].Hash() {
		t.Fatalf("head %+v", head)
	}
	// Records hold the highest version: r0 was written at i=0,3,6 → version 3.
	rec, err := a.s.Get("hebei:r0")
	if err != nil || rec.Version != 3 || !bytes.Contains(rec.Body, []byte("第6版")) {
		t.Fatalf("hebei:r0 = %+v, %v", rec, err)
	}

	// A different entry at a held seq is a fork; a gap is refused; neither changes state.
	before, _ := a.s.Digest()
	other := ownLogVariant(t, "hebei", hk, 2, "伪造")
	if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: other}})[0]; !errors.Is(r.Err, ErrFork) {
		t.Fatalf("fork: %+v", r)
	}
	if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: ownLog(t, "hebei", hk, 12)[10:]}})[0]; !errors.Is(r.Err, ErrChainGap) {
		t.Fatalf("gap: %+v", r)
	}
	if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "tianjin", Entries: entries[:1]}})[0]; !errors.Is(r.Err, ErrFork) {
		t.Fatalf("own origin from a peer: %+v", r)
	}
	after, _ := a.s.Digest()
	if before != after {
		t.Fatal("refused batches changed the state")
	}
}

func TestRemoteWithdrawalRemovesRecord(t *testing.T) {
	hk := mustKey(t, "hebei")
	ha := &applier{t: t, s: mustOpen(t, "hebei", hk)}
	ha.write(OpPut, "hebei:w", supply("公开", schema.VisibilityPublic), 0)
	ha.write(OpPut, "hebei:w", supply("公开", schema.VisibilityPrivate), 0)
	entries, _ := ha.s.ReadRange("hebei", 1, 10)

	a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
	a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries[:1]}})
	if _, err := a.s.Get("hebei:w"); err != nil {
		t.Fatal(err)
	}
	a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries[1:]}})
	if _, err := a.s.Get("hebei:w"); !errors.Is(err, ErrDeleted) {
		t.Fatalf("withdrawn record still readable: %v", err)
	}
	items, _, _ := a.s.List(Query{Catalogue: schema.CatalogueSupply})
	if len(items) != 0 {
		t.Fatalf("withdrawn record listed: %d", len(items))
	}
}

func TestReplayIsSkipped(t *testing.T) {
	k := mustKey(t, "tianjin")
	s := mustOpen(t, "tianjin", k)
	data, _ := EncodeCommand(&Command{Write: &WriteCommand{Op: OpCreate, ID: "tianjin:x", Record: supply("x", schema.VisibilityFederation), At: t0, Epoch: "E"}})
	logs := []Log{{Index: 1, Term: 1, Data: data}}
	if res, err := s.Apply(logs); err != nil || res[0].Err != nil {
		t.Fatal(err, res)
	}
	d1, _ := s.Digest()
	res, err := s.Apply(logs) // what raft does after a restart
	if err != nil || !IsAlreadyApplied(res[0].Err) {
		t.Fatalf("replay: %v %+v", err, res)
	}
	d2, _ := s.Digest()
	if d1 != d2 {
		t.Fatal("replay changed the state")
	}
	if idx, term, _ := s.AppliedIndex(); idx != 1 || term != 1 {
		t.Fatalf("applied %d/%d", idx, term)
	}
}

func TestSnapshotRestoreDigest(t *testing.T) {
	k := mustKey(t, "tianjin")
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}
	for i := 0; i < 50; i++ {
		a.write(OpPut, fmt.Sprintf("tianjin:s%d", i%20), supply(fmt.Sprint(i), schema.VisibilityFederation), 0)
	}
	want, _ := a.s.Digest()
	var buf bytes.Buffer
	if err := a.s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	b := mustOpen(t, "tianjin", k)
	if err := b.Restore(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	got, _ := b.Digest()
	if got != want {
		t.Fatal("restored digest differs")
	}
	if idx, _, _ := b.AppliedIndex(); idx != a.index {
		t.Fatalf("restored applied index %d, want %d", idx, a.index)
	}

	// A snapshot the reopen would refuse is refused before it replaces the
	// state file: the state is kept, and the store goes on applying.
	snap := buf.Bytes()
	renamed := append([]byte(nil), snap...)
	for p := 2 * PageSize; p+8 <= len(renamed); p += PageSize {
		renamed[p] ^= 0xff // each page after the meta pages names another id
	}
	for _, tc := range []struct {
		name string
		snap []byte
		want error
	}{
		{"truncated", snap[:len(snap)/2], ErrCorrupt},
		{"pages misnamed", renamed, ErrCorrupt},
		{"another centre's", snapshotOf(t, mustOpen(t, "hebei", mustKey(t, "hebei")), nil), ErrCorrupt},
		{"a newer layout", snapshotOf(t, mustOpen(t, "tianjin", k), func(meta *bbolt.Bucket) error {
			return putU64(meta, keyLayout, layoutVersion+1)
		}), ErrNewerLayout},
	} {
		if err := b.Restore(bytes.NewReader(tc.snap)); !errors.Is(err, tc.want) {
			t.Fatalf("%s snapshot: %v, want %v", tc.name, err, tc.want)
		}
		if got, err := b.Digest(); err != nil || got != want {
			t.Fatalf("refused %s snapshot changed the state (%v)", tc.name, err)
		}
	}
	if r := (&applier{t: t, s: b, index: a.index}).write(OpPut, "tianjin:after", supply("after", schema.VisibilityFederation), 0); r.Err != nil {
		t.Fatalf("write after refused restores: %v", r.Err)
	}
}

// snapshotOf returns a snapshot of s, its meta bucket first changed by edit
// (when set) behind the store's back.
func snapshotOf(t *testing.T, s *Store, edit func(meta *bbolt.Bucket) error) []byte {
	t.Helper()
	if edit != nil {
		s.mu.RLock()
		err := s.db.Update(func(tx *bbolt.Tx) error { return edit(tx.Bucket(bucketMeta)) })
		s.mu.RUnlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := s.WriteSnapshot(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestOpenRefusesOtherCentresFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{Centre: "tianjin"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(path, Options{Centre: "hebei"}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("opened tianjin's file as hebei: %v", err)
	}
}

func TestListPagingUnderConcurrentWrites(t *testing.T) {
	k := mustKey(t, "tianjin")
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}
	for i := 0; i < 300; i++ {
		a.write(OpPut, fmt.Sprintf("tianjin:k%04d", i), supply(fmt.Sprint(i), schema.VisibilityFederation), 0)
	}
	seen := map[string]int{}
	cursor := ""
	for page := 0; page < 100; page++ {
		items, next, err := a.s.List(Query{Catalogue: schema.CatalogueSupply, After: cursor, Limit: 17})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range items {
			seen[r.ID]++
		}
		// Writes between pages: new records on both sides of the cursor, updates of
		// records already seen and not yet seen.
		a.write(OpPut, fmt.Sprintf("tianjin:k%04d", page*7%300), supply("upd", schema.VisibilityFederation), 0)
		a.write(OpPut, fmt.Sprintf("tianjin:a%04d", page), supply("new", schema.VisibilityFederation), 0)
		a.write(OpPut, fmt.Sprintf("tianjin:z%04d", page), supply("new", schema.VisibilityFederation), 0)
		if next == "" {
			break
		}
		cursor = next
	}
	for i := 0; i < 300; i++ {
		if n := seen[fmt.Sprintf("tianjin:k%04d", i)]; n != 1 {
			t.Fatalf("tianjin:k%04d seen %d times", i, n)
		}
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s seen %d times", id, n)
		}
	}
}

func TestListFiltersAndChanges(t *testing.T) {
	k := mustKey(t, "tianjin")
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}
	need := func(status string) *schema.Record {
		body, _ := json.Marshal(map[string]any{"title": "需求", "description": "d", "industry": "aerospace", "enterprise": "某公司", "status": status})
		return &schema.Record{Catalogue: schema.CatalogueNeed, Visibility: schema.VisibilityFederation, Body: body}
	}
	a.write(OpPut, "tianjin:n1", need("open"), 0)
	a.write(OpPut, "tianjin:n2", need("closed"), 0)
	a.write(OpPut, "tianjin:s1", supply("s", schema.VisibilityFederation), 0)
	a.write(OpPut, "tianjin:n1", need("matched"), 0)

	for _, tc := range []struct {
		q    Query
		want []string
	}{
		{Query{Catalogue: "need"}, []string{"tianjin:n1", "tianjin:n2"}},
		{Query{Status: "open"}, nil},
		{Query{Status: "matched"}, []string{"tianjin:n1"}},
		{Query{Industry: "new-materials"}, []string{"tianjin:s1"}},
		{Query{Catalogue: "need", Industry: "aerospace", Status: "closed"}, []string{"tianjin:n2"}},
		{Query{Origin: "hebei"}, nil},
		{Query{}, []string{"tianjin:n1", "tianjin:n2", "tianjin:s1"}},
	} {
		items, _, err := a.s.List(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range items {
			got = append(got, r.ID)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%+v: got %v want %v", tc.q, got, tc.want)
		}
	}

	changes, last, err := a.s.Changes(0, 10, nil)
	if err != nil || len(changes) != 4 || last != 4 {
		t.Fatalf("changes: %d last %d %v", len(changes), last, err)
	}
	if changes[3].Record.ID != "tianjin:n1" || changes[3].Record.Version != 2 || changes[0].Record.Version != 1 {
		t.Fatalf("feed order: %+v", changes)
	}
	changes, last, _ = a.s.Changes(2, 10, func(c *Change) bool { return c.Record.Catalogue == "need" })
	if len(changes) != 1 || changes[0].Position != 4 || last != 4 {
		t.Fatalf("filtered changes: %+v last %d", changes, last)
	}
	counts, _ := a.s.Counts()
	total := int64(0)
	for _, c := range counts {
		total += c.N
	}
	if total != 3 {
		t.Fatalf("counts %+v", counts)
	}
}

// TestRemoteBatchRefusedPartWayKeepsItsPrefix: entries before a gap are appended
// and the head says so; the rest is refused.
func TestRemoteBatchRefusedPartWayKeepsItsPrefix(t *testing.T) {
	entries := ownLog(t, "hebei", mustKey(t, "hebei"), 6)
	a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
	batch := append(append([]*schema.Entry(nil), entries[:3]...), entries[5])
	r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: batch}})[0]
	if !errors.Is(r.Err, ErrChainGap) || r.Applied != 3 {
		t.Fatalf("result %+v", r)
	}
	head, _ := a.s.Head("hebei")
	if head.Seq != 3 || head.Hash != entries[2].Hash() {
		t.Fatalf("head %+v, want seq 3", head)
	}
	if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries[3:]}})[0]; r.Err != nil || r.Applied != 3 {
		t.Fatalf("the rest: %+v", r)
	}
}

// TestReadRangeRaw: the undecoded range holds the stored bytes of the same
// entries as ReadRange, with origin and seq set, so a peer decoding them gets
// the same entries; limits and the start are honoured as ReadRange's.
func TestReadRangeRaw(t *testing.T) {
	k := mustKey(t, "tianjin")
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}
	for i := range 7 {
		if r := a.write(OpPut, fmt.Sprintf("tianjin:r%d", i), supply(fmt.Sprintf("第%d项", i), schema.VisibilityFederation), 0); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	for _, c := range []struct {
		from  uint64
		limit int
		want  int
	}{{1, 100, 7}, {0, 3, 3}, {3, 2, 2}, {6, 10, 2}, {8, 10, 0}} {
		decoded, err := a.s.ReadRange("tianjin", c.from, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := a.s.ReadRangeRaw("tianjin", c.from, c.limit)
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) != c.want || len(decoded) != c.want {
			t.Fatalf("from %d limit %d: %d raw, %d decoded, want %d", c.from, c.limit, len(raw), len(decoded), c.want)
		}
		for i, e := range raw {
			d := decoded[i]
			if e.Origin != "tianjin" || e.Seq != d.Seq || !bytes.Equal(e.Raw, d.Raw) || !bytes.Equal(e.Sig, d.Sig) {
				t.Fatalf("from %d, entry %d: raw %s/%d differs from decoded %s/%d", c.from, i, e.Origin, e.Seq, d.Origin, d.Seq)
			}
			var p schema.EntryPayload
			if err := schema.UnmarshalPayload(e.Raw, &p); err != nil || p.Seq != e.Seq || p.Record.ID != d.Record.ID {
				t.Fatalf("entry %d's raw bytes decode to seq %d (%v)", e.Seq, p.Seq, err)
			}
		}
	}
}

// signedRemote signs one entry of origin's log at seq 1 carrying rec, as a
// member's node would, without the validation local writes get.
func signedRemote(t *testing.T, k *auth.KeyPair, rec *schema.Record) *schema.Entry {
	t.Helper()
	e, err := schema.NewEntry(schema.EntryPayload{Origin: rec.Origin, Epoch: "E1", Seq: 1, KeyID: k.ID, SignedAt: t0, Record: rec})
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.SignEntry(k, e); err != nil {
		t.Fatal(err)
	}
	if err := auth.VerifyEntry(keyring{rec.Origin: k}, e); err != nil {
		t.Fatalf("the receiver's checks refuse it: %v", err)
	}
	return e
}

// Remote records are not validated (a newer build's schema is kept as it is),
// so their index values can be of any length. One longer than bbolt's key
// limit used to fail the whole raft batch on every replica, at every replay:
// it is applied and readable now, just not indexed under that value.
func TestRemoteRecordWithHugeIndexValues(t *testing.T) {
	hk := mustKey(t, "hebei")
	huge := strings.Repeat("新", 12000) // 36 KB, over bbolt.MaxKeySize
	for _, tc := range []struct {
		name      string
		catalogue string
		body      map[string]any
	}{
		{"industry", schema.CatalogueSupply, map[string]any{"title": "t", "industry": huge}},
		{"fields and status", schema.CatalogueExpert, map[string]any{"name": "n", "fields": []string{"new-materials", huge}, "status": huge}},
		{"catalogue", huge, map[string]any{"title": "t", "industry": "new-materials"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body, err := json.Marshal(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			body, err = schema.Canonical(body)
			if err != nil {
				t.Fatal(err)
			}
			rec := &schema.Record{ID: "hebei:big", Catalogue: tc.catalogue, Origin: "hebei", Version: 1,
				Visibility: schema.VisibilityFederation, Schema: 2, CreatedAt: t0, UpdatedAt: t0, Body: body}
			a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
			if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: []*schema.Entry{signedRemote(t, hk, rec)}}})[0]; r.Err != nil || r.Applied != 1 {
				t.Fatalf("apply: %+v", r)
			}
			got, err := a.s.Get("hebei:big")
			if err != nil || got.Catalogue != tc.catalogue || !bytes.Equal(got.Body, body) {
				t.Fatalf("get: %v %v", got, err)
			}
			page, _, err := a.s.List(Query{Origin: "hebei", Limit: 10})
			if err != nil || len(page) != 1 {
				t.Fatalf("list by origin: %d records, %v", len(page), err)
			}
			if page, _, err := a.s.List(Query{Industry: huge, Limit: 10}); err != nil || len(page) != 0 {
				t.Fatalf("list by the huge value: %d records, %v", len(page), err)
			}
			// The replica goes on applying.
			if r := a.write(OpPut, "tianjin:after", supply("after", schema.VisibilityFederation), 0); r.Err != nil {
				t.Fatal(r.Err)
			}
		})
	}
}

// A committed command this build cannot decode (a newer leader's command kind,
// a damaged log entry) fails the batch: skipping it would leave this replica
// without a change the others made, its applied index moved past it.
func TestUndecodableCommandFailsTheBatch(t *testing.T) {
	a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
	a.write(OpPut, "tianjin:a", supply("a", schema.VisibilityFederation), 0)
	before, _ := a.s.Digest()
	good, err := EncodeCommand(&Command{Write: &WriteCommand{Op: OpPut, ID: "tianjin:b", Record: supply("b", schema.VisibilityFederation), At: t0, Epoch: "E1"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.s.Apply([]Log{{Index: 2, Term: 1, Data: good}, {Index: 3, Term: 1, Data: []byte(`X{"from":"a newer build"}`)}})
	if err == nil {
		t.Fatal("a batch with an undecodable command applied")
	}
	if idx, _, _ := a.s.AppliedIndex(); idx != 1 {
		t.Fatalf("applied index %d, want 1 (the failed batch rolled back)", idx)
	}
	if after, _ := a.s.Digest(); after != before {
		t.Fatal("the failed batch changed the state")
	}
}

// multiSigner holds several record keys, the first the default, as a replica
// with rotation keys does.
type multiSigner []*auth.KeyPair

func (s multiSigner) KeyID() string { return s[0].ID }
func (s multiSigner) Sign(e *schema.Entry) error {
	for _, k := range s {
		if k.ID == e.KeyID {
			return auth.SignEntry(k, e)
		}
	}
	return fmt.Errorf("no key %s", e.KeyID)
}
func (s multiSigner) SignBytes(kid string, msg []byte) ([]byte, error) {
	for _, k := range s {
		if kid == "" || k.ID == kid {
			return ed25519.Sign(k.Private, msg), nil
		}
	}
	return nil, fmt.Errorf("no key %s", kid)
}

// During a key rotation two replicas may hold the same keys with different
// defaults. Audit events are signed with the key the command names, as writes
// are, so the replicated audit chain is the same on both.
func TestAuditSignedWithTheCommandsKey(t *testing.T) {
	oldK, newK := mustKey(t, "tianjin"), mustKey(t, "tianjin")
	open := func(s multiSigner) *applier {
		st, err := Open(filepath.Join(t.TempDir(), "state.db"), Options{Centre: "tianjin", Signer: s})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return &applier{t: t, s: st}
	}
	a, b := open(multiSigner{oldK, newK}), open(multiSigner{newK, oldK})
	cmds := []*Command{
		{Audit: &AuditCommand{At: t0, Actor: "tianjin/admin", Action: "token.issue", KeyID: newK.ID}},
		{Audit: &AuditCommand{At: t0, Actor: "tianjin/admin", Action: "replica.add", KeyID: oldK.ID}},
	}
	ra, rb := a.apply(cmds...), b.apply(cmds...)
	for i, want := range []string{newK.ID, oldK.ID} {
		if ra[i].Audit.KeyID != want || rb[i].Audit.KeyID != want || !bytes.Equal(ra[i].Audit.Sig, rb[i].Audit.Sig) {
			t.Fatalf("event %d: key %s and %s, want %s on both, with the same signature", i, ra[i].Audit.KeyID, rb[i].Audit.KeyID, want)
		}
		msg, _ := ra[i].Audit.SignedBytes()
		if pub := map[string]ed25519.PublicKey{oldK.ID: oldK.Public, newK.ID: newK.Public}[want]; !ed25519.Verify(pub, msg, ra[i].Audit.Sig) {
			t.Fatalf("event %d does not verify with %s", i, want)
		}
	}
	da, _ := a.s.Digest()
	db, _ := b.s.Digest()
	if da != db {
		t.Fatal("the replicas' states differ after the same audit commands")
	}
	// A command of an older build names no key: the default signs it.
	if r := a.apply(&Command{Audit: &AuditCommand{At: t0, Actor: "tianjin/admin", Action: "old"}})[0]; r.Audit.KeyID != oldK.ID {
		t.Fatalf("keyless audit command signed with %s, want the default %s", r.Audit.KeyID, oldK.ID)
	}
	// A key this replica does not hold stops it, as for a write.
	data, _ := EncodeCommand(&Command{Audit: &AuditCommand{At: t0, Actor: "a", Action: "x", KeyID: "tianjin-rec-unknown"}})
	if _, err := a.s.Apply([]Log{{Index: a.index + 1, Term: 1, Data: data}}); err == nil {
		t.Fatal("audit event signed with a key the replica does not hold")
	}
}

// A power cut while bbolt writes a meta page leaves it failing its checksum,
// and bbolt opens the file from the other one. The store's size check used to
// read the torn page's high-water mark as if valid and refuse the file as
// truncated: with the state file synced (StateSync) the replica would not
// start. Both meta pages torn is still refused.
func TestTornMetaPage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{Centre: "tianjin", Signer: keySigner{mustKey(t, "tianjin")}})
	if err != nil {
		t.Fatal(err)
	}
	a := &applier{t: t, s: s}
	for i := 0; i < 5; i++ {
		a.write(OpPut, fmt.Sprintf("tianjin:m%d", i), supply(fmt.Sprint(i), schema.VisibilityFederation), 0)
	}
	s.Close()
	tear := func(page int64) {
		t.Helper()
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], 1<<40) // a high-water mark far past the end
		if _, err := f.WriteAt(b[:], page*PageSize+56); err != nil {
			t.Fatal(err)
		}
	}
	tear(1)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("bbolt refuses the file: %v", err)
	}
	db.Close()
	s, err = Open(path, Options{Centre: "tianjin"})
	if err != nil {
		t.Fatalf("a file bbolt opens, refused: %v", err)
	}
	// The other meta page may name the commit before the last (raft replays
	// it): the early records are there.
	if _, err := s.Get("tianjin:m0"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	tear(0)
	tear(1) // the open above wrote one of them again
	if _, err := Open(path, Options{Centre: "tianjin"}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("both meta pages torn: %v, want ErrCorrupt", err)
	}
}

// A change that narrows who may read a record carries the visibility before
// it, here and at a receiver of the origin's log, so that feeds can hand a
// tombstone to the readers it leaves behind; a withdrawal (shared to private)
// is marked Withdrawn as before. A feed value of an older build ('W') still
// reads as a withdrawal.
func TestFeedMarksNarrowing(t *testing.T) {
	hk := mustKey(t, "hebei")
	ha := &applier{t: t, s: mustOpen(t, "hebei", hk)}
	steps := []struct {
		vis       string // "" deletes
		was       string
		withdrawn bool
	}{
		{vis: schema.VisibilityPublic},
		{vis: schema.VisibilityFederation, was: schema.VisibilityPublic},
		{vis: schema.VisibilityPublic},
		{vis: schema.VisibilityPrivate, was: schema.VisibilityPublic, withdrawn: true},
		{vis: schema.VisibilityFederation},
		{vis: ""},
	}
	for _, st := range steps {
		op, rec := OpDelete, (*schema.Record)(nil)
		if st.vis != "" {
			op, rec = OpPut, supply("变化", st.vis)
		}
		if r := ha.write(op, "hebei:n", rec, 0); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	check := func(where string, s *Store) {
		t.Helper()
		changes, _, err := s.Changes(0, 100, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(changes) != len(steps) {
			t.Fatalf("%s: %d changes, want %d", where, len(changes), len(steps))
		}
		for i, st := range steps {
			if c := changes[i]; c.Was != st.was || c.Withdrawn != st.withdrawn {
				t.Errorf("%s: change %d (%s, deleted %v): was %q withdrawn %v, want %q %v",
					where, i, c.Record.Visibility, c.Record.Deleted, c.Was, c.Withdrawn, st.was, st.withdrawn)
			}
		}
	}
	check("origin", ha.s)

	// A receiver of the log: the withdrawal arrives as a private tombstone.
	entries, err := ha.s.ReadRange("hebei", 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
	if r := a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries}})[0]; r.Err != nil || r.Applied != len(steps) {
		t.Fatalf("apply: %+v", r)
	}
	check("receiver", a.s)

	// An older build's withdrawal mark.
	a.s.mu.RLock()
	err = a.s.db.Update(func(tx *bbolt.Tx) error {
		js, err := encodeRecord(supply("旧", schema.VisibilityPrivate))
		if err != nil {
			return err
		}
		return tx.Bucket(bucketFeed).Put(u64(1000), append([]byte{feedWithdrawn}, js...))
	})
	a.s.mu.RUnlock()
	if err != nil {
		t.Fatal(err)
	}
	if changes, _, err := a.s.Changes(999, 1, nil); err != nil || len(changes) != 1 || !changes[0].Withdrawn || changes[0].Was != "" {
		t.Fatalf("an older build's withdrawal: %+v, %v", changes, err)
	}
}

// A file of layout 1 is raised to 2 at open: builds of layout 1 cannot read
// the feed's narrowing marks, and must refuse the file rather than fail at the
// first one.
func TestOpenRaisesTheLayout(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{Centre: "tianjin"})
	if err != nil {
		t.Fatal(err)
	}
	layout := func() uint64 {
		var v uint64
		s.view(func(tx *bbolt.Tx) error { v = getU64(tx.Bucket(bucketMeta), keyLayout); return nil })
		return v
	}
	s.mu.RLock()
	err = s.db.Update(func(tx *bbolt.Tx) error { return putU64(tx.Bucket(bucketMeta), keyLayout, 1) })
	s.mu.RUnlock()
	if err != nil || layout() != 1 {
		t.Fatalf("set layout 1: %v", err)
	}
	s.Close()
	if s, err = Open(path, Options{Centre: "tianjin"}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := layout(); got != layoutVersion || layoutVersion != 2 {
		t.Fatalf("layout %d after open, want %d (2)", got, layoutVersion)
	}
}

// Builds before maxIndexValue indexed values up to bbolt's key limit; when a
// record so indexed changes, its old keys go, whatever their length.
func TestLongIndexValuesOfOlderBuildsRemoved(t *testing.T) {
	hk := mustKey(t, "hebei")
	ha := &applier{t: t, s: mustOpen(t, "hebei", hk)}
	long := strings.Repeat("材", 300) // 900 bytes
	for _, title := range []string{"一", "二"} {
		body, _ := json.Marshal(map[string]any{"title": title, "industry": long})
		rec := &schema.Record{Catalogue: schema.CatalogueSupply, Visibility: schema.VisibilityFederation, Schema: 1, Body: body}
		if r := ha.write(OpPut, "hebei:long", rec, 0); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	entries, _ := ha.s.ReadRange("hebei", 1, 10)
	a := &applier{t: t, s: mustOpen(t, "tianjin", mustKey(t, "tianjin"))}
	a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries[:1]}})
	key := append(indexPrefix(FieldIndustry, long), "hebei:long"...)
	has := func() bool {
		var ok bool
		a.s.view(func(tx *bbolt.Tx) error {
			ok = tx.Bucket(bucketIndex).Get(key) != nil
			return nil
		})
		return ok
	}
	if has() {
		t.Fatal("a 900-byte value indexed")
	}
	// As an older build left it.
	a.s.mu.RLock()
	err := a.s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketIndex).Put(key, nil) })
	a.s.mu.RUnlock()
	if err != nil || !has() {
		t.Fatalf("plant the old key: %v", err)
	}
	a.apply(&Command{Remote: &RemoteCommand{Origin: "hebei", Entries: entries[1:]}})
	if has() {
		t.Fatal("the older build's index key outlived the version it indexed")
	}
}

// TestFeedEpochNamedOnce: the first replica command carrying a feed epoch names
// the feed; later ones (a leader that had not applied the first yet) do not
// rename it, and the name survives a reopen. Older builds' commands, without
// the field, decode and leave it alone.
func TestFeedEpochNamedOnce(t *testing.T) {
	k := mustKey(t, "tianjin")
	path := filepath.Join(t.TempDir(), "state.db")
	s, err := Open(path, Options{Centre: "tianjin", Signer: keySigner{k}})
	if err != nil {
		t.Fatal(err)
	}
	a := &applier{t: t, s: s}
	if e, err := s.FeedEpoch(); err != nil || e != "" {
		t.Fatalf("new state: epoch %q %v, want none", e, err)
	}
	a.apply(&Command{Replica: &ReplicaCommand{Replica: Replica{ID: "tianjin-1"}}})
	a.write(OpCreate, "tianjin:a1", supply("v1", schema.VisibilityFederation), 0)
	old, err := DecodeCommand([]byte(`M{"replica":{"id":"tianjin-2"}}`))
	if err != nil {
		t.Fatal(err)
	}
	a.apply(old)
	if e, _ := s.FeedEpoch(); e != "" {
		t.Fatalf("named %q by commands without a name", e)
	}
	if _, named, err := s.FeedNamedAt(); err != nil || named {
		t.Fatalf("unnamed feed: FeedNamedAt named %v, %v", named, err)
	}
	a.apply(&Command{Replica: &ReplicaCommand{Replica: Replica{ID: "tianjin-1"}, FeedEpoch: "first"}},
		&Command{Replica: &ReplicaCommand{Replica: Replica{ID: "tianjin-2"}, FeedEpoch: "second"}})
	if e, _ := s.FeedEpoch(); e != "first" {
		t.Fatalf("epoch %q, want the first one applied", e)
	}
	// Named at the feed's head then (one write); a later naming command
	// (the leader filling in a replica without the name) moves nothing.
	a.write(OpCreate, "tianjin:a2", supply("v1", schema.VisibilityFederation), 0)
	a.apply(&Command{Replica: &ReplicaCommand{Replica: Replica{ID: "tianjin-1"}, FeedEpoch: "first"}})
	namedAt := func(want uint64, named bool) {
		t.Helper()
		if at, ok, err := s.FeedNamedAt(); err != nil || ok != named || at != want {
			t.Fatalf("FeedNamedAt = %d, %v, %v; want %d, %v", at, ok, err, want, named)
		}
	}
	namedAt(1, true)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(path, Options{Centre: "tianjin", Signer: keySigner{k}})
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := s.FeedEpoch(); e != "first" {
		t.Fatalf("after reopening: epoch %q", e)
	}
	namedAt(1, true)
	// A restored copy starts a life of its own, unnamed: it must not keep
	// the old life's naming position either.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := PrepareRestore(path, "tianjin"); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(path, Options{Centre: "tianjin", Signer: keySigner{k}}); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	namedAt(0, false)
	a.s = s
	a.apply(&Command{Replica: &ReplicaCommand{Replica: Replica{ID: "tianjin-1"}, FeedEpoch: "third"}})
	namedAt(2, true)
}

// TestListPagesEndAtMaxBytes: a page ends with the record that takes its
// stored bytes to MaxBytes, with a cursor, whatever limit asked; it holds at
// least one record; the pages still cover every record once, in id order.
func TestListPagesEndAtMaxBytes(t *testing.T) {
	k := mustKey(t, "tianjin")
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}
	for i := 0; i < 40; i++ {
		a.write(OpPut, fmt.Sprintf("tianjin:k%04d", i), supply(strings.Repeat("长", i*20), schema.VisibilityFederation), 0)
	}
	stored := func(r *schema.Record) int {
		b, ok := schema.AppendRecordJSON(nil, r)
		if !ok {
			t.Fatalf("%s: not encoded as stored", r.ID)
		}
		return len(b)
	}
	for _, maxBytes := range []int{1, 3000, 9000, 1 << 20} {
		var got []string
		cursor := ""
		pages := 0
		for ; pages < 100; pages++ {
			items, next, err := a.s.List(Query{Catalogue: schema.CatalogueSupply, After: cursor, Limit: 500, MaxBytes: maxBytes})
			if err != nil {
				t.Fatal(err)
			}
			size := 0
			for i, r := range items {
				if size >= maxBytes {
					t.Fatalf("MaxBytes %d: record %d of a page already holding %d bytes", maxBytes, i, size)
				}
				size += stored(r)
				got = append(got, r.ID)
			}
			if next == "" {
				break
			}
			if len(items) == 0 || size < maxBytes {
				t.Fatalf("MaxBytes %d: a page of %d records, %d bytes, ended early", maxBytes, len(items), size)
			}
			cursor = next
		}
		if len(got) != 40 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != 40 {
			t.Fatalf("MaxBytes %d: %d records over %d pages: %v", maxBytes, len(got), pages+1, got)
		}
		if maxBytes == 1 && pages+1 != 40 || maxBytes == 1<<20 && pages != 0 {
			t.Fatalf("MaxBytes %d: %d pages", maxBytes, pages+1)
		}
	}
}

// TestEpochFollowsTheStateFile holds Epoch, which the store keeps in memory
// once the file has one, to the file it reads: a restored snapshot of
// another life of the log answers with its own epoch, an empty state with
// none, and a closed store refuses.
func TestEpochFollowsTheStateFile(t *testing.T) {
	k := mustKey(t, "tianjin")
	epochOf := func(s *Store) string {
		t.Helper()
		e, err := s.Epoch()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a := &applier{t: t, s: mustOpen(t, "tianjin", k)}
	empty := snapshotOf(t, mustOpen(t, "tianjin", k), nil)
	if e := epochOf(a.s); e != "" {
		t.Fatalf("epoch of an empty state %q", e)
	}
	a.write(OpPut, "tianjin:e1", supply("one", schema.VisibilityFederation), 0) // epoch E1
	if e := epochOf(a.s); e != "E1" {
		t.Fatalf("epoch %q after the first write, want E1", e)
	}
	other := mustOpen(t, "tianjin", k)
	o := &applier{t: t, s: other}
	o.apply(&Command{Write: &WriteCommand{Op: OpPut, ID: "tianjin:e2", Record: supply("two", schema.VisibilityFederation), At: t0, Epoch: "E2"}})
	if err := a.s.Restore(bytes.NewReader(snapshotOf(t, other, nil))); err != nil {
		t.Fatal(err)
	}
	if e := epochOf(a.s); e != "E2" {
		t.Fatalf("epoch %q after restoring a state of epoch E2", e)
	}
	if err := a.s.Restore(bytes.NewReader(empty)); err != nil {
		t.Fatal(err)
	}
	if e := epochOf(a.s); e != "" {
		t.Fatalf("epoch %q after restoring an empty state", e)
	}
	if e := epochOf(other); e != "E2" {
		t.Fatalf("epoch %q, want E2", e)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Epoch(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Epoch of a closed store: %v, want ErrClosed", err)
	}
}
