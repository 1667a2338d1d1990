package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"

	"liandong/node/store"
)

// ErrBadReplica is returned for a replica that may not join this centre.
var ErrBadReplica = errors.New("replica refused")

// BadReplicaError is an ErrBadReplica that names the member of the replica
// (store.Replica's JSON name) at fault, for the API's problem.
type BadReplicaError struct {
	Field string
	err   error
}

func (e *BadReplicaError) Error() string { return e.err.Error() }
func (e *BadReplicaError) Unwrap() error { return e.err }

// badReplica is ErrBadReplica, blaming field.
func badReplica(field, format string, args ...any) error {
	return &BadReplicaError{Field: field, err: fmt.Errorf("%w: "+format, append([]any{ErrBadReplica}, args...)...)}
}

// ReplicaInfo is one replica as the group sees it: raft's configuration joined
// with the addresses the group recorded.
type ReplicaInfo struct {
	store.Replica
	Suffrage string `json:"suffrage"`
	Leader   bool   `json:"leader"`
}

// CheckReplicaID refuses ids that do not name a replica of this centre
// ("<centre>-<name>"), so a replica configured for another centre cannot join.
func (n *Node) CheckReplicaID(id string) error {
	rest, ok := strings.CutPrefix(id, n.cfg.Centre+"-")
	if !ok || rest == "" || len(id) > 64 {
		return badReplica("id", "replica id %q must be %s-<name>", id, n.cfg.Centre)
	}
	return nil
}

// AddReplica adds r as a voter and records its addresses. Only the leader can.
func (n *Node) AddReplica(ctx context.Context, r store.Replica) error {
	if err := n.CheckReplicaID(r.ID); err != nil {
		return err
	}
	if r.RaftAddr == "" {
		return badReplica("raft_addr", "replica %s needs a raft address", r.ID)
	}
	if r.HTTP == "" {
		return badReplica("http", "replica %s needs an HTTP URL", r.ID)
	}
	if err := checkReplicaURL(r.HTTP); err != nil {
		return err
	}
	if err := n.checkReplicaPeer(r.PeerID); err != nil {
		return err
	}
	if !n.IsLeader() {
		return ErrNotLeader
	}
	// The group's own note of a move under way (addVoterAt) is not the
	// caller's to set.
	r.AddBackAt = ""
	// Asked whether or not the feed is named yet: an older build that
	// joined would apply create-only writes as plain ones (its record,
	// without features, keeps the leader from proposing them, but a leader
	// of an older build may not know to ask).
	if n.cfg.CheckJoiner != nil {
		if err := n.cfg.CheckJoiner(ctx, r); err != nil {
			return badReplica("http", "%v", err)
		}
	}
	n.replicaMu.Lock()
	defer n.replicaMu.Unlock()
	// Counted once the change is done, before the lock is let go: an
	// answer asked for while it was under way is not recorded (Membership).
	defer n.membershipChanges.Add(1)
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout) // from now, not from before the wait for the lock
	defer cancel()
	if err := n.addVoterAt(ctx, r); err != nil {
		return err
	}
	// What the joiner's build can do is learnt by asking it (RecordFeatures),
	// not taken from whoever asked to add it.
	r.Features = ""
	_, err := n.propose(ctx, &store.Command{Replica: &store.ReplicaCommand{Replica: r}})
	return err
}

// addVoterAt makes r.ID a voter at r.RaftAddr: added if it is new, taken out
// of the configuration and added back if it is a follower held at another
// address (removeFromOldAddress), changed in place if it is this leader.
// Called under replicaMu, by AddReplica and NameRaftAddresses.
func (n *Node) addVoterAt(ctx context.Context, r store.Replica) error {
	// Raft refuses an address another server holds, but only at the
	// addition: after a move's removal, that would leave the replica out.
	for _, srv := range n.servers() {
		if string(srv.ID) != r.ID && srv.Address == raft.ServerAddress(r.RaftAddr) {
			return badReplica("raft_addr", "raft address %s is replica %s's", r.RaftAddr, srv.ID)
		}
	}
	old, removeErr := n.removeFromOldAddress(ctx, r)
	if removeErr != nil && old == "" {
		return removeErr
	}
	if old != "" && removeErr == nil {
		failpointMoveRemoved(n, r.ID)
	}
	if old != "" {
		// Raft was asked to take it out, which may commit whatever the
		// caller does from now on, and nothing else adds back a voter raft
		// does not hold (NameRaftAddresses renames only voters it holds;
		// only a replica with a join address asks to be added). So the
		// addition is asked for and waited on even once the caller's
		// context has ended (a stop ends the membership loop's, a stop's
		// drain an AddReplica request's), for at most the apply timeout:
		// returning at the cancellation left the group a voter short for
		// good (TestNameRaftAddressesAddsBackWhatItTookOut). Raft queues it
		// behind the removal if that has not committed yet.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), n.cfg.ApplyTimeout)
		defer cancel()
	}
	if err := n.await(ctx, "add voter", n.raft.AddVoter(raft.ServerID(r.ID), raft.ServerAddress(r.RaftAddr), 0, n.timeout(ctx))); err != nil {
		if old != "" {
			// The group may be a voter short until the leader's
			// membership loop adds it back from its record's note
			// (AddBackMoved), or someone adds it again: say so.
			err = errors.Join(removeErr, err)
			n.log.Error("a replica taken out of the group to be added back at a new raft address may not have been added back: the leader adds it back within seconds if its record notes the move (add_back_at), or add it again", "replica", r.ID, "from", old, "to", r.RaftAddr, "err", err)
			return fmt.Errorf("%s, taken out of the group at raft address %s, may be out of it until added at %s (the leader adds it back if its record notes the move; or ask again): %w", r.ID, old, r.RaftAddr, err)
		}
		return err
	}
	// Added, or added back after a move: what it answered at the old
	// address says nothing of the new one (removal checks say "not yet").
	n.acks.forget(raft.ServerID(r.ID))
	if old != "" {
		// Back in: the note that it is to be added back has done its work.
		// Left, it is harmless (AddBackMoved finds the replica in the
		// configuration and clears it).
		if err := n.clearAddBack(ctx, r.ID, r.RaftAddr); err != nil {
			n.log.Warn("a replica added back at its new raft address is still noted as to be added back; the next leader's membership loop clears it", "replica", r.ID, "err", err)
		}
	}
	return nil
}

