package transfer

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"
)

// sheetCells streams a worksheet's XML for what excelize's row iterator does
// not say: the type of each cell, and whether a row has a cell beyond the
// columns read. It reads the rows in step with the iterator, holding one row
// at a time: excelize's cell-by-cell getters load the whole sheet and pad
// every row to its last cell, which for a row with a cell in column XFD is
// 16384 cells.
type sheetCells struct {
	rc      io.Closer
	dec     *xml.Decoder
	last    int               // the number of the last <row> read
	pending *xml.StartElement // a <row> read ahead, numbered last
	done    bool
}

// rowCells is what sheetCells says of one row.
type rowCells struct {
	// types are the t attributes of the row's cells in the columns read
	// ("" for a number, or a cell without one).
	types []string
	// beyond is the first column past those read with a value, or 0;
	// last the last column with a value.
	beyond, last int
	// values says whether the row has a cell with a value at all.
	values bool
}

// openSheetCells opens the XML of the sheet named sheet in the workbook data.
func openSheetCells(data []byte, sheet string, charsetReader func(string, io.Reader) (io.Reader, error)) (*sheetCells, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[strings.TrimPrefix(strings.ReplaceAll(f.Name, "\\", "/"), "/")] = f
	}
	decoder := func(name string) (*xml.Decoder, io.ReadCloser, error) {
		f, ok := files[name]
		for n, g := range files {
			if !ok && strings.EqualFold(n, name) {
				f, ok = g, true
			}
		}
		if !ok {
			return nil, nil, fmt.Errorf("no part %s", name)
		}
		rc, err := f.Open()
		if err != nil {
			return nil, nil, err
		}
		dec := xml.NewDecoder(bufio.NewReader(rc))
		dec.CharsetReader = charsetReader
		return dec, rc, nil
	}
	// The workbook part, named by the package's relationships, and the
	// sheet's part, by the workbook's.
	wb := "xl/workbook.xml"
	if rels, err := relationships(decoder, "_rels/.rels"); err == nil {
		for _, r := range rels {
			if strings.HasSuffix(r.typ, "/officeDocument") {
				wb = partPath("", r.target)
			}
		}
	}
	dec, rc, err := decoder(wb)
	if err != nil {
		return nil, err
	}
	id := ""
	for id == "" {
		tok, err := dec.Token()
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("no sheet %q in %s: %v", sheet, wb, err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "sheet" && attr(se, "name") == sheet {
			for _, a := range se.Attr {
				if a.Name.Local == "id" && a.Name.Space != "" {
					id = a.Value
				}
			}
			if id == "" {
				rc.Close()
				return nil, fmt.Errorf("sheet %q has no relationship id", sheet)
			}
		}
	}
	rc.Close()
	rels, err := relationships(decoder, path.Join(path.Dir(wb), "_rels", path.Base(wb)+".rels"))
	if err != nil {
		return nil, err
	}
	for _, r := range rels {
		if r.id == id {
			dec, rc, err := decoder(partPath(path.Dir(wb), r.target))
			if err != nil {
				return nil, err
			}
			return &sheetCells{rc: rc, dec: dec}, nil
		}
	}
	return nil, fmt.Errorf("sheet %q: no relationship %s", sheet, id)
}

type relationship struct{ id, typ, target string }

// relationships reads a .rels part.
func relationships(decoder func(string) (*xml.Decoder, io.ReadCloser, error), name string) ([]relationship, error) {
	dec, rc, err := decoder(name)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	var out []relationship
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "Relationship" {
			out = append(out, relationship{attr(se, "Id"), attr(se, "Type"), attr(se, "Target")})
		}
	}
}

// partPath resolves a relationship's target against the folder of its source.
func partPath(dir, target string) string {
	target = strings.ReplaceAll(target, "\\", "/")
	if strings.HasPrefix(target, "/") {
		return strings.TrimPrefix(path.Clean(target), "/")
	}
	return strings.TrimPrefix(path.Clean(path.Join("/", dir, target)), "/")
}

func attr(se xml.StartElement, name string) string {
	for _, a := range se.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (s *sheetCells) Close() error { return s.rc.Close() }

// row returns the cells of row n of the sheet, for the first width columns;
// rows are asked for in order. A row the sheet does not have has no cells.
func (s *sheetCells) row(n, width int) (rowCells, error) {
	// types grows to the last typed cell only: a row of a cell at column
	// XFD, or every missing row before a header far down, must not cost
	// width strings each.
	var out rowCells
	for {
		if s.pending == nil {
			if s.done {
				return out, nil
			}
			if err := s.nextRow(); err != nil {
				return out, err
			}
			continue
		}
		switch {
		case s.last > n:
			return out, nil
		case s.last < n:
			// A row the iterator did not ask for (out of order).
			s.pending = nil
			if err := s.dec.Skip(); err != nil {
				return out, err
			}
			continue
		}
		s.pending = nil
		return out, s.cells(&out, n, width)
	}
}

// nextRow reads up to the next <row>, or to the end of the sheet's data.
func (s *sheetCells) nextRow() error {
	for {
		tok, err := s.dec.Token()
		if err == io.EOF {
			s.done = true
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if t.Name.Local == "row" {
				s.last++
				if r := attr(t, "r"); r != "" {
					n, err := strconv.Atoi(r)
					if err != nil || n < 1 || n > excelize.TotalRows {
						return fmt.Errorf("row number %q", r)
					}
					s.last = n
				}
				t := t.Copy()
				s.pending = &t
				return nil
			}
		case xml.EndElement:
			if t.Name.Local == "sheetData" {
				s.done = true
				return nil
			}
		}
	}
}

// cells reads the cells of the row whose start was read last, up to its end.
func (s *sheetCells) cells(out *rowCells, n, width int) error {
	col := 0
	for {
		tok, err := s.dec.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			if t.Name.Local == "row" {
				return nil
			}
		case xml.StartElement:
			if t.Name.Local != "c" {
				if err := s.dec.Skip(); err != nil {
					return err
				}
				continue
			}
			col++
			if r := attr(t, "r"); r != "" {
				c, _, err := excelize.CellNameToCoordinates(r)
				if err != nil {
					return err
				}
				col = c
			}
			has, err := cellHasValue(s.dec)
			if err != nil {
				return err
			}
			switch {
			case col <= width:
				if typ := attr(t, "t"); typ != "" {
					if col > len(out.types) {
						out.types = append(out.types, make([]string, col-len(out.types))...)
					}
					out.types[col-1] = typ
				}
			case has && out.beyond == 0:
				out.beyond = col
			}
			if has {
				out.values, out.last = true, max(out.last, col)
			}
		}
	}
}

// cellHasValue reads a <c> element to its end: whether it has a value, a
// formula or text.
func cellHasValue(dec *xml.Decoder) (bool, error) {
	has := false
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		if err != nil {
			return false, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			has = has || t.Name.Local == "f"
		case xml.EndElement:
			depth--
		case xml.CharData:
			has = has || depth > 1 && len(t) > 0
		}
	}
	return has, nil
}
