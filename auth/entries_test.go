package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"liandong/schema"
)

func TestSignEntryRequiresMatchingKeyID(t *testing.T) {
	f := newFixture(t)
	e := makeEntry(t, entrySpec{origin: "tianjin", epoch: "e1", seq: 1, key: f.rec["tianjin"], at: t0})
	if err := VerifyEntry(f.bundle, e); err != nil {
		t.Fatalf("VerifyEntry: %v", err)
	}
	if err := SignEntry(f.rec["hebei"], e); err == nil {
		t.Fatal("SignEntry with a key the entry does not name: want error")
	}
	if err := SignEntry(f.rec["tianjin"], &schema.Entry{EntryPayload: schema.EntryPayload{KeyID: f.rec["tianjin"].ID}}); err == nil {
		t.Fatal("SignEntry without Raw: want error")
	}
}

// One flipped bit anywhere in Raw or Sig must fail verification.
func TestVerifyEntryFlippedByte(t *testing.T) {
	f := newFixture(t)
	e := makeEntry(t, entrySpec{origin: "tianjin", epoch: "e1", seq: 1, key: f.rec["tianjin"], at: t0, size: 1024})
	for _, part := range []struct {
		name string
		buf  *[]byte
	}{{"raw", &e.Raw}, {"sig", &e.Sig}} {
		for i := range *part.buf {
			for _, bit := range []byte{0x01, 0x80} {
				(*part.buf)[i] ^= bit
				err := VerifyEntry(f.bundle, e)
				(*part.buf)[i] ^= bit
				var ce *ChainError
				if !errors.As(err, &ce) || ce.Reason != ReasonBadSignature {
					t.Fatalf("%s byte %d bit %#x flipped: got %v, want bad-signature", part.name, i, bit, err)
				}
			}
		}
	}
	if err := VerifyEntry(f.bundle, e); err != nil {
		t.Fatalf("restored entry: %v", err)
	}
	e.Sig = e.Sig[:63]
	if err := VerifyEntry(f.bundle, e); err == nil {
		t.Fatal("short signature verified")
	}
}

