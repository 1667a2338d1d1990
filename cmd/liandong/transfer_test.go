package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"liandong/node/server"
)

// devNode runs a one-centre node (tianjin) and returns its URL and admin token file.
func devNode(t *testing.T) (string, string) {
	t.Helper()
	cfg := server.Default()
	cfg.Centre = "tianjin"
	cfg.DataDir = t.TempDir()
	cfg.HTTP = "127.0.0.1:0"
	cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
	tok, err := server.DevSetup(&cfg, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.Start(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := s.Node.WaitLeader(wctx); err != nil {
		t.Fatal(err)
	}
	return s.URL, tok
}

func TestImportExport(t *testing.T) {
	url, tok := devNode(t)
	dir := t.TempDir()
	write := func(name, text string, gb bool) string {
		t.Helper()
		data := []byte(text)
		if gb {
			var err error
			if data, err = simplifiedchinese.GB18030.NewEncoder().Bytes(data); err != nil {
				t.Fatal(err)
			}
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bad := write("bad.csv", "编号,标题,摘要,所属领域,技术成熟度,所属单位\n"+
		"s-1,高镍三元正极材料,已完成中试。,新材料,6,天津大学\n"+
		"s-2,,摘要,新能源,十,南开大学\n", true)
	code, out := runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", "--dry-run", bad)
	if code != 1 || !strings.Contains(out, "row 3, column 标题") || !strings.Contains(out, "row 3, column 技术成熟度") || !strings.Contains(out, "1 ready, 1 with errors") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}
	code, out = runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", bad)
	if code != 1 || !strings.Contains(out, "fix them") {
		t.Fatalf("import with errors: exit %d\n%s", code, out)
	}

	good := write("good.csv", "编号,标题,摘要,所属领域,技术成熟度,所属单位,关键词,可见范围\n"+
		"s-1,高镍三元正极材料,已完成中试。,新材料,6,天津大学,正极材料，锂电池,公开\n"+
		"s-2,钙钛矿叠层电池,实验室效率31%。,新能源,5,南开大学,钙钛矿,联盟\n", true)
	code, out = runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", good)
	if code != 0 || !strings.Contains(out, "2 created, 0 updated, 0 unchanged") {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	code, out = runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", good)
	if code != 0 || !strings.Contains(out, "0 created, 0 updated, 2 unchanged") {
		t.Fatalf("second import: exit %d\n%s", code, out)
	}

	exported := filepath.Join(dir, "out.csv")
	code, out = runCLI(t, 20*time.Second, "export", "--node", url, "--token", tok, "--catalogue", "supply", "--out", exported)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, out)
	}
	data, err := os.ReadFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "\uFEFF标题,摘要") || !strings.Contains(string(data), "编号") {
		t.Fatalf("exported CSV:\n%s", data)
	}
	if !strings.Contains(string(data), "钙钛矿叠层电池") || !strings.Contains(string(data), "新材料") {
		t.Fatalf("exported CSV lacks records:\n%s", data)
	}
	// What was exported imports back unchanged.
	code, out = runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", exported)
	if code != 0 || !strings.Contains(out, "2 unchanged") {
		t.Fatalf("re-import of the export: exit %d\n%s", code, out)
	}
	code, out = runCLI(t, 20*time.Second, "export", "--node", url, "--catalogue", "supply", "--format", "jsonl")
	if code != 0 || strings.Count(out, `"catalogue":"supply"`) != 1 {
		t.Fatalf("anonymous JSON Lines export (public records only): exit %d\n%s", code, out)
	}
}
