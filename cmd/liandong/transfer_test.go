package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"liandong/client"
	"liandong/node/server"
	"liandong/schema"
	"liandong/transfer"
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

// xlsxFile writes a workbook whose first sheet holds rows (strings as text,
// numbers as numbers, times as dates) and returns its path.
func xlsxFile(t *testing.T, path string, rows [][]any) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	dateFmt := "yyyy年m月d日"
	dateStyle, err := f.NewStyle(&excelize.Style{CustomNumFmt: &dateFmt})
	if err != nil {
		t.Fatal(err)
	}
	for r, row := range rows {
		for c, v := range row {
			ref, _ := excelize.CoordinatesToCellName(c+1, r+1)
			if err := f.SetCellValue("Sheet1", ref, v); err != nil {
				t.Fatal(err)
			}
			if _, ok := v.(time.Time); ok {
				f.SetCellStyle("Sheet1", ref, ref, dateStyle)
			}
		}
	}
	if err := f.SaveAs(path); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestImportExportXLSX(t *testing.T) {
	url, tok := devNode(t)
	dir := t.TempDir()
	expires := time.Date(2030, 12, 31, 0, 0, 0, 0, time.UTC)
	header := []any{"编号", "标题", "摘要", "所属领域", "技术成熟度", "所属单位", "关键词", "可见范围", "有效期至"}
	good := [][]any{
		{"s-1", "高镍三元正极材料", "已完成中试。", "新材料", 6, "天津大学", "正极材料，锂电池", "公开", expires},
		{"s-2", "钙钛矿叠层电池", "实验室效率31%。", "新能源", 5, "南开大学", "钙钛矿", "联盟", expires},
	}
	invalid := []any{"s-3", "", "摘要", "新能源", "十", "南开大学", "", "", "2030年2月30日"}

	// Dry run: the invalid row's errors, each with its row and column.
	bad := xlsxFile(t, filepath.Join(dir, "bad.xlsx"), [][]any{header, good[0], good[1], invalid})
	code, out := runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", "--dry-run", bad)
	if code != 1 || !strings.Contains(out, "row 4, column 标题") || !strings.Contains(out, "row 4, column 技术成熟度: want a whole number") ||
		!strings.Contains(out, "row 4, column 有效期至") || !strings.Contains(out, "3 rows, 2 ready, 1 with errors") || strings.Contains(out, "row 2") || strings.Contains(out, "row 3") {
		t.Fatalf("dry run: exit %d\n%s", code, out)
	}

	// Import, and import again: nothing changes the second time.
	goodPath := xlsxFile(t, filepath.Join(dir, "good.xlsx"), [][]any{header, good[0], good[1]})
	code, out = runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", goodPath)
	if code != 0 || !strings.Contains(out, "2 created, 0 updated, 0 unchanged") {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	code, out = runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", "--format", "xlsx", goodPath)
	if code != 0 || !strings.Contains(out, "0 created, 0 updated, 2 unchanged") {
		t.Fatalf("second import: exit %d\n%s", code, out)
	}

	// Export as .xlsx (by the file name), then import what was exported.
	exported := filepath.Join(dir, "out.xlsx")
	code, out = runCLI(t, 20*time.Second, "export", "--node", url, "--token", tok, "--catalogue", "supply", "--out", exported)
	if code != 0 {
		t.Fatalf("export: exit %d\n%s", code, out)
	}
	f, err := excelize.OpenFile(exported)
	if err != nil {
		t.Fatal(err)
	}
	sheets := f.GetSheetList()
	rows, err := f.GetRows(sheets[0])
	f.Close()
	if err != nil || len(sheets) != 1 || len(rows) != 3 || rows[0][0] != "标题" || !slices.Contains(rows[0], "编号") || !slices.Contains(rows[0], "技术成熟度") {
		t.Fatalf("exported workbook: sheets %v, rows %q, %v", sheets, rows, err)
	}
	if !strings.Contains(strings.Join(rows[1], "|")+strings.Join(rows[2], "|"), "钙钛矿叠层电池") {
		t.Fatalf("exported workbook lacks records: %q", rows)
	}
	code, out = runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", exported)
	if code != 0 || !strings.Contains(out, "0 created, 0 updated, 2 unchanged") {
		t.Fatalf("re-import of the export: exit %d\n%s", code, out)
	}
	// A changed cell updates that record only.
	good[1][4] = 7
	xlsxFile(t, goodPath, [][]any{header, good[0], good[1]})
	code, out = runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", goodPath)
	if code != 0 || !strings.Contains(out, "0 created, 1 updated, 1 unchanged") {
		t.Fatalf("import of a change: exit %d\n%s", code, out)
	}

	// Files that are not workbooks, or not the sheet asked for: an error
	// saying so, never a panic.
	data, err := os.ReadFile(goodPath)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.xlsx")
	csvNamedXLSX := filepath.Join(dir, "table.xlsx")
	os.WriteFile(truncated, data[:len(data)/3], 0o600)
	os.WriteFile(csvNamedXLSX, []byte("编号,标题\ns-1,x\n"), 0o600)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{truncated}, "not a readable .xlsx workbook"},
		{[]string{csvNamedXLSX}, "not an .xlsx workbook"},
		{[]string{"--sheet", "需求", goodPath}, `no sheet "需求"`},
		{[]string{"--sheet", "Sheet1", csvNamedXLSX, "--format", "csv"}, ""},
	} {
		args := append([]string{"import", "--node", url, "--token", tok, "--catalogue", "supply", "--dry-run"}, c.args...)
		code, out = runCLI(t, 20*time.Second, args...)
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d\n%s", c.args, code, out)
		}
	}
	code, out = runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", "--format", "xls", goodPath)
	if code == 0 || !strings.Contains(out, "want csv, xlsx or jsonl") {
		t.Errorf("--format xls: exit %d\n%s", code, out)
	}
}

