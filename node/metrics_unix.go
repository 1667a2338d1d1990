//go:build unix

package node

import "syscall"

// filesystemSpace reports the bytes available to unprivileged users and the size
// of the filesystem holding path, for the disk-filling alert.
func filesystemSpace(path string) (avail, size float64, ok bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, false
	}
	return float64(st.Bavail) * float64(st.Bsize), float64(st.Blocks) * float64(st.Bsize), true
}