// noteAddBack records, before a voter is taken out of the configuration to be
// added back at addr, that it is to be added back there (store.Replica's
// AddBackAt): the leader that takes it out may lose its leadership, or stop,
// before it adds it back, and the next one finds the note (AddBackMoved). r is
// the replica as the caller gave it, recorded so (without its features) if
// the group holds no record of it. Called under replicaMu.
func (n *Node) noteAddBack(ctx context.Context, r store.Replica, addr string) error {
	recorded, err := n.appliedReplicas(ctx)
	if err != nil {
		return err
	}
	note := r
	note.Features = ""
	if i := slices.IndexFunc(recorded, func(x store.Replica) bool { return x.ID == r.ID }); i >= 0 {
		note = recorded[i]
	}
	note.AddBackAt = addr
	if _, err := n.propose(ctx, &store.Command{Replica: &store.ReplicaCommand{Replica: note}}); err != nil {
		return fmt.Errorf("note that %s is to be added back at raft address %s: %w", r.ID, addr, err)
	}
	return nil
}

// clearAddBack drops the note that id is to be added back (noteAddBack), now
// that raft holds it at held: at that address, the record says so too. A
// record without the note is left alone. Called under replicaMu.
func (n *Node) clearAddBack(ctx context.Context, id, held string) error {
	recorded, err := n.appliedReplicas(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(recorded, func(x store.Replica) bool { return x.ID == id })
	if i < 0 || recorded[i].AddBackAt == "" {
		return nil
	}
	done := recorded[i]
	if done.AddBackAt == held && done.RaftAddr != held {
		// Moved: what its build can do is asked again at the new address
		// (RecordFeatures), as AddReplica's record does.
		done.RaftAddr, done.Features = held, ""
	}
	done.AddBackAt = ""
	_, err = n.propose(ctx, &store.Command{Replica: &store.ReplicaCommand{Replica: done}})
	return err
}

// AddBackMoved adds back, as leader, every replica the group's records note
// as taken out of the configuration to be added back at a new raft address
// (store.Replica.AddBackAt) that raft's configuration lacks: the leader that
// took it out lost its leadership, or stopped, before it added it back, and
// nothing else would have (NameRaftAddresses renames only voters raft holds;
// only a replica with a join address asks to be added), so the group stayed a
// voter short for good. A replica raft holds has its note cleared: the
// removal never committed, or the addition did and the note outlived it. A
// replica removed on purpose (RemoveReplica) has no note, and is never added
// back. An addition after which the group could not commit (nothing answers
// at the address, and the group needs it) waits for the next call
// (ErrWouldStall). The leader's membership loop calls it every few seconds;
// it returns how many it added back.
func (n *Node) AddBackMoved(ctx context.Context) (int, error) {
	if !n.IsLeader() {
		return 0, ErrNotLeader
	}
	recorded, err := n.st.Replicas()
	if err != nil || !slices.ContainsFunc(recorded, func(r store.Replica) bool { return r.AddBackAt != "" }) {
		return 0, err
	}
	// A new leader applies its predecessors' entries only once its own
	// first one commits, and the membership loop calls this at once: a note
	// read before then may be one a later entry cleared (RemoveReplica
	// removed the record, the move's addition cleared it), and raft's
	// configuration, which the log sets as it is written, already lacks the
	// replica: it would add back a replica removed on purpose
	// (TestAddBackMovedAppliesItsPredecessorsLog). A note not applied yet
	// is found by a later call.
	if err := n.awaitTermApplied(ctx); err != nil {
		return 0, err
	}
	n.replicaMu.Lock()
	defer n.replicaMu.Unlock()
	// Again under the lock, and once applied: a change that held it may
	// have just finished.
	if recorded, err = n.st.Replicas(); err != nil {
		return 0, err
	}
	added := 0
	var errs []error
	for _, r := range recorded {
		if r.AddBackAt == "" {
			continue
		}
		back, err := n.addBack(ctx, r)
		if back {
			added++
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("add %s back at raft address %s: %w", r.ID, r.AddBackAt, err))
		}
	}
	return added, errors.Join(errs...)
}

// addBack is AddBackMoved for one replica r noted to be added back. It
// reports whether it added r back. Called under replicaMu.
func (n *Node) addBack(ctx context.Context, r store.Replica) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	servers := n.servers()
	if len(servers) == 0 {
		return false, errors.New("raft's configuration could not be read")
	}
	// Raft's latest configuration, committed or not: an entry taking r out
	// that this leader holds it will commit, and one it does not hold it
	// never will (a leader takes no entries from others).
	if i := slices.IndexFunc(servers, func(s raft.Server) bool { return string(s.ID) == r.ID }); i >= 0 {
		return false, n.clearAddBack(ctx, r.ID, string(servers[i].Address))
	}
	if err := n.checkAdditionCommits(ctx, r.ID, r.AddBackAt); err != nil {
		return false, err
	}
	n.log.Warn("adding back a replica taken out of the group to be added back at a new raft address, and not added back (its leader lost its leadership, stopped, or could not add it)", "replica", r.ID, "at", r.AddBackAt)
	err := n.await(ctx, "add voter", n.raft.AddVoter(raft.ServerID(r.ID), raft.ServerAddress(r.AddBackAt), 0, n.timeout(ctx)))
	if err != nil {
		return false, err
	}
	// A configuration change, counted as AddReplica's is (Membership).
	n.membershipChanges.Add(1)
	n.acks.forget(raft.ServerID(r.ID))
	return true, n.clearAddBack(ctx, r.ID, r.AddBackAt)
}

