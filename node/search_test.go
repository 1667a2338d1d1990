package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"liandong/auth"
	"liandong/node/search"
)

// TestSearchIndexSurvivesAndRebuilds writes records, reopens the node with the
// index kept (it catches up) and with the index file deleted (it is rebuilt
// from the state file), and searches each time.
func TestSearchIndexSurvivesAndRebuilds(t *testing.T) {
	dir := t.TempDir()
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, dir, key)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if _, err := n.Create(ctx, supplyRecord(fmt.Sprintf("钙钛矿叠层电池 %d", i))); err != nil {
			t.Fatal(err)
		}
	}
	count := func(n *Node, q string) int {
		t.Helper()
		p, err := n.Search(ctx, search.Query{Text: q, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		return p.Total
	}
	if got := count(n, "钙钛矿"); got != 10 {
		t.Fatalf("钙钛矿: %d", got)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	n = mustOpenNode(t, dir, key)
	if _, err := n.Create(ctx, supplyRecord("液流电池储能")); err != nil {
		t.Fatal(err)
	}
	if a, b := count(n, "钙钛矿"), count(n, "储能"); a != 10 || b != 1 {
		t.Fatalf("after reopening: 钙钛矿 %d, 储能 %d", a, b)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}

	if err := os.Remove(filepath.Join(dir, searchFile)); err != nil {
		t.Fatal(err)
	}
	n = mustOpenNode(t, dir, key)
	defer n.Close()
	if a, b := count(n, "钙钛矿"), count(n, "电池"); a != 10 || b != 11 {
		t.Fatalf("after deleting the index: 钙钛矿 %d, 电池 %d", a, b)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Search(ctx, search.Query{Text: "电池"}); err != ErrShutdown {
		t.Fatalf("search after close: %v", err)
	}
}
