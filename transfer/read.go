// Package transfer imports and exports catalogue records as tables: CSV (UTF-8
// with or without a byte-order mark, or GB18030 as Excel on Chinese Windows
// saves it) and Excel workbooks (.xlsx) with Chinese or English column headers
// (标题, 摘要, 所属领域, 技术成熟度 …), and JSON Lines of record envelopes. Reading checks every row
// against the catalogue's rules and reports each problem with its row and
// column, so a whole file can be corrected in one pass (liandong import
// --dry-run). Each row carries the caller's own key (编号): the record's id is
// "<centre>:<key>", so importing the same file again updates rather than
// duplicates.
package transfer

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"

	"liandong/schema"
)

// Formats.
const (
	FormatCSV   = "csv"
	FormatJSONL = "jsonl"
)

// Encodings of a CSV file.
const (
	EncodingAuto    = "auto" // UTF-8 (a BOM is skipped) when the bytes are valid UTF-8, else GB18030 unless they are mostly UTF-8
	EncodingUTF8    = "utf-8"
	EncodingGB18030 = "gb18030"
)

// MaxRows bounds one file.
const MaxRows = 100000

// MaxBytes is the default bound of one file's size (Options.MaxBytes).
const MaxBytes = 256 << 20

// Options configure reading.
type Options struct {
	Format   string // FormatCSV (default), FormatXLSX or FormatJSONL
	Encoding string // for CSV: EncodingAuto (default), EncodingUTF8 or EncodingGB18030
	// Sheet of an XLSX to read (default the first).
	Sheet string
	// Catalogue of every row; a CSV may instead say it per row in a 清单
	// (catalogue) column.
	Catalogue string
	// Centre is the importing centre: ids are "<Centre>:<key>".
	Centre string
	// Visibility of rows that do not say (default federation). A stored
	// record keeps its own over it (Row.Over) unless VisibilityGiven: the
	// caller chose it for every row that does not say.
	Visibility      string
	VisibilityGiven bool
	// MaxBytes bounds the file's size (default MaxBytes): a larger file is
	// refused, not read in part.
	MaxBytes int64
}

