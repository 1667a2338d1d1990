package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"liandong/node/store"
)

// ErrDamaged marks a file of the data directory found damaged at start. The
// replica does not start, so it cannot lead, until the file is repaired; the
// error says which file and what to do.
var ErrDamaged = errors.New("damaged file in the data directory")

// ErrLogStoreMismatch refuses to start when raft.log_store names another kind
// of log than the data directory holds: a setting to correct, not damage.
var ErrLogStoreMismatch = errors.New("raft.log_store does not match the data directory")

// repairByRejoin says what to do about raft's files in dataDir.
func repairByRejoin(dataDir string) string {
	return fmt.Sprintf("this replica will not start (so it cannot lead) until this is repaired. "+
		"In a centre of several replicas: move %s, %s and %s aside (keep the keys), set raft.join to a healthy replica's URL "+
		"(and raft.bootstrap off, or it would found a group of its own) and start it: it receives a snapshot and the log from the leader. "+
		"A single replica: move the data directory aside and lay the latest backup into a new one (liandong centre restore --from FILE --config CONFIG); "+
		"the node then recovers from its federation peers what the centre signed since",
		filepath.Join(dataDir, "raft"), filepath.Join(dataDir, "state.db"), filepath.Join(dataDir, searchFile))
}

// checkRaftFiles checks raft's log (bbolt) and snapshots before raft opens them:
// raft-boltdb would panic on a damaged log page, and a damaged snapshot would be
// found only when a follower needs it. The newest snapshot is read whole to check
// its CRC.
func checkRaftFiles(raftDir string) error {
	if err := checkRaftAccess(raftDir); err != nil {
		return err
	}
	repair := repairByRejoin(filepath.Dir(raftDir))
	logPath := filepath.Join(raftDir, boltLogFile)
	if fi, err := os.Stat(logPath); err == nil && fi.Size() > 0 {
		if err := store.CheckBoltFile(logPath); err != nil {
			if errors.Is(err, store.ErrNoAccess) {
				return fmt.Errorf("raft log: %w", err)
			}
			detail := strings.TrimPrefix(err.Error(), store.ErrCorrupt.Error()+": ")
			return fmt.Errorf("%w: raft log %s is damaged (%s); %s", ErrDamaged, logPath, detail, repair)
		}
	}
	snapDir := filepath.Join(raftDir, "snapshots")
	dirs, err := os.ReadDir(snapDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read snapshot directory: %w", err)
	}
	type snap struct {
		id          string
		term, index uint64
	}
	var snaps []snap
	for _, d := range dirs {
		if !d.IsDir() || strings.HasSuffix(d.Name(), ".tmp") {
			continue
		}
		metaPath := filepath.Join(snapDir, d.Name(), "meta.json")
		data, err := os.ReadFile(metaPath)
		var meta raft.SnapshotMeta
		if err == nil {
			err = json.Unmarshal(data, &meta)
		}
		if err == nil && meta.ID != d.Name() {
			err = fmt.Errorf("names snapshot %q", meta.ID)
		}
		if err != nil {
			return fmt.Errorf("%w: snapshot metadata %s: %v; %s", ErrDamaged, metaPath, err, repair)
		}
		snaps = append(snaps, snap{meta.ID, meta.Term, meta.Index})
	}
	if len(snaps) == 0 {
		return nil
	}
	sort.Slice(snaps, func(i, j int) bool {
		a, b := snaps[i], snaps[j]
		if a.term != b.term {
			return a.term > b.term
		}
		if a.index != b.index {
			return a.index > b.index
		}
		return a.id > b.id
	})
	snapStore, err := raft.NewFileSnapshotStoreWithLogger(raftDir, 2, hclog.NewNullLogger())
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	newest := filepath.Join(snapDir, snaps[0].id, "state.bin")
	meta, rc, err := snapStore.Open(snaps[0].id) // reads it whole and checks its CRC
	if err != nil {
		return fmt.Errorf("%w: snapshot %s: %v; %s", ErrDamaged, newest, err, repair)
	}
	// The CRC covers state.bin, not the size meta.json gives it, which raft
	// sends a follower installing the snapshot: a follower refuses one of
	// another size, so a wrong size would keep every follower that needs
	// this snapshot from catching up, with nothing wrong here.
	if err := rc.Close(); err != nil {
		return fmt.Errorf("snapshot %s: %w", newest, err)
	}
	fi, err := os.Stat(newest)
	if err != nil {
		return fmt.Errorf("snapshot %s: %w", newest, err)
	}
	if fi.Size() != meta.Size {
		return fmt.Errorf("%w: snapshot metadata %s: size %d, but %s holds %d bytes; %s",
			ErrDamaged, filepath.Join(snapDir, snaps[0].id, "meta.json"), meta.Size, newest, fi.Size(), repair)
	}
	return nil
}

