//go:build unix

package node

import "golang.org/x/sys/unix"

// dirWritable reports whether this process may add and remove entries in the
// directory path, without doing so.
func dirWritable(path string) error {
	return unix.Access(path, unix.W_OK|unix.X_OK)
}
