package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// stateTemplate returns the bytes of a closed state file holding 300 records
// written in batches of 20, and its used length (high-water mark × page size).
func stateTemplate(t testing.TB) ([]byte, int) {
	t.Helper()
	k := mustKey(t, "tianjin")
	s := mustOpen(t, "tianjin", k)
	a := &applier{t: t, s: s}
	for b := 0; b < 15; b++ {
		var cmds []*Command
		for i := 0; i < 20; i++ {
			id := fmt.Sprintf("tianjin:r%03d", b*20+i)
			cmds = append(cmds, &Command{Write: &WriteCommand{Op: OpPut, ID: id, Record: supply("成果"+id, "federation"), At: t0, Epoch: "E1"}})
		}
		a.apply(cmds...)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pageSize := int(binary.LittleEndian.Uint32(data[24:]))
	used := max(int(binary.LittleEndian.Uint64(data[56:])), int(binary.LittleEndian.Uint64(data[pageSize+56:]))) * pageSize
	return data, min(used, len(data))
}

// openDamaged writes data with one byte flipped to a fresh file and opens it as
// the node would. A damaged file must be refused as ErrCorrupt or open and serve
// reads with errors at worst: never a panic, never a fault of the process.
func openDamaged(t *testing.T, data []byte, off int, xor byte) (refused bool) {
	t.Helper()
	damaged := append([]byte(nil), data...)
	damaged[off] ^= xor
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{Centre: "tianjin", Signer: keySigner{mustKey(t, "tianjin")}})
	if err != nil {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flip at %d: refused, but not as ErrCorrupt: %v", off, err)
		}
		return true
	}
	defer s.Close()
	// Opened: the damage is in a value, a free page or the other meta page.
	// Everything still reads without a panic.
	_ = s.Check()
	_, _, _ = s.List(Query{Limit: 50})
	_, _ = s.Heads()
	_, _ = s.ReadRange("tianjin", 1, 50)
	_, _, _ = s.Changes(0, 50, nil)
	_, _ = s.Counts()
	for i := 0; i < 300; i += 10 {
		_, _ = s.Get(fmt.Sprintf("tianjin:r%03d", i))
	}
	return false
}

// TestRandomFlipsNeverCrash flips one byte at 60 seeded random places of a
// state file's used pages: every start either refuses the file as corrupt or
// opens it and reads on; the test process surviving is the check.
func TestRandomFlipsNeverCrash(t *testing.T) {
	data, used := stateTemplate(t)
	rng := rand.New(rand.NewPCG(10, 2026))
	refused := 0
	for i := 0; i < 60; i++ {
		off := rng.IntN(used)
		xor := byte(1 + rng.IntN(255))
		t.Run(fmt.Sprintf("flip-%d-%02x", off, xor), func(t *testing.T) {
			if openDamaged(t, data, off, xor) {
				refused++
			}
		})
	}
	t.Logf("used %d bytes; %d flips refused at open", used, refused)
}

// FuzzDamagedStateFile: any single flipped byte of a state file is refused at
// open or harmless; never a panic or a fault.
func FuzzDamagedStateFile(f *testing.F) {
	data, used := stateTemplate(f)
	pageSize := int(binary.LittleEndian.Uint32(data[24:]))
	for _, off := range []int{0, 24, 56, pageSize + 16, 2*pageSize + 8, 3*pageSize + 11, 4*pageSize + 22, used / 2} {
		f.Add(uint32(off), byte(0x5a))
	}
	f.Fuzz(func(t *testing.T, off uint32, xor byte) {
		if xor == 0 {
			return
		}
		openDamaged(t, data, int(off)%used, xor)
	})
}