// TestExportFilters: export takes the list endpoint's filters (industry, status,
// full-text query, updated since) and writes exactly the records they select.
func TestExportFilters(t *testing.T) {
	url, tok := devNode(t)
	token, err := readTokenFile(tok)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(url, token)
	ctx := context.Background()
	mk := func(title, industry, status string) {
		body, _ := json.Marshal(map[string]any{"title": title, "description": "寻求合作", "industry": industry,
			"enterprise": "天津某公司", "status": status, "kind": "need"})
		if _, err := c.Create(ctx, &schema.Record{Catalogue: "need", Visibility: "federation", Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	mk("风电齿轮箱轴承寿命预测", "high-end-equipment", "open")
	mk("轴承钢热处理工艺改进", "new-materials", "open")
	mk("氢燃料电池催化剂", "new-energy", "closed")
	cutoff := time.Now().UTC()
	time.Sleep(10 * time.Millisecond)
	mk("固态电池电解质", "new-energy", "open")

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--industry", "new-energy"}, []string{"氢燃料电池催化剂", "固态电池电解质"}},
		{[]string{"--status", "open", "--industry", "new-energy"}, []string{"固态电池电解质"}},
		{[]string{"--q", "轴承"}, []string{"风电齿轮箱轴承寿命预测", "轴承钢热处理工艺改进"}},
		{[]string{"--updated-since", cutoff.Format(time.RFC3339Nano)}, []string{"固态电池电解质"}},
	} {
		args := append([]string{"export", "--node", url, "--token", tok, "--catalogue", "need", "--format", "jsonl"}, tc.args...)
		code, out := runCLI(t, 20*time.Second, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tc.args, code, out)
		}
		var got []string
		for _, line := range strings.Split(out, "\n") {
			var rec struct {
				Body struct {
					Title string `json:"title"`
				} `json:"body"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Body.Title != "" {
				got = append(got, rec.Body.Title)
			}
		}
		sort.Strings(got)
		want := append([]string(nil), tc.want...)
		sort.Strings(want)
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("%v: exported %v, want %v", tc.args, got, want)
		}
	}
	if code, out := runCLI(t, 10*time.Second, "export", "--node", url, "--catalogue", "need", "--updated-since", "yesterday"); code != 2 || !strings.Contains(out, "RFC 3339") {
		t.Fatalf("bad --updated-since: %d %s", code, out)
	}
}

// TestImportBatches: a file longer than a batch is written in batches, by
// count and by bytes; a key the file repeats ends with its last row (as when
// rows went one by one).
func TestImportBatches(t *testing.T) {
	url, tok := devNode(t)
	path, n := importFile(t)
	code, out := runCLI(t, 120*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", path)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d created, 1 updated, 0 unchanged, 0 failed", n)) {
		t.Fatalf("import: exit %d\n%s", code, out)
	}
	tokData, err := os.ReadFile(tok)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(url, strings.TrimSpace(string(tokData)))
	rec, err := c.Get(context.Background(), "tianjin:s-7")
	if err != nil || rec.Version != 2 || !strings.Contains(string(rec.Body), "成果七（修订）") {
		t.Fatalf("repeated key: %+v, %v", rec, err)
	}
	if rec, err := c.Get(context.Background(), fmt.Sprintf("tianjin:s-%d", n-1)); err != nil || rec.Version != 1 {
		t.Fatalf("last row: %+v, %v", rec, err)
	}
}

// importFile writes a CSV of more rows than a batch takes (by count and by
// bytes: each summary is 2000 characters), with one key repeated inside
// the first batch's rows, and returns its path and distinct keys.
func importFile(t *testing.T) (string, int) {
	t.Helper()
	var text strings.Builder
	text.WriteString("编号,标题,摘要,所属领域,技术成熟度,所属单位\n")
	n := client.MaxBatch + 50
	summary := strings.Repeat("成果转化", 500)
	for i := range n {
		fmt.Fprintf(&text, "s-%d,成果%d,%s,新材料,6,天津大学\n", i, i, summary)
		if i == 10 {
			text.WriteString("s-7,成果七（修订）,摘要。,新材料,7,天津大学\n")
		}
	}
	path := filepath.Join(t.TempDir(), "many.csv")
	if err := os.WriteFile(path, []byte(text.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, n
}

// TestImportWhenBatchesFail: what import does when the node refuses a batch
// as a whole or some of its writes, against a node that answers so.
func TestImportWhenBatchesFail(t *testing.T) {
	path, n := importFile(t)
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("t"), 0o600)
	problem := func(w http.ResponseWriter, status int) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"type":"urn:liandong:problem:x","title":"%s","status":%d}`, http.StatusText(status), status)
	}
	for _, c := range []struct {
		name      string
		batch     func(w http.ResponseWriter, items int)
		code      int
		out       string
		puts      int32
		oneBatch  bool // only the first batch is sent
		manyBatch bool // every batch is sent
	}{
		{name: "node from before batches", batch: func(w http.ResponseWriter, _ int) { problem(w, http.StatusNotFound) },
			out: fmt.Sprintf("%d created, 0 updated", n+1), puts: int32(n + 1), oneBatch: true},
		{name: "node with a smaller body limit", batch: func(w http.ResponseWriter, _ int) { problem(w, http.StatusRequestEntityTooLarge) },
			out: fmt.Sprintf("%d created, 0 updated", n+1), puts: int32(n + 1), manyBatch: true},
		{name: "batches lost to an election", batch: func(w http.ResponseWriter, _ int) { problem(w, http.StatusServiceUnavailable) },
			code: 1, out: fmt.Sprintf("0 created, 0 updated, 0 unchanged, %d failed", n+1), manyBatch: true},
		{name: "one row refused with the whole batch", batch: func(w http.ResponseWriter, _ int) { problem(w, http.StatusBadRequest) },
			out: fmt.Sprintf("%d created, 0 updated", n+1), puts: int32(n + 1), manyBatch: true},
		{name: "token refused for the batch", batch: func(w http.ResponseWriter, _ int) { problem(w, http.StatusForbidden) },
			code: 1, out: "0 created, 0 updated, 0 unchanged, 11 failed", oneBatch: true},
		{name: "token refused for one write", code: 1, out: "10 created, 0 updated, 0 unchanged, 1 failed", oneBatch: true,
			batch: func(w http.ResponseWriter, items int) {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprint(w, `{"items":[{"status":403,"problem":{"type":"urn:liandong:problem:forbidden","title":"Forbidden","status":403}}`)
				for range items - 1 {
					fmt.Fprint(w, `,{"status":201,"record":{"id":"tianjin:x","version":1}}`)
				}
				fmt.Fprint(w, "]}")
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var puts, batches, readMany, loose atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method == http.MethodGet && r.URL.Query().Get("consistent") != "true" {
					loose.Add(1)
				}
				if r.URL.Query().Has("ids") {
					// A node from before ids= (or before consistent
					// lists) refuses it as it refuses any parameter it
					// does not know, naming the first in sorted order.
					readMany.Add(1)
					w.Header().Set("Content-Type", "application/problem+json")
					w.WriteHeader(http.StatusBadRequest)
					fmt.Fprint(w, `{"type":"urn:liandong:problem:bad-parameter","title":"Invalid parameter","status":400,"errors":[{"path":"consistent","rule":"unknown_parameter","message":"unknown parameter"}]}`)
					return
				}
				switch {
				case r.Method == http.MethodPost && r.URL.Path == "/v1/batch":
					batches.Add(1)
					var b struct{ Items []json.RawMessage }
					json.NewDecoder(r.Body).Decode(&b)
					c.batch(w, len(b.Items))
				case r.Method == http.MethodGet:
					problem(w, http.StatusNotFound)
				case r.Method == http.MethodPut:
					puts.Add(1)
					var rec schema.Record
					json.NewDecoder(r.Body).Decode(&rec)
					rec.Version = 1
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(http.StatusCreated)
					json.NewEncoder(w).Encode(rec)
				default:
					http.Error(w, "unexpected", http.StatusTeapot)
				}
			}))
			defer srv.Close()
			code, out := runCLI(t, 60*time.Second, "import", "--node", srv.URL, "--token", tok, "--centre", "tianjin", "--catalogue", "supply", path)
			if code != c.code || !strings.Contains(out, c.out) || c.code != 0 && !strings.Contains(out, "refused the token") && !strings.Contains(out, "rows were refused") {
				t.Fatalf("exit %d, want %d and %q:\n%.2000s", code, c.code, c.out, out)
			}
			if puts.Load() != c.puts {
				t.Errorf("%d PUTs, want %d", puts.Load(), c.puts)
			}
			if n := readMany.Load(); n != 1 {
				t.Errorf("%d reads by ids, want 1 (then one by one)", n)
			}
			if n := loose.Load(); n != 0 {
				t.Errorf("%d reads without consistent=true: a lagging replica would answer them", n)
			}
			switch b := batches.Load(); {
			case c.oneBatch && b != 1:
				t.Errorf("%d batches sent, want 1", b)
			case c.manyBatch && b < 6:
				// 551 rows of ~6 KB: at least 6 batches of at most 512 KB.
				t.Errorf("%d batches sent, want every batch (≥ 6)", b)
			}
		})
	}
}

