package exchange

// Own-log recovery. A centre whose state was lost (a new disk, a restore from an
// old backup) must not write again until it has learnt from its peers how far
// its own log went: its next entry would reuse a seq the federation already
// holds with other content, a fork of its own history that every peer refuses.
// So while the node says it is recovering, the exchange pulls the centre's own
// origin like any other, and ends recovery once enough peers have told their
// heads and none holds more of the own log than the node does.

// checkRecovery ends the node's own-log recovery when safe. It runs at the
// leader after heads are learnt and at each anti-entropy tick.
func (x *Exchange) checkRecovery() {
	if !x.node.Recovering() || !x.node.CanApply() {
		return
	}
	b := x.node.Bundle()
	if b == nil {
		return
	}
	others := 0
	for _, m := range b.Members {
		if m.ID != x.centre && m.Removed == nil && len(m.Peers) > 0 {
			others++
		}
	}
	x.mu.Lock()
	heard := map[string]bool{}
	for _, ps := range x.peers {
		// Only full heads say how far the own log went: a push's claim
		// covers the pusher's origin alone (fullHeads, not headsAt).
		if ps.member != "" && ps.member != x.centre && ps.fullHeads {
			heard[ps.member] = true
		}
	}
	local := x.originLocked(x.centre).local
	best, _ := x.bestLocked(x.centre, local)
	x.mu.Unlock()
	// A majority of the other members: one peer may itself lag behind the log.
	if others > 0 && len(heard) < others/2+1 {
		return
	}
	if best.Seq > local.Seq {
		x.wakePull()
		return
	}
	x.node.EndRecovery(local.Seq, len(heard))
}