func TestVerifyChain(t *testing.T) {
	f := newFixture(t)
	tj, hb := f.rec["tianjin"], f.rec["hebei"]
	empty := schema.Head{Origin: "tianjin"}
	good := chain(t, tj, empty, 5, t0, 200)
	held3 := headOf(good[:3])

	// forged names tianjin's key but is signed with Hebei's.
	forgedLast := append(cloneEntries(good[:4]), makeEntry(t, entrySpec{origin: "tianjin", epoch: "", seq: 5,
		prev: good[3].Hash(), key: hb, kid: tj.ID, at: t0}))
	forgedMiddle := cloneEntries(good)
	forgedMiddle[2] = makeEntry(t, entrySpec{origin: "tianjin", seq: 3, prev: good[1].Hash(), key: hb, kid: tj.ID, at: t0})
	forgedMiddle = append(forgedMiddle[:3], chain(t, tj, headOf(forgedMiddle[:3]), 2, t0, 200)...)

	otherKey := makeEntry(t, entrySpec{origin: "tianjin", seq: 1, key: hb, at: t0}) // names Hebei's key id
	wrongOrigin := append(cloneEntries(good[:2]), chain(t, hb, schema.Head{Origin: "hebei", Seq: 2, Hash: good[1].Hash()}, 1, t0, 200)...)

	epochHead := schema.Head{Origin: "tianjin", Epoch: "e1"}
	e1 := chain(t, tj, epochHead, 3, t0, 200)
	e2 := chain(t, tj, schema.Head{Origin: "tianjin", Epoch: "e2", Seq: 3, Hash: e1[2].Hash()}, 1, t0, 200)
	epochSwitch := append(cloneEntries(e1), e2...)

	badPrev := cloneEntries(good[:3])
	badPrev[1].PrevHash[0] ^= 1
	badPrev[1] = resign(t, badPrev[1], tj)

	early := append(cloneEntries(good[:1]), makeEntry(t, entrySpec{origin: "tianjin", seq: 2, prev: good[0].Hash(), key: tj, at: t0.Add(-60 * 24 * time.Hour)}))

	tests := []struct {
		name    string
		prev    schema.Head
		entries []*schema.Entry
		reason  ChainReason // "" for success
		index   int
		seq     uint64
		modes   []VerifyMode // nil: both
	}{
		{name: "ok from empty", prev: empty, entries: good},
		{name: "ok continuing", prev: held3, entries: good[3:]},
		{name: "ok empty batch", prev: held3, entries: nil},
		{name: "gap", prev: empty, entries: pick(good, 0, 1, 3), reason: ReasonGap, index: 2, seq: 4},
		{name: "gap at start", prev: empty, entries: good[1:], reason: ReasonGap, index: 0, seq: 2},
		{name: "gap after head", prev: held3, entries: good[4:], reason: ReasonGap, index: 0, seq: 5},
		{name: "reorder swapped pair", prev: empty, entries: pick(good, 0, 2, 1, 3), reason: ReasonReorder, index: 1, seq: 3},
		{name: "reorder lower seq", prev: empty, entries: pick(good, 0, 1, 2, 0), reason: ReasonReorder, index: 3, seq: 1},
		{name: "duplicate of previous", prev: empty, entries: pick(good, 0, 1, 1), reason: ReasonDuplicate, index: 2, seq: 2},
		{name: "duplicate of held head", prev: held3, entries: pick(good, 2, 3), reason: ReasonDuplicate, index: 0, seq: 3},
		{name: "duplicate of older held", prev: held3, entries: pick(good, 0, 1), reason: ReasonDuplicate, index: 0, seq: 1},
		{name: "bad prev hash", prev: empty, entries: badPrev, reason: ReasonBadPrevHash, index: 1, seq: 2},
		{name: "bad prev hash against head", prev: schema.Head{Origin: "tianjin", Seq: 3, Hash: good[0].Hash()}, entries: good[3:], reason: ReasonBadPrevHash, index: 0, seq: 4},
		{name: "swapped key: other member's key id", prev: empty, entries: []*schema.Entry{otherKey}, reason: ReasonUnknownKey, index: 0, seq: 1},
		{name: "swapped key: signed with other member's key, last", prev: empty, entries: forgedLast, reason: ReasonBadSignature, index: 4, seq: 5},
		{name: "swapped key: signed with other member's key, middle", prev: empty, entries: forgedMiddle, reason: ReasonBadSignature, index: 2, seq: 3, modes: []VerifyMode{VerifyEverySignature}},
		{name: "wrong origin", prev: empty, entries: wrongOrigin, reason: ReasonWrongOrigin, index: 2, seq: 3},
		{name: "wrong origin for head", prev: schema.Head{Origin: "hebei"}, entries: good, reason: ReasonWrongOrigin, index: 0, seq: 1},
		{name: "epoch ok", prev: epochHead, entries: e1},
		{name: "wrong epoch against head", prev: schema.Head{Origin: "tianjin", Epoch: "e2", Seq: 3, Hash: e1[2].Hash()}, entries: chain(t, tj, headOf(e1), 1, t0, 200), reason: ReasonWrongEpoch, index: 0, seq: 4},
		{name: "wrong epoch inside batch", prev: epochHead, entries: epochSwitch, reason: ReasonWrongEpoch, index: 3, seq: 4},
		{name: "key not valid at signed_at", prev: empty, entries: early, reason: ReasonKeyNotValidAtTime, index: 1, seq: 2},
	}
	for _, tc := range tests {
		modes := tc.modes
		if modes == nil {
			modes = []VerifyMode{VerifyEverySignature, VerifyBatchSignature}
		}
		for _, mode := range modes {
			t.Run(tc.name+"/"+mode.String(), func(t *testing.T) {
				err := VerifyChain(f.bundle, tc.prev, tc.entries, mode)
				checkChainErr(t, err, tc.reason, tc.index, tc.seq)
			})
		}
	}
	// The forged middle entry is bound by the origin's later signature: batch mode
	// accepts what the origin vouched for, as the design intends.
	if err := VerifyChain(f.bundle, empty, forgedMiddle, VerifyBatchSignature); err != nil {
		t.Errorf("batch mode over a chain the origin signed last: %v", err)
	}
}

func checkChainErr(t *testing.T, err error, reason ChainReason, index int, seq uint64) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("want success, got %v", err)
		}
		return
	}
	var ce *ChainError
	if !errors.As(err, &ce) {
		t.Fatalf("want *ChainError %s, got %v", reason, err)
	}
	if ce.Reason != reason || ce.Index != index || ce.Seq != seq {
		t.Fatalf("got reason %s index %d seq %d, want %s index %d seq %d (%v)", ce.Reason, ce.Index, ce.Seq, reason, index, seq, err)
	}
	if !errors.Is(err, ErrChain) {
		t.Fatal("ChainError is not ErrChain")
	}
	msg := err.Error()
	if !strings.Contains(msg, string(reason)) || !strings.Contains(msg, ce.Origin) {
		t.Fatalf("message %q names neither reason nor origin", msg)
	}
}

func pick(entries []*schema.Entry, idx ...int) []*schema.Entry {
	out := make([]*schema.Entry, len(idx))
	for i, j := range idx {
		out[i] = entries[j]
	}
	return out
}