// checkAdditionCommits refuses to add id as a voter at addr when the group
// with it there could not commit: of the voters it would hold, fewer than a
// majority answer (id counted only if something answers at addr), as
// removeFromOldAddress checks before it takes a voter out.
func (n *Node) checkAdditionCommits(ctx context.Context, id, addr string) error {
	remain, unreachable, err := n.votersBut(ctx, id)
	if err != nil {
		return err
	}
	reachable := len(remain) - len(unreachable)
	if answersRaft(ctx, addr) {
		reachable++
	} else {
		unreachable = append(unreachable, id+" at "+addr+" (nothing answers there)")
	}
	if reachable < (len(remain)+1)/2+1 {
		return fmt.Errorf("%w: the group, with %s at raft address %s, would hold voters %v and %s, of which this leader cannot reach %v: start the replica there, or bring the others back", ErrWouldStall, id, addr, remain, id, unreachable)
	}
	return nil
}

// removeFromOldAddress takes a follower that moves to a new raft address out
// of the configuration, so that AddReplica adds it back at the new one.
// Raft (hashicorp/raft v1.8.0) would change the address in place, under the
// replication goroutine that reads it without a lock after each append the
// follower accepted (hashicorp/raft#681, see NameRaftAddresses): the race
// detector catches that whenever the follower still answers at the old
// address (it restarted under another name of the same listener, or a move
// was asked for before it stopped there). Removed, its goroutine stops, and
// the addition starts another. The move is refused (ErrWouldStall) when the
// voters that would remain could not commit without it, as a removal is, or
// when the group with it at the new address could not, counting it only if
// something answers there already. A leader moves itself in place, race-free: raft keeps no
// replication state for itself. A voter at the same address, or a new id,
// is no move. It returns the address it took the replica out at, or "" when
// it asked raft to take nothing out or raft refused the removal
// (removalRefused); that address, with an error, when the removal was asked
// and may commit but was not seen to. Called under replicaMu.
func (n *Node) removeFromOldAddress(ctx context.Context, r store.Replica) (raft.ServerAddress, error) {
	if r.ID == n.cfg.ReplicaID {
		return "", nil
	}
	servers := n.servers()
	i := slices.IndexFunc(servers, func(s raft.Server) bool { return string(s.ID) == r.ID })
	if i < 0 || servers[i].Address == raft.ServerAddress(r.RaftAddr) {
		return "", nil
	}
	old := servers[i].Address
	// Both configurations must commit: the one without the replica, and the
	// one with it at the new address, where it may not listen yet (asked
	// before it restarted there, or a typo). Raft commits the addition
	// itself on the voters before it, but every entry after needs a
	// majority of the new configuration (review 111: two replicas, the
	// follower moved to where nothing listens, and no leader after).
	remain, unreachable, err := n.votersBut(ctx, r.ID)
	if err != nil {
		return "", err
	}
	reachable := len(remain) - len(unreachable)
	// The note that it is to be added back (noteAddBack) commits before
	// it is taken out when the others this leader reaches are a majority
	// of the group as it is, with the replica at its old address, where
	// it may answer no more (a move is mostly a restart elsewhere).
	noteFirst := reachable >= (len(remain)+1)/2+1
	if reachable < len(remain)/2+1 {
		return "", fmt.Errorf("move %s from raft address %s to %s: %w: taking it out would leave voters %v, of which this leader cannot reach %v: bring those back first", r.ID, old, r.RaftAddr, ErrWouldStall, remain, unreachable)
	}
	if answersRaft(ctx, r.RaftAddr) {
		reachable++
	} else {
		unreachable = append(unreachable, r.ID+" at "+r.RaftAddr+" (nothing answers there)")
	}
	if reachable < (len(remain)+1)/2+1 {
		return "", fmt.Errorf("move %s from raft address %s to %s: %w: the group, with it at the new address, would hold voters %v and %s, of which this leader cannot reach %v: start the replica at its new address first, or bring the others back", r.ID, old, r.RaftAddr, ErrWouldStall, remain, r.ID, unreachable)
	}
	// Noted before it is taken out, so that a leader after this one adds
	// it back if this one cannot (AddBackMoved); not noted, nothing is
	// taken out. Where the note could not commit without the replica's
	// answer at its old address (a group of two: this leader and it), it
	// follows the removal, which commits without it, and leaves a window
	// the width of one commit in which a stop of this leader (or, in a
	// group of four or more, a lost leadership) forgets the intent.
	if noteFirst {
		if err := n.noteAddBack(ctx, r, r.RaftAddr); err != nil {
			return "", fmt.Errorf("move %s from raft address %s to %s: %w", r.ID, old, r.RaftAddr, err)
		}
	}
	n.log.Info("moving a replica to a new raft address: out of the group at the old one, then in at the new one", "replica", r.ID, "from", old, "to", r.RaftAddr)
	if err := n.await(ctx, "remove server", n.raft.RemoveServer(raft.ServerID(r.ID), 0, n.timeout(ctx))); err != nil {
		err = fmt.Errorf("move %s from raft address %s to %s (ask again to add it at the new one): %w", r.ID, old, r.RaftAddr, err)
		if removalRefused(err) {
			// Raft took nothing out: adding it "back" would move a
			// follower in place, the race this removal exists to avoid
			// (hashicorp/raft#681), had this replica led again by then.
			return "", err
		}
		// Asked of raft, the removal may still commit: old says so, and
		// addVoterAt adds it back all the same.
		if !noteFirst {
			n.noteAfterRemoval(ctx, r)
		}
		return old, err
	}
	if !noteFirst {
		n.noteAfterRemoval(ctx, r)
	}
	return old, nil
}

// noteAfterRemoval is noteAddBack once r is out (removeFromOldAddress), asked
// for even when the caller's context has ended, for at most the apply timeout,
// as the addition is (addVoterAt). A failure is logged: the addition follows
// all the same. Called under replicaMu.
func (n *Node) noteAfterRemoval(ctx context.Context, r store.Replica) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.cfg.ApplyTimeout)
	defer cancel()
	if err := n.noteAddBack(ctx, r, r.RaftAddr); err != nil {
		n.log.Warn("a replica taken out of the group to be added back at a new raft address is not noted so: a leader elected before it is added back would leave it out", "replica", r.ID, "to", r.RaftAddr, "err", err)
	}
}

