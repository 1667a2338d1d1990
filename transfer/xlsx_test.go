package transfer

import (
	"archive/zip"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"liandong/schema"
)

// xlsxOf builds a workbook whose first sheet holds grid; cells that are not
// strings keep their type (numbers, times with a date format, bools).
func xlsxOf(t testing.TB, grid [][]any) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	dateFmt := "yyyy/m/d"
	dateStyle, err := f.NewStyle(&excelize.Style{CustomNumFmt: &dateFmt})
	if err != nil {
		t.Fatal(err)
	}
	for r, row := range grid {
		for c, v := range row {
			ref, _ := excelize.CoordinatesToCellName(c+1, r+1)
			if v == nil {
				continue
			}
			if err := f.SetCellValue("Sheet1", ref, v); err != nil {
				t.Fatal(err)
			}
			if _, ok := v.(time.Time); ok {
				if err := f.SetCellStyle("Sheet1", ref, ref, dateStyle); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// gridOf splits a CSV into a grid of string cells; numbers turns cells that
// parse as numbers (except in the key column) into number cells.
func gridOf(t testing.TB, text string, numbers bool) [][]any {
	t.Helper()
	cr := csv.NewReader(strings.NewReader(text))
	cr.FieldsPerRecord = -1
	recs, err := cr.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var grid [][]any
	for r, rec := range recs {
		row := make([]any, len(rec))
		for i, v := range rec {
			row[i] = v
			if n, err := strconv.ParseFloat(v, 64); err == nil && numbers && r > 0 && recs[0][i] != "编号" {
				row[i] = n
			}
		}
		grid = append(grid, row)
	}
	return grid
}

// TestXLSXSameAsCSV reads the CSV files of the CSV tests as workbooks, with
// text cells and with number cells: the same records and the same errors.
func TestXLSXSameAsCSV(t *testing.T) {
	dryRun := `清单,编号,标题,需求描述,所属领域,需求企业,技术成熟度,截止日期,预算下限,预算上限,姓名,工作单位
需求,n-1,轴承寿命预测,风电齿轮箱轴承寿命预测。,高端装备,天津某装备公司,,2027-06-30,50万,200万,,
需求,n-2,,描述,高端装备,天津某装备公司,,2027年6月31日,,,,
需求,n 3,钢铁,描述,钢铁,某钢铁公司,,,3000000,1000000,,
成果,s-1,碳纤维,,新材料,,十,,,,,
成果,s-2,碳纤维,碳纤维原丝,新材料,,6.5,,,,,
专家,e-1,,,,,,,,,李明,河北工业大学
专利,x-1,,,,,,,,,,

需求,n-4,轴承,描述,高端装备,某公司,,2027/7/1,,,,,多余
`
	for _, c := range []struct {
		name, text string
		o          Options
	}{
		{"supply", supplyCSV, Options{Catalogue: "supply", Centre: "tianjin"}},
		{"dry run", dryRun, Options{Centre: "tianjin"}},
	} {
		want := mustRead(t, []byte(c.text), c.o)
		for _, numbers := range []bool{false, true} {
			o := c.o
			o.Format = FormatXLSX
			got := mustRead(t, xlsxOf(t, gridOf(t, c.text, numbers)), o)
			if len(got) != len(want) {
				t.Fatalf("%s (numbers %v): %d rows, want %d", c.name, numbers, len(got), len(want))
			}
			for i := range got {
				g, w := got[i], want[i]
				if g.Row != w.Row || g.Key != w.Key || !reflect.DeepEqual(g.Errors, w.Errors) || (g.Record == nil) != (w.Record == nil) {
					t.Errorf("%s (numbers %v): row %d:\n got %+v\nwant %+v", c.name, numbers, w.Row, g, w)
					continue
				}
				if g.Record != nil && (!bytes.Equal(g.Record.Body, w.Record.Body) || g.Record.ID != w.Record.ID || g.Record.Visibility != w.Record.Visibility) {
					t.Errorf("%s (numbers %v): row %d:\n got %s\nwant %s", c.name, numbers, w.Row, g.Record.Body, w.Record.Body)
				}
			}
		}
	}
}

// TestXLSXNumbersAndDates reads cells Excel stores as numbers: TRL, amounts
// (with floating-point noise), months, and dates as serial numbers.
func TestXLSXNumbersAndDates(t *testing.T) {
	deadline := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
	data := xlsxOf(t, [][]any{
		{"编号", "需求名称", "需求描述", "行业", "需求企业", "预算下限", "预算上限", "截止日期", "攻关周期（月）", "攻关目标", "有效期至", "状态"},
		{1001, "轴承寿命预测", "描述", "高端装备", "天津某装备公司", 500000, 1234567.8900000001, deadline, 18, "寿命预测误差<10%", 46568.5, "开放"},
		{"n-2", "轴承", "描述", "高端装备", "天津某装备公司", 0.1 + 0.2, 1e7, 46568, 12.0, "寿命预测", deadline, "开放"},
	})
	rows := mustRead(t, data, Options{Format: FormatXLSX, Catalogue: "need", Centre: "tianjin"})
	if len(rows) != 2 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		if len(r.Errors) > 0 {
			t.Fatalf("row %d: %v", r.Row, r.Errors)
		}
	}
	var b schema.NeedBody
	if err := json.Unmarshal(rows[0].Record.Body, &b); err != nil {
		t.Fatal(err)
	}
	if rows[0].Record.ID != "tianjin:1001" || b.Budget == nil || b.Budget.Min != 500000 || b.Budget.Max != 1234567.89 || b.Deadline != "2027-06-30" ||
		b.Challenge == nil || b.Challenge.MaxMonths != 18 || b.Status != "open" {
		t.Fatalf("row 2: %s", rows[0].Record.Body)
	}
	// Excel's times have no zone: 12:00 is China's noon, and a bare date
	// the end of that day in China, as the web console reads them.
	china := time.FixedZone("UTC+8", 8*3600)
	if e := rows[0].Record.ExpiresAt; e == nil || !e.Equal(time.Date(2027, 6, 30, 12, 0, 0, 0, china)) {
		t.Fatalf("row 2 expires %v", e)
	}
	json.Unmarshal(rows[1].Record.Body, &b)
	if b.Budget.Min != 0.3 || b.Budget.Max != 1e7 || b.Deadline != "2027-06-30" || b.Challenge.MaxMonths != 12 {
		t.Fatalf("row 3: %s", rows[1].Record.Body)
	}
	if e := rows[1].Record.ExpiresAt; e == nil || !e.Equal(time.Date(2027, 6, 30, 23, 59, 59, 0, china)) {
		t.Fatalf("row 3 expires %v", e)
	}

	// A supply row: TRL as a number, a bool cell, and a TRL that is no whole
	// number, reported as the CSV reports it.
	data = xlsxOf(t, [][]any{
		{"编号", "标题", "摘要", "所属领域", "技术成熟度", "所属单位", "颠覆性"},
		{"s-1", "高镍三元正极材料", "已完成中试。", "新材料", 6, "天津大学", true},
		{"s-2", "钙钛矿", "摘要", "新能源", 6.5, "南开大学", false},
	})
	rows = mustRead(t, data, Options{Format: FormatXLSX, Catalogue: "supply", Centre: "tianjin"})
	var sb schema.SupplyBody
	json.Unmarshal(rows[0].Record.Body, &sb)
	if len(rows[0].Errors) > 0 || sb.TRL != 6 || !sb.Disruptive {
		t.Fatalf("supply row 2: %v %s", rows[0].Errors, rows[0].Record.Body)
	}
	if len(rows[1].Errors) != 1 || rows[1].Errors[0].String() != "row 3, column 技术成熟度: want a whole number" {
		t.Fatalf("supply row 3: %v", rows[1].Errors)
	}
}

func TestXLSXSheets(t *testing.T) {
	f := excelize.NewFile()
	defer f.Close()
	f.SetSheetName("Sheet1", "说明")
	f.SetCellValue("说明", "A1", "请填写第二张表")
	f.NewSheet("成果")
	for i, v := range []any{"编号", "标题", "摘要", "所属领域", "技术成熟度", "所属单位"} {
		ref, _ := excelize.CoordinatesToCellName(i+1, 1)
		f.SetCellValue("成果", ref, v)
	}
	f.SetSheetRow("成果", "A3", &[]any{"s-1", "高镍三元正极材料", "已完成中试。", "新材料", 6, "天津大学"})
	var buf bytes.Buffer
	if _, err := f.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	o := Options{Format: FormatXLSX, Catalogue: "supply", Centre: "tianjin"}
	if _, err := Read(bytes.NewReader(buf.Bytes()), o); !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), `"说明"`) {
		t.Fatalf("first sheet: %v", err)
	}
	o.Sheet = "成果"
	rows := mustRead(t, buf.Bytes(), o)
	if len(rows) != 1 || rows[0].Row != 3 || rows[0].Record == nil {
		t.Fatalf("sheet 成果: %+v", rows)
	}
	o.Sheet = "需求"
	if _, err := Read(bytes.NewReader(buf.Bytes()), o); !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), `no sheet "需求"`) || !strings.Contains(err.Error(), `"成果"`) {
		t.Fatalf("missing sheet: %v", err)
	}
}

