package exchangetest_test

import (
	"context"
	"errors"
	"testing"

	"liandong/auth"
	"liandong/schema"
	"liandong/sync/exchange/exchangetest"
)

func TestNodeChecks(t *testing.T) {
	ctx := context.Background()
	fed, err := exchangetest.NewFederation("hq", "tianjin")
	if err != nil {
		t.Fatal(err)
	}
	a := fed.Author("tianjin")
	es, err := a.NextN(5)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.VerifyChain(fed.Bundle, schema.Head{Origin: "tianjin"}, es, auth.VerifyEverySignature); err != nil {
		t.Fatalf("author's entries do not verify: %v", err)
	}
	n := exchangetest.NewNode("hq", fed.Bundle)
	if err := n.ApplyEntries(ctx, "tianjin", es[1:]); !errors.Is(err, exchangetest.ErrGap) {
		t.Fatalf("gap: %v", err)
	}
	if err := n.ApplyEntries(ctx, "tianjin", es[:3]); err != nil {
		t.Fatal(err)
	}
	if err := n.ApplyEntries(ctx, "tianjin", es[1:]); err != nil { // held prefix skipped
		t.Fatal(err)
	}
	if n.Len("tianjin") != 5 || n.Head("tianjin").Hash != es[4].Hash() {
		t.Fatalf("head %+v", n.Head("tianjin"))
	}
	p := es[2].EntryPayload
	p.Record = p.Record.Clone()
	p.Record.Version = 2
	forked, err := a.Sign(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.ApplyEntries(ctx, "tianjin", []*schema.Entry{forked}); !errors.Is(err, exchangetest.ErrFork) {
		t.Fatalf("fork: %v", err)
	}
	own, err := fed.Author("hq").NextN(1)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.ApplyEntries(ctx, "hq", own); !errors.Is(err, exchangetest.ErrOwnOrigin) {
		t.Fatalf("own origin: %v", err)
	}
	if err := n.Append(own...); err != nil {
		t.Fatalf("author's own append: %v", err)
	}
	n.SetCanApply(false)
	if err := n.ApplyEntries(ctx, "tianjin", es); !errors.Is(err, exchangetest.ErrNotLeader) {
		t.Fatalf("follower: %v", err)
	}
	got, err := n.ReadRange(ctx, "tianjin", 4, 10)
	if err != nil || len(got) != 2 || got[0].Seq != 4 {
		t.Fatalf("read range: %d entries, %v", len(got), err)
	}
	heads, err := n.Heads(ctx)
	if err != nil || len(heads) != 2 {
		t.Fatalf("heads: %+v %v", heads, err)
	}
}
