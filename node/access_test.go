package node

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"liandong/node/store"
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
		rerunAsNobody(t, "TestRaftLogWithoutAccessIsNotDamage")
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

// rerunAsNobody runs test in a copy of this test binary as uid/gid 65534 and
// fails t with its output if it fails.
func rerunAsNobody(t *testing.T, test string) {
	t.Helper()
	// t.TempDir's parent is root's alone: nobody could not reach the copy.
	dir, err := os.MkdirTemp("", "liandong-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "node.test")
	src, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", "^"+test+"$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = []string{"TMPDIR=" + os.TempDir(), "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	cmd.WaitDelay = time.Minute
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s as nobody: %v\n%s", test, err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("%s as nobody did not pass:\n%s", test, out)
	}
}
