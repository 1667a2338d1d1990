package node

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// snapDirName is the name raft gives the seeds' snapshot (term 2, index 10).
const snapDirName = "2-10-1700000000000"

// FuzzSnapshotMeta: a snapshot's meta.json of any content is accepted or
// refused at start with ErrDamaged and the file named, never a panic. The
// seeds are a real snapshot's meta.json (state.bin beside it is the one it
// was written with) and damaged copies.
func FuzzSnapshotMeta(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzSnapshotMeta.
	f.Fuzz(func(t *testing.T, meta []byte) {
		raftDir, err := checkSnapshotMeta(t, meta)
		if err == nil {
			// Accepted: raft opens it as the newest snapshot, and a follower
			// installing it gets the size raft sends (raft.go refuses
			// another: "failed to copy snapshot, size mismatch").
			snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			m, rc, err := snaps.Open(snapDirName)
			if err != nil {
				t.Fatalf("accepted a snapshot raft cannot open: %v", err)
			}
			n, _ := io.Copy(io.Discard, rc)
			rc.Close()
			if m.ID != snapDirName || m.Size != n {
				t.Fatalf("accepted a snapshot naming itself %q of %d bytes, holding %d", m.ID, m.Size, n)
			}
			return
		}
		if !errors.Is(err, ErrDamaged) {
			t.Fatalf("refusal does not wrap ErrDamaged: %v", err)
		}
		if !strings.Contains(err.Error(), filepath.Join(raftDir, "snapshots", snapDirName)) {
			t.Fatalf("refusal does not name the snapshot: %v", err)
		}
	})
}

// checkSnapshotMeta runs checkRaftFiles on a raft directory holding one
// snapshot of snapState with meta as its meta.json.
func checkSnapshotMeta(t *testing.T, meta []byte) (raftDir string, err error) {
	t.Helper()
	raftDir = t.TempDir()
	dir := filepath.Join(raftDir, "snapshots", snapDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "meta.json"), meta, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "state.bin"), []byte(snapState), 0o600); err != nil {
		t.Fatal(err)
	}
	return raftDir, checkRaftFiles(raftDir)
}

// snapState is the seeds' state.bin.
const snapState = "liandong snapshot state of the fuzz seeds\n"

// TestSnapshotMetaSeeds: the valid seed, a snapshot raft wrote of snapState,
// is accepted, so the fuzzer starts from the accepting path; the damaged ones
// are refused.
func TestSnapshotMetaSeeds(t *testing.T) {
	for _, tc := range []struct {
		seed string
		ok   bool
	}{
		{"valid", true},
		{"bad-crc", false},
		{"other-id", false},
		{"size-off-by-one", false}, // the CRC is right: only the size is wrong
		{"negative-size", false},
	} {
		t.Run(tc.seed, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "fuzz", "FuzzSnapshotMeta", tc.seed))
			if err != nil {
				t.Fatal(err)
			}
			s := strings.TrimPrefix(strings.TrimSpace(string(data)), "go test fuzz v1\n[]byte(")
			meta, err := strconv.Unquote(strings.TrimSuffix(s, ")"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := checkSnapshotMeta(t, []byte(meta)); (err == nil) != tc.ok {
				t.Fatalf("checkRaftFiles = %v, want accepted %v", err, tc.ok)
			}
		})
	}
}