// answersRaft reports whether something accepts connections at a raft
// address now (a replica started there), within a second.
func answersRaft(ctx context.Context, addr string) bool {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// removalRefused reports whether raft answered a configuration change with a
// refusal that leaves its configuration as it was: never enqueued (timed out
// waiting for an earlier change to commit), or refused, before it reached the
// log, by a replica that does not lead or is handing its leadership over.
// Anything else may still commit: the wait given up, leadership lost with the
// entry in the log, and raft's shutdown too (raft v1.8.0 answers a committed
// configuration entry still on its way to the state machine with
// ErrRaftShutdown).
func removalRefused(err error) bool {
	return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipTransferInProgress) ||
		errors.Is(err, raft.ErrEnqueueTimeout)
}

// checkReplicaURL accepts only a bare http(s) origin: followers forward writes,
// with the caller's token, to the leader's recorded URL.
func checkReplicaURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return badReplica("http", "replica HTTP URL %q: want http(s)://host:port and nothing more", raw)
	}
	return nil
}

// checkReplicaPeer requires the replica's libp2p peer id to be listed for this
// centre in the trust bundle: every replica talks to other centres, and only
// listed peers are admitted there.
func (n *Node) checkReplicaPeer(peerID string) error {
	b := n.Bundle()
	if b == nil {
		return badReplica("", "no trust bundle to check replica peer %q against", peerID)
	}
	m, ok := b.Member(n.cfg.Centre)
	if !ok {
		return badReplica("", "centre %s is not in the trust bundle", n.cfg.Centre)
	}
	for _, p := range m.Peers {
		if p.ID == peerID && peerID != "" {
			return nil
		}
	}
	return badReplica("peer_id", "peer %q is not listed for %s in the trust bundle (add it with a new bundle version first)", peerID, n.cfg.Centre)
}

// ErrHandoverFailed is RemoveReplica's answer when the leader, asked to remove
// itself, could not hand leadership over (a follower too far behind, say):
// nothing was removed, and asking again may succeed.
var ErrHandoverFailed = errors.New("leadership could not be handed over, so the leader was not removed")

// ErrLeadershipHandedOver is RemoveReplica's answer when asked to remove the
// leader itself: it handed leadership to another voter, which must be asked
// again (the API forwards the request there). It wraps ErrNotLeader, so a
// caller that does not know it retries at the leader.
var ErrLeadershipHandedOver = fmt.Errorf("%w: leadership handed to another replica before removing this one", ErrNotLeader)

// RemoveReplica removes a replica from the group. Only the leader can, and it
// does not remove itself: raft would let a leader commit its own removal and
// then step down, leaving writes to wait for an election (1–3 s), and a
// leader that shuts down on removal drops the futures it has not answered
// (proposals in flight, the removal itself: the caller waited for ever). So
// the leader hands leadership to the most up-to-date voter and answers
// ErrLeadershipHandedOver; the new leader removes the old one as a follower.
//
// It is safe to retry: a replica no longer in raft's configuration whose
// addresses are still recorded (the last step failed) has them removed.
func (n *Node) RemoveReplica(parent context.Context, id string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	ctx, cancel := context.WithTimeout(parent, n.cfg.ApplyTimeout)
	defer cancel()
	member, voters := false, 0
	for _, s := range n.servers() {
		member = member || string(s.ID) == id
		if s.Suffrage == raft.Voter {
			voters++
		}
	}
	if !member {
		recorded, err := n.st.Replicas()
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(recorded, func(r store.Replica) bool { return r.ID == id }) {
			return fmt.Errorf("%w: no replica %q in the group", store.ErrNotFound, id)
		}
	}
	if member && id == n.cfg.ReplicaID {
		if voters < 2 {
			return badReplica("id", "%s is the group's only voter; add another replica first", id)
		}
		if err := n.await(ctx, "hand leadership over", n.raft.LeadershipTransfer()); err != nil {
			if errors.Is(err, ErrNotLeader) || errors.Is(err, ErrShutdown) {
				return err
			}
			// Raft's "transfer timeout" and the like: nothing was removed,
			// and asking again may well work.
			return fmt.Errorf("%w: %w", ErrHandoverFailed, err)
		}
		return ErrLeadershipHandedOver
	}
	if member {
		if err := n.checkRemovalLeavesQuorum(ctx, id); err != nil {
			return err
		}
	}
	// The record is rewritten only after the configuration changed, with
	// nothing else rewriting it in between (RecordFeatures).
	n.replicaMu.Lock()
	defer n.replicaMu.Unlock()
	defer n.membershipChanges.Add(1) // see AddReplica
	ctx, cancel = context.WithTimeout(parent, n.cfg.ApplyTimeout)
	defer cancel()
	if !member && slices.ContainsFunc(n.servers(), func(s raft.Server) bool { return string(s.ID) == id }) {
		// Added back while this call waited for the lock (AddBackMoved):
		// removing only its record would leave a voter the group cannot
		// forward to.
		return fmt.Errorf("%w: %s was added back to the group meanwhile (a move another leader began): ask again", ErrTimeout, id)
	}
	if member {
		// A move's note, left, would have the next leader add it back
		// once it is out (AddBackMoved): cleared before it is taken out.
		if err := n.dropAddBack(ctx, id); err != nil {
			return err
		}
	}
	if member {
		// Out of the configuration first: a voter whose addresses were
		// removed but which stayed could lead without followers knowing
		// where to forward writes.
		if err := n.await(ctx, "remove server", n.raft.RemoveServer(raft.ServerID(id), 0, n.timeout(ctx))); err != nil {
			return err
		}
	}
	_, err := n.propose(ctx, &store.Command{Replica: &store.ReplicaCommand{Replica: store.Replica{ID: id}, Remove: true}})
	return err
}

