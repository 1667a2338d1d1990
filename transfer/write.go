package transfer

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"liandong/schema"
)

// Writer writes records of one catalogue as a table.
type Writer struct {
	format    string
	catalogue string
	cols      []column
	csv       *csv.Writer
	out       io.Writer
	flush     func() error
	xlsx      *xlsxWriter
}

// NewWriter writes records of catalogue to w as format (FormatCSV, FormatXLSX
// or FormatJSONL). A CSV gets Chinese headers and encoding EncodingUTF8 (with a
// byte-order mark when bom, which Excel needs to read UTF-8) or
// EncodingGB18030; an XLSX one sheet with Chinese headers, whose cells are
// those of the CSV (encoding and bom do not apply). Close flushes, and for an
// XLSX writes the whole workbook.
func NewWriter(w io.Writer, format, catalogue, encoding string, bom bool) (*Writer, error) {
	if !schema.KnownCatalogue(catalogue) {
		return nil, fmt.Errorf("export: %w %q", schema.ErrUnknownCatalogue, catalogue)
	}
	wr := &Writer{format: format, catalogue: catalogue, cols: columns(catalogue)}
	switch format {
	case FormatJSONL:
		bw := bufio.NewWriter(w)
		wr.out, wr.flush = bw, bw.Flush
		return wr, nil
	case FormatXLSX:
		xw, err := newXLSXWriter(w, wr.cols, catalogue)
		if err != nil {
			return nil, fmt.Errorf("export: %w", err)
		}
		wr.xlsx = xw
		return wr, nil
	case "", FormatCSV:
	default:
		return nil, fmt.Errorf("export: format %q: want csv, xlsx or jsonl", format)
	}
	switch strings.ToLower(encoding) {
	case "", EncodingUTF8, "utf8":
		bw := bufio.NewWriter(w)
		if bom {
			bw.WriteString("\uFEFF")
		}
		wr.out, wr.flush = bw, bw.Flush
	case EncodingGB18030:
		enc := simplifiedchinese.GB18030.NewEncoder().Writer(w)
		bw := bufio.NewWriter(enc)
		wr.out, wr.flush = bw, bw.Flush
	default:
		return nil, fmt.Errorf("export: encoding %q: want utf-8 or gb18030", encoding)
	}
	wr.format = FormatCSV
	wr.csv = csv.NewWriter(wr.out)
	header := make([]string, len(wr.cols))
	for i, c := range wr.cols {
		header[i] = c.headers[0]
	}
	return wr, wr.csv.Write(header)
}

// Write writes one record (deleted records and those of other catalogues are
// skipped).
func (wr *Writer) Write(r *schema.Record) error {
	if r.Deleted || r.Catalogue != wr.catalogue {
		return nil
	}
	if wr.format == FormatJSONL {
		js, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := wr.out.Write(append(js, '\n')); err != nil {
			return err
		}
		return nil
	}
	var body map[string]any
	dec := json.NewDecoder(strings.NewReader(string(r.Body)))
	dec.UseNumber()
	if err := dec.Decode(&body); err != nil {
		return fmt.Errorf("export %s: %w", r.ID, err)
	}
	row := make([]string, len(wr.cols))
	for i, c := range wr.cols {
		row[i] = cell(r, body, c)
	}
	if wr.xlsx != nil {
		return wr.xlsx.write(row)
	}
	return wr.csv.Write(row)
}

// Close flushes what is buffered.
func (wr *Writer) Close() error {
	if wr.xlsx != nil {
		return wr.xlsx.close()
	}
	if wr.csv != nil {
		wr.csv.Flush()
		if err := wr.csv.Error(); err != nil {
			return err
		}
	}
	return wr.flush()
}

func cell(r *schema.Record, body map[string]any, c column) string {
	get := func(path string) any {
		var cur any = body
		for _, p := range strings.Split(path, ".") {
			m, ok := cur.(map[string]any)
			if !ok {
				return nil
			}
			cur = m[p]
		}
		return cur
	}
	var v any
	switch c.field {
	case fieldKey:
		_, key, _ := strings.Cut(r.ID, ":")
		return key
	case fieldOrigin:
		return r.Origin
	case fieldVisibility:
		return enumLabel(fieldVisibility, r.Visibility)
	case fieldExpires:
		if r.ExpiresAt != nil {
			return r.ExpiresAt.UTC().Format(time.RFC3339)
		}
		return ""
	case fieldPatents:
		// Patents only: the column is read back as patents (a software
		// copyright's number written here would come back as a patent).
		// Other rights, and a patent's status, stay in the stored record
		// when the file is imported again (Row.Over).
		var nums []string
		if ips, ok := body["ip"].([]any); ok {
			for _, ip := range ips {
				if n := patentNumber(ip); n != "" {
					nums = append(nums, n)
				}
			}
		}
		return strings.Join(nums, "，")
	default:
		v = get(strings.TrimPrefix(c.field, "body."))
	}
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		switch c.kind {
		case kindEnum:
			return enumLabel(c.field, x)
		case kindIndustry:
			if in, ok := schema.LookupIndustry(x); ok {
				return in.ZH
			}
		}
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "是"
		}
		return "否"
	case []any:
		parts := make([]string, 0, len(x))
		for _, e := range x {
			s := fmt.Sprint(e)
			switch c.kind {
			case kindEnumList:
				s = enumLabel(c.field, s)
			case kindIndustries:
				if in, ok := schema.LookupIndustry(s); ok {
					s = in.ZH
				}
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, "，")
	}
	js, _ := json.Marshal(v)
	return strconv.Quote(string(js))
}
