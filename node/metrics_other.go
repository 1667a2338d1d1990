//go:build !unix

package node

// filesystemSpace is not measured on this platform; the series are left out.
func filesystemSpace(string) (avail, size float64, ok bool) { return 0, 0, false }
