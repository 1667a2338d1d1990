package store

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
)

// TestOpenWithoutAccessIsNotDamage: a state file the node's user may not open
// (a restore or a start run as root leaves root's files) is a matter of
// ownership, not damage. Before, it was refused with "move it aside and
// restore from a snapshot or a peer" (a good state file thrown away), and one
// readable but not writable was even reported as ErrCorrupt, which after an
// unclean stop has the replica move it aside and rebuild it. Root ignores file
// modes, so as root the test runs itself again as nobody.
func TestOpenWithoutAccessIsNotDamage(t *testing.T) {
	if os.Geteuid() == 0 {
		rerunAsNobody(t, "TestOpenWithoutAccessIsNotDamage")
		return
	}
	for _, tc := range []struct {
		name string
		mode os.FileMode
	}{
		{"unreadable", 0o000},    // the read-only precheck is refused
		{"readable only", 0o400}, // the precheck passes; bbolt's read-write open is refused
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state.db")
			s, err := Open(path, Options{Centre: "tianjin"})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if err := os.Chmod(path, tc.mode); err != nil {
				t.Fatal(err)
			}
			_, err = Open(path, Options{Centre: "tianjin", OpenTimeout: time.Second})
			if !errors.Is(err, ErrNoAccess) || errors.Is(err, ErrCorrupt) {
				t.Fatalf("open: %v; want ErrNoAccess, not ErrCorrupt", err)
			}
			for _, want := range []string{"chown -R", "not damaged", path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("open: %v; want it to say %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "move it aside") {
				t.Errorf("open: %v; a file it may not open is not to be moved aside", err)
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
	bin := filepath.Join(dir, "store.test")
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
