package node

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"liandong/schema"
)

// TestOwnWritesSignWhatFollowersSign: for bodies the API marked canonical
// (so PrepareWrite skips its walk), with and without personal members (a
// shared body of its own), every replica signs the same entries, so the
// centre's log heads agree.
func TestOwnWritesSignWhatFollowersSign(t *testing.T) {
	nodes := openReplicas(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := leaderOf(t, nodes, nil, 10*time.Second)
	for i := range 12 {
		m := map[string]any{"title": fmt.Sprintf("第%d", i), "summary": "摘要", "industry": "new-energy", "trl": 5}
		if i%2 == 0 {
			m["contact"] = map[string]string{"person": "王老师", "phone": "022-23456789"}
		}
		body, _ := json.Marshal(m) // encoding/json sorts members: canonical here
		if err := schema.CheckCanonical(body); err != nil {
			t.Fatal(err)
		}
		rec := &schema.Record{Catalogue: "supply", Visibility: "federation", Body: body}
		rec.MarkBodyCanonical() // as the API marks a canonical request's body
		if _, err := l.Put(ctx, fmt.Sprintf("tianjin:own-%d", i), rec, 0); err != nil {
			t.Fatal(err)
		}
	}
	want, err := l.st.Head("tianjin")
	if err != nil || want.Seq != 12 {
		t.Fatalf("leader's head %+v, %v; want seq 12", want, err)
	}
	for _, n := range nodes {
		var got schema.Head
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if got, err = n.st.Head("tianjin"); err == nil && got.Seq >= want.Seq {
				break
			}
		}
		if got != want {
			t.Fatalf("replica %s's head %+v, the leader's %+v", n.cfg.ReplicaID, got, want)
		}
	}
}
