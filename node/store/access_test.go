//go:build unix

package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liandong/node/store/storetest"
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
		storetest.RerunAsNobody(t, "TestOpenWithoutAccessIsNotDamage")
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
			for _, want := range []string{"chmod -R u+rwX", "not damaged", path} { // its own user's file: chown would change nothing
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