// TestImportChunks: batches end at importBatch rows, at importBatchBytes,
// and before a key the batch already writes; a row larger than a batch's
// bytes goes alone; rows without a record ride along.
func TestImportChunks(t *testing.T) {
	row := func(key string, bodyBytes int) transfer.Row {
		if key == "" {
			return transfer.Row{Errors: []transfer.CellError{{}}}
		}
		return transfer.Row{Record: &schema.Record{ID: "tianjin:" + key, Body: make([]byte, bodyBytes)}}
	}
	many := func(prefix string, n, bodyBytes int) []transfer.Row {
		var out []transfer.Row
		for i := range n {
			out = append(out, row(fmt.Sprintf("%s%d", prefix, i), bodyBytes))
		}
		return out
	}
	per := importBatchBytes / rowBytes(row("x", 6000).Record) // rows of 6000 bytes a batch
	for _, c := range []struct {
		name string
		rows []transfer.Row
		want []int
	}{
		{"none", nil, nil},
		{"small rows by count", many("a", importBatch*2+1, 100), []int{importBatch, importBatch, 1}},
		{"large rows by bytes", many("b", per+1, 6000), []int{per, 1}},
		{"a row over the bytes alone", append(append(many("c", 2, 100), row("big", importBatchBytes)), many("d", 2, 100)...), []int{2, 1, 2}},
		{"a repeated key", append(append(many("e", 3, 100), row("e1", 100)), many("f", 2, 100)...), []int{3, 3}},
		{"rows without records", append(many("g", 2, 100), row("", 0), row("", 0)), []int{4}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got []int
			total := 0
			for _, ch := range importChunks(c.rows) {
				got = append(got, len(ch))
				total += len(ch)
			}
			if !slices.Equal(got, c.want) || total != len(c.rows) {
				t.Fatalf("chunks %v, want %v", got, c.want)
			}
		})
	}
}

