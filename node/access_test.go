//go:build unix

package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"liandong/node/store"
	"liandong/node/store/storetest"
)

// TestRaftLogWithoutAccessIsNotDamage: raft's log, of either kind, left
// another user's (a start run once as root) is a matter of ownership, as the
// state file is (store.ErrNoAccess). Before, a WAL's metadata or segment the
// node may not open was reported as ErrDamaged, whose repair moves raft's
// directory aside and rejoins: the log this replica acknowledged from thrown
// away. A bolt log it may read but not write passed the check and failed in
// raft-boltdb with "if the file is damaged: move it aside". Root ignores file
// modes, so as root the test runs itself again as nobody.
func TestRaftLogWithoutAccessIsNotDamage(t *testing.T) {
	if os.Geteuid() == 0 {
		storetest.RerunAsNobody(t, "TestRaftLogWithoutAccessIsNotDamage")
		return
	}
	for _, tc := range []struct {
		name, kind string
		file       func(raftDir string) string
		mode       os.FileMode
	}{
		{"wal metadata unreadable", LogStoreWAL, func(d string) string { return filepath.Join(d, walLogDir, walMetaFile) }, 0o000},
		{"wal metadata read-only", LogStoreWAL, func(d string) string { return filepath.Join(d, walLogDir, walMetaFile) }, 0o400},
		{"wal segment unreadable", LogStoreWAL, func(d string) string {
			segs, _ := filepath.Glob(filepath.Join(d, walLogDir, "*.wal"))
			return segs[0]
		}, 0o000},
		{"bolt log unreadable", LogStoreBolt, func(d string) string { return filepath.Join(d, boltLogFile) }, 0o000},
		{"bolt log read-only", LogStoreBolt, func(d string) string { return filepath.Join(d, boltLogFile) }, 0o400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, _, err := openLogStore(dir, tc.kind, walOptions{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.SetUint64([]byte("CurrentTerm"), 1); err != nil {
				t.Fatal(err)
			}
			s.Close()
			path := tc.file(dir)
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			err = checkRaftFiles(dir)
			if err == nil {
				if s, _, err = openLogStore(dir, "", walOptions{}, nil); err == nil {
					s.Close()
				}
			}
			if !errors.Is(err, store.ErrNoAccess) || errors.Is(err, ErrDamaged) {
				t.Fatalf("start on %s (mode %v): %v; want store.ErrNoAccess, not ErrDamaged", path, tc.mode, err)
			}
			for _, want := range []string{"chmod -R u+rwX", "not damaged", path} { // its own user's file: chown would change nothing
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%v; want it to say %q", err, want)
				}
			}
		})
	}
}

// TestRaftSnapshotReadOnlyFilesAccepted: raft only reads a snapshot's files
// (it makes a new snapshot beside them and reaps an old one by removing its
// directory), so files an operator restored read-only are what it needs; the
// start check opened them for writing and refused the directory as
// store.ErrNoAccess. What raft does need, entries it may add and remove in a
// snapshot's directory, is still checked: with one read-only, raft's reaping
// fails (shown here), and every snapshot after it with it.
func TestRaftSnapshotReadOnlyFilesAccepted(t *testing.T) {
	if os.Geteuid() == 0 {
		storetest.RerunAsNobody(t, "TestRaftSnapshotReadOnlyFilesAccepted")
		return
	}
	// snapshot makes one snapshot of raft's in raftDir and returns its
	// directory.
	snapshot := func(t *testing.T, snaps *raft.FileSnapshotStore, index uint64) string {
		t.Helper()
		sink, err := snaps.Create(raft.SnapshotVersionMax, index, 1, raft.Configuration{}, 1, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sink.Write([]byte("state")); err != nil {
			t.Fatal(err)
		}
		if err := sink.Close(); err != nil {
			t.Fatalf("snapshot at index %d: %v", index, err)
		}
		return sink.ID()
	}
	for _, tc := range []struct {
		name              string
		fileMode, dirMode os.FileMode
		ok                bool
	}{
		{"files read-only", 0o444, 0o755, true},
		{"files owner-read-only", 0o400, 0o700, true},
		{"files unreadable", 0o000, 0o755, false},
		{"directory read-only", 0o444, 0o555, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raftDir := t.TempDir()
			snaps, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 1, hclog.NewNullLogger())
			if err != nil {
				t.Fatal(err)
			}
			id := snapshot(t, snaps, 10)
			dir := filepath.Join(raftDir, "snapshots", id)
			for _, f := range []string{"meta.json", "state.bin"} {
				if err := os.Chmod(filepath.Join(dir, f), tc.fileMode); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Chmod(dir, tc.dirMode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
			err = checkRaftFiles(raftDir)
			if tc.ok {
				if err != nil {
					t.Fatalf("start check on snapshot files of mode %v: %v; want accepted", tc.fileMode, err)
				}
				// What raft does with them: open the newest, and reap it
				// once a newer one is made (retain 1).
				_, rc, err := snaps.Open(id)
				if err != nil {
					t.Fatalf("raft opens the accepted snapshot: %v", err)
				}
				rc.Close()
				snapshot(t, snaps, 20)
				if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("the older snapshot was not reaped: %v", err)
				}
				return
			}
			if !errors.Is(err, store.ErrNoAccess) || !strings.Contains(err.Error(), dir) {
				t.Fatalf("start check (files %v, directory %v): %v; want store.ErrNoAccess naming %s", tc.fileMode, tc.dirMode, err, dir)
			}
			if tc.fileMode&0o444 != 0 {
				// Premise: raft fails at it, so the refusal is for a reason.
				sink, err := snaps.Create(raft.SnapshotVersionMax, 20, 1, raft.Configuration{}, 1, nil)
				if err != nil {
					t.Fatal(err)
				}
				sink.Write([]byte("state"))
				if err := sink.Close(); err == nil {
					t.Fatalf("premise: raft reaped a snapshot of a read-only directory")
				}
			}
		})
	}
}
