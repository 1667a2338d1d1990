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

// startRecovery puts the node in own-log recovery when asked to and its own log
// is empty: it may have lost a log the federation still holds.
func (n *Node) startRecovery() error {
	if !n.cfg.RecoverOwnLog {
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
		return nil
	}
	return n.removeRecoveryMarker()
}

// recoveryMarker is the file that says a recovery of the own log began with
// no raft state, and has not ended (EndRecovery removes it).
const recoveryMarker = "own-log.recovering"

// settleRecovery decides, once raft's stores are open, whether a node whose
// state file holds no own log recovers it from peers. With raft state and no
// marker, the state file was rebuilt (a machine restart) or is behind, and
// raft's replay gives the own log back whole: no recovery. Without raft state
// the recovery begins, and a marker is written first, since the raft state
// this start leaves (a configuration, a leader's no-op) would otherwise make
// a restart before the peers answered take the empty log for a replayed one
// and sign a first entry they already hold: a fork.
func (n *Node) settleRecovery(snaps raft.SnapshotStore) error {
	has, err := raft.HasExistingState(n.logStore, n.logStore, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	marker := filepath.Join(n.cfg.DataDir, recoveryMarker)
	_, statErr := os.Stat(marker)
	switch {
	case !has:
		if err := writeSynced(marker, []byte(time.Now().UTC().Format(time.RFC3339)+"\n")); err != nil {
			return fmt.Errorf("record that the own log is being recovered: %w", err)
		}
	case errors.Is(statErr, fs.ErrNotExist):
		n.recovering.Store(false)
		n.log.Info("own log empty in the state file, but raft's log holds it: replaying it, not recovering it from peers")
	case statErr != nil:
		return fmt.Errorf("read %s: %w", marker, statErr)
	default:
		n.log.Info("own-log recovery begun before this start has not ended: still recovering", "marker", marker)
	}
	return nil
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
	if n.recovering.CompareAndSwap(true, false) {
		if err := n.removeRecoveryMarker(); err != nil {
			n.log.Warn("own log recovered, but its marker stays: a restart before this centre writes again would wait for its peers again", "err", err)
		}
		n.log.Info("own log recovered from peers; accepting writes", "seq", seq, "members_heard", members,
			"took", time.Since(n.recoveringSince).Round(time.Millisecond).String())
	}
}