// TestXLSXRoundTrip writes sample records of each catalogue as a workbook and
// reads them back.
func TestXLSXRoundTrip(t *testing.T) {
	recs := roundTripRecords(t)
	for _, cat := range schema.Catalogues {
		var buf bytes.Buffer
		w, err := NewWriter(&buf, FormatXLSX, cat, "", false)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]*schema.Record{}
		for _, r := range recs {
			if err := w.Write(r); err != nil {
				t.Fatal(err)
			}
			if r.Catalogue == cat {
				want[r.ID] = r
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		rows := mustRead(t, buf.Bytes(), Options{Format: FormatXLSX, Catalogue: cat, Centre: "tianjin"})
		checkRoundTrip(t, cat+" xlsx", rows, want)
		// The sheet's name says the catalogue: no --catalogue needed.
		rows = mustRead(t, buf.Bytes(), Options{Format: FormatXLSX, Centre: "tianjin"})
		checkRoundTrip(t, cat+" xlsx without a catalogue", rows, want)

		// One sheet, Chinese headers in bold, columns sized, numbers as numbers.
		f, err := excelize.OpenReader(bytes.NewReader(buf.Bytes()))
		if err != nil {
			t.Fatal(err)
		}
		sheets := f.GetSheetList()
		if len(sheets) != 1 {
			t.Fatalf("%s: sheets %v", cat, sheets)
		}
		head, _ := f.GetCellValue(sheets[0], "A1")
		if head != columns(cat)[0].headers[0] {
			t.Fatalf("%s: A1 %q", cat, head)
		}
		for i := range columns(cat) {
			col, _ := excelize.ColumnNumberToName(i + 1)
			w, err := f.GetColWidth(sheets[0], col)
			if err != nil || w < xlsxMinWidth || w > xlsxMaxWidth {
				t.Fatalf("%s: column %s width %v %v", cat, col, w, err)
			}
		}
		if cat == schema.CatalogueSupply {
			typ, _ := f.GetCellType(sheets[0], "D2") // 技术成熟度
			if h, _ := f.GetCellValue(sheets[0], "D1"); h != "技术成熟度" || typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber {
				t.Fatalf("TRL column %q: cell type %v", h, typ)
			}
		}
		f.Close()
	}
}

// TestXLSXBadFiles: whatever the bytes, an error that says what is wrong,
// never a panic.
func TestXLSXBadFiles(t *testing.T) {
	good := xlsxOf(t, gridOf(t, supplyCSV, true))
	o := Options{Format: FormatXLSX, Catalogue: "supply", Centre: "tianjin"}
	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "empty"},
		{"csv", []byte(supplyCSV), "not an .xlsx"},
		{"xls", append([]byte{0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1}, make([]byte, 512)...), ".xls"},
		{"zip header only", []byte("PK\x03\x04garbage"), "not a readable .xlsx"},
		{"truncated", good[:len(good)/2], "not a readable .xlsx"},
		{"empty sheet", xlsxOf(t, nil), "empty"},
		{"unknown header", xlsxOf(t, [][]any{{"编号", "颜色"}, {"x", "红"}}), `"颜色"`},
	} {
		_, err := Read(bytes.NewReader(c.data), o)
		if !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v", c.name, err)
		}
	}

	// Corrupt zips: truncated anywhere, bytes flipped anywhere.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		data := bytes.Clone(good)
		if i%3 == 0 {
			data = data[:rng.IntN(len(data))]
		} else {
			for range 1 + rng.IntN(8) {
				data[rng.IntN(len(data))] ^= byte(1 + rng.IntN(255))
			}
		}
		readNoPanic(t, data, o)
	}
}