// checkLogCoversState refuses a raft log that ends before what the state file
// has applied, unless the newest snapshot holds it: the log lost entries this
// replica acknowledged (a segment or file cut short), and raft, which trusts
// its log, would hand out those indexes again for other entries, which the
// state file would then skip as already applied. A snapshot's copy of the
// state is taken while raft applies on, so it may hold entries past the index
// the snapshot is named after: a follower that installed it, and restarts
// before its leader's next entries reach that far, has applied more than its
// log and the snapshot's name say. Its content's own applied index counts.
func (n *Node) checkLogCoversState(raftDir string, snaps raft.SnapshotStore) error {
	applied, _, err := n.st.AppliedIndex()
	if err != nil || applied == 0 {
		return err
	}
	if restored, err := n.restoredFromBackup(); err != nil || restored {
		// A restored state file is at index 1 of a group not founded yet:
		// the snapshot that holds it is made at bootstrap.
		return err
	}
	last, err := n.logStore.LastIndex()
	if err != nil {
		return fmt.Errorf("%w: raft log in %s: read its last index: %v; %s", ErrDamaged, raftDir, err, repairByRejoin(n.cfg.DataDir))
	}
	if applied <= last {
		return nil
	}
	list, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	covered := uint64(0)
	if len(list) > 0 {
		covered = list[0].Index
		if applied > covered {
			// checkRaftFiles has checked this file's CRC.
			in, err := store.AppliedIndexOf(filepath.Join(raftDir, "snapshots", list[0].ID, "state.bin"))
			if err != nil {
				return fmt.Errorf("%w: snapshot %s: %v; %s", ErrDamaged, list[0].ID, err, repairByRejoin(n.cfg.DataDir))
			}
			covered = max(covered, in)
		}
	}
	if applied <= covered {
		return nil
	}
	where := filepath.Join(raftDir, boltLogFile)
	if n.logStoreKind == LogStoreWAL {
		where = filepath.Join(raftDir, walLogDir)
	}
	return fmt.Errorf("%w: raft log %s ends at entry %d, but the state file has applied entry %d: the log lost entries this replica acknowledged; %s",
		ErrDamaged, where, last, applied, repairByRejoin(n.cfg.DataDir))
}

// checkLogReachesSnapshot refuses a raft log that starts after the newest
// snapshot ends: raft reads every entry between the two at start, and panics
// on the first missing one. Raft never leaves such a gap; a snapshot moved
// aside (the newest was found damaged, say) does, since the log was compacted
// behind it.
func (n *Node) checkLogReachesSnapshot(raftDir string, snaps raft.SnapshotStore) error {
	last, err := n.logStore.LastIndex()
	if err != nil || last == 0 {
		return err
	}
	first, err := n.logStore.FirstIndex()
	if err != nil {
		return fmt.Errorf("%w: raft log in %s: read its first index: %v; %s", ErrDamaged, raftDir, err, repairByRejoin(n.cfg.DataDir))
	}
	list, err := snaps.List()
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	snapshot, which := uint64(0), "there is no snapshot"
	if len(list) > 0 {
		snapshot, which = list[0].Index, fmt.Sprintf("the newest snapshot (%s) ends at entry %d", list[0].ID, list[0].Index)
	}
	if first <= snapshot+1 {
		return nil
	}
	return fmt.Errorf("%w: raft log in %s starts at entry %d, but %s: entries %d to %d are in neither (was a newer snapshot moved out of %s?); put that snapshot back, or %s",
		ErrDamaged, raftDir, first, which, snapshot+1, first-1, filepath.Join(raftDir, "snapshots"), repairByRejoin(n.cfg.DataDir))
}

// removeHalfWritten deletes what a crash can leave behind and nothing reads:
// raft's half-written snapshot directories (*.tmp, which raft skips but never
// removes) and a half-copied snapshot beside the state file.
func (n *Node) removeHalfWritten() {
	tmps, _ := filepath.Glob(filepath.Join(n.cfg.DataDir, "raft", "snapshots", "*.tmp"))
	backups, _ := filepath.Glob(filepath.Join(n.cfg.DataDir, backupTempPattern))
	tmps = append(tmps, backups...)
	restore := filepath.Join(n.cfg.DataDir, "state.db.restore")
	if _, err := os.Stat(restore); err == nil {
		tmps = append(tmps, restore)
	}
	for _, p := range tmps {
		if err := os.RemoveAll(p); err != nil {
			n.log.Warn("remove what a crash left behind", "path", p, "err", err)
			continue
		}
		n.log.Info("removed what a crash left behind", "path", p)
	}
}

// checkRaftAccess checks that this process may do to raft's files what raft
// will: open the log (either kind) for reading and writing, read every file
// of a snapshot, and make and remove entries in the snapshot directory and in
// each snapshot's own (raft creates a snapshot beside the others and reaps
// the oldest by removing its directory; it never writes to a snapshot's
// files). The first refusal for permissions is store.ErrNoAccess: raft's
// files left another user's (a start run once as root) would otherwise fail
// their checks or their opens as damage, whose repair (move raft's directory
// aside, rejoin) throws away the log this replica acknowledged from. A
// snapshot's files restored read-only are what raft needs: asking to write
// them refused a good directory. Nothing is written.
func checkRaftAccess(raftDir string) error {
	snapDir := filepath.Join(raftDir, "snapshots")
	return filepath.WalkDir(raftDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return fmt.Errorf("raft directory: %w", store.AccessError(path, err))
		}
		inSnapshots := path == snapDir || strings.HasPrefix(path, snapDir+string(filepath.Separator))
		if d.IsDir() {
			if inSnapshots {
				if err := dirWritable(path); err != nil {
					return fmt.Errorf("raft snapshot directory (raft adds and removes snapshots there): %w", store.AccessError(path, err))
				}
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		mode := os.O_RDWR
		if inSnapshots {
			mode = os.O_RDONLY
		}
		f, err := os.OpenFile(path, mode, 0)
		if err != nil {
			return fmt.Errorf("raft directory: %w", store.AccessError(path, err))
		}
		return f.Close()
	})
}
