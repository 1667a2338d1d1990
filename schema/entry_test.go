package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func testEntry(t *testing.T, body string) *Entry {
	t.Helper()
	r := newRecord(CatalogueNeed, body)
	s, err := StripPersonal(r)
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewEntry(EntryPayload{Origin: "tianjin", Epoch: "01JNQ8ZK3M5T2V7W9X1Y4Z6A8B", Seq: 7,
		PrevHash: Hash{1, 2, 3}, KeyID: "tianjin-2026-1", SignedAt: time.Date(2026, 3, 5, 22, 0, 0, 5, time.FixedZone("CST", 8*3600)), Record: s})
	if err != nil {
		t.Fatal(err)
	}
	e.Sig = bytes.Repeat([]byte{0xAB}, SignatureSize)
	return e
}

func TestEntryRoundTrip(t *testing.T) {
	// The challenge body holds "<"; add '&', '>', U+2028 and an escaped member.
	body := setBody(t, challengeBody, "note", `"A&B > C\u2028 \u003c"`)
	e := testEntry(t, body)
	if err := CheckCanonical(e.Raw); err != nil {
		t.Fatalf("NewEntry Raw not canonical: %v", err)
	}
	if e.SignedAt.Location() != time.UTC {
		t.Error("SignedAt not in UTC")
	}
	wire, err := e.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(wire, []byte("预测误差 < 10%")) {
		t.Errorf("payload escaped on the wire: %s", wire)
	}
	check := func(name string, wire []byte) {
		var d Entry
		if err := json.Unmarshal(wire, &d); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(d.Raw, e.Raw) || !bytes.Equal(d.Sig, e.Sig) || d.Hash() != e.Hash() {
			t.Errorf("%s: entry changed in transit", name)
		}
		if d.Seq != 7 || d.Origin != "tianjin" || d.PrevHash != e.PrevHash || d.KeyID != e.KeyID ||
			!d.SignedAt.Equal(e.SignedAt) || d.Record.ID != e.Record.ID || d.Record.Broker != "tianjin" {
			t.Errorf("%s: decoded %+v", name, d.EntryPayload)
		}
		if err := ValidateRecord(d.Record, ValidateOptions{}); err != nil {
			t.Errorf("%s: received record invalid: %v", name, err)
		}
	}
	check("MarshalJSON", wire)
	// Inside another value, encoding/json escapes <, >, & and U+2028 in the payload.
	batch, err := json.Marshal(map[string][]*Entry{"entries": {e, e}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(batch, []byte(`\u003c`)) {
		t.Fatal("expected encoding/json to escape the nested payload")
	}
	var got struct{ Entries []*Entry }
	if err := json.Unmarshal(batch, &got); err != nil {
		t.Fatalf("batch: %v", err)
	}
	for _, d := range got.Entries {
		w, _ := d.MarshalJSON()
		check("batch", w)
	}
}

func TestEntryRefusesNonCanonicalPayload(t *testing.T) {
	e := testEntry(t, challengeBody)
	sig := `"` + strings.Repeat("q6", 42) + `q6s="`
	var indented bytes.Buffer
	if err := json.Indent(&indented, e.Raw, "", " "); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(e.Raw, &m)
	resorted, _ := json.Marshal(m) // encoding/json sorts by byte order and escapes '<'
	for name, payload := range map[string]string{
		"indented":          indented.String(),
		"re-encoded":        string(resorted),
		"escaped slash":     strings.Replace(string(e.Raw), `"kid":"tianjin-2026-1"`, `"kid":"tianjin\/2026"`, 1),
		"trailing space":    string(e.Raw) + " ",
		"escaped and space": strings.Replace(strings.Replace(string(e.Raw), "<", `\u003c`, 1), `"seq":7`, `"seq": 7`, 1),
		"unicode escape":    strings.Replace(string(e.Raw), "轴承", `\u8f74承`, 1),
	} {
		wire := `{"payload":` + payload + `,"sig":` + sig + `}`
		var d Entry
		err := json.Unmarshal([]byte(wire), &d)
		if !errors.Is(err, ErrBadEntry) {
			t.Errorf("%s payload: err = %v, want ErrBadEntry", name, err)
		}
	}
	if _, err := DecodeEntryPayload(bytes.ReplaceAll(e.Raw, []byte("<"), []byte(`\u003c`))); !errors.Is(err, ErrNotCanonical) {
		t.Errorf("DecodeEntryPayload accepts the escaped form: %v", err)
	}
}

func TestEntryRefuses(t *testing.T) {
	e := testEntry(t, challengeBody)
	good, _ := e.MarshalJSON()
	if err := new(Entry).UnmarshalJSON(good); err != nil {
		t.Fatal(err)
	}
	mut := func(from, to string) []byte { return bytes.Replace(good, []byte(from), []byte(to), 1) }
	for name, c := range map[string]struct {
		wire []byte
		want error
	}{
		"short signature":  {mut(`"sig":"q6`, `"sig":"`), ErrBadEntry},
		"bad base64":       {mut(`"sig":"q6`, `"sig":"!!`), ErrBadEntry},
		"other origin":     {mut(`"origin":"tianjin","prev_hash"`, `"origin":"hebei","prev_hash"`), ErrBadEntry},
		"seq 0":            {mut(`"seq":7`, `"seq":0`), ErrBadEntry},
		"no record":        {mut(`"record":{`, `"recordx":{`), ErrBadEntry},
		"not JSON":         {good[:len(good)-2], ErrBadEntry},
		"payload not JSON": {[]byte(`{"payload":"x","sig":""}`), ErrBadEntry},
		"too large":        {append(append([]byte(`{"payload":`), bytes.Repeat([]byte(" "), MaxEntryBytes+300)...), good[11:]...), ErrEntryTooLarge},
	} {
		var d Entry
		if err := d.UnmarshalJSON(c.wire); !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", name, err, c.want)
		}
	}
	if _, err := NewEntry(EntryPayload{Origin: "tianjin", Seq: 1}); !errors.Is(err, ErrBadEntry) {
		t.Errorf("NewEntry without record: %v", err)
	}
}

// An epoch longer than MaxEpochBytes is neither built nor decoded: relays put
// the epochs they hold in their heads, and peers refuse heads strings past the
// sync codec's limit, so one member's long epoch would cut off honest relays.
func TestEntryRefusesOverlongEpoch(t *testing.T) {
	e := testEntry(t, challengeBody)
	good, _ := e.MarshalJSON()
	for n, want := range map[int]error{MaxEpochBytes: nil, MaxEpochBytes + 1: ErrBadEntry, 300: ErrBadEntry} {
		epoch := strings.Repeat("e", n)
		wire := bytes.Replace(good, []byte(`"epoch":"`+e.Epoch+`"`), []byte(`"epoch":"`+epoch+`"`), 1)
		var d Entry
		if err := d.UnmarshalJSON(wire); !errors.Is(err, want) {
			t.Errorf("decode, epoch of %d bytes: err = %v, want %v", n, err, want)
		}
		p := e.EntryPayload
		p.Epoch = epoch
		if _, err := NewEntry(p); !errors.Is(err, want) {
			t.Errorf("NewEntry, epoch of %d bytes: err = %v, want %v", n, err, want)
		}
		if _, err := NewEntryCanonicalBody(p); !errors.Is(err, want) {
			t.Errorf("NewEntryCanonicalBody, epoch of %d bytes: err = %v, want %v", n, err, want)
		}
	}
}

// The largest valid body fits in an entry.
func TestEntryHoldsLargestBody(t *testing.T) {
	base := `{"title":"t","summary":"s","industry":"other","pad":""}`
	body := strings.Replace(base, `"pad":""`, `"pad":"`+strings.Repeat("长", (MaxBodyBytes-len(base))/3)+`"`, 1)
	r := newRecord(CatalogueSupply, body)
	r.ID = "tianjin:" + strings.Repeat("k", 128)
	if err := ValidateRecord(r, ValidateOptions{Strict: true}); err != nil {
		t.Fatal(err)
	}
	e, err := NewEntry(EntryPayload{Origin: "tianjin", Epoch: strings.Repeat("e", 26), Seq: 1 << 50, KeyID: strings.Repeat("k", 64), Record: r})
	if err != nil {
		t.Fatal(err)
	}
	e.Sig = make([]byte, SignatureSize)
	wire, _ := e.MarshalJSON()
	var d Entry
	if err := d.UnmarshalJSON(wire); err != nil {
		t.Errorf("entry of %d bytes: %v", len(e.Raw), err)
	}
}

func TestHashText(t *testing.T) {
	h := Hash{0xde, 0xad}
	b, _ := h.MarshalText()
	p, err := ParseHash(string(b))
	if err != nil || p != h {
		t.Errorf("ParseHash(%s) = %v, %v", b, p, err)
	}
	for _, bad := range []string{"", "00", strings.Repeat("g", 64)} {
		if _, err := ParseHash(bad); err == nil {
			t.Errorf("ParseHash(%q) succeeded", bad)
		}
	}
	if !ZeroHash.IsZero() || h.IsZero() {
		t.Error("IsZero")
	}
}
