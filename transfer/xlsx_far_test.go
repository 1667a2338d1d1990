package transfer

import (
	"bytes"
	"runtime"
	"testing"
)

// A sheet whose header row is far down (here row 200000, after nothing but
// an absent-row gap) is a ~300-byte sheet. Before fix-transfer it read in
// ~40 ms; sheetCells.row now allocates types for excelize.MaxColumns (16384)
// columns for every row before the header, 256 KiB per row number, so a
// workbook of a few hundred bytes with its header at row 1048576 costs
// ~256 GB of allocation (minutes of CPU).
// TestXLSXFarHeaderIsCheap: a header far down a sheet costs nothing for the
// row numbers before it (they allocated a full width of cell types each: 50
// GB for a header at row 200,000 of a 6 KB file). The bound is on bytes
// allocated, which no machine's speed changes.
func TestXLSXFarHeaderIsCheap(t *testing.T) {
	good := xlsxOf(t, [][]any{{"编号", "名称"}, {"a", "b"}})
	sheet := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>` +
		`<row r="200000"><c t="inlineStr"><is><t>编号</t></is></c><c t="inlineStr"><is><t>标题</t></is></c></row>` +
		`<row r="200001"><c t="inlineStr"><is><t>k-1</t></is></c><c t="inlineStr"><is><t>x</t></is></c></row>` +
		`</sheetData></worksheet>`
	data := withSheetXML(t, good, sheet)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rows, err := Read(bytes.NewReader(data), Options{Format: FormatXLSX, Catalogue: "supply", Centre: "tianjin"})
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	if err != nil || len(rows) != 1 {
		t.Fatalf("rows %d err %v", len(rows), err)
	}
	if allocated > 1<<30 {
		t.Errorf("a %d-byte workbook allocated %d MiB to read", len(data), allocated>>20)
	}
}

// The same cost after the header: a header row with a known header in its
// last column (XFD) makes every later row number allocate 16384 types.
// TestXLSXWideHeaderGapIsCheap: a header with a known name at column XFD
// does not make every later row number cost its full width (25 GB for this
// file before; about 130 MB now, excelize's own row iteration).
func TestXLSXWideHeaderGapIsCheap(t *testing.T) {
	good := xlsxOf(t, [][]any{{"编号", "名称"}, {"a", "b"}})
	sheet := `<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>` +
		`<row r="1"><c r="A1" t="inlineStr"><is><t>编号</t></is></c><c r="B1" t="inlineStr"><is><t>标题</t></is></c><c r="XFD1" t="inlineStr"><is><t>摘要</t></is></c></row>` +
		`<row r="2"><c r="A2" t="inlineStr"><is><t>k-1</t></is></c><c r="B2" t="inlineStr"><is><t>x</t></is></c></row>` +
		`<row r="100000"><c r="A100000" t="inlineStr"><is><t>k-2</t></is></c><c r="B100000" t="inlineStr"><is><t>y</t></is></c></row>` +
		`</sheetData></worksheet>`
	data := withSheetXML(t, good, sheet)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rows, err := Read(bytes.NewReader(data), Options{Format: FormatXLSX, Catalogue: "supply", Centre: "tianjin"})
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	if err != nil || len(rows) != 2 {
		t.Fatalf("rows %d err %v", len(rows), err)
	}
	if allocated > 1<<30 {
		t.Errorf("a %d-byte workbook allocated %d MiB to read", len(data), allocated>>20)
	}
}