// dropAddBack clears the note that id is to be added back
// (store.Replica.AddBackAt), leaving its addresses as recorded, before
// RemoveReplica takes it out. Called under replicaMu.
func (n *Node) dropAddBack(ctx context.Context, id string) error {
	recorded, err := n.appliedReplicas(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(recorded, func(r store.Replica) bool { return r.ID == id })
	if i < 0 || recorded[i].AddBackAt == "" {
		return nil
	}
	r := recorded[i]
	r.AddBackAt = ""
	if _, err := n.propose(ctx, &store.Command{Replica: &store.ReplicaCommand{Replica: r}}); err != nil {
		return fmt.Errorf("clear the note that %s is to be added back, before removing it: %w", id, err)
	}
	return nil
}

// appliedReplicas returns the group's replica records once this leader has
// applied its predecessors' log (awaitTermApplied): the note helpers rewrite a
// record as they read it, and a new leader's state file may still lack what
// the last leader wrote (a note RemoveReplica dropped, a renamed replica's
// addresses), which the rewrite would put back. Review 148 found no sequence
// that leads there today; the wait is one barrier a term.
func (n *Node) appliedReplicas(ctx context.Context) ([]store.Replica, error) {
	if err := n.awaitTermApplied(ctx); err != nil {
		return nil, err
	}
	return n.st.Replicas()
}

// ErrWouldStall refuses a membership change after which the group could not
// commit: the voters that would remain, of which this leader cannot reach a
// majority, would have to acknowledge the change itself and every write after.
var ErrWouldStall = errors.New("the group could not commit after this change")

// checkRemovalLeavesQuorum refuses to remove id when, of the voters that would
// remain, fewer than a majority are reachable (etcd's strict reconfiguration
// check does the same): raft counts the new configuration for the change
// itself, so the group would stop committing until the unreachable ones
// return. A voter is unreachable when this leader's heartbeats to it failed
// lately, or it answered no append for ackWindow, or, with
// Config.ProbeReplica, when its API does not answer or reports a full disk: a
// heartbeat into a silent partition takes raft's 10 s transport timeout to
// fail, a new leader has seen no failure yet, a cut of raft alone leaves the
// API answering, and a follower that cannot store raft's log still answers
// heartbeats.
func (n *Node) checkRemovalLeavesQuorum(ctx context.Context, id string) error {
	remain, unreachable, err := n.votersBut(ctx, id)
	if err != nil {
		return err
	}
	if len(remain)-len(unreachable) < len(remain)/2+1 {
		return fmt.Errorf("%w: removing %s would leave voters %v, of which this leader cannot reach %v: bring those back first, or remove them first", ErrWouldStall, id, remain, unreachable)
	}
	return nil
}

// votersBut lists the voters other than id, and those of them this leader
// cannot reach (checkRemovalLeavesQuorum), each with why.
func (n *Node) votersBut(ctx context.Context, id string) (remain, unreachable []string, err error) {
	recorded, err := n.st.Replicas()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	for _, s := range n.servers() {
		sid := string(s.ID)
		if s.Suffrage != raft.Voter || sid == id {
			continue
		}
		remain = append(remain, sid)
		if sid == n.cfg.ReplicaID {
			continue
		}
		if n.peers.unreachable(s.ID, now) {
			unreachable = append(unreachable, sid+" (heartbeats fail)")
			continue
		}
		if n.acks.silent(s.ID, n.peers.since(), now) {
			why := fmt.Sprintf("answered no append for %v", ackWindow)
			if !n.acks.answered(s.ID) {
				// Just added, or never reached: a retry in a moment tells.
				why = "has answered no append of this leader yet"
			}
			unreachable = append(unreachable, fmt.Sprintf("%s (%s)", sid, why))
			continue
		}
		i := slices.IndexFunc(recorded, func(r store.Replica) bool { return r.ID == sid })
		if n.cfg.ProbeReplica != nil && i >= 0 {
			if err := n.cfg.ProbeReplica(ctx, recorded[i]); err != nil {
				unreachable = append(unreachable, fmt.Sprintf("%s (%v)", sid, err))
			}
		}
	}
	return remain, unreachable, nil
}

// peerHealth records, from raft's heartbeat observations, which followers the
// leader could not reach lately.
type peerHealth struct {
	mu     sync.Mutex
	failed map[raft.ServerID]time.Time // last failed heartbeat; gone once one succeeds
	// leaderSince is when leadership last changed, as this replica saw it.
	leaderSince time.Time
}

// observe is a raft observer's filter, called for every observation (from the
// heartbeat goroutines and raft's main loop, under raft's observer lock): it
// keeps what heartbeats say, quickly, and never asks raft to send anything.
func (h *peerHealth) observe(o *raft.Observation) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch ob := o.Data.(type) {
	case raft.FailedHeartbeatObservation:
		if h.failed == nil {
			h.failed = map[raft.ServerID]time.Time{}
		}
		h.failed[ob.PeerID] = time.Now()
	case raft.ResumedHeartbeatObservation:
		delete(h.failed, ob.PeerID)
	case raft.PeerObservation:
		// Added or removed: a new heartbeat goroutine starts from nothing
		// and would never say it resumed.
		delete(h.failed, ob.Peer.ID)
	case raft.LeaderObservation:
		// Heartbeats are the leader's: what an earlier term saw is stale.
		clear(h.failed)
		h.leaderSince = time.Now()
	}
	return false
}

// unreachable reports whether heartbeats to id failed lately. A failing
// heartbeat is retried every half heartbeat timeout, or after raft's transport
// timeout when the peer does not answer at all: a failure older than that
// plus a margin, with no success since, means heartbeats stopped (this
// replica no longer leads).
func (h *peerHealth) unreachable(id raft.ServerID, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	at, ok := h.failed[id]
	return ok && now.Sub(at) < peerHealthWindow
}

// peerHealthWindow is how long a failed heartbeat says a peer is unreachable:
// raft's transport timeout (a peer that does not answer at all fails after
// it) plus a margin.
const peerHealthWindow = raftTimeout + 5*time.Second

// since is when leadership last changed, as this replica saw it.
func (h *peerHealth) since() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.leaderSince
}