// TestImportStopsWhenTheNodeIsGone: reads that get no answer stop the
// import at once, with a summary, rather than fail every row.
func TestImportStopsWhenTheNodeIsGone(t *testing.T) {
	path, _ := importFile(t)
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("t"), 0o600)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	code, out := runCLI(t, 60*time.Second, "import", "--node", url, "--token", tok, "--centre", "tianjin", "--catalogue", "supply", path)
	if code != 1 || !strings.Contains(out, "could not reach the node") || !strings.Contains(out, "0 created, 0 updated, 0 unchanged, 1 failed") {
		t.Fatalf("exit %d:\n%.2000s", code, out)
	}
}

// TestImportStopsReadingWhenRefused: a token refused on the reads stops the
// import at once: reading by ids, or, from a node that does not take ids=,
// after the reads of single rows under way, not after a whole batch's.
func TestImportStopsReadingWhenRefused(t *testing.T) {
	path, _ := importFile(t)
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("t"), 0o600)
	for _, takesIDs := range []bool{true, false} {
		var gets atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/problem+json")
			if r.URL.Query().Has("ids") && !takesIDs {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"type":"urn:liandong:problem:bad-parameter","title":"Invalid parameter","status":400,"errors":[{"path":"consistent","rule":"unknown_parameter","message":"unknown parameter"}]}`)
				return
			}
			gets.Add(1)
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"type":"urn:liandong:problem:unauthorized","title":"Authentication required","status":401}`)
		}))
		code, out := runCLI(t, 60*time.Second, "import", "--node", srv.URL, "--token", tok, "--centre", "tianjin", "--catalogue", "supply", path)
		srv.Close()
		if code != 1 || !strings.Contains(out, "refused the token") || !strings.Contains(out, "0 created, 0 updated, 0 unchanged, 1 failed") {
			t.Fatalf("takes ids %v: exit %d:\n%.2000s", takesIDs, code, out)
		}
		want := int32(importReaders)
		if takesIDs {
			want = 1
		}
		if n := gets.Load(); n > want {
			t.Fatalf("takes ids %v: %d reads before stopping, want at most %d", takesIDs, n, want)
		}
	}
}

