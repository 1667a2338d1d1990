package exchange_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportDirection: sync talks to the node through the Node interface; it
// never imports node, cmd, raft or bbolt.
func TestImportDirection(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go list")
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool")
	}
	out, err := exec.Command(goTool, "list", "-deps", "liandong/sync/exchange", "liandong/sync/wire", "liandong/sync/exchange/exchangetest").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{"liandong/node", "liandong/cmd", "github.com/hashicorp/raft", "go.etcd.io/bbolt", "github.com/boltdb/bolt"}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("sync depends on %s", dep)
			}
		}
	}
}
