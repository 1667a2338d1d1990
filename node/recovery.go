package node

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/raft"
)

// ErrRecovering is returned for writes while the centre recovers its own log
// from its peers; it wraps ErrNotReady, so the API answers 503 with Retry-After.
var ErrRecovering = fmt.Errorf("%w: recovering this centre's own log from its peers before accepting writes (it lost its state, or never wrote)", ErrNotReady)

// startRecovery puts the node in own-log recovery when asked to and either
// a recovery begun earlier has not ended (its marker is on disk: whatever the
// state file holds, part of the log may still be missing) or its own log is
// empty: it may have lost a log the federation still holds. Whether an empty
// own log is really lost is settled once raft's stores are open
// (settleRecovery).
func (n *Node) startRecovery() error {
	if !n.cfg.RecoverOwnLog {
		return nil
	}
	marked, err := n.recoveryMarked()
	if err != nil {
		return err
	}
	if marked {
		n.recovering.Store(true)
		n.recoveringSince = time.Now()
		if n.cfg.SkipOwnLogRecovery {
			n.log.Warn("p2p.skip_own_log_recovery is not honoured: an own-log recovery was begun, or the state restored from a backup, and writes wait until peers have said how far the log went")
		}
		n.log.Info("own-log recovery begun before this start has not ended: writes wait until peers have said how far the log went")
		return nil
	}
	if n.cfg.SkipOwnLogRecovery {
		return nil
	}
	head, err := n.st.Head(n.cfg.Centre)
	if err != nil {
		return err
	}
	if head.Seq == 0 {
		n.recovering.Store(true)
		n.recoveringSince = time.Now()
		n.log.Info("own log empty: writes wait until peers have said how far it went")
	}
	return nil
}

// recoveryMarker is the file that says a recovery of the own log began with
// no raft state, and has not ended (endRecovery removes it).
const recoveryMarker = "own-log.recovering"

func (n *Node) recoveryMarked() (bool, error) {
	_, err := os.Stat(filepath.Join(n.cfg.DataDir, recoveryMarker))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	}
	return false, fmt.Errorf("read the own-log recovery marker: %w", err)
}

// settleRecovery decides, once raft's stores are open, about a recovery that
// startRecovery began for an empty own log without a marker. Without raft
// state the log is lost (or never was): the recovery stands, and a marker is
// written first, since the raft state this start leaves (a configuration, a
// leader's no-op) would otherwise let a restart before the peers answered
// take the empty log for one raft replays, and sign a first entry they
// already hold: a fork. With raft state, the state file may have been rebuilt
// (a machine restart) or be behind, and raft's replay may give the own log
// back: that is decided once the node has caught up (settleReplayedRecovery).
func (n *Node) settleRecovery(snaps raft.SnapshotStore) error {
	if marked, err := n.recoveryMarked(); err != nil || marked {
		return err
	}
	has, err := raft.HasExistingState(n.logStore, n.logStore, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	if has {
		n.recoveryAfterReplay.Store(true)
		return nil
	}
	if err := writeSynced(filepath.Join(n.cfg.DataDir, recoveryMarker), []byte(time.Now().UTC().Format(time.RFC3339)+"\n")); err != nil {
		return fmt.Errorf("record that the own log is being recovered: %w", err)
	}
	return nil
}

// settleReplayedRecovery ends a recovery settleRecovery left to the replay,
// once the node has caught up, if the replay gave the own log back. An own
// log still empty then stays in recovery: a centre that never wrote asks its
// peers, as one started by an older build in the middle of a recovery must.
func (n *Node) settleReplayedRecovery() {
	if !n.recoveryAfterReplay.CompareAndSwap(true, false) {
		return
	}
	if head, err := n.st.Head(n.cfg.Centre); err == nil && head.Seq > 0 {
		n.endRecovery("own log replayed from raft's log, not recovered from peers", "seq", head.Seq)
	}
}

// endRecovery lets the node write again and removes the marker.
func (n *Node) endRecovery(why string, args ...any) {
	if !n.recovering.CompareAndSwap(true, false) {
		return
	}
	if err := n.removeRecoveryMarker(); err != nil {
		n.log.Warn("own-log recovery ended, but its marker stays: a restart would wait for peers again", "err", err)
	}
	n.log.Info(why, append(args, "took", time.Since(n.recoveringSince).Round(time.Millisecond).String())...)
}

func (n *Node) removeRecoveryMarker() error {
	if err := os.Remove(filepath.Join(n.cfg.DataDir, recoveryMarker)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove the own-log recovery marker: %w", err)
	}
	return nil
}

// Recovering reports whether the node is recovering its own log from peers.
func (n *Node) Recovering() bool { return n.recovering.Load() }

// EndRecovery lets the node write again: peers hold no more of its own log
// than seq, as heard from members of them.
func (n *Node) EndRecovery(seq uint64, members int) {
	n.endRecovery("own log recovered from peers; accepting writes", "seq", seq, "members_heard", members)
}