// TestImportSkipsBadRows: with --skip-errors the rows that passed are
// imported and the others left out, as the rows without a record go
// through the reads and the batch untouched.
func TestImportSkipsBadRows(t *testing.T) {
	url, tok := devNode(t)
	path := filepath.Join(t.TempDir(), "mixed.csv")
	os.WriteFile(path, []byte("编号,标题,摘要,所属领域,技术成熟度,所属单位\n"+
		"s-1,高镍三元正极材料,已完成中试。,新材料,6,天津大学\n"+
		"s-2,,摘要,新能源,十,南开大学\n"+
		"s-3,钙钛矿叠层电池,实验室效率31%。,新能源,5,南开大学\n"), 0o600)
	code, out := runCLI(t, 30*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", "--skip-errors", path)
	if code != 0 || !strings.Contains(out, "2 created, 0 updated, 0 unchanged, 0 failed") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

// TestImportReadsOneByOneWhenAnIDsAnswerBreaks: an ids= answer the node cuts
// short (a record failing to read part-way through) does not stop the
// import, as a node gone would: that batch's rows are read one by one, and
// the next batch is read by ids again.
func TestImportReadsOneByOneWhenAnIDsAnswerBreaks(t *testing.T) {
	path, n := importFile(t)
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("t"), 0o600)
	var readMany, gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet && r.URL.Query().Has("ids"):
			readMany.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"items":[{"id":"tianjin:x","catalogue":"supply","body":{"title":"半`) // and the connection ends
		case r.Method == http.MethodGet:
			gets.Add(1)
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"type":"urn:liandong:problem:not-found","title":"Not found","status":404}`)
		case r.Method == http.MethodPost && r.URL.Path == "/v1/batch":
			var b struct{ Items []json.RawMessage }
			json.NewDecoder(r.Body).Decode(&b)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"items":[`)
			for i := range b.Items {
				if i > 0 {
					fmt.Fprint(w, ",")
				}
				fmt.Fprint(w, `{"status":201,"record":{"id":"tianjin:x","version":1}}`)
			}
			fmt.Fprint(w, "]}")
		default:
			http.Error(w, "unexpected", http.StatusTeapot)
		}
	}))
	defer srv.Close()
	code, out := runCLI(t, 60*time.Second, "import", "--node", srv.URL, "--token", tok, "--centre", "tianjin", "--catalogue", "supply", path)
	if code != 0 || !strings.Contains(out, fmt.Sprintf("%d created, 0 updated", n+1)) {
		t.Fatalf("exit %d:\n%.2000s", code, out)
	}
	if r, g := readMany.Load(), gets.Load(); r < 2 || g != int32(n+1) {
		t.Errorf("%d reads by ids (want one a batch) and %d single reads (want %d)", r, g, n+1)
	}
}