func readNoPanic(t *testing.T, data []byte, o Options) {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("panic on %d bytes: %v", len(data), p)
		}
	}()
	rows, err := Read(bytes.NewReader(data), o)
	if err != nil && !errors.Is(err, ErrFile) {
		t.Fatalf("error not ErrFile: %v", err)
	}
	for _, r := range rows {
		if r.Record == nil && len(r.Errors) == 0 {
			t.Fatalf("row %d: neither record nor errors", r.Row)
		}
	}
}

func FuzzReadXLSX(f *testing.F) {
	good := xlsxOf(f, gridOf(f, supplyCSV, true))
	f.Add(good)
	f.Add(good[:len(good)-10])
	f.Add([]byte("PK\x03\x04"))
	f.Fuzz(func(t *testing.T, data []byte) {
		readNoPanic(t, data, Options{Format: FormatXLSX, Catalogue: "supply", Centre: "tianjin"})
	})
}

func TestFormatOf(t *testing.T) {
	for name, want := range map[string]string{"a.csv": FormatCSV, "a.XLSX": FormatXLSX, "a.jsonl": FormatJSONL, "a.ndjson": FormatJSONL, "a": FormatCSV, "a.txt": FormatCSV} {
		if got := FormatOf(name); got != want {
			t.Errorf("%s: %s, want %s", name, got, want)
		}
	}
}