// appendAcks records when each follower last answered an AppendEntries of
// this replica's (a heartbeat or entries; ackingTransport). A heartbeat into a
// silent cut fails only after raft's transport timeout (10 s), and the API a
// ProbeReplica asks may still answer when only raft is cut (a firewall rule on
// its port, one way): in between, a removal that left the group needing that
// follower was let through, and the group lost its leader until the cut
// healed. Heartbeats go every tenth of a heartbeat timeout, so a follower
// that answered none for ackWindow does not answer.
type appendAcks struct {
	mu   sync.Mutex
	last map[raft.ServerID]time.Time
}

// ackWindow is how long a follower may answer no append before removal checks
// count it unreachable: twice raft's heartbeat timeout (1 s), four times its
// leader lease, past which raft itself deposes a leader without a majority.
const ackWindow = 2 * time.Second

func (a *appendAcks) note(id raft.ServerID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.last[id] = time.Now()
}

// forget drops what id answered, as if it never had.
func (a *appendAcks) forget(id raft.ServerID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.last, id) // a nil map (no recording transport) too
}

// answered reports whether id has answered an append of this transport's.
func (a *appendAcks) answered(id raft.ServerID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.last[id]
	return ok
}

// silent reports whether id answered no append for ackWindow, of a leader
// that has led since leading (time.Now's clock) for at least that long.
func (a *appendAcks) silent(id raft.ServerID, leading, now time.Time) bool {
	if leading.IsZero() || now.Sub(leading) < ackWindow {
		return false // too soon to tell
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.last == nil {
		return false // not a transport that records answers (one replica, in memory)
	}
	return now.Sub(a.last[id]) >= ackWindow
}

// ackingTransport is raft's TCP transport, noting in acks every follower that
// answers an AppendEntries.
type ackingTransport struct {
	*raft.NetworkTransport
	acks *appendAcks
}

// newAckingTransport wraps tr to note answers in acks, which from then on
// judges silence.
func newAckingTransport(tr *raft.NetworkTransport, acks *appendAcks) ackingTransport {
	acks.mu.Lock()
	acks.last = map[raft.ServerID]time.Time{}
	acks.mu.Unlock()
	return ackingTransport{NetworkTransport: tr, acks: acks}
}

func (t ackingTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	err := t.NetworkTransport.AppendEntries(id, target, args, resp)
	if err == nil {
		t.acks.note(id)
	}
	return err
}

// heard reports whether this leader has led long enough for a follower that
// does not answer to have failed a heartbeat: before that, no failure on
// record is no proof that a follower answers.
func (h *peerHealth) heard(now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return !h.leaderSince.IsZero() && now.Sub(h.leaderSince) >= peerHealthWindow
}

// NameRaftAddresses gives raft's configuration the host name a replica
// recorded as its raft address where raft holds it at an IP instead: a group
// bootstrapped by an earlier build holds its first replica at the IP its name
// resolved to then, and loses it once that IP changes (a Kubernetes pod made
// again), while the name, which raft's transport resolves at every dial,
// would have followed. An address held as a name, or recorded as an IP, or on
// another port, is left alone (a move is AddReplica's). Only the leader
// renames. It returns how many it renamed.
//
// The leader renames itself, and a voter that does not answer its heartbeats;
// a voter that answers is handed leadership instead, and renames itself once
// it leads. Raft (hashicorp/raft v1.8.0) changes a follower's address in
// place while its replication goroutines run: startStopReplication writes
// followerReplication.peer under peerLock (raft.go:625), and those goroutines
// read it without the lock after each append the follower accepted
// (updateLastAppended, replication.go:660; also the log lines at
// replication.go:521 and 647). The race detector caught that data race in
// CI (TestRaftHoldsReplicasByName). A leader keeps no replication state for
// itself (raft.go:589), so its own address changes in place, race-free. A
// voter that does not answer is not renamed in place either: "does not
// answer" is a judgement of past heartbeats, and it may be answering again by
// the time raft changes the address (hashicorp/raft#681). It is taken out of
// the configuration and added back at its name, as AddReplica moves a
// follower (addVoterAt, removeFromOldAddress): removed, its replication
// goroutines stop, and the addition starts new ones. That is refused
// (ErrWouldStall) when the voters that would remain, or the group with it at
// its name, could not commit: a group of two whose other voter's name
// answers nothing stays as it is.
func (n *Node) NameRaftAddresses(ctx context.Context) (int, error) {
	if !n.IsLeader() {
		return 0, ErrNotLeader
	}
	recorded, err := n.st.Replicas()
	if err != nil {
		return 0, err
	}
	renamed := 0
	var handTo *raft.Server
	now := time.Now()
	for _, srv := range n.servers() {
		i := slices.IndexFunc(recorded, func(r store.Replica) bool { return r.ID == string(srv.ID) })
		if i < 0 || srv.Suffrage != raft.Voter || !namesHeldIP(recorded[i].RaftAddr, string(srv.Address)) {
			continue
		}
		if string(srv.ID) != n.cfg.ReplicaID && !n.peers.unreachable(srv.ID, now) {
			// Handed leadership only once it has been heard from: a transfer
			// to a dead voter (a pod made again, its old IP a black hole)
			// refuses every write until it times out. A new leader waits a
			// window for heartbeats to fail, and asks the replica's API.
			if handTo == nil && n.peers.heard(now) && (n.cfg.ProbeReplica == nil || n.cfg.ProbeReplica(ctx, recorded[i]) == nil) {
				handTo = &srv
			}
			continue
		}
		if err := n.renameVoter(ctx, store.Replica{ID: string(srv.ID), RaftAddr: recorded[i].RaftAddr}); err != nil {
			return renamed, fmt.Errorf("name %s's raft address %s: %w", srv.ID, recorded[i].RaftAddr, err)
		}
		renamed++
	}
	if handTo != nil {
		n.log.Info("handing leadership to a replica raft holds at an IP, so that it gives raft its recorded host name itself", "replica", handTo.ID, "held_at", handTo.Address)
		if err := n.handLeadershipTo(ctx, *handTo); err != nil {
			return renamed, fmt.Errorf("hand leadership to %s to have it named: %w", handTo.ID, err)
		}
	}
	return renamed, nil
}

// handLeadershipTo transfers leadership to srv and waits for the transfer,
// under the lock membership changes take.
func (n *Node) handLeadershipTo(ctx context.Context, srv raft.Server) error {
	n.replicaMu.Lock()
	defer n.replicaMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	return n.await(ctx, "hand leadership over", n.raft.LeadershipTransferToServer(srv.ID, srv.Address))
}

// namesHeldIP reports whether recorded is a host name and port where held is
// an IP and the same port.
func namesHeldIP(recorded, held string) bool {
	rh, rp, err1 := net.SplitHostPort(recorded)
	hh, hp, err2 := net.SplitHostPort(held)
	return err1 == nil && err2 == nil && rp == hp && rh != "" && net.ParseIP(rh) == nil && net.ParseIP(hh) != nil
}

// renameVoter gives voter r.ID the address r.RaftAddr (addVoterAt: in place
// for this leader, out and back in for another voter): a configuration
// change, counted as an addition is (Membership).
func (n *Node) renameVoter(ctx context.Context, r store.Replica) error {
	n.replicaMu.Lock()
	defer n.replicaMu.Unlock()
	defer n.membershipChanges.Add(1)
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	return n.addVoterAt(ctx, r)
}

// RegisterSelf records this replica's addresses if the group does not hold them
// yet (the first replica of a centre, or after its HTTP address changed).
func (n *Node) RegisterSelf(ctx context.Context, self store.Replica) error {
	self.ID = n.cfg.ReplicaID
	self.Features = featureList(Features())
	n.replicaMu.Lock()
	defer n.replicaMu.Unlock()
	have, err := n.st.Replicas()
	if err != nil {
		return err
	}
	if slices.Contains(have, self) {
		return nil
	}
	_, err = n.propose(ctx, &store.Command{Replica: &store.ReplicaCommand{Replica: self}})
	return err
}

// FeatureFeedEpoch is announced (on /healthz) by builds that store the change
// feed's name (store.FeedEpoch). A build without it applies the naming command
// and drops the name, and refuses cursors that carry one: the leader names the
// feed only once every replica of its group announces the feature.
const FeatureFeedEpoch = "feed-epoch"

// FeatureIfAbsent is announced by builds whose state machine checks
// store.WriteCommand.IfAbsent. A build without it ignores the member and
// would replace a record the others refuse to, so the leader proposes it only
// once every replica of its group announces the feature (PutIfAbsent).
const FeatureIfAbsent = "if-absent"

// FeatureKeepCatalogue is announced by builds whose state machine checks
// store.WriteCommand.KeepCatalogue. A build without it ignores the member and
// would move a record to another catalogue where the others refuse to, so
// the leader sets it only once every replica of its group announces the
// feature (Put).
const FeatureKeepCatalogue = "keep-catalogue"

// FeaturePurgeChunks is announced by builds whose state machine applies a
// purge in chunks (store.PurgeCommand.Limit). A build without it stops
// applying at such a command, so the leader proposes chunks only once every
// replica of its group announces the feature, and one whole purge before
// (PurgeOrigin).
const FeaturePurgeChunks = "purge-chunks"

// Features lists what this build supports that its group uses only once
// every replica has it; /healthz announces them.
func Features() []string {
	return []string{FeatureFeedEpoch, FeatureIfAbsent, FeatureKeepCatalogue, FeaturePurgeChunks}
}

// featureList is features as store.Replica.Features holds them.
func featureList(features []string) string {
	fs := slices.Clone(features)
	slices.Sort(fs)
	return strings.Join(slices.Compact(fs), ",")
}

// MembershipMark stands for the group's membership as this leader last
// changed it: the raft term (another leader may have added or removed
// replicas since an earlier one) and the count of this node's own
// additions and removals done. (raft v1.8.0's GetConfiguration leaves its
// Index at 0, and a replica removed and added again at the same addresses
// leaves the configuration as it was.)
type MembershipMark struct{ term, changes uint64 }

// Membership returns the mark RecordFeatures compares with the one taken
// before the replicas were asked.
func (n *Node) Membership() MembershipMark {
	return MembershipMark{term: n.raft.CurrentTerm(), changes: n.membershipChanges.Load()}
}

// RecordFeatures records, in the group's replicated state, the features the
// replica id announced on its /healthz (the leader's membership loop asks
// every replica every few seconds), when its record lists others. asked is
// Membership from before the replica was asked: if a replica may have been
// added or removed since, the answer may be of a server that is no longer
// the one under that id (removed and added again at the same addresses,
// with another build), and nothing is recorded; the next round asks again.
// A replica without a record is left alone: it gets one when it joins.
func (n *Node) RecordFeatures(ctx context.Context, asked MembershipMark, id string, announced []string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	n.replicaMu.Lock()
	defer n.replicaMu.Unlock()
	if asked.term == 0 || n.Membership() != asked {
		return nil
	}
	have, err := n.st.Replicas()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(have, func(r store.Replica) bool { return r.ID == id })
	if i < 0 || have[i].Features == featureList(announced) {
		return nil
	}
	r := have[i]
	r.Features = featureList(announced)
	_, err = n.propose(ctx, &store.Command{Replica: &store.ReplicaCommand{Replica: r}})
	return err
}

// groupHas reports whether every replica in raft's configuration is known
// to have feature f: this one by its build, each other by its record
// (RecordFeatures). Records are matched by id: raft holds the first
// replica at the address its transport resolved, not the one configured.
// A replica added (or added again) since its build was last asked has a
// record without features.
func (n *Node) groupHas(f string) bool {
	if !slices.Contains(Features(), f) {
		return false
	}
	servers := n.servers()
	recorded, err := n.st.Replicas()
	if len(servers) == 0 || err != nil {
		return false // the configuration could not be read
	}
	for _, s := range servers {
		if string(s.ID) == n.cfg.ReplicaID {
			continue
		}
		ok := slices.ContainsFunc(recorded, func(r store.Replica) bool {
			return r.ID == string(s.ID) && slices.Contains(strings.Split(r.Features, ","), f)
		})
		if !ok {
			return false
		}
	}
	return true
}

// NameFeed proposes name for the change feed, or a fresh random name when name
// is "" and the feed has none. A replica applies a name only if it has none
// (store.FeedEpoch), so proposing the feed's own name again fills it in where
// it is missing and changes nothing elsewhere; a name other than the feed's is
// refused (the feed is never renamed). The caller (the leader's membership
// loop) has checked that every replica of the group stores names. The name
// rides on a command recording this replica's addresses, self, which every
// build decodes.
func (n *Node) NameFeed(ctx context.Context, self store.Replica, name string) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	own := n.FeedEpoch()
	switch {
	case name == "" && own != "":
		return nil
	case name == "":
		var b [8]byte
		rand.Read(b[:])
		name = hex.EncodeToString(b[:])
	case own != "" && name != own:
		return fmt.Errorf("the change feed is named %q: it is never renamed (to %q)", own, name)
	case !ValidFeedEpoch(name):
		return fmt.Errorf("feed name %q: want 1-64 lowercase letters and digits", name)
	}
	self.ID = n.cfg.ReplicaID
	self.Features = featureList(Features()) // as RegisterSelf records it
	n.replicaMu.Lock()
	defer n.replicaMu.Unlock()
	_, err := n.propose(ctx, &store.Command{Replica: &store.ReplicaCommand{Replica: self, FeedEpoch: name}})
	return err
}