// TestImportCreatesOnlyWhatIsStillAbsent: a row import read as absent is
// written with If-None-Match: *, so a record another writer created since is
// reported, not replaced; a node from before If-None-Match refuses it, and
// import then writes absent rows with no precondition, as it used to.
func TestImportCreatesOnlyWhatIsStillAbsent(t *testing.T) {
	path, n := importFile(t)
	tok := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tok, []byte("t"), 0o600)
	for _, older := range []bool{false, true} {
		t.Run(fmt.Sprintf("older node %v", older), func(t *testing.T) {
			var guarded, plain, refused atomic.Int32
			problem := func(status int, detail, path string) string {
				errs := ""
				if path != "" {
					errs = fmt.Sprintf(`,"errors":[{"path":%q,"rule":"unsupported","message":"not supported"}]`, path)
				}
				return fmt.Sprintf(`{"type":"urn:liandong:problem:x","title":"x","status":%d,"detail":%q%s}`, status, detail, errs)
			}
			// write answers one write: a create, or what this node says of
			// If-None-Match (the record s-3 exists meanwhile).
			write := func(id string, ifAbsent bool) (int, string) {
				switch {
				case ifAbsent && older:
					refused.Add(1)
					return 400, problem(400, `want a write: {"method": "POST"|"PUT"|"DELETE", "id", "if_match", "record"}: json: unknown field "if_none_match"`, "")
				case ifAbsent:
					guarded.Add(1)
					if id == "tianjin:s-3" {
						return 412, problem(412, "If-None-Match given but record tianjin:s-3 exists", "")
					}
				default:
					plain.Add(1)
				}
				return 201, fmt.Sprintf(`{"id":%q,"version":1}`, id)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.Method == http.MethodGet && r.URL.Query().Has("ids"):
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprint(w, `{"records":[]}`)
				case r.Method == http.MethodPost && r.URL.Path == "/v1/batch":
					var b struct {
						Items []struct {
							ID          string `json:"id"`
							IfNoneMatch string `json:"if_none_match"`
						}
					}
					json.NewDecoder(r.Body).Decode(&b)
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprint(w, `{"items":[`)
					for i, it := range b.Items {
						if i > 0 {
							fmt.Fprint(w, ",")
						}
						status, body := write(it.ID, it.IfNoneMatch == "*")
						member := "record"
						if status >= 400 {
							member = "problem"
						}
						fmt.Fprintf(w, `{"status":%d,%q:%s}`, status, member, body)
					}
					fmt.Fprint(w, "]}")
				case r.Method == http.MethodPut:
					if older && r.Header.Get("If-None-Match") != "" {
						refused.Add(1)
						w.Header().Set("Content-Type", "application/problem+json")
						w.WriteHeader(400)
						fmt.Fprint(w, problem(400, "If-None-Match: not supported on PUT; use If-Match, or POST to create under a new id", "If-None-Match"))
						return
					}
					status, body := write(strings.TrimPrefix(r.URL.Path, "/v1/records/"), r.Header.Get("If-None-Match") == "*")
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(status)
					fmt.Fprint(w, body)
				default:
					http.Error(w, "unexpected", http.StatusTeapot)
				}
			}))
			defer srv.Close()
			code, out := runCLI(t, 60*time.Second, "import", "--node", srv.URL, "--token", tok, "--centre", "tianjin", "--catalogue", "supply", path)
			if older {
				// Only the first batch's rows asked; each was written again
				// without the precondition, and no row after it asked.
				if code != 0 || !strings.Contains(out, fmt.Sprintf("%d created, 0 updated, 0 unchanged, 0 failed", n+1)) || guarded.Load() != 0 {
					t.Fatalf("exit %d, %d guarded writes:\n%.2000s", code, guarded.Load(), out)
				}
				if r, p := refused.Load(), plain.Load(); r == 0 || r > 200 || p != int32(n+1) {
					t.Fatalf("%d refused, %d plain writes for %d rows", r, p, n+1)
				}
				return
			}
			if code != 1 || !strings.Contains(out, fmt.Sprintf("%d created, 0 updated, 0 unchanged, 1 failed", n)) ||
				!strings.Contains(out, "tianjin:s-3: created by another writer since import read it") {
				t.Fatalf("exit %d:\n%.2000s", code, out)
			}
			// s-7 is repeated in the file: its second row updates, in a batch of its own.
			if g, p := guarded.Load(), plain.Load(); g != int32(n+1) || p != 0 {
				t.Fatalf("%d writes with If-None-Match, %d without, for %d rows read as absent", g, p, n+1)
			}
		})
	}
}

