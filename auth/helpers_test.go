package auth

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"liandong/schema"
)

// t0 is the fixed "now" of the fixtures.
var t0 = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

const testFederation = "jjj-nti"

// fixedKey derives a deterministic key from name, so fixtures (and fuzz seeds
// written from them) stay stable between runs.
func fixedKey(tb testing.TB, prefix, name string) *KeyPair {
	tb.Helper()
	seed := sha256.Sum256([]byte("liandong test key " + name))
	k, err := NewKeyFromSeed(prefix, seed[:])
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// fixture is a four-centre federation with three root signers.
type fixture struct {
	roots  []*KeyPair          // hq-root-a, -b, -c
	rec    map[string]*KeyPair // record key per centre
	tok    map[string]*KeyPair // token key per centre
	bundle *Bundle
}

var centres = []string{"hq", "tianjin", "hebei", "xiongan"}

var centreNames = map[string][2]string{
	"hq":      {"Beijing-Tianjin-Hebei National Technology Innovation Centre", "京津冀国家技术创新中心本部"},
	"tianjin": {"Tianjin Centre", "京津冀国家技术创新中心天津中心"},
	"hebei":   {"Hebei Centre", "京津冀国家技术创新中心河北中心"},
	"xiongan": {"Xiong'an Centre", "京津冀国家技术创新中心雄安中心"},
}

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	f := &fixture{rec: map[string]*KeyPair{}, tok: map[string]*KeyPair{}}
	for _, n := range []string{"a", "b", "c"} {
		f.roots = append(f.roots, fixedKey(tb, "hq-root", "root-"+n))
	}
	b := &Bundle{
		Federation: testFederation,
		Version:    1,
		IssuedAt:   t0.Add(-24 * time.Hour),
		ExpiresAt:  t0.Add(90 * 24 * time.Hour),
		Threshold:  2,
	}
	for _, r := range f.roots {
		b.Signers = append(b.Signers, r.BundleKey(t0.Add(-365*24*time.Hour)))
	}
	for i, c := range centres {
		f.rec[c] = fixedKey(tb, c+"-rec", c+"-rec")
		f.tok[c] = fixedKey(tb, c+"-tok", c+"-tok")
		nb := t0.Add(-30 * 24 * time.Hour)
		b.Members = append(b.Members, Member{
			ID: c, Name: centreNames[c][0], NameZH: centreNames[c][1],
			RecordKeys: []Key{f.rec[c].BundleKey(nb)},
			TokenKeys:  []Key{f.tok[c].BundleKey(nb)},
			Peers:      []Peer{{ID: fmt.Sprintf("12D3KooWTestPeer%d%s", i, c), Addrs: []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 4001+i)}}},
			HTTP:       []string{fmt.Sprintf("http://127.0.0.1:%d", 8081+i)},
		})
		if c == "hq" {
			b.Members[i].Roles = []string{"root"}
		}
	}
	if err := b.Validate(); err != nil {
		tb.Fatal(err)
	}
	f.bundle = b
	return f
}

// clone deep-copies a bundle through JSON.
func clone(tb testing.TB, b *Bundle) *Bundle {
	tb.Helper()
	js, err := json.Marshal(b)
	if err != nil {
		tb.Fatal(err)
	}
	var c Bundle
	if err := json.Unmarshal(js, &c); err != nil {
		tb.Fatal(err)
	}
	return &c
}

// sign encodes b and signs it with keys.
func signBundle(tb testing.TB, b *Bundle, keys ...*KeyPair) *SignedBundle {
	tb.Helper()
	sb, err := SignBundle(b, keys...)
	if err != nil {
		tb.Fatal(err)
	}
	return sb
}

// body returns a supply body of about size bytes.
func body(seq uint64, size int) json.RawMessage {
	pad := ""
	if size > 300 {
		pad = strings.Repeat("正极材料连续化制备", (size-300)/27)
	}
	return json.RawMessage(fmt.Sprintf(`{"title":"高镍三元正极材料连续化制备技术 %d","summary":"%s","industry":"new-materials","keywords":["正极材料","锂电池"],"trl":6,"transfer_modes":["license","joint-development"],"owner_org":"天津大学","disruptive":false}`, seq, pad))
}

type entrySpec struct {
	origin, epoch string
	seq           uint64
	prev          schema.Hash
	key           *KeyPair // signer
	kid           string   // if empty, key.ID
	at            time.Time
	size          int
}

func makeEntry(tb testing.TB, s entrySpec) *schema.Entry {
	tb.Helper()
	kid := s.kid
	if kid == "" {
		kid = s.key.ID
	}
	rec := &schema.Record{
		ID: fmt.Sprintf("%s:rec-%d", s.origin, s.seq), Catalogue: schema.CatalogueSupply, Origin: s.origin,
		Version: 1, Visibility: schema.VisibilityFederation, Schema: schema.CurrentSchema,
		CreatedAt: s.at, UpdatedAt: s.at, Broker: s.origin, Body: body(s.seq, s.size),
	}
	e, err := schema.NewEntry(schema.EntryPayload{
		Origin: s.origin, Epoch: s.epoch, Seq: s.seq, PrevHash: s.prev, KeyID: kid, SignedAt: s.at, Record: rec,
	})
	if err != nil {
		tb.Fatal(err)
	}
	// Sign directly, so tests can sign with a key other than the one named.
	k := *s.key
	k.ID = kid
	if err := SignEntry(&k, e); err != nil {
		tb.Fatal(err)
	}
	return e
}

// chain returns n correctly chained entries of origin after prev, signed by key,
// one minute apart starting at start.
func chain(tb testing.TB, key *KeyPair, prev schema.Head, n int, start time.Time, size int) []*schema.Entry {
	tb.Helper()
	out := make([]*schema.Entry, 0, n)
	h := prev.Hash
	for i := 0; i < n; i++ {
		e := makeEntry(tb, entrySpec{origin: prev.Origin, epoch: prev.Epoch, seq: prev.Seq + uint64(i) + 1, prev: h,
			key: key, at: start.Add(time.Duration(i) * time.Minute), size: size})
		h = e.Hash()
		out = append(out, e)
	}
	return out
}

func headOf(entries []*schema.Entry) schema.Head {
	e := entries[len(entries)-1]
	return schema.Head{Origin: e.Origin, Epoch: e.Epoch, Seq: e.Seq, Hash: e.Hash()}
}

// resign rebuilds e's canonical bytes after the caller changed its payload and
// signs it with key.
func resign(tb testing.TB, e *schema.Entry, key *KeyPair) *schema.Entry {
	tb.Helper()
	n, err := schema.NewEntry(e.EntryPayload)
	if err != nil {
		tb.Fatal(err)
	}
	k := *key
	k.ID = n.KeyID
	if err := SignEntry(&k, n); err != nil {
		tb.Fatal(err)
	}
	return n
}

func ptr[T any](v T) *T { return &v }