// CellError is one problem of one row: Row counts lines as a spreadsheet shows
// them (the header is row 1) or, for JSON Lines, the line; Column is the
// header of the cell at fault ("" when the problem is the row's as a whole).
type CellError struct {
	Row     int    `json:"row"`
	Column  string `json:"column,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

func (e CellError) String() string {
	if e.Column == "" {
		return fmt.Sprintf("row %d: %s", e.Row, e.Message)
	}
	return fmt.Sprintf("row %d, column %s: %s", e.Row, e.Column, e.Message)
}

// Row is one row read: the record it makes, or the problems that stop it.
type Row struct {
	Row    int
	Key    string
	Record *schema.Record // nil when Errors is not empty
	Errors []CellError

	// covered holds the fields the file has a column for (nil: the row is a
	// whole envelope, as a JSON Lines line is), saidVisibility whether the
	// row gave a visibility: what Over keeps of a stored record.
	covered        map[string]bool
	saidVisibility bool
	// defaulted holds the members reading filled in for a row that did not
	// give them (a budget's currency): a stored record's own (or its lack)
	// is kept over them.
	defaulted map[string]bool
}

// ErrFile is returned for a file that cannot be read at all (bad encoding,
// unknown headers, no key column); row problems are in the rows instead.
var ErrFile = errors.New("unreadable import file")

// Read reads every row of r.
func Read(r io.Reader, o Options) ([]Row, error) {
	if o.Visibility == "" {
		o.Visibility = schema.VisibilityFederation
	}
	if !schema.ValidCentreID(o.Centre) {
		return nil, fmt.Errorf("%w: centre %q is not a centre id", ErrFile, o.Centre)
	}
	limit := o.MaxBytes
	if limit <= 0 {
		limit = MaxBytes
	}
	// One byte over the limit says the file is larger: it is refused
	// rather than read up to the limit, which would drop the rows after
	// it and cut the one it falls in.
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read import file: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: over %s: split the file", ErrFile, sizeText(limit))
	}
	switch o.Format {
	case "", FormatCSV:
		text, err := decodeText(data, o.Encoding)
		if err != nil {
			return nil, err
		}
		return readCSV(text, o)
	case FormatXLSX:
		return readXLSX(data, o)
	case FormatJSONL:
		data = bytes.TrimPrefix(data, []byte("\uFEFF"))
		return readJSONL(data, o)
	}
	return nil, fmt.Errorf("%w: format %q: want csv, xlsx or jsonl", ErrFile, o.Format)
}

// sizeText writes a size in MiB when it is a whole number of them.
func sizeText(n int64) string {
	if n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// decodeText returns the file as UTF-8. Decoding is strict: a byte sequence
// the encoding does not have refuses the file, naming its place, rather than
// become U+FFFD. In auto mode, a file that is mostly UTF-8 but not all of it
// is refused at its first bad byte rather than read as GB18030: one pasted
// character would garble every Chinese cell of the file.
func decodeText(data []byte, enc string) (string, error) {
	switch strings.ToLower(enc) {
	case "", EncodingAuto:
		if b, ok := bytes.CutPrefix(data, []byte("\uFEFF")); ok {
			if at := invalidAt(b); at < len(b) {
				return "", fmt.Errorf("%w: starts with a UTF-8 byte-order mark but is not UTF-8 at byte %d (line %d)", ErrFile, at+3, lineAt(b, at))
			}
			return string(b), nil
		}
		at := invalidAt(data)
		if at == len(data) {
			return string(data), nil
		}
		if mostlyUTF8(data) {
			return "", fmt.Errorf("%w: not UTF-8 at byte %d (line %d), though the rest of the file is: correct the text there (pasted from a file in another encoding?) and save the file as UTF-8", ErrFile, at, lineAt(data, at))
		}
		out, gbAt := decodeGB18030(data)
		if gbAt >= 0 {
			return "", fmt.Errorf("%w: neither UTF-8 (at byte %d, line %d) nor GB18030 (at byte %d, line %d): save the file as UTF-8", ErrFile, at, lineAt(data, at), gbAt, lineAt(data, gbAt))
		}
		return out, nil
	case EncodingGB18030, "gbk", "gb2312":
		out, at := decodeGB18030(data)
		if at >= 0 {
			return "", fmt.Errorf("%w: not GB18030 at byte %d (line %d)", ErrFile, at, lineAt(data, at))
		}
		return out, nil
	case EncodingUTF8, "utf8":
		data = bytes.TrimPrefix(data, []byte("\uFEFF"))
		if at := invalidAt(data); at < len(data) {
			return "", fmt.Errorf("%w: not UTF-8 at byte %d (line %d) (try --encoding gb18030)", ErrFile, at, lineAt(data, at))
		}
		return string(data), nil
	}
	return "", fmt.Errorf("%w: encoding %q: want auto, utf-8 or gb18030", ErrFile, enc)
}

// lineAt is the line of the file byte at is on.
func lineAt(data []byte, at int) int {
	return bytes.Count(data[:min(at, len(data))], []byte("\n")) + 1
}

// mostlyUTF8 reports whether data has more characters written as valid
// UTF-8 multi-byte sequences than bytes that are not UTF-8. Chinese text in
// GB18030 has few of the one and many of the other.
func mostlyUTF8(data []byte) bool {
	multi, bad := 0, 0
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			bad++
		case n > 1:
			multi++
		}
		i += n
	}
	return multi > bad
}

// gb18030FFFD is U+FFFD in GB18030: a file may hold the character itself.
var gb18030FFFD = []byte{0x84, 0x31, 0xA4, 0x37}

// decodeGB18030 decodes data strictly: at is the offset of the first byte
// sequence GB18030 does not have (which the decoder turns into U+FFFD), or -1.
func decodeGB18030(data []byte) (text string, at int) {
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(data)
	if err != nil {
		return "", 0
	}
	if !bytes.Contains(out, []byte("\uFFFD")) {
		return string(out), -1
	}
	// Each U+FFFD must be the file's own: one character at a time.
	dec := simplifiedchinese.GB18030.NewDecoder()
	var dst [utf8.UTFMax]byte
	for i := 0; i < len(data); {
		nDst, nSrc, err := dec.Transform(dst[:], data[i:], true)
		if nSrc == 0 || err != nil && err != transform.ErrShortDst {
			return "", i
		}
		// dst holds whole characters: U+FFFD (3 bytes) comes first or
		// after one ASCII character, which took one byte of data.
		if k := bytes.Index(dst[:nDst], []byte("\uFFFD")); k >= 0 && !bytes.HasPrefix(data[i+k:], gb18030FFFD) {
			return "", i + k
		}
		i += nSrc
	}
	return string(out), -1
}

func invalidAt(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return len(b)
}

// fullWidthParens writes ASCII parentheses as the full-width ones headers
// have. A Replacer builds its tables on first use: one for all calls.
var fullWidthParens = strings.NewReplacer("(", "（", ")", "）")

func normHeader(h string) string {
	h = strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF"))
	h = fullWidthParens.Replace(h)
	return strings.ToLower(h)
}

var catalogueHeaders = []string{"清单", "catalogue"}

var catalogueNames = map[string]string{"成果": "supply", "供给": "supply", "科技成果": "supply", "需求": "need", "技术需求": "need", "专家": "expert"}

func readCSV(text string, o Options) ([]Row, error) {
	cr := csv.NewReader(strings.NewReader(text))
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	header, err := cr.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: the file is empty", ErrFile)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: header row: %v", ErrFile, err)
	}
	t, err := newTable(header, o)
	if err != nil {
		return nil, err
	}
	var rows []Row
	for line := 2; ; line++ {
		start := cr.InputOffset()
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if len(rows) == MaxRows {
			return nil, fmt.Errorf("%w: more than %d rows: split the file", ErrFile, MaxRows)
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				rows = append(rows, Row{Row: pe.Line, Errors: []CellError{{Row: pe.Line, Message: "CSV: " + pe.Err.Error()}}})
				continue
			}
			return nil, fmt.Errorf("%w: %v", ErrFile, err)
		}
		firstLine, _ := cr.FieldPos(0)
		if q, ok := unbalancedQuote(text[start:cr.InputOffset()], firstLine); ok {
			// The reader ran on through the lines after the quote: the
			// rows on them are in this cell. Say which, rather than
			// import (or refuse) a cell holding other rows.
			col := fmt.Sprintf("#%d", q.field+1)
			if q.field < len(t.header) {
				col = t.header[q.field]
			}
			var msg string
			switch {
			case q.from == q.to:
				msg = fmt.Sprintf("unbalanced quote: the quote that opens this cell on line %d of the file is never closed", q.from)
			case !q.closed:
				msg = fmt.Sprintf("unbalanced quote: lines %d–%d of the file, to its end, were read into this one cell, and the rows on them were not read", q.from, q.to)
			default:
				msg = fmt.Sprintf("unbalanced quote: lines %d–%d of the file were read into this one cell, and the rows on them were not read", q.from, q.to)
			}
			msg += `; quote the whole cell and double each quote in it ("双碳"目标 as """双碳""目标"), or remove the quote`
			rows = append(rows, Row{Row: line, Key: t.key(rec), Errors: []CellError{{Row: line, Column: col, Message: msg}}})
			continue
		}
		if row, ok := t.row(line, rec); ok {
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// quoteSpan is a quoted field that the lazy CSV reader did not close where
// its writer meant it to: the field's index and the lines of the file it ran
// over.
type quoteSpan struct {
	field, from, to int
	closed          bool
}

// unbalancedQuote scans raw, the text of one record as the (lazy-quote) CSV
// reader read it, starting at line first, for a quoted field that the reader
// did not close on its own line: one with a quote neither doubled nor
// followed by a comma or the end of the line (a "双碳"目标 cell, whose quote
// the reader takes as text and so reads on for the closing one), or one whose
// closing quote never comes. Such a field holds the lines (rows) after its
// own. A quoted field that spans lines with every quote in it doubled is a
// cell with line breaks, and a quote inside an unquoted cell (5" 屏) or a
// bare quote in a quoted cell that closes on its own line is taken as text:
// neither swallows a row.
func unbalancedQuote(raw string, first int) (quoteSpan, bool) {
	// Blank lines before the record are skipped by the reader.
	for {
		if r, ok := strings.CutPrefix(raw, "\n"); ok {
			raw = r
		} else if r, ok := strings.CutPrefix(raw, "\r\n"); ok {
			raw = r
		} else {
			break
		}
	}
	endsField := func(i int) bool {
		return i == len(raw) || raw[i] == ',' || raw[i] == '\n' || strings.HasPrefix(raw[i:], "\r\n")
	}
	line, i := first, 0
	for field := 0; ; field++ {
		if i < len(raw) && raw[i] == '"' {
			from, last := line, line
			bare, closed := false, false
			for i++; i < len(raw) && !closed; {
				switch {
				case raw[i] == '\n':
					line++
					i++
					continue
				case raw[i] != '"':
				case i+1 < len(raw) && raw[i+1] == '"':
					i++
				case endsField(i + 1):
					closed = true
				default:
					bare = true
				}
				if raw[i] != '\r' {
					last = line
				}
				i++
			}
			if !closed || bare && last > from {
				return quoteSpan{field, from, last, closed}, true
			}
		} else {
			for i < len(raw) && raw[i] != ',' && raw[i] != '\n' {
				i++
			}
		}
		if i >= len(raw) || raw[i] != ',' {
			return quoteSpan{}, false
		}
		i++
	}
}

// table turns rows of cells under a header row into records: the part of
// reading that CSV and XLSX share, so that the same cells give the same
// records and the same errors whichever the file.
type table struct {
	o      Options
	header []string
	catCol int // the 清单 (catalogue) column, or -1
}

// newTable checks a header row: every header must name a column of a
// catalogue the file may hold, and one must be the key (编号).
func newTable(header []string, o Options) (*table, error) {
	// Which header names which field: checked against every catalogue the
	// file may hold.
	catCol := -1
	for i, h := range header {
		if slices.Contains(catalogueHeaders, normHeader(h)) {
			catCol = i
		}
	}
	if catCol < 0 && !schema.KnownCatalogue(o.Catalogue) {
		return nil, fmt.Errorf("%w: no 清单 (catalogue) column and no catalogue given: pass --catalogue supply, need or expert", ErrFile)
	}
	var unknown []string
	for i, h := range header {
		if i == catCol || strings.TrimSpace(h) == "" {
			continue
		}
		known := false
		for _, c := range schema.Catalogues {
			if catCol < 0 && c != o.Catalogue {
				continue
			}
			if _, ok := lookupColumn(c, h); ok {
				known = true
			}
		}
		if !known {
			unknown = append(unknown, fmt.Sprintf("%q (column %d)", h, i+1))
		}
	}
	if len(unknown) > 0 {
		return nil, fmt.Errorf("%w: unknown column headers %s; known for %s: %s", ErrFile, strings.Join(unknown, ", "), o.Catalogue, knownHeaders(o.Catalogue))
	}
	hasKey := false
	for _, h := range header {
		if c, ok := lookupColumn(schema.CatalogueSupply, h); ok && c.field == fieldKey {
			hasKey = true
		}
	}
	if !hasKey {
		return nil, fmt.Errorf("%w: no 编号 (key) column: each row needs your own key, so that importing again updates instead of duplicating", ErrFile)
	}
	return &table{o: o, header: header, catCol: catCol}, nil
}

// key returns the cell of rec in the key (编号) column, for a row that cannot
// be read further.
func (t *table) key(rec []string) string {
	for i, h := range t.header {
		if c, ok := lookupColumn(schema.CatalogueSupply, h); ok && c.field == fieldKey && i < len(rec) && i != t.catCol {
			return strings.TrimSpace(rec[i])
		}
	}
	return ""
}

// row reads the cells of line; ok is false for a blank row, which is skipped.
func (t *table) row(line int, rec []string) (row Row, ok bool) {
	if blank(rec) {
		return Row{}, false
	}
	header, catCol, o := t.header, t.catCol, t.o
	cells := map[string]string{}
	catalogue := o.Catalogue
	row = Row{Row: line}
	if catCol >= 0 && catCol < len(rec) && strings.TrimSpace(rec[catCol]) != "" {
		v := strings.TrimSpace(rec[catCol])
		if c, ok := catalogueNames[v]; ok {
			v = c
		}
		catalogue = strings.ToLower(v)
	}
	if !schema.KnownCatalogue(catalogue) {
		row.Errors = append(row.Errors, CellError{Row: line, Column: header[max(catCol, 0)], Message: "want supply (成果), need (需求) or expert (专家)"})
		return row, true
	}
	row.covered = map[string]bool{}
	for i, h := range header {
		// Every column of the file, not only the cells of this row: a
		// spreadsheet may leave a row's empty cells at its end out.
		if c, ok := lookupColumn(catalogue, h); ok && i != catCol {
			row.covered[c.field] = true
		}
	}
	headerOf := map[string]string{}
	for i, v := range rec {
		if i >= len(header) || i == catCol {
			if i >= len(header) && strings.TrimSpace(v) != "" {
				row.Errors = append(row.Errors, CellError{Row: line, Column: fmt.Sprintf("#%d", i+1), Message: "a cell beyond the last header"})
			}
			continue
		}
		c, ok := lookupColumn(catalogue, header[i])
		if !ok {
			if strings.TrimSpace(v) != "" {
				row.Errors = append(row.Errors, CellError{Row: line, Column: header[i], Message: "this column does not apply to " + catalogue + " records"})
			}
			continue
		}
		cells[c.field] = strings.TrimSpace(v)
		headerOf[c.field] = header[i]
	}
	buildRow(&row, catalogue, cells, headerOf, o)
	return row, true
}

func blank(rec []string) bool {
	for _, v := range rec {
		if strings.TrimSpace(v) != "" {
			return false
		}
	}
	return true
}

func lookupColumn(catalogue, header string) (column, bool) {
	h := normHeader(header)
	for _, c := range columns(catalogue) {
		for _, name := range c.headers {
			if normHeader(name) == h {
				return c, true
			}
		}
	}
	return column{}, false
}

func knownHeaders(catalogue string) string {
	var out []string
	for _, c := range columns(catalogue) {
		out = append(out, c.headers[0]+" ("+c.headers[1]+")")
	}
	return strings.Join(out, ", ")
}

var listSep = regexp.MustCompile(`[,，、;；\n]+`)

func splitList(v string) []string {
	var out []string
	for _, p := range listSep.Split(v, -1) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

var moneyRe = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?)\s*(万|万元|亿|亿元|元)?$`)

func parseMoney(v string) (float64, error) {
	v = strings.ReplaceAll(strings.ReplaceAll(v, ",", ""), "，", "")
	m := moneyRe.FindStringSubmatch(v)
	if m == nil {
		return 0, errors.New("want an amount such as 500000, 50万 or 1.5亿")
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, errors.New("want an amount such as 500000, 50万 or 1.5亿")
	}
	switch m[2] {
	case "万", "万元":
		f *= 1e4
	case "亿", "亿元":
		f *= 1e8
	}
	return math.Round(f*100) / 100, nil
}

var trlRe = regexp.MustCompile(`^(?i:trl)?\s*([0-9]+)\s*级?$`)

func parseInt(field, v string) (int, error) {
	if field == "body.trl" {
		if m := trlRe.FindStringSubmatch(v); m != nil {
			v = m[1]
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errors.New("want a whole number")
	}
	return n, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "是", "true", "yes", "y", "1", "√":
		return true, nil
	case "否", "false", "no", "n", "0", "":
		return false, nil
	}
	return false, errors.New("want 是 or 否 (true or false)")
}

// chinaTime is the time zone of dates and times that do not say theirs
// (UTC+8, no daylight saving time), as the web console reads them.
var chinaTime = time.FixedZone("CST", 8*3600)

var dateLayouts = []string{"2006-01-02", "2006/1/2", "2006-1-2", "2006.1.2", "2006年1月2日"}

func parseDate(v string) (string, error) {
	for _, l := range dateLayouts {
		if t, err := time.Parse(l, v); err == nil {
			return t.Format("2006-01-02"), nil
		}
	}
	return "", errors.New("want a date such as 2027-06-30 or 2027年6月30日")
}

// buildRow turns the cells of a row into a record, or into errors.
func buildRow(row *Row, catalogue string, cells, headerOf map[string]string, o Options) {
	fail := func(field, msg string) {
		row.Errors = append(row.Errors, CellError{Row: row.Row, Column: headerOf[field], Field: field, Message: msg})
	}
	row.Key = cells[fieldKey]
	id := o.Centre + ":" + row.Key
	if row.Key == "" {
		fail(fieldKey, "required: your own key for the record (letters, digits, '-', '_', '.')")
	} else if _, _, err := schema.SplitID(id); err != nil {
		fail(fieldKey, "want 1-128 letters, digits, '-', '_' or '.'")
	}
	if v := cells[fieldOrigin]; v != "" && v != o.Centre {
		fail(fieldOrigin, fmt.Sprintf("a record of %s: only its origin centre can import it (this is %s)", v, o.Centre))
	}
	rec := &schema.Record{ID: id, Catalogue: catalogue, Origin: o.Centre, Version: 1, Visibility: o.Visibility, Schema: schema.CurrentSchema}
	if v := cells[fieldVisibility]; v != "" {
		rec.Visibility = codeOf(fieldVisibility, v)
		row.saidVisibility = true
	} else if o.VisibilityGiven {
		row.saidVisibility = true
	}
	if v := cells[fieldExpires]; v != "" {
		// A time with its offset is taken as given; a bare date is the
		// end of that day in China, as the web console reads it.
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			d, derr := parseDate(v)
			if derr != nil {
				fail(fieldExpires, "want a date or an RFC 3339 time")
			} else {
				t, _ = time.ParseInLocation(time.DateOnly, d, chinaTime)
				t = t.Add(24*time.Hour - time.Second)
			}
		}
		if !t.IsZero() {
			t = t.UTC()
			rec.ExpiresAt = &t
		}
	}
	body := map[string]any{}
	contact := map[string]any{}
	budget := map[string]any{}
	challenge := map[string]any{}
	for _, c := range columns(catalogue) {
		v, ok := cells[c.field]
		if !ok || v == "" || c.field == fieldKey || c.field == fieldOrigin || c.field == fieldVisibility || c.field == fieldExpires {
			continue
		}
		var val any
		var err error
		switch c.kind {
		case kindText:
			val = v
		case kindList:
			val = splitList(v)
		case kindInt:
			val, err = parseInt(c.field, v)
		case kindMoney:
			val, err = parseMoney(v)
		case kindBool:
			val, err = parseBool(v)
		case kindIndustry:
			val = industryCode(v)
		case kindIndustries:
			var codes []string
			for _, p := range splitList(v) {
				codes = append(codes, industryCode(p))
			}
			val = codes
		case kindDate:
			val, err = parseDate(v)
		case kindEnum:
			val = codeOf(c.field, v)
		case kindEnumList:
			var codes []string
			for _, p := range splitList(v) {
				codes = append(codes, codeOf(c.field, p))
			}
			val = codes
		}
		if err != nil {
			fail(c.field, err.Error())
			continue
		}
		switch c.field {
		case fieldPerson, fieldPhone, fieldEmail:
			contact[strings.TrimPrefix(c.field, "contact.")] = val
		case fieldBudgetMin, fieldBudgetMax, fieldCurrency:
			budget[strings.TrimPrefix(c.field, "budget.")] = val
		case fieldBounty, fieldTargets, fieldMaxMonths:
			challenge[strings.TrimPrefix(c.field, "challenge.")] = val
		case fieldPatents:
			var ip []map[string]string
			for _, n := range val.([]string) {
				ip = append(ip, map[string]string{"type": "patent", "number": n})
			}
			body["ip"] = ip
		default:
			body[strings.TrimPrefix(c.field, "body.")] = val
		}
	}
	if len(contact) > 0 {
		body["contact"] = contact
	}
	if len(budget) > 0 {
		if _, ok := budget["currency"]; !ok {
			budget["currency"] = "CNY"
			row.defaulted = map[string]bool{fieldCurrency: true}
		}
		body["budget"] = budget
	}
	if len(challenge) > 0 {
		body["challenge"] = challenge
		if _, ok := body["kind"]; !ok {
			body["kind"] = schema.NeedKindChallenge
			if row.covered != nil {
				// Challenge terms make a challenge: the row says so, over
				// the kind a stored record has.
				row.covered["body.kind"] = true
			}
		}
	}
	js, err := json.Marshal(body)
	if err != nil {
		fail("", err.Error())
		return
	}
	rec.Body = js
	validate(row, rec, headerOf)
}

// validate checks rec as the node will, turning field errors into cell errors.
// It runs even when cells already failed to convert, so one pass reports every
// problem of the row; a cell that already has an error gets no second one.
func validate(row *Row, rec *schema.Record, headerOf map[string]string) {
	bad := map[string]bool{}
	for _, e := range row.Errors {
		bad[e.Column+"\x00"+e.Field] = true
		if e.Column != "" {
			bad[e.Column] = true
		}
	}
	err := schema.ValidateRecord(rec, schema.ValidateOptions{Strict: true})
	var verr *schema.ValidationError
	switch {
	case errors.As(err, &verr):
		for _, fe := range verr.Errors {
			col := columnOf(fe.Path, headerOf)
			if col != "" && bad[col] || bad[col+"\x00"+fe.Path] {
				continue
			}
			msg := fe.Message
			if col == "" && fe.Path != "" {
				msg = fe.Path + ": " + msg
				if h := headerFor(rec.Catalogue, fe.Path); h != "" {
					msg += " (the " + h + " column)"
				}
			}
			row.Errors = append(row.Errors, CellError{Row: row.Row, Column: col, Field: fe.Path, Message: msg})
		}
	case err != nil:
		row.Errors = append(row.Errors, CellError{Row: row.Row, Message: err.Error()})
	}
	if len(row.Errors) == 0 {
		row.Record = rec
	}
}

// columnOf finds the header of the column a validation path came from.
func columnOf(path string, headerOf map[string]string) string {
	p := path
	if i := strings.IndexByte(p, '['); i >= 0 {
		p = p[:i]
	}
	switch {
	case p == "body.budget":
		p = fieldBudgetMin
	case strings.HasPrefix(p, "body.ip"):
		p = fieldPatents
	case strings.HasPrefix(p, "body.contact."):
		p = strings.TrimPrefix(p, "body.")
	case strings.HasPrefix(p, "body.budget."), strings.HasPrefix(p, "body.challenge."):
		p = strings.TrimPrefix(p, "body.")
	case p == "id":
		p = fieldKey
	}
	if h, ok := headerOf[p]; ok {
		return h
	}
	if h, ok := headerOf["body."+strings.TrimPrefix(p, "body.")]; ok {
		return h
	}
	return ""
}

// headerFor names the column a body path is read from, for messages about a
// column the file lacks.
func headerFor(catalogue, path string) string {
	for _, c := range columns(catalogue) {
		if c.field == path || "body."+c.field == path {
			return c.headers[0]
		}
	}
	return ""
}

// readJSONL reads one record envelope per line: {"key" or "id", "catalogue",
// "visibility", "body", …}.
func readJSONL(data []byte, o Options) ([]Row, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 4<<20)
	var rows []Row
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if len(rows) == MaxRows {
			return nil, fmt.Errorf("%w: more than %d lines: split the file", ErrFile, MaxRows)
		}
		row := Row{Row: line}
		// The members of an envelope as export writes it (schema.Record),
		// and key. The ones the node sets (version, schema, the times,
		// broker) are read, so that an export imports again, and ignored.
		var in struct {
			Key        string          `json:"key"`
			ID         string          `json:"id"`
			Catalogue  string          `json:"catalogue"`
			Origin     string          `json:"origin"`
			Version    uint64          `json:"version"`
			Visibility string          `json:"visibility"`
			Schema     int             `json:"schema"`
			CreatedAt  *time.Time      `json:"created_at"`
			UpdatedAt  *time.Time      `json:"updated_at"`
			ExpiresAt  *time.Time      `json:"expires_at"`
			Deleted    bool            `json:"deleted"`
			Broker     string          `json:"broker"`
			Body       json.RawMessage `json:"body"`
		}
		if !utf8.Valid(b) {
			row.Errors = append(row.Errors, CellError{Row: line, Message: "not UTF-8"})
		} else if err := json.Unmarshal(b, &in); err != nil {
			row.Errors = append(row.Errors, CellError{Row: line, Message: "not a JSON record envelope: " + err.Error()})
		}
		if len(row.Errors) > 0 {
			rows = append(rows, row)
			continue
		}
		// A member the envelope does not have is a mistake, as an unknown
		// CSV column is: a misspelt "visiblity" would leave the record
		// at the default visibility.
		memberErrs := envelopeMemberErrors(b, line)
		if in.Origin != "" && in.Origin != o.Centre {
			memberErrs = append(memberErrs, CellError{Row: line, Column: "origin", Field: "origin", Message: fmt.Sprintf("a record of %s: only its origin centre can import it (this is %s)", in.Origin, o.Centre)})
		}
		if in.Deleted {
			memberErrs = append(memberErrs, CellError{Row: line, Column: "deleted", Field: "deleted", Message: "import does not delete records: remove the line, or delete the record in the console or with the API"})
		}
		row.Key = in.Key
		if row.Key == "" && in.ID != "" {
			origin, key, err := schema.SplitID(in.ID)
			if err == nil && origin == o.Centre {
				row.Key = key
			} else {
				row.Errors = append(row.Errors, CellError{Row: line, Column: "id", Field: "id", Message: "want an id of this centre, " + o.Centre + ":<key>, or a key member"})
			}
		}
		if row.Key == "" && len(row.Errors) == 0 {
			row.Errors = append(row.Errors, CellError{Row: line, Column: "key", Field: "key", Message: "required: your own key for the record"})
		}
		cat := in.Catalogue
		if cat == "" {
			cat = o.Catalogue
		}
		vis := in.Visibility
		row.saidVisibility = vis != "" || o.VisibilityGiven
		if vis == "" {
			vis = o.Visibility
		}
		rec := &schema.Record{ID: o.Centre + ":" + row.Key, Catalogue: cat, Origin: o.Centre, Version: 1, Visibility: vis,
			Schema: schema.CurrentSchema, ExpiresAt: in.ExpiresAt, Body: in.Body}
		if len(row.Errors) == 0 {
			if _, _, err := schema.SplitID(rec.ID); err != nil {
				row.Errors = append(row.Errors, CellError{Row: line, Column: "key", Field: "key", Message: "want 1-128 letters, digits, '-', '_' or '.'"})
			}
		}
		row.Errors = append(memberErrs, row.Errors...)
		headers := map[string]string{}
		validate(&row, rec, headers)
		for i := range row.Errors {
			if row.Errors[i].Column == "" && row.Errors[i].Field != "" {
				row.Errors[i].Column = row.Errors[i].Field
			}
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFile, err)
	}
	return rows, nil
}

// envelopeMembers are the members of a JSON Lines record envelope.
var envelopeMembers = []string{"key", "id", "catalogue", "origin", "version", "visibility", "schema",
	"created_at", "updated_at", "expires_at", "deleted", "broker", "body"}

// envelopeMemberErrors names the members of the JSON object b (valid JSON)
// that an envelope does not have, and those given twice (encoding/json
// would take the last, and matches names regardless of case).
func envelopeMemberErrors(b []byte, line int) []CellError {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	var errs []CellError
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errs
		}
		name, _ := tok.(string)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return errs
		}
		switch {
		case !slices.Contains(envelopeMembers, name):
			errs = append(errs, CellError{Row: line, Column: name, Message: fmt.Sprintf("unknown member %q: an envelope has %s", name, strings.Join(envelopeMembers, ", "))})
		case seen[name]:
			errs = append(errs, CellError{Row: line, Column: name, Message: fmt.Sprintf("member %q given twice", name)})
		}
		seen[name] = true
	}
	return errs
}