// ValidFeedEpoch reports whether name can name a change feed (and so travel in
// its cursors): 1-64 lowercase ASCII letters and digits.
func ValidFeedEpoch(name string) bool {
	if len(name) == 0 || len(name) > 64 {
		return false
	}
	for _, c := range []byte(name) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z') {
			return false
		}
	}
	return true
}

// FeedEpoch names the life of this replica's change feed (store.FeedEpoch), or
// is "" before the group's leader named it.
func (n *Node) FeedEpoch() string {
	// Under the lock, so a restore (which clears the cached name) cannot
	// be undone by a read of the file it replaced.
	n.feedMu.Lock()
	defer n.feedMu.Unlock()
	if n.feedName != "" {
		return n.feedName
	}
	e, err := n.st.FeedEpoch()
	if err != nil {
		return ""
	}
	n.feedName = e
	return e
}

// Replicas lists the group's servers with their recorded addresses.
func (n *Node) Replicas() ([]ReplicaInfo, error) {
	recorded, err := n.st.Replicas()
	if err != nil {
		return nil, err
	}
	byID := map[string]store.Replica{}
	for _, r := range recorded {
		byID[r.ID] = r
	}
	_, leader := n.raft.LeaderWithID()
	var out []ReplicaInfo
	for _, s := range n.servers() {
		r := byID[string(s.ID)]
		r.ID, r.RaftAddr = string(s.ID), string(s.Address)
		out = append(out, ReplicaInfo{Replica: r, Suffrage: s.Suffrage.String(), Leader: s.ID == leader})
	}
	return out, nil
}