// withSheetXML returns the workbook good with its first sheet's XML replaced.
func withSheetXML(t *testing.T, good []byte, sheet string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(good), int64(len(good)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, f := range zr.File {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f.Name, Method: zip.Deflate})
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == "xl/worksheets/sheet1.xml" {
			io.WriteString(w, sheet)
			continue
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(w, rc)
		rc.Close()
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// peakHeap runs f and returns how far the live heap rose above where it
// was, sampled every 10ms.
func peakHeap(f func()) uint64 {
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop, peak := make(chan struct{}), make(chan uint64)
	go func() {
		var m runtime.MemStats
		hi := uint64(0)
		for {
			runtime.ReadMemStats(&m)
			hi = max(hi, m.HeapAlloc)
			select {
			case <-stop:
				peak <- hi
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	f()
	close(stop)
	return max(<-peak, base.HeapAlloc) - base.HeapAlloc
}

// A workbook of a few KB whose rows each hold one cell in the last column
// (XFD) took hundreds of MB: the whole sheet was read at once, each row
// padded to its last cell, 16384 cells, before MaxRows or any other limit
// was checked. The same with blank cells at XFD and a number in a date
// column, whose cell type was looked up by loading the whole sheet. Rows
// are now streamed, and a row with a cell far beyond the header is refused
// without its cells being read.
func TestXLSXWideRowsStayCheap(t *testing.T) {
	good := xlsxOf(t, [][]any{{"编号", "名称"}, {"a", "b"}})
	const n = 1000
	for name, cells := range map[string]func(r int) string{
		"a value at XFD": func(r int) string { return fmt.Sprintf(`<c r="XFD%d"><v>1</v></c>`, r) },
		"a blank cell at XFD, a serial date": func(r int) string {
			return fmt.Sprintf(`<c r="A%d" t="inlineStr"><is><t>k-%d</t></is></c><c r="C%d"><v>46568.25</v></c><c r="XFD%d" s="0"/>`, r, r, r, r)
		},
	} {
		var sb strings.Builder
		sb.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`)
		sb.WriteString(`<row r="1"><c r="A1" t="inlineStr"><is><t>编号</t></is></c><c r="B1" t="inlineStr"><is><t>名称</t></is></c><c r="C1" t="inlineStr"><is><t>有效期至</t></is></c></row>`)
		for r := 2; r < 2+n; r++ {
			fmt.Fprintf(&sb, `<row r="%d">%s</row>`, r, cells(r))
		}
		sb.WriteString(`</sheetData></worksheet>`)
		data := withSheetXML(t, good, sb.String())
		var rows []Row
		var err error
		start := time.Now()
		hi := peakHeap(func() {
			rows, err = Read(bytes.NewReader(data), Options{Format: FormatXLSX, Catalogue: "supply", Centre: "tianjin"})
		})
		t.Logf("%s: %d-byte file, %v, peak heap +%d MB", name, len(data), time.Since(start).Round(time.Millisecond), hi>>20)
		if err != nil || len(rows) != n {
			t.Fatalf("%s: %d rows, err %v", name, len(rows), err)
		}
		if hi > 64<<20 {
			t.Errorf("%s: a %d-byte workbook of %d rows took %d MB of heap", name, len(data), n, hi>>20)
		}
	}
}

// A row with a cell far beyond the header is refused, naming the cell's
// column; one just beyond is read, and refused as a CSV's is.
func TestXLSXCellsBeyondTheHeader(t *testing.T) {
	good := xlsxOf(t, [][]any{{"编号", "名称"}, {"a", "b"}})
	sheet := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>` +
		`<row r="1"><c r="A1" t="inlineStr"><is><t>编号</t></is></c><c r="B1" t="inlineStr"><is><t>标题</t></is></c></row>` +
		`<row r="2"><c r="A2" t="inlineStr"><is><t>k-2</t></is></c><c r="XFD2"><v>1</v></c></row>` +
		`<row r="3"><c r="A3" t="inlineStr"><is><t>k-3</t></is></c><c r="D3"><v>1</v></c></row>` +
		`<row r="4"><c r="A4" t="inlineStr"><is><t>k-4</t></is></c><c r="XFD4" s="0"/></row>` +
		`</sheetData></worksheet>`
	rows := mustRead(t, withSheetXML(t, good, sheet), Options{Format: FormatXLSX, Catalogue: "supply", Centre: "tianjin"})
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	if e := rows[0].Errors; len(e) != 1 || e[0].String() != "row 2, column XFD: a cell beyond the last header" {
		t.Errorf("row 2: %v", e)
	}
	if e := rows[1].Errors; rows[1].Key != "k-3" || !slices.ContainsFunc(e, func(e CellError) bool { return e.String() == "row 3, column #4: a cell beyond the last header" }) {
		t.Errorf("row 3: %v", e)
	}
	// A blank cell beyond, as a formatted column leaves, is no cell.
	if rows[2].Key != "k-4" || slices.ContainsFunc(rows[2].Errors, func(e CellError) bool { return strings.Contains(e.Message, "beyond") }) {
		t.Errorf("row 4: %v", rows[2].Errors)
	}
}