func cloneEntries(entries []*schema.Entry) []*schema.Entry {
	out := make([]*schema.Entry, len(entries))
	for i, e := range entries {
		c := *e
		c.Raw = append([]byte(nil), e.Raw...)
		c.Sig = append([]byte(nil), e.Sig...)
		out[i] = &c
	}
	return out
}

// Batch mode checks one signature per run, but the hash chain still catches any
// change to an earlier entry.
func TestVerifyChainBatchCatchesTampering(t *testing.T) {
	f := newFixture(t)
	tj := f.rec["tianjin"]
	empty := schema.Head{Origin: "tianjin", Epoch: "e1"}
	good := chain(t, tj, empty, 10, t0, 1024)
	for _, mode := range []VerifyMode{VerifyEverySignature, VerifyBatchSignature} {
		if err := VerifyChain(f.bundle, empty, good, mode); err != nil {
			t.Fatalf("%s: good chain: %v", mode, err)
		}
	}
	tests := []struct {
		name   string
		tamper func(es []*schema.Entry)
		reason ChainReason
		index  int
	}{
		{"middle raw byte", func(es []*schema.Entry) { es[5].Raw[len(es[5].Raw)/2] ^= 1 }, ReasonBadPrevHash, 6},
		{"middle signature", func(es []*schema.Entry) { es[5].Sig[0] ^= 1 }, ReasonBadPrevHash, 6},
		{"middle re-signed by another member", func(es []*schema.Entry) {
			es[5].Sig = makeEntry(t, entrySpec{origin: "tianjin", epoch: "e1", seq: 6, prev: es[4].Hash(), key: f.rec["hebei"], kid: tj.ID, at: es[5].SignedAt}).Sig
		}, ReasonBadPrevHash, 6},
		{"first raw byte", func(es []*schema.Entry) { es[0].Raw[10] ^= 1 }, ReasonBadPrevHash, 1},
		{"last raw byte", func(es []*schema.Entry) { es[9].Raw[100] ^= 1 }, ReasonBadSignature, 9},
		{"last signature", func(es []*schema.Entry) { es[9].Sig[63] ^= 1 }, ReasonBadSignature, 9},
		{"middle entry dropped", func(es []*schema.Entry) { copy(es[5:], es[6:]); es[9] = nil }, ReasonGap, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es := cloneEntries(good)
			tc.tamper(es)
			if es[9] == nil {
				es = es[:9]
			}
			err := VerifyChain(f.bundle, empty, es, VerifyBatchSignature)
			checkChainErr(t, err, tc.reason, tc.index, es[tc.index].Seq)
		})
	}
}

// Batch mode checks the last signature of each run of one key id, so a bad
// signature where the key changes is caught even mid-batch.
func TestVerifyChainBatchChecksEachKeyRun(t *testing.T) {
	f := newFixture(t)
	tj1 := f.rec["tianjin"]
	tj2 := fixedKey(t, "tianjin-rec", "tianjin-rec-2")
	b := clone(t, f.bundle)
	m, _ := b.Member("tianjin")
	m.RecordKeys = append(m.RecordKeys, tj2.BundleKey(t0))

	head := schema.Head{Origin: "tianjin"}
	es := chain(t, tj1, head, 3, t0, 200)
	// The last tj1 entry is signed by a stranger under tj1's id; the tj2 run after
	// it chains over it honestly.
	es[2] = makeEntry(t, entrySpec{origin: "tianjin", seq: 3, prev: es[1].Hash(), key: f.rec["hebei"], kid: tj1.ID, at: t0})
	es = append(es, chain(t, tj2, headOf(es), 2, t0.Add(time.Hour), 200)...)
	err := VerifyChain(b, head, es, VerifyBatchSignature)
	checkChainErr(t, err, ReasonBadSignature, 2, 3)
}

