package transfer

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"liandong/schema"
)

// FormatXLSX is an Excel workbook (.xlsx): read from its first sheet (or
// Options.Sheet) with the same headers, conversions and errors as a CSV;
// written as one sheet with Chinese headers.
const FormatXLSX = "xlsx"

// FormatOf returns the format a file name implies: FormatJSONL for .jsonl and
// .ndjson, FormatXLSX for .xlsx, else FormatCSV.
func FormatOf(name string) string {
	name = strings.ToLower(name)
	switch {
	case strings.HasSuffix(name, ".jsonl"), strings.HasSuffix(name, ".ndjson"):
		return FormatJSONL
	case strings.HasSuffix(name, ".xlsx"):
		return FormatXLSX
	}
	return FormatCSV
}

// Limits on what an .xlsx may unzip to, against zip bombs: in all, twice a
// CSV's MaxBytes (the cells of the largest CSV, with their XML markup); a
// sheet or shared-strings part over xlsxUnzipXMLLimit is unzipped to a
// temporary file rather than held, and read from it as a stream.
const (
	xlsxUnzipLimit    = 2 * MaxBytes
	xlsxUnzipXMLLimit = 64 << 20
)

// xlsxFarColumn is the last column (AMJ) a data row's cells are read to when
// it has a cell beyond the header: a row is read as padded to its last cell.
const xlsxFarColumn = 1024

// readXLSX reads the rows of one sheet as readCSV reads lines: row numbers are
// the sheet's own. Excel's types are turned into the text a CSV would hold:
// numbers in their plain decimal form (15 significant digits, as Excel shows
// them) and date serial numbers, in the date columns, as dates.
func readXLSX(data []byte, o Options) (rows []Row, err error) {
	// A workbook is untrusted input to a large parser: whatever it does, the
	// caller gets an error, never a panic.
	defer func() {
		if p := recover(); p != nil {
			rows, err = nil, fmt.Errorf("%w: not a readable .xlsx workbook (%v)", ErrFile, p)
		}
	}()
	switch {
	case len(data) == 0:
		return nil, fmt.Errorf("%w: the file is empty", ErrFile)
	case bytes.HasPrefix(data, []byte{0xD0, 0xCF, 0x11, 0xE0}):
		return nil, fmt.Errorf("%w: an old-style .xls or a password-protected workbook, not an .xlsx: save it in Excel as \"Excel Workbook (*.xlsx)\" without a password, or as CSV", ErrFile)
	case !bytes.HasPrefix(data, []byte("PK\x03\x04")):
		return nil, fmt.Errorf("%w: not an .xlsx workbook (an .xlsx is a zip archive; is this a CSV? pass --format csv)", ErrFile)
	}
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{UnzipSizeLimit: xlsxUnzipLimit, UnzipXMLSizeLimit: xlsxUnzipXMLLimit})
	if err != nil {
		return nil, fmt.Errorf("%w: not a readable .xlsx workbook: %v", ErrFile, err)
	}
	defer f.Close()
	sheets := f.GetSheetList()
	sheet := o.Sheet
	switch {
	case len(sheets) == 0:
		return nil, fmt.Errorf("%w: the workbook has no sheets", ErrFile)
	case sheet == "":
		sheet = sheets[0]
	default:
		found := false
		for _, s := range sheets {
			if s == sheet {
				found = true
			}
		}
		if !found {
			for _, s := range sheets {
				if strings.EqualFold(strings.TrimSpace(s), strings.TrimSpace(sheet)) {
					sheet, found = s, true
					break
				}
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: no sheet %q; the workbook has %s", ErrFile, o.Sheet, quoteAll(sheets))
		}
	}
	date1904 := false
	if p, err := f.GetWorkbookProps(); err == nil && p.Date1904 != nil {
		date1904 = *p.Date1904
	}
	cv := cellConverter{date1904: date1904}
	if c, ok := catalogueNames[strings.TrimSpace(sheet)]; ok && o.Catalogue == "" {
		// The sheet's name says the catalogue, as export names it (成果,
		// 需求, 专家): its own exports import without --catalogue.
		o.Catalogue = c
	}

	// The rows are streamed, one at a time, and so are the cells' types:
	// a row is padded to its last cell, and a cell beyond the header
	// (column XFD, in a file of a few KB) must not cost 16384 cells a row
	// held for every row.
	it, err := f.Rows(sheet)
	if err != nil {
		return nil, fmt.Errorf("%w: sheet %q: %v", ErrFile, sheet, err)
	}
	defer it.Close()
	sc, err := openSheetCells(data, sheet, f.CharsetReader)
	if err != nil {
		return nil, fmt.Errorf("%w: sheet %q: %v", ErrFile, sheet, err)
	}
	defer sc.Close()
	var (
		t     *table
		dates []valueKind
	)
	for line := 1; it.Next(); line++ {
		width := excelize.MaxColumns // until the header is read
		if t != nil {
			width = len(t.header)
		}
		rc, err := sc.row(line, width)
		if err != nil {
			return nil, fmt.Errorf("%w: sheet %q, row %d: %v", ErrFile, sheet, line, err)
		}
		if !rc.values {
			continue
		}
		if t != nil && len(rows) == MaxRows {
			return nil, fmt.Errorf("%w: more than %d rows: split the file", ErrFile, MaxRows)
		}
		if t != nil && rc.beyond > 0 && rc.last > xlsxFarColumn {
			// A cell far beyond the header: the row is refused before
			// its cells are read, which would run to that one. (One
			// just beyond is read, and refused as a CSV's is.)
			name, _ := excelize.ColumnNumberToName(rc.beyond)
			rows = append(rows, Row{Row: line, Errors: []CellError{{Row: line, Column: name, Message: "a cell beyond the last header"}}})
			continue
		}
		rec, err := it.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			return nil, fmt.Errorf("%w: sheet %q, row %d: %v", ErrFile, sheet, line, err)
		}
		if blank(rec) {
			continue
		}
		if t == nil {
			// The first row that is not blank is the header.
			header := rec
			for len(header) > 0 && strings.TrimSpace(header[len(header)-1]) == "" {
				header = header[:len(header)-1]
			}
			if t, err = newTable(header, o); err != nil {
				return nil, fmt.Errorf("sheet %q: %w", sheet, err)
			}
			dates = make([]valueKind, len(header))
			for i, h := range header {
				dates[i] = dateKind(h)
			}
			continue
		}
		cells := make([]string, len(rec))
		for i, v := range rec {
			kind, typ := kindText, ""
			if i < len(dates) {
				kind = dates[i]
				if i < len(rc.types) {
					typ = rc.types[i]
				}
			}
			cells[i] = cv.cell(v, typ, kind)
		}
		if row, ok := t.row(line, cells); ok {
			rows = append(rows, row)
		}
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("%w: sheet %q: %v", ErrFile, sheet, err)
	}
	if t == nil {
		return nil, fmt.Errorf("%w: sheet %q is empty", ErrFile, sheet)
	}
	return rows, nil
}

