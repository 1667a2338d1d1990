package node

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"liandong/node/store"
	"liandong/schema"
)

func needRecord(title string) *schema.Record {
	body, _ := json.Marshal(map[string]any{"title": title, "description": "寻求合作", "industry": "high-end-equipment",
		"enterprise": "天津某装备公司", "kind": "need", "status": "open"})
	return &schema.Record{Catalogue: schema.CatalogueNeed, Visibility: "federation", Body: body}
}

// TestPutKeepsCatalogueOnceEveryReplicaChecks: a Put carries
// store.WriteCommand.KeepCatalogue only once each other replica's record
// lists FeatureKeepCatalogue. Until then a put into another catalogue is
// written (as an older build, which ignores the member, would apply it; the
// API refuses such a move on what it read); once every replica checks it,
// a put over a record live in another catalogue (one deleted and created
// again there since the writer read it, review 108) is refused, on every
// replica alike, and one of the same catalogue goes through.
func TestPutKeepsCatalogueOnceEveryReplicaChecks(t *testing.T) {
	nodes := openReplicas(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l := leaderOf(t, nodes, nil, 10*time.Second)
	var others []*Node
	for _, n := range nodes {
		if n != l {
			others = append(others, n)
			r := store.Replica{ID: n.cfg.ReplicaID, RaftAddr: n.cfg.RaftAddr, HTTP: "http://127.0.0.1:1"}
			if _, err := l.propose(ctx, &store.Command{Replica: &store.ReplicaCommand{Replica: r}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.RegisterSelf(ctx, store.Replica{RaftAddr: l.cfg.RaftAddr, HTTP: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	id := "tianjin:keep"
	if _, err := l.Put(ctx, id, supplyRecord("一"), 0); err != nil {
		t.Fatal(err)
	}
	// One replica current, one of session 21's build (if-absent, not this).
	asked := l.Membership()
	if err := l.RecordFeatures(ctx, asked, others[0].cfg.ReplicaID, Features()); err != nil {
		t.Fatal(err)
	}
	if err := l.RecordFeatures(ctx, asked, others[1].cfg.ReplicaID, []string{FeatureFeedEpoch, FeatureIfAbsent}); err != nil {
		t.Fatal(err)
	}
	rec, err := l.Put(ctx, id, needRecord("二"), 0)
	if err != nil || rec.Catalogue != schema.CatalogueNeed || rec.Version != 2 {
		t.Fatalf("gate shut (%s older): %+v, %v; want the put applied as an older build applies it", others[1].cfg.ReplicaID, rec, err)
	}
	if err := l.RecordFeatures(ctx, asked, others[1].cfg.ReplicaID, Features()); err != nil {
		t.Fatal(err)
	}
	if !l.groupHas(FeatureKeepCatalogue) {
		t.Fatal("every replica announced the feature, and the group does not have it")
	}
	if _, err := l.Put(ctx, id, supplyRecord("三"), 0); !errors.Is(err, store.ErrCatalogueMove) {
		t.Fatalf("gate open, a supply put over a live need record: %v, want ErrCatalogueMove", err)
	}
	if rec, err = l.Put(ctx, id, needRecord("四"), 0); err != nil || rec.Version != 3 {
		t.Fatalf("gate open, the same catalogue: %+v, %v", rec, err)
	}
	for _, n := range nodes {
		got, err := awaitVersion(ctx, n, id, 3)
		if err != nil || got.Version != 3 || got.Catalogue != schema.CatalogueNeed {
			t.Fatalf("%s: %+v, %v", n.cfg.ReplicaID, got, err)
		}
	}
}
