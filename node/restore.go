package node

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"liandong/node/store"
)

// backupTempPattern names the local copy Backup streams from; one a crash
// left behind is removed at start (removeHalfWritten).
const backupTempPattern = "backup-*.tmp"

// Backup writes a consistent copy of the state file to w (store.Backup),
// through a file in the data directory: the copy holds the state file's lock,
// which a stop and a snapshot install wait for (and every read and apply
// behind them), so it is taken at the disk's pace, not at the pace of a
// client reading w. started is called with what the copy holds once it is
// taken; an error from it ends the backup before w sees a byte.
func (n *Node) Backup(w io.Writer, started func(store.BackupInfo) error) (int64, error) {
	f, err := os.CreateTemp(n.cfg.DataDir, backupTempPattern)
	if err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	var info store.BackupInfo
	if _, err := n.st.Backup(f, func(i store.BackupInfo) error {
		info = i
		// The copy stays until the client has read it: taking the last of
		// the disk would fail the centre's writes for that long.
		if avail, _, ok := n.freeSpace(n.cfg.DataDir); ok && avail < float64(i.Size+backupHeadroom(i.Size)) {
			return fmt.Errorf("%w: a backup needs a copy of the state file (%d bytes) and room to write beside it in %s, and %.0f bytes are free there",
				ErrNoRoomForBackup, i.Size, n.cfg.DataDir, avail)
		}
		return nil
	}); err != nil {
		if isDiskFull(err) && !errors.Is(err, ErrNoRoomForBackup) {
			err = fmt.Errorf("%w: %w", ErrNoRoomForBackup, err)
		}
		return 0, fmt.Errorf("backup: copy the state file: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return 0, fmt.Errorf("backup: %w", err)
	}
	if started != nil {
		if err := started(info); err != nil {
			return 0, err
		}
	}
	return io.Copy(w, f)
}

// ErrNoRoomForBackup refuses a backup whose copy would not fit on the disk
// beside the centre's writes (the API's 507; the centre's writes go on).
var ErrNoRoomForBackup = errors.New("no room for a backup")

// backupHeadroom is the free space a backup leaves beside its copy of a
// state file of size bytes, for the writes that go on while it is read.
func backupHeadroom(size int64) int64 { return max(size/10, 64<<20) }

// restoreCopied, when a test sets it, runs once the backup is copied to tmp
// and before the copy is prepared: the moment the data directory's owner
// could swap a link in under tmp.
var restoreCopied func(tmp string)

// ErrDataDirInUse refuses a restore into a data directory that holds a state
// file or raft state.
var ErrDataDirInUse = errors.New("data directory in use")

// Restore lays a backup of centre's state file (store.Backup, GET
// /v1/admin/backup) into dataDir, an empty data directory, as the state of a
// replica that then bootstraps a new raft group (bootstrap: true; the others
// join it as new replicas).
//
// A backup is older than what the centre signed since: its own log ends
// before the log the federation holds. Signing the next entry from the
// backup's head would fork the log, so the restored node begins an own-log
// recovery (the marker recovery.go reads): it writes nothing of its own until
// its peers have said how far its log went, and it pulls what they hold.
// Records the centre kept private after the backup was taken are not held by
// any peer and are lost; so is everything written after it in a centre with
// no federation peers (where there is nobody to ask, and no recovery runs).
func Restore(dataDir, centre, from string) (store.BackupInfo, error) {
	if err := restoreTarget(dataDir); err != nil {
		return store.BackupInfo{}, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return store.BackupInfo{}, fmt.Errorf("create data directory: %w", err)
	}
	// A restore is run as root more often than as the node's user: files
	// left root's would keep the node from opening them (permission denied).
	// They go to whoever owns the data directory, as everything else there is.
	owner := dirOwner(dataDir)
	// The copy is prepared under another name, so that a restore cut short
	// leaves no state file a start would take for a real one; a start removes
	// it (removeHalfWritten).
	tmp := filepath.Join(dataDir, "state.db.restore")
	copied, err := copySynced(from, tmp, owner)
	if err != nil {
		os.Remove(tmp)
		return store.BackupInfo{}, fmt.Errorf("copy the backup: %w", err)
	}
	defer copied.Close()
	if restoreCopied != nil {
		restoreCopied(tmp)
	}
	info, err := prepareCopy(copied, tmp, centre, owner)
	if err != nil {
		os.Remove(tmp)
		return info, err
	}
	marker := []byte("restored from " + from + "\n")
	if err := createSynced(filepath.Join(dataDir, recoveryMarker), owner, func(f *os.File) error { _, err := f.Write(marker); return err }); err != nil {
		os.Remove(tmp)
		return info, fmt.Errorf("write the own-log recovery marker: %w", err)
	}
	if err := createSynced(filepath.Join(dataDir, restoredMarker), owner, func(f *os.File) error { _, err := f.Write(marker); return err }); err != nil {
		os.Remove(tmp)
		return info, fmt.Errorf("write the restore marker: %w", err)
	}
	if err := sameFile(copied, tmp); err != nil {
		return info, err
	}
	// Closed before the rename: Windows refuses to rename a file open
	// without FILE_SHARE_DELETE, which Go's os.OpenFile does not ask for.
	if err := copied.Close(); err != nil {
		return info, fmt.Errorf("close the copy %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dataDir, "state.db")); err != nil {
		return info, fmt.Errorf("put the restored state file in place: %w", err)
	}
	if err := syncDir(dataDir); err != nil {
		return info, err
	}
	return info, nil
}

// restoreTarget refuses a data directory that holds a state file, a search
// index or raft state: a restore starts a replica afresh, and what it would
// overwrite may be the only copy of something.
func restoreTarget(dataDir string) error {
	for _, p := range []string{"state.db", searchFile, filepath.Join("raft", boltLogFile), filepath.Join("raft", walLogDir), filepath.Join("raft", "snapshots")} {
		held, err := holdsLog(filepath.Join(dataDir, p))
		if err != nil {
			return err
		}
		if held {
			return fmt.Errorf("%w: %s holds %s; restore into a new, empty data directory (move this one aside first)", ErrDataDirInUse, dataDir, p)
		}
	}
	return nil
}

// copySynced copies from into a new file to (createSynced), and returns the
// copy still open: Restore works on it through this descriptor, not its name.
func copySynced(from, to string, owner *fileOwner) (*os.File, error) {
	src, err := os.Open(from)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return createSyncedOpen(to, owner, func(dst *os.File) error {
		_, err := io.Copy(dst, src)
		return err
	})
}

// prepareCopy checks the copy f of a backup, made at path, and prepares it
// for a new raft group (store.PrepareRestore). Run as root into another
// user's directory (owner set), the file is opened again through /proc's link
// to the descriptor rather than by path: that user may have swapped a link in
// under path since, and root would check and rewrite whatever it names (a
// state file of root's elsewhere, or a file it would create there).
func prepareCopy(f *os.File, path, centre string, owner *fileOwner) (store.BackupInfo, error) {
	open := path
	if owner != nil {
		open = fmt.Sprintf("/proc/self/fd/%d", f.Fd())
		fi, err := f.Stat()
		if err != nil {
			return store.BackupInfo{}, fmt.Errorf("prepare the copy %s: %w", path, err)
		}
		via, err := os.Stat(open)
		if err == nil && !os.SameFile(fi, via) {
			err = errors.New("it names another file")
		}
		if err != nil {
			return store.BackupInfo{}, fmt.Errorf("prepare the copy %s: %s does not reach it (no /proc?): "+
				"run the restore as the data directory's owner rather than as root: %w", path, open, err)
		}
	}
	info, err := store.PrepareRestore(open, centre)
	if err != nil {
		return info, fmt.Errorf("prepare the copy %s: %w", path, err)
	}
	return info, nil
}

// sameFile refuses path when it no longer names f, the copy prepared: the
// data directory's owner replaced it, and the rename would put that in place
// of the state file.
func sameFile(f *os.File, path string) error {
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("check the copy %s: %w", path, err)
	}
	at, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("check the copy %s: %w", path, err)
	}
	if !os.SameFile(fi, at) {
		return fmt.Errorf("%s was replaced during the restore; restore again into a new, empty data directory", path)
	}
	return nil
}