func quoteAll(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = strconv.Quote(n)
	}
	return strings.Join(q, ", ")
}

// dateKind is kindDate or kindTime when a header names a date or time column
// of any catalogue, else kindText.
func dateKind(header string) valueKind {
	for _, cat := range schema.Catalogues {
		if c, ok := lookupColumn(cat, header); ok && (c.kind == kindDate || c.kind == kindTime) {
			return c.kind
		}
	}
	return kindText
}

// cellConverter turns raw cell values into the text a CSV of the sheet holds.
type cellConverter struct {
	date1904 bool
}

// cell converts the raw value v of a cell of type typ (its t attribute) in a
// column of kind. Only values that look like numbers are looked at closer: a
// number cell (not text that looks like one) is written in plain decimal, or
// as a date in a date column.
func (cv cellConverter) cell(v, typ string, kind valueKind) string {
	if v == "" {
		return v
	}
	num, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	isNum := err == nil && !math.IsInf(num, 0) && !math.IsNaN(num)
	canon := ""
	if isNum {
		canon = plainNumber(num)
	}
	if kind == kindText && (!isNum || canon == v) {
		return v
	}
	switch typ {
	case "", "n":
		if !isNum {
			return v
		}
		if kind == kindDate || kind == kindTime {
			if d, ok := cv.serialDate(num, kind); ok {
				return d
			}
		}
		return canon
	case "d":
		// An ISO 8601 date cell: with an offset, a time as given.
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			if kind == kindTime {
				return t.Format(time.RFC3339)
			}
			return t.Format("2006-01-02")
		}
		for _, l := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02"} {
			if t, err := time.Parse(l, v); err == nil {
				return dateText(t, kind)
			}
		}
	}
	return v
}

// serialDate converts an Excel date serial number.
func (cv cellConverter) serialDate(num float64, kind valueKind) (string, bool) {
	if num < 1 || num > 2958465 { // 1900-01-01 … 9999-12-31
		return "", false
	}
	t, err := excelize.ExcelDateToTime(num, cv.date1904)
	if err != nil {
		return "", false
	}
	return dateText(t, kind), true
}

// dateText writes a date as parseDate reads it, and a time of day (in a time
// column) as RFC 3339. t is the cell's wall clock (Excel keeps no time
// zone), read as China's time, as a bare date is read as a day in China.
func dateText(t time.Time, kind valueKind) string {
	if kind == kindTime && (t.Hour() != 0 || t.Minute() != 0 || t.Second() != 0) {
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, chinaTime).Format(time.RFC3339)
	}
	return t.Format("2006-01-02")
}

