package transfer

import (
	"bytes"
	"runtime"
	"testing"
)

// TestXLSXSparseRowsAreCheap: row numbers a sheet skips cost nothing, before
// its header or after it. Each used to allocate cell types for a full row:
// for 16,384 columns until the header was read (50 GB for a header at row
// 200,000 of a 6 KB file), and as many as a header reaching column XFD had
// after (25 GB here). The bound is on bytes allocated (about 130 MB now,
// excelize's own row iteration), which no machine's speed changes.
func TestXLSXSparseRowsAreCheap(t *testing.T) {
	const head = `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`
	for _, tc := range []struct {
		name, rows string
		want       int
	}{
		{"header far down",
			`<row r="200000"><c t="inlineStr"><is><t>编号</t></is></c><c t="inlineStr"><is><t>标题</t></is></c></row>` +
				`<row r="200001"><c t="inlineStr"><is><t>k-1</t></is></c><c t="inlineStr"><is><t>x</t></is></c></row>`, 1},
		{"header reaching XFD, then a gap",
			`<row r="1"><c r="A1" t="inlineStr"><is><t>编号</t></is></c><c r="B1" t="inlineStr"><is><t>标题</t></is></c><c r="XFD1" t="inlineStr"><is><t>摘要</t></is></c></row>` +
				`<row r="2"><c r="A2" t="inlineStr"><is><t>k-1</t></is></c><c r="B2" t="inlineStr"><is><t>x</t></is></c></row>` +
				`<row r="100000"><c r="A100000" t="inlineStr"><is><t>k-2</t></is></c><c r="B100000" t="inlineStr"><is><t>y</t></is></c></row>`, 2},
	} {
		data := withSheetXML(t, xlsxOf(t, [][]any{{"编号", "名称"}, {"a", "b"}}), head+tc.rows+`</sheetData></worksheet>`)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		rows, err := Read(bytes.NewReader(data), Options{Format: FormatXLSX, Catalogue: "supply", Centre: "tianjin"})
		runtime.ReadMemStats(&after)
		if err != nil || len(rows) != tc.want {
			t.Fatalf("%s: %d rows, %v; want %d", tc.name, len(rows), err, tc.want)
		}
		if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 1<<30 {
			t.Errorf("%s: a %d-byte workbook allocated %d MiB to read", tc.name, len(data), allocated>>20)
		}
	}
}
