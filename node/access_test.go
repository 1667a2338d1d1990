//go:build unix

package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
			for _, want := range []string{"chown -R", "not damaged", path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("%v; want it to say %q", err, want)
				}
			}
		})
	}
}