// TestImportRetriesWhatWasAnswered503: rows answered 503 (an election, a
// write not committed in time), or 429 (a node at its max_writes), are read and written again after the node's
// Retry-After, a bounded number of times; a row whose write was applied
// although answered 503 is then found unchanged, not written twice.
func TestImportRetriesWhatWasAnswered503(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "three.csv")
	os.WriteFile(path, []byte("编号,标题,摘要,所属领域,技术成熟度,所属单位\n"+
		"s-1,成果一,摘要。,新材料,6,天津大学\ns-2,成果二,摘要。,新材料,6,天津大学\ns-3,成果三,摘要。,新材料,6,天津大学\n"), 0o600)
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("t"), 0o600)
	many, n := importFile(t)
	for _, c := range []struct {
		name       string
		file       string
		answers    []string // per batch request: "503" for the whole batch, else one status per item
		retryAfter string
		code       int
		out        string
		batches    int // -1: more than importAttempts, with no retries after the first chunk's
		retries    int // "trying them again" lines
	}{
		{"an election, then a batch with one item not committed in time", path, []string{"503", "201 503 201", "201"}, "0", 0,
			"2 created, 0 updated, 1 unchanged, 0 failed", 2, 2},
		{"unavailable throughout", path, []string{"503"}, "0", 1,
			"0 created, 0 updated, 0 unchanged, 3 failed", importAttempts, importAttempts - 1},
		{"unavailable throughout a long file: the first chunk's attempts are all", many, []string{"503"}, "0", 1,
			fmt.Sprintf("0 created, 0 updated, 0 unchanged, %d failed", n+1), -1, importAttempts - 1},
		{"down for a chunk's every attempt, then taking writes, then one election", many,
			[]string{"503", "503", "503", "503", "201", "503", "201"}, "0", 1, " failed", -1, importAttempts},
		{"a wait beyond the bound (an operator must act)", path, []string{"503"}, "30", 1,
			"0 created, 0 updated, 0 unchanged, 3 failed", 1, 0},
		{"a node at its max_writes, then taking writes", path, []string{"429", "201"}, "0", 0,
			"3 created, 0 updated, 0 unchanged, 0 failed", 2, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			var mu sync.Mutex
			stored := map[string]string{} // id → the record JSON
			batches := 0
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				defer mu.Unlock()
				unavailable := `{"type":"urn:liandong:problem:unavailable","title":"Service unavailable","status":503,"detail":"retry shortly"}`
				switch {
				case r.Method == http.MethodGet && r.URL.Query().Has("ids"):
					var recs []string
					for _, id := range strings.Split(r.URL.Query().Get("ids"), ",") {
						if js, ok := stored[id]; ok {
							recs = append(recs, js)
						}
					}
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprintf(w, `{"items":[%s]}`, strings.Join(recs, ","))
				case r.Method == http.MethodPost && r.URL.Path == "/v1/batch":
					answer := c.answers[min(batches, len(c.answers)-1)]
					batches++
					if answer == "503" {
						w.Header().Set("Content-Type", "application/problem+json")
						w.Header().Set("Retry-After", c.retryAfter)
						w.WriteHeader(http.StatusServiceUnavailable)
						fmt.Fprint(w, unavailable)
						return
					}
					if answer == "429" { // refused unbegun: nothing stored
						w.Header().Set("Content-Type", "application/problem+json")
						w.Header().Set("Retry-After", c.retryAfter)
						w.WriteHeader(http.StatusTooManyRequests)
						fmt.Fprint(w, `{"type":"urn:liandong:problem:too-many-writes","title":"Too many writes","status":429,"detail":"send it again"}`)
						return
					}
					var b struct {
						Items []struct {
							ID     string          `json:"id"`
							Record json.RawMessage `json:"record"`
						}
					}
					json.NewDecoder(r.Body).Decode(&b)
					statuses := strings.Fields(answer)
					w.Header().Set("Content-Type", "application/json")
					fmt.Fprint(w, `{"items":[`)
					for i, it := range b.Items {
						if i > 0 {
							fmt.Fprint(w, ",")
						}
						var rec schema.Record
						json.Unmarshal(it.Record, &rec)
						rec.ID, rec.Origin, rec.Version = it.ID, "tianjin", 1
						js, _ := json.Marshal(rec)
						// Applied even where answered 503: its outcome was unknown.
						stored[it.ID] = string(js)
						if i < len(statuses) && statuses[i] == "503" {
							fmt.Fprintf(w, `{"status":503,"problem":%s}`, unavailable)
							continue
						}
						fmt.Fprintf(w, `{"status":201,"record":%s}`, js)
					}
					fmt.Fprint(w, "]}")
				default:
					http.Error(w, "unexpected", http.StatusTeapot)
				}
			}))
			defer srv.Close()
			code, out := runCLI(t, 60*time.Second, "import", "--node", srv.URL, "--token", tok, "--centre", "tianjin", "--catalogue", "supply", c.file)
			if code != c.code || !strings.Contains(out, c.out) {
				t.Fatalf("exit %d, want %d and %q:\n%.3000s", code, c.code, c.out, out)
			}
			if r := strings.Count(out, "trying them again"); r != c.retries {
				t.Fatalf("%d retries, want %d:\n%.3000s", r, c.retries, out)
			}
			mu.Lock()
			defer mu.Unlock()
			if batches != c.batches && (c.batches >= 0 || batches <= importAttempts) {
				t.Fatalf("%d batches sent, want %d:\n%.3000s", batches, c.batches, out)
			}
		})
	}
}