// plainNumber writes a number as Excel shows it in General format: rounded to
// 15 significant digits, without an exponent.
func plainNumber(f float64) string {
	r, err := strconv.ParseFloat(strconv.FormatFloat(f, 'g', 15, 64), 64)
	if err != nil {
		r = f
	}
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// xlsxWriter writes records as one sheet. The first rows are held back to
// size the columns by their content; the rest stream to the sheet.
type xlsxWriter struct {
	out       io.Writer
	f         *excelize.File
	sw        *excelize.StreamWriter
	cols      []column
	header    []string
	pending   [][]any
	next      int // the next sheet row
	dateStyle int
	started   bool
}

const (
	xlsxSheet      = "Sheet1"
	xlsxSizingRows = 1000
	xlsxMinWidth   = 8
	xlsxMaxWidth   = 60
)

func newXLSXWriter(w io.Writer, cols []column, catalogue string) (*xlsxWriter, error) {
	f := excelize.NewFile()
	name := map[string]string{schema.CatalogueSupply: "成果", schema.CatalogueNeed: "需求", schema.CatalogueExpert: "专家"}[catalogue]
	if name == "" {
		name = xlsxSheet
	}
	if err := f.SetSheetName(xlsxSheet, name); err != nil {
		f.Close()
		return nil, err
	}
	sw, err := f.NewStreamWriter(name)
	if err != nil {
		f.Close()
		return nil, err
	}
	dateFmt := "yyyy-mm-dd"
	dateStyle, err := f.NewStyle(&excelize.Style{CustomNumFmt: &dateFmt})
	if err != nil {
		f.Close()
		return nil, err
	}
	xw := &xlsxWriter{out: w, f: f, sw: sw, cols: cols, next: 2, dateStyle: dateStyle}
	for _, c := range cols {
		xw.header = append(xw.header, c.headers[0])
	}
	return xw, nil
}

// write adds one row of cells as Export writes them for a CSV: whole numbers
// and amounts become numbers, dates of date columns Excel dates; the rest is
// text (a key such as 007 stays text).
func (xw *xlsxWriter) write(cells []string) error {
	row := make([]any, len(cells))
	for i, v := range cells {
		row[i] = v
		if v == "" {
			row[i] = nil
			continue
		}
		switch xw.cols[i].kind {
		case kindInt:
			if n, err := strconv.Atoi(v); err == nil {
				row[i] = n
			}
		case kindMoney:
			if n, err := strconv.ParseFloat(v, 64); err == nil && !math.IsInf(n, 0) && plainNumber(n) == v {
				row[i] = n
			}
		case kindDate:
			if t, err := time.Parse("2006-01-02", v); err == nil && t.Year() >= 1900 {
				row[i] = excelize.Cell{StyleID: xw.dateStyle, Value: t}
			}
		}
	}
	if xw.started {
		return xw.setRow(row)
	}
	xw.pending = append(xw.pending, row)
	if len(xw.pending) >= xlsxSizingRows {
		return xw.start()
	}
	return nil
}

func (xw *xlsxWriter) setRow(row []any) error {
	ref, err := excelize.CoordinatesToCellName(1, xw.next)
	if err != nil {
		return err
	}
	xw.next++
	return xw.sw.SetRow(ref, row)
}

// start sizes the columns by the header and the rows held back, freezes the
// header row, and writes what is held.
func (xw *xlsxWriter) start() error {
	xw.started = true
	for i, h := range xw.header {
		w := displayWidth(h)
		for _, r := range xw.pending {
			switch v := r[i].(type) {
			case string:
				w = max(w, displayWidth(v))
			case int:
				w = max(w, len(strconv.Itoa(v)))
			case float64:
				w = max(w, len(plainNumber(v)))
			case excelize.Cell:
				w = max(w, 10)
			}
		}
		width := float64(min(max(w+2, xlsxMinWidth), xlsxMaxWidth))
		if err := xw.sw.SetColWidth(i+1, i+1, width); err != nil {
			return err
		}
	}
	if err := xw.sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft"}); err != nil {
		return err
	}
	bold, err := xw.f.NewStyle(&excelize.Style{Font: &excelize.Font{Bold: true}})
	if err != nil {
		return err
	}
	header := make([]any, len(xw.header))
	for i, h := range xw.header {
		header[i] = excelize.Cell{StyleID: bold, Value: h}
	}
	if err := xw.sw.SetRow("A1", header); err != nil {
		return err
	}
	for _, r := range xw.pending {
		if err := xw.setRow(r); err != nil {
			return err
		}
	}
	xw.pending = nil
	return nil
}

// close writes the workbook out.
func (xw *xlsxWriter) close() error {
	defer xw.f.Close()
	if !xw.started {
		if err := xw.start(); err != nil {
			return err
		}
	}
	if err := xw.sw.Flush(); err != nil {
		return err
	}
	_, err := xw.f.WriteTo(xw.out)
	return err
}

// displayWidth is the width of the longest line of s in character cells: a
// Chinese character takes two.
func displayWidth(s string) int {
	w := 0
	for line := range strings.SplitSeq(s, "\n") {
		n := 0
		for _, r := range line {
			if r >= 0x1100 && utf8.RuneLen(r) >= 3 {
				n += 2
			} else {
				n++
			}
		}
		w = max(w, n)
	}
	return w
}