// Entries signed with the old key before its NotAfter still verify after the
// rotation; the old key signs nothing after NotAfter.
func TestVerifyChainKeyRotation(t *testing.T) {
	f := newFixture(t)
	old := f.rec["tianjin"]
	next := fixedKey(t, "tianjin-rec", "tianjin-rec-2")
	rotate := t0.Add(10 * 24 * time.Hour)

	head := schema.Head{Origin: "tianjin", Epoch: "e1"}
	before := chain(t, old, head, 3, t0, 200)
	after := chain(t, next, headOf(before), 2, rotate.Add(time.Hour), 200)

	b2 := clone(t, f.bundle)
	b2.Version = 2
	m, _ := b2.Member("tianjin")
	m.RecordKeys[0].NotAfter = ptr(rotate)
	m.RecordKeys = append(m.RecordKeys, next.BundleKey(rotate))
	if err := b2.Validate(); err != nil {
		t.Fatal(err)
	}
	all := append(cloneEntries(before), after...)
	for _, mode := range []VerifyMode{VerifyEverySignature, VerifyBatchSignature} {
		if err := VerifyChain(b2, head, all, mode); err != nil {
			t.Errorf("%s: chain across rotation: %v", mode, err)
		}
	}
	// The old bundle does not know the new key.
	checkChainErr(t, VerifyChain(f.bundle, head, all, VerifyBatchSignature), ReasonUnknownKey, 3, 4)
	// The old key after its NotAfter.
	late := makeEntry(t, entrySpec{origin: "tianjin", epoch: "e1", seq: 4, prev: before[2].Hash(), key: old, at: rotate})
	checkChainErr(t, VerifyChain(b2, headOf(before), []*schema.Entry{late}, VerifyEverySignature), ReasonKeyNotValidAtTime, 0, 4)
	// The new key before its NotBefore.
	early := makeEntry(t, entrySpec{origin: "tianjin", epoch: "e1", seq: 4, prev: before[2].Hash(), key: next, at: rotate.Add(-time.Second)})
	checkChainErr(t, VerifyChain(b2, headOf(before), []*schema.Entry{early}, VerifyBatchSignature), ReasonKeyNotValidAtTime, 0, 4)
}

func TestVerifyChainRevokedKey(t *testing.T) {
	f := newFixture(t)
	tj := f.rec["tianjin"]
	head := schema.Head{Origin: "tianjin"}
	es := chain(t, tj, head, 4, t0, 200) // signed t0, t0+1m, t0+2m, t0+3m

	b := clone(t, f.bundle)
	b.Revocations = []Revocation{{Subject: "key:" + tj.ID, Before: t0.Add(90 * time.Second), Reason: "compromised"}}
	for _, mode := range []VerifyMode{VerifyEverySignature, VerifyBatchSignature} {
		err := VerifyChain(b, head, es, mode)
		checkChainErr(t, err, ReasonRevokedKey, 0, 1)
		if !errors.Is(err, ErrKeyRevoked) {
			t.Errorf("%s: %v does not wrap ErrKeyRevoked", mode, err)
		}
	}
	// NATS semantics: what was signed at or after Before is not covered by it.
	if err := VerifyChain(b, headOf(es[:2]), es[2:], VerifyEverySignature); err != nil {
		t.Errorf("entries signed after the revocation time: %v", err)
	}
	// Revoking outright: Before in the far future.
	b.Revocations[0].Before = t0.Add(100 * 365 * 24 * time.Hour)
	checkChainErr(t, VerifyChain(b, headOf(es[:2]), es[2:], VerifyBatchSignature), ReasonRevokedKey, 0, 3)
}

func TestVerifyChainRemovedMember(t *testing.T) {
	f := newFixture(t)
	hb := f.rec["hebei"]
	head := schema.Head{Origin: "hebei"}
	es := chain(t, hb, head, 3, t0, 200)
	b := clone(t, f.bundle)
	m, _ := b.Member("hebei")
	m.Removed = ptr(t0.Add(90 * time.Second))
	if err := VerifyChain(b, head, es[:2], VerifyEverySignature); err != nil {
		t.Errorf("entries signed before removal: %v", err)
	}
	checkChainErr(t, VerifyChain(b, headOf(es[:2]), es[2:], VerifyEverySignature), ReasonKeyNotValidAtTime, 0, 3)
	if _, ok := b.PeerAllowed(b.Members[2].Peers[0].ID); ok {
		t.Error("removed member's peer allowed")
	}
}

func TestVerifyChainUnknownOrigin(t *testing.T) {
	f := newFixture(t)
	stranger := fixedKey(t, "langfang-rec", "langfang")
	head := schema.Head{Origin: "langfang"}
	checkChainErr(t, VerifyChain(f.bundle, head, chain(t, stranger, head, 2, t0, 200), VerifyBatchSignature), ReasonUnknownKey, 0, 1)
}

func TestVerifyChainNilEntry(t *testing.T) {
	f := newFixture(t)
	head := schema.Head{Origin: "tianjin"}
	es := chain(t, f.rec["tianjin"], head, 2, t0, 200)
	err := VerifyChain(f.bundle, head, []*schema.Entry{es[0], nil}, VerifyBatchSignature)
	if !errors.Is(err, ErrChain) {
		t.Fatalf("nil entry: %v", err)
	}
}

// Every reason has a distinct, stable label.
func TestChainReasonsStable(t *testing.T) {
	want := "gap reorder duplicate bad-prev-hash bad-signature unknown-key revoked-key key-not-valid-at-time wrong-origin wrong-epoch"
	var got []string
	for _, r := range ChainReasons {
		got = append(got, string(r))
	}
	if strings.Join(got, " ") != want {
		t.Fatalf("ChainReasons = %v", got)
	}
}
