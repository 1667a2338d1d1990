package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
)

// FuzzRestoreSnapshot: a raft snapshot (a copy of a state file) with one
// byte flipped and perhaps cut short is restored or refused with ErrCorrupt,
// never a panic; a refused one leaves the store serving its own state, as
// Restore promises. The seeds flip the meta pages, the root and freelist
// pages, and cut the copy at a page boundary and mid-page (more in
// testdata/fuzz/FuzzRestoreSnapshot).
func FuzzRestoreSnapshot(f *testing.F) {
	data, used := stateTemplate(f)
	pageSize := int(binary.LittleEndian.Uint32(data[24:]))
	for _, seed := range []struct {
		off uint32
		xor byte
		cut uint32
	}{
		{0, 0, 0}, // the snapshot whole
		{16, 0x01, 0}, {24, 0x80, 0}, {56, 0x5a, 0}, {uint32(pageSize + 32), 0xff, 0},
		{uint32(2*pageSize + 8), 0x5a, 0}, {uint32(used / 2), 0x20, 0},
		{0, 0, uint32(pageSize)}, {0, 0, uint32(2*pageSize + 100)}, {0, 0, uint32(used - 1)},
	} {
		f.Add(seed.off, seed.xor, seed.cut)
	}
	k := mustKey(f, "tianjin")
	f.Fuzz(func(t *testing.T, off uint32, xor byte, cut uint32) {
		snap := append([]byte(nil), data...)
		snap[int(off)%used] ^= xor
		if cut > 0 {
			snap = snap[:int(cut)%len(snap)]
		}
		s := mustOpen(t, "tianjin", k)
		a := &applier{t: t, s: s}
		a.apply(&Command{Write: &WriteCommand{Op: OpPut, ID: "tianjin:own", Record: supply("本地成果", "federation"), At: t0, Epoch: "E1"}})
		err := s.Restore(bytes.NewReader(snap))
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("refused, but not as ErrCorrupt: %v", err)
			}
			if _, err := s.Get("tianjin:own"); err != nil {
				t.Fatalf("refused snapshot left the store unable to read its own state: %v", err)
			}
			return
		}
		// Restored: the damage is in a value, a free page or the other meta
		// page. Everything still reads without a panic.
		_ = s.Check()
		_, _, _ = s.List(Query{Limit: 50})
		_, _ = s.Heads()
		_, _, _ = s.Changes(0, 50, nil)
		for i := 0; i < 300; i += 25 {
			_, _ = s.Get(fmt.Sprintf("tianjin:r%03d", i))
		}
		if xor == 0 && cut == 0 {
			if _, err := s.Get("tianjin:r007"); err != nil {
				t.Fatalf("whole snapshot restored without its records: %v", err)
			}
		}
	})
}
