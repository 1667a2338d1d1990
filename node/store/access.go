package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// ErrNoAccess marks a file of the data directory this process may not read or
// write: a restore or a start run as another user (root) leaves files the
// node's own user cannot open. It is not damage, and moving the file aside
// (what ErrCorrupt's repair says) would throw a good state file away.
var ErrNoAccess = errors.New("no access to a file of the data directory")

// accessError says, for an open of path refused for permissions, whose the
// file is and what to run; any other error is returned unchanged.
func accessError(path string, err error) error {
	if !errors.Is(err, fs.ErrPermission) {
		return err
	}
	who := ""
	uid, gid := os.Geteuid(), os.Getegid()
	if owner, ownerGID, ok := FileOwner(path); ok {
		if owner == uid {
			// Its owner already: chown would change nothing, its mode
			// (restored or set read-only) is what refuses.
			return fmt.Errorf("%w: %s: it belongs to this node's user (uid %d), and its mode refuses what the node needs: "+
				"give the owner read and write back (chmod -R u+rwX %s); the file itself is not damaged: %w",
				ErrNoAccess, path, uid, filepath.Dir(path), err)
		}
		who = fmt.Sprintf(" it belongs to uid %d (gid %d), and", owner, ownerGID)
	}
	return fmt.Errorf("%w: %s:%s this node runs as uid %d: give the data directory to the node's user "+
		"(chown -R %d:%d %s) or run the node as the files' owner; the file itself is not damaged: %w",
		ErrNoAccess, path, who, uid, uid, gid, filepath.Dir(path), err)
}

// AccessError is accessError for the other files of the data directory
// (raft's log and snapshots): ErrNoAccess for an open refused for
// permissions, any other error unchanged.
func AccessError(path string, err error) error { return accessError(path, err) }