// LeaderHTTP returns the leader's API URL, or "" when there is no leader or its
// address was not recorded.
func (n *Node) LeaderHTTP() string {
	_, id := n.raft.LeaderWithID()
	if id == "" || string(id) == n.cfg.ReplicaID && !n.IsLeader() {
		// Raft answers a leadership transfer before it forgets that this
		// replica led: a request forwarded here again would be refused.
		return ""
	}
	recorded, err := n.st.Replicas()
	if err != nil {
		return ""
	}
	for _, r := range recorded {
		if r.ID == string(id) {
			return r.HTTP
		}
	}
	return ""
}

// Barrier waits until this replica, as leader, has applied everything committed
// before the call: a read after it is linearizable.
func (n *Node) Barrier(ctx context.Context) error {
	if !n.IsLeader() {
		return ErrNotLeader
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	if err := n.await(ctx, "verify leader", n.raft.VerifyLeader()); err != nil {
		return err
	}
	return n.await(ctx, "barrier", n.raft.Barrier(n.timeout(ctx)))
}

// await waits for f, but no longer than ctx: raft's timeouts bound only the
// enqueueing of a request, and what happens to it after may take as long as
// the slowest voter it needs. When ctx ends first, the goroutine reading f
// stays until raft answers it, which it does for these futures except ones
// queued for the state machine when raft shuts down (then it goes with the
// process).
func (n *Node) await(ctx context.Context, what string, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			return n.raftError(what, err)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s: %w (it may still take effect: check before retrying): %w", what, ErrTimeout, ctx.Err())
	}
}

func (n *Node) timeout(ctx context.Context) time.Duration {
	t := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < t {
		t = time.Until(dl)
	}
	// Raft reads a timeout of zero or less as "wait for ever".
	return max(t, time.Millisecond)
}

// raftError translates raft's errors into the node's sentinels.
func (n *Node) raftError(what string, err error) error {
	switch {
	case errors.Is(err, raft.ErrLeadershipLost):
		// Raft's own words: the outcome is unknown, the entry may yet commit. A
		// caller told "not the leader" would retry and could write twice.
		return fmt.Errorf("%s: %w (it may still be applied: check before retrying): %w", what, ErrTimeout, err)
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%s: %w: %w", what, ErrNotLeader, err)
	case errors.Is(err, raft.ErrEnqueueTimeout):
		return fmt.Errorf("%s: %w: %w", what, ErrTimeout, err)
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrShutdown
	case isDiskFull(err):
		// Raft's log could not store the entry, so it was not committed.
		n.fsm.disk.logFull()
		return fmt.Errorf("%s: %w: %w", what, ErrDiskFull, err)
	case errors.Is(err, raftwal.ErrSealed):
		// Not stored either; raft-wal could not make its next segment and
		// takes nothing more until the replica restarts (walfix.go).
		n.fsm.disk.logFull()
		return fmt.Errorf("%s: %w: %w", what, ErrLogNeedsRestart, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