// createSynced makes path a new file written by write, synced, and given to
// owner (createSyncedOpen), and closes it.
func createSynced(path string, owner *fileOwner, write func(*os.File) error) error {
	f, err := createSyncedOpen(path, owner, write)
	if err != nil {
		return err
	}
	return f.Close()
}

// createSyncedOpen makes path a new file written by write, synced, and given
// to owner (nil: left as made), and returns it open. The data directory is
// the node user's, who may have left a link under the name (a node taken over
// waiting for root's next restore): the name is replaced, never followed
// (O_EXCL refuses a link, dangling or not, made again after the removal), and
// the file is chowned through its descriptor, so that a link swapped in after
// the open cannot turn the chown onto another file.
func createSyncedOpen(path string, owner *fileOwner, write func(*os.File) error) (*os.File, error) {
	if err := removeIfExists(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	if owner != nil {
		if err := f.Chown(owner.uid, owner.gid); err != nil {
			f.Close()
			return nil, fmt.Errorf("give %s to the data directory's owner (uid %d): %w", path, owner.uid, err)
		}
	}
	if err := write(f); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// restoredMarker says the state file came from a backup (Restore) and no raft
// group holds it yet. The bootstrap that founds the group makes a snapshot of
// it at raft index 1 rather than start an empty log: the log would replay to
// a replica that joins, or to this one once its state file is rebuilt after a
// machine restart, only what came after the restore, and each would sign its
// centre's next write from an empty own log, a fork.
const restoredMarker = "state.restored"

func (n *Node) restoredFromBackup() (bool, error) {
	_, err := os.Stat(filepath.Join(n.cfg.DataDir, restoredMarker))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("read the restore marker: %w", err)
}

// foundOnRestoredState founds the group on a snapshot of the restored state
// file, at index 1 and term 1 (PrepareRestore set the file's applied index to
// match), with this replica its only voter.
func (n *Node) foundOnRestoredState(snaps raft.SnapshotStore, conf raft.Configuration) error {
	sink, err := snaps.Create(raft.SnapshotVersionMax, 1, 1, conf, 1, n.transport)
	if err != nil {
		return fmt.Errorf("snapshot the restored state: %w", err)
	}
	if err := n.st.WriteSnapshot(sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("snapshot the restored state: %w", err)
	}
	if err := sink.Close(); err != nil {
		return fmt.Errorf("snapshot the restored state: %w", err)
	}
	// Raft starts a term from its stable store; the snapshot's is 1.
	if err := n.logStore.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		return fmt.Errorf("found the group on the restored state: %w", err)
	}
	return removeIfExists(filepath.Join(n.cfg.DataDir, restoredMarker))
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// fileOwner is a uid and gid to give files to.
type fileOwner struct{ uid, gid int }

// dirOwner is the owner of dir when this process runs as root and dir belongs
// to another user, nil otherwise: the files are already the user's who made
// them, and nothing else could be done without privileges.
func dirOwner(dir string) *fileOwner {
	if os.Geteuid() != 0 {
		return nil
	}
	uid, gid, ok := store.FileOwner(dir)
	if !ok || uid == 0 {
		return nil
	}
	return &fileOwner{uid, gid}
}
