//go:build unix

package store

import (
	"os"
	"syscall"
)

// FileOwner returns the uid and gid that own path (not known off unix).
func FileOwner(path string) (uid, gid int, ok bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}
