package node

import (
	"fmt"
	"time"
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
	}
	return nil
}

// Recovering reports whether the node is recovering its own log from peers.
func (n *Node) Recovering() bool { return n.recovering.Load() }

// EndRecovery lets the node write again: peers hold no more of its own log
// than seq, as heard from members of them.
func (n *Node) EndRecovery(seq uint64, members int) {
	if n.recovering.CompareAndSwap(true, false) {
		n.log.Info("own log recovered from peers; accepting writes", "seq", seq, "members_heard", members,
			"took", time.Since(n.recoveringSince).Round(time.Millisecond).String())
	}
}