// TestImportRetryInterrupted: rows waiting to be tried again when the import
// is interrupted (Ctrl-C) are counted failed, not left out of the summary.
func TestImportRetryInterrupted(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"items":[]}`)
			return
		}
		w.Header().Set("Content-Type", "application/problem+json")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"type":"urn:liandong:problem:unavailable","title":"Service unavailable","status":503}`)
	}))
	defer srv.Close()
	var out bytes.Buffer
	im := &importer{c: client.New(srv.URL, "t"), path: "f.csv", stdout: &out}
	var rows []transfer.Row
	for i := range 3 {
		rec := &schema.Record{ID: fmt.Sprintf("tianjin:s-%d", i), Catalogue: "supply", Visibility: "federation", Body: json.RawMessage(`{"title":"t"}`)}
		rows = append(rows, transfer.Row{Row: i + 2, Record: rec})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := im.rows(ctx, rows)
	if !errors.Is(err, context.DeadlineExceeded) || im.failed != 3 || time.Since(start) > 4*time.Second {
		t.Fatalf("interrupted after %v: %v; %d failed:\n%s", time.Since(start), err, im.failed, out.String())
	}
}

// TestImportKeepsWhatTheFileCannotSay: a table has no column for a patent's
// status, other kinds of IP rights, and a file may leave columns out. An
// unedited export of records written through the API imports back unchanged
// (no new version), and a file of a few columns changes only those.
func TestImportKeepsWhatTheFileCannotSay(t *testing.T) {
	url, tok := devNode(t)
	dir := t.TempDir()
	token, err := readTokenFile(tok)
	if err != nil {
		t.Fatal(err)
	}
	c := client.New(url, token)
	ctx := context.Background()
	body := `{"title":"高镍三元正极材料连续化制备技术","summary":"已完成百吨级中试。","industry":"new-materials","trl":6,"owner_org":"天津大学",` +
		`"ip":[{"type":"software-copyright","number":"2023SR0123456","status":"granted"},{"type":"patent","number":"ZL202110345678.9","status":"pending"},{"type":"know-how"}],` +
		`"contact":{"person":"王老师","phone":"022-27400000"}}`
	for _, rc := range []struct{ id, vis string }{{"tianjin:s-1", schema.VisibilityFederation}, {"tianjin:s-2", schema.VisibilityPrivate}} {
		if _, err := c.Put(ctx, rc.id, &schema.Record{Catalogue: schema.CatalogueSupply, Visibility: rc.vis, Body: json.RawMessage(body)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, format := range []string{"csv", "xlsx", "jsonl"} {
		exported := filepath.Join(dir, "out."+format)
		if code, out := runCLI(t, 20*time.Second, "export", "--node", url, "--token", tok, "--catalogue", "supply", "--out", exported); code != 0 {
			t.Fatalf("export %s: exit %d\n%s", format, code, out)
		}
		code, out := runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", exported)
		if code != 0 || !strings.Contains(out, "0 created, 0 updated, 2 unchanged") {
			t.Fatalf("re-import of the %s export: exit %d\n%s", format, code, out)
		}
	}
	// A file of the required columns only, a new title: the rest of each
	// record is kept, its visibility (the file says none) included.
	titles := filepath.Join(dir, "titles.csv")
	os.WriteFile(titles, []byte("编号,标题,摘要,所属领域\ns-1,高镍三元正极材料（第二版）,已完成百吨级中试。,新材料\ns-2,内部成果（第二版）,已完成百吨级中试。,新材料\n"), 0o600)
	if code, out := runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", titles); code != 0 || !strings.Contains(out, "0 created, 2 updated, 0 unchanged") {
		t.Fatalf("import of titles: exit %d\n%s", code, out)
	}
	for id, title := range map[string]string{"tianjin:s-1": "高镍三元正极材料（第二版）", "tianjin:s-2": "内部成果（第二版）"} {
		got, err := c.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		json.Unmarshal([]byte(body), &want)
		want["title"] = title
		var have map[string]any
		json.Unmarshal(got.Body, &have)
		if got.Version != 2 || !reflect.DeepEqual(have, want) {
			t.Fatalf("%s after importing its title: version %d\n got %s\nwant title %s over %s", id, got.Version, got.Body, title, body)
		}
		if wantVis := map[string]string{"tianjin:s-1": schema.VisibilityFederation, "tianjin:s-2": schema.VisibilityPrivate}[id]; got.Visibility != wantVis {
			t.Fatalf("%s: visibility %s after a file that gives none, want %s", id, got.Visibility, wantVis)
		}
	}
	// --visibility, given, is said for every row that does not say.
	if code, out := runCLI(t, 20*time.Second, "import", "--node", url, "--token", tok, "--catalogue", "supply", "--visibility", "public", titles); code != 0 || !strings.Contains(out, "0 created, 2 updated, 0 unchanged") {
		t.Fatalf("import with --visibility public: exit %d\n%s", code, out)
	}
	if got, err := c.Get(ctx, "tianjin:s-2"); err != nil || got.Visibility != schema.VisibilityPublic {
		t.Fatalf("after --visibility public: %+v %v", got, err)
	}
}
