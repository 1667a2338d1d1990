package node

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/auth"
	"liandong/node/store"
	"liandong/schema"
)

// After a batch fails, raft still counts it and every later log as applied. A
// snapshot taken then would be labelled with raft's index while holding the
// state from before the failure; raft would compact the logs a restart
// replays, or install the stale state on a follower. The fsm refuses to
// snapshot until a restore (or a restart) clears the failure.
func TestSnapshotRefusedAfterFailedBatch(t *testing.T) {
	k, err := auth.GenerateKey("tianjin-rec")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{Centre: "tianjin", Signer: KeySigner(k)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := &fsm{st: st}
	rec := &schema.Record{Catalogue: schema.CatalogueSupply, Visibility: schema.VisibilityFederation, Schema: 1,
		Body: []byte(`{"industry":"new-materials","owner_org":"天津大学","summary":"s","title":"t","trl":6}`)}
	write, err := store.EncodeCommand(&store.Command{Write: &store.WriteCommand{Op: store.OpPut, ID: "tianjin:a", Record: rec,
		At: time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC), Epoch: "E1", KeyID: k.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if res := f.ApplyBatch([]*raft.Log{{Index: 1, Term: 1, Type: raft.LogCommand, Data: write}}); res[0].(store.Result).Err != nil {
		t.Fatal(res[0].(store.Result).Err)
	}
	if _, err := f.Snapshot(); err != nil {
		t.Fatalf("snapshot of a healthy fsm: %v", err)
	}

	// A command this build cannot decode fails its batch (see store.Apply).
	res := f.ApplyBatch([]*raft.Log{{Index: 2, Term: 1, Type: raft.LogCommand, Data: []byte(`X{}`)}})
	if err := res[0].(store.Result).Err; !errors.Is(err, ErrStateFailed) {
		t.Fatalf("undecodable command: %v, want ErrStateFailed", err)
	}
	f.ApplyBatch([]*raft.Log{{Index: 3, Term: 1, Type: raft.LogCommand, Data: write}})
	if snap, err := f.Snapshot(); err == nil || !errors.Is(err, ErrStateFailed) {
		applied, _, _ := st.AppliedIndex()
		t.Fatalf("snapshot %v, %v of a failed fsm; raft would label it 3, the state is at %d", snap, err, applied)
	}

	// A restore brings the replica back, and with it snapshots.
	other, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{Centre: "tianjin", Signer: KeySigner(k)})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(other.WriteSnapshot(pw)) }()
	if err := f.Restore(pr); err != nil {
		t.Fatal(err)
	}
	other.Close()
	if _, err := f.Snapshot(); err != nil {
		t.Fatalf("snapshot after a restore: %v", err)
	}
}

// A replica that stopped applying proposes nothing more: its own state would
// not show the write, and the client, told to retry at another replica, would
// write it twice.
func TestFailedReplicaProposesNothing(t *testing.T) {
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, t.TempDir(), key)
	defer n.Close()
	ctx := context.Background()
	if _, err := n.Create(ctx, supplyRecord("之前")); err != nil {
		t.Fatal(err)
	}
	// A command this build cannot read stops the replica (store.Apply).
	if err := n.raft.Apply([]byte(`X{}`), 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); !errors.Is(err, ErrStateFailed) {
		t.Fatalf("ready: %v, want ErrStateFailed", err)
	}
	last := n.raft.LastIndex()
	if _, err := n.Create(ctx, supplyRecord("之后")); !errors.Is(err, ErrStateFailed) {
		t.Fatalf("create on a failed replica: %v, want ErrStateFailed", err)
	}
	if got := n.raft.LastIndex(); got != last {
		t.Fatalf("the failed replica proposed: raft's last index %d, was %d", got, last)
	}
}
