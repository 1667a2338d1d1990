package node

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/node/store"
)

// TestAddBackMovedOnlyWhatAMoveTookOut: a new leader adds back a voter its
// predecessor noted it would add back at a new raft address and took out
// (AddBackMoved; TestMoveOutlivesLeadershipChange, in the failpoints build,
// cuts a real move there), and nothing else: not a voter RemoveReplica took
// out whose record the old leader had not removed yet, nor one removed on
// purpose after a move's note, nor one whose removal never happened (its
// note is cleared). Each case does the old leader's steps by hand, then hands
// leadership to the third replica.
func TestAddBackMovedOnlyWhatAMoveTookOut(t *testing.T) {
	for _, tc := range []struct {
		name         string
		note, remove bool
		removeAgain  bool // RemoveReplica at the new leader
		wantBack     bool
	}{
		{"noted and taken out", true, true, false, true},
		{"taken out by RemoveReplica, its record not removed yet", false, true, false, false},
		{"noted, taken out, then removed on purpose", true, true, true, false},
		{"noted, never taken out", true, false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nodes, l, first, ip := ipHeldFollower(t)
			var third *Node
			for _, n := range nodes {
				if n != l && n != first {
					third = n
				}
			}
			id := first.cfg.ReplicaID
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			if tc.note {
				l.replicaMu.Lock()
				err := l.noteAddBack(ctx, store.Replica{ID: id, RaftAddr: first.cfg.RaftAddr}, first.cfg.RaftAddr)
				l.replicaMu.Unlock()
				if err != nil {
					t.Fatal(err)
				}
			}
			if tc.remove {
				if err := l.raft.RemoveServer(raft.ServerID(id), 0, 5*time.Second).Error(); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.raft.LeadershipTransferToServer(raft.ServerID(third.cfg.ReplicaID), raft.ServerAddress(third.cfg.RaftAddr)).Error(); err != nil {
				t.Fatal(err)
			}
			if nl := leaderOf(t, nodes, first, 10*time.Second); nl != third {
				t.Fatalf("premise: %s leads, want %s", nl.cfg.ReplicaID, third.cfg.ReplicaID)
			}
			// The new leader applies what its predecessor committed.
			if err := third.Barrier(ctx); err != nil {
				t.Fatal(err)
			}
			if tc.removeAgain {
				if err := third.RemoveReplica(ctx, id); err != nil {
					t.Fatalf("RemoveReplica of %s, out of the configuration: %v", id, err)
				}
			}
			added := 0
			for range 3 { // the membership loop calls it every few seconds
				n, err := third.AddBackMoved(ctx)
				if err != nil {
					t.Fatalf("AddBackMoved: %v", err)
				}
				added += n
			}
			want := raft.ServerAddress("")
			switch {
			case tc.wantBack:
				want = raft.ServerAddress(first.cfg.RaftAddr)
			case !tc.remove:
				want = raft.ServerAddress(ip)
			}
			if got := heldAt(third, id); got != want || (added > 0) != tc.wantBack {
				t.Fatalf("after AddBackMoved (added %d), the new leader holds %s at %q, want %q", added, id, got, want)
			}
			recorded, err := third.st.Replicas()
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(recorded, func(r store.Replica) bool { return r.ID == id })
			if tc.removeAgain != (i < 0) {
				t.Errorf("records %+v: want %s's removed only if RemoveReplica was asked", recorded, id)
			}
			if i >= 0 && recorded[i].AddBackAt != "" {
				t.Errorf("%s's record %+v is still noted to be added back", id, recorded[i])
			}
		})
	}
}

// TestRemoveReplicaDropsAMovesNoteFirst: RemoveReplica of a voter its record
// notes as to be added back (a move cut short, whose note a leader has not
// cleared yet) clears the note before it takes the voter out: in the other
// order, a leader elected between the removal and the record's removal
// would find the voter out and noted, and add it back (AddBackMoved). The
// order is read from the raft log.
func TestRemoveReplicaDropsAMovesNoteFirst(t *testing.T) {
	nodes := openReplicas(t, nil)
	l, id := nodes[0], nodes[1].cfg.ReplicaID
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l.replicaMu.Lock()
	err := l.noteAddBack(ctx, store.Replica{ID: id, RaftAddr: nodes[1].cfg.RaftAddr}, nodes[1].cfg.RaftAddr)
	l.replicaMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	from := l.raft.LastIndex()
	// Acknowledged appends since this leader led, or the removal check
	// counts the others unreachable (a new leader's "too soon to tell").
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err = l.RemoveReplica(ctx, id)
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("RemoveReplica: %v", err)
	}
	cleared, removed := uint64(0), uint64(0)
	for i := from + 1; i <= l.raft.LastIndex(); i++ {
		var e raft.Log
		if err := l.logStore.GetLog(i, &e); err != nil {
			t.Fatalf("read raft log entry %d: %v", i, err)
		}
		switch e.Type {
		case raft.LogConfiguration:
			c := raft.DecodeConfiguration(e.Data)
			if removed == 0 && !slices.ContainsFunc(c.Servers, func(s raft.Server) bool { return string(s.ID) == id }) {
				removed = i
			}
		case raft.LogCommand:
			cmd, err := store.DecodeCommand(e.Data)
			if err == nil && cleared == 0 && cmd.Replica != nil && cmd.Replica.Replica.ID == id && !cmd.Replica.Remove && cmd.Replica.Replica.AddBackAt == "" {
				cleared = i
			}
		}
	}
	if removed == 0 || cleared == 0 || cleared > removed {
		t.Fatalf("raft log after the note: note cleared at entry %d, %s taken out at %d; want the note cleared first", cleared, id, removed)
	}
}
