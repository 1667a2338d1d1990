package transfer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"liandong/schema"
)

// rowByKey returns the row read with key k, or fails.
func rowByKey(t *testing.T, rows []Row, k string) Row {
	t.Helper()
	for _, r := range rows {
		if r.Key == k {
			return r
		}
	}
	t.Fatalf("no row with key %q in %d rows", k, len(rows))
	return Row{}
}

// A cell that begins with a quote it does not close as CSV quoting (a title
// such as "双碳"目标…, typed by hand or written by a tool that does not
// escape) made the lazy-quote reader run on through the lines after it: the
// rows on them vanished into that one cell, without an error. The row is now
// refused with an error naming the lines it swallowed.
func TestCSVUnbalancedQuoteNamesTheLinesItSwallows(t *testing.T) {
	csv := "编号,标题,所属领域,摘要\n" +
		"s-001,储能技术,新材料,\"双碳\"目标下的储能\n" +
		"s-002,钙钛矿叠层太阳能电池,新材料,摘要二\n" +
		"s-003,固态电池电解质,新材料,摘要三\n"
	rows := mustRead(t, []byte(csv), Options{Format: FormatCSV, Catalogue: "supply", Centre: "tianjin"})
	if len(rows) != 1 {
		t.Fatalf("%d rows: %+v", len(rows), rows)
	}
	r := rows[0]
	if r.Key != "s-001" || r.Record != nil || len(r.Errors) != 1 {
		t.Fatalf("row %+v", r)
	}
	e := r.Errors[0]
	if e.Row != 2 || e.Column != "摘要" || !strings.Contains(e.Message, "unbalanced quote: lines 2–4 of the file, to its end,") {
		t.Fatalf("error %v", e)
	}

	// The quote closes further down (at a quoted cell of a later row):
	// the rows between are named, and the rows after read as usual.
	csv = "编号,标题,所属领域,摘要\n" +
		"s-001,储能技术,新材料,\"双碳\"目标下的储能\n" +
		"s-002,钙钛矿叠层太阳能电池,新材料,摘要二\n" +
		"s-003,固态电池电解质,\"新材料\",摘要三\n" +
		"s-004,高镍三元正极材料,新材料,摘要四\n"
	rows = mustRead(t, []byte(csv), Options{Format: FormatCSV, Catalogue: "supply", Centre: "tianjin"})
	if len(rows) != 2 || rows[0].Key != "s-001" || len(rows[0].Errors) != 1 ||
		!strings.Contains(rows[0].Errors[0].Message, "unbalanced quote: lines 2–4 of the file were read into this one cell") {
		t.Fatalf("rows %+v", rows)
	}
	if r := rowByKey(t, rows, "s-004"); r.Record == nil {
		t.Fatalf("s-004: %v", r.Errors)
	}

	// On the last line, the quote swallows nothing but is refused all the
	// same: the cell is not what its writer meant.
	rows = mustRead(t, []byte("编号,标题,所属领域,摘要\ns-001,储能技术,新材料,\"双碳\"目标下的储能\n"), Options{Format: FormatCSV, Catalogue: "supply", Centre: "tianjin"})
	if len(rows) != 1 || len(rows[0].Errors) != 1 || !strings.Contains(rows[0].Errors[0].Message, "on line 2 of the file is never closed") {
		t.Fatalf("rows %+v", rows)
	}
}

// The quotes the lazy reader was there for still read as text: a quote
// inside an unquoted cell, a bare quote inside a quoted cell that closes on
// its own line, and a quoted cell with line breaks and doubled quotes.
func TestCSVHarmlessQuotesStillRead(t *testing.T) {
	csv := "编号,标题,所属领域,摘要\n" +
		"s-001,5\" 屏幕,新材料,摘要一\n" +
		"s-002,\"他说 \"好\" 了\",新材料,摘要二\n" +
		"s-003,固态电池,新材料,\"第一行\n第二行 \"\"引用\"\"\"\n" +
		"s-004,高镍三元正极材料,新材料,摘要四\n"
	rows := mustRead(t, []byte(csv), Options{Format: FormatCSV, Catalogue: "supply", Centre: "tianjin"})
	want := map[string]string{"s-001": `5\" 屏幕`, "s-002": `他说 \"好\" 了`, "s-003": `第一行\n第二行 \"引用\"`, "s-004": "摘要四"}
	if len(rows) != len(want) {
		t.Fatalf("%d rows", len(rows))
	}
	for k, w := range want {
		r := rowByKey(t, rows, k)
		if r.Record == nil {
			t.Fatalf("%s: %v", k, r.Errors)
		}
		if !strings.Contains(string(r.Record.Body), w) {
			t.Errorf("%s: body %s, want %s in it", k, r.Record.Body, w)
		}
	}
}

// One byte that is not UTF-8 in a UTF-8 file (a Latin-1 "é" pasted into one
// cell) made auto detection decode the whole file as GB18030: every Chinese
// cell of every row was imported as mojibake, without an error. A file that
// is mostly UTF-8 is now refused at its bad byte.
func TestAutoEncodingRefusesMostlyUTF8AtItsBadByte(t *testing.T) {
	csv := "key,title,summary,industry\n" +
		"s-001,高镍三元正极材料,已完成百吨级中试,new-materials\n" +
		"s-002,钙钛矿叠层太阳能电池,Caf\xe9 团队研发,new-materials\n"
	_, err := Read(strings.NewReader(csv), Options{Format: FormatCSV, Catalogue: "supply", Centre: "tianjin"})
	at := strings.Index(csv, "Caf\xe9") + 3
	if !errors.Is(err, ErrFile) || err == nil || !strings.Contains(err.Error(), fmt.Sprintf("not UTF-8 at byte %d (line 3)", at)) {
		t.Fatalf("err %v", err)
	}
	// Said to be UTF-8, the file is refused at the same place.
	_, err = Read(strings.NewReader(csv), Options{Format: FormatCSV, Encoding: EncodingUTF8, Catalogue: "supply", Centre: "tianjin"})
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("not UTF-8 at byte %d (line 3)", at)) {
		t.Fatalf("utf-8: err %v", err)
	}
}

// The GB18030 decoder never fails: it turns bytes GB18030 does not have into
// U+FFFD, so the "neither UTF-8 nor GB18030" refusal never fired and such
// files were imported with U+FFFD in their cells. Decoding is now strict,
// and a genuine GB18030 file (and one holding U+FFFD itself) still reads.
func TestGB18030DecodingIsStrict(t *testing.T) {
	gb, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(supplyCSV))
	if err != nil {
		t.Fatal(err)
	}
	// 0xFF is no GB18030 byte; 0x81 0x20 no GB18030 sequence. Put after
	// 王老师 in row 2, either became U+FFFD in its 联系人 cell.
	name, _ := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte("王老师"))
	at := bytes.Index(gb, name) + len(name)
	for _, bad := range [][]byte{{0xFF}, {0x81, 0x20}} {
		data := append(append(append([]byte(nil), gb[:at]...), bad...), gb[at:]...)
		for _, enc := range []string{EncodingAuto, EncodingGB18030} {
			_, err := Read(bytes.NewReader(data), Options{Format: FormatCSV, Encoding: enc, Catalogue: "supply", Centre: "tianjin"})
			if !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), fmt.Sprintf("GB18030 (at byte %d, line 2)", at)) && !strings.Contains(err.Error(), fmt.Sprintf("not GB18030 at byte %d (line 2)", at)) {
				t.Errorf("%s, % x: err %v", enc, bad, err)
			}
		}
	}
	withFFFD, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(strings.Replace(supplyCSV, "王老师", "王老师\uFFFD", 1)))
	if err != nil {
		t.Fatal(err)
	}
	for _, data := range [][]byte{gb, withFFFD} {
		for _, enc := range []string{EncodingAuto, EncodingGB18030} {
			rows := mustRead(t, data, Options{Format: FormatCSV, Encoding: enc, Catalogue: "supply", Centre: "tianjin"})
			if len(rows) != 2 || rows[0].Record == nil || !strings.Contains(string(rows[0].Record.Body), "王老师") {
				t.Fatalf("%s: rows %+v", enc, rows)
			}
		}
	}
}

// repeatReader yields head, then row again and again until n bytes in all,
// without holding them.
type repeatReader struct {
	head, row []byte
	n, off    int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.off >= r.n {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n-r.off)]
	done := 0
	for done < len(p) {
		var src []byte
		if r.off < int64(len(r.head)) {
			src = r.head[r.off:]
		} else {
			src = r.row[(r.off-int64(len(r.head)))%int64(len(r.row)):]
		}
		k := copy(p[done:], src)
		done += k
		r.off += int64(k)
	}
	return done, nil
}

// A file over the size limit was read up to the limit and no further,
// without a word: the rows past it were dropped and the row it fell in was
// read with its last cell cut. It is now refused, whatever its format.
func TestReadRefusesAFileOverMaxBytes(t *testing.T) {
	row := []byte("k-1,标题,新材料,摘要摘要摘要\n")
	csv := &repeatReader{head: []byte("编号,标题,所属领域,摘要\n"), row: row, n: 10 << 10}
	jsonl := &repeatReader{row: []byte(`{"key":"n-1","body":{"title":"t","summary":"s","industry":"new-materials"}}` + "\n"), n: 10 << 10}
	xlsx := xlsxOf(t, [][]any{{"编号", "标题"}, {"k-1", "标题"}})
	for name, c := range map[string]struct {
		r      io.Reader
		format string
	}{
		"csv":   {csv, FormatCSV},
		"jsonl": {jsonl, FormatJSONL},
		"xlsx":  {bytes.NewReader(append(xlsx, make([]byte, 10<<10)...)), FormatXLSX},
	} {
		_, err := Read(c.r, Options{Format: c.format, Catalogue: "supply", Centre: "tianjin", MaxBytes: 8 << 10})
		if !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), "over 8192 bytes: split the file") {
			t.Errorf("%s: err %v", name, err)
		}
	}
	// A file of exactly the limit is read.
	exact := int64(len("编号,标题,所属领域,摘要\n") + 3*len(row))
	rows, err := Read(&repeatReader{head: []byte("编号,标题,所属领域,摘要\n"), row: row, n: exact}, Options{Catalogue: "supply", Centre: "tianjin", MaxBytes: exact})
	if err != nil || len(rows) != 3 {
		t.Fatalf("%d rows, err %v", len(rows), err)
	}
}

// The default limit is 256 MiB.
func TestReadRefusesACSVOver256MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 256 MiB")
	}
	r := &repeatReader{head: []byte("编号,标题,所属领域,摘要\n"), row: []byte("k-1,标题,新材料," + strings.Repeat("z", 4000) + "\n"), n: MaxBytes + 1}
	_, err := Read(r, Options{Format: FormatCSV, Catalogue: "supply", Centre: "tianjin"})
	if !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), "over 256 MiB: split the file") {
		t.Fatalf("err %v", err)
	}
}

// A JSON Lines envelope member the importer did not know (a misspelt
// "visibility") was ignored without a word, where an unknown CSV column
// refuses the file: the record was imported with the default visibility,
// federation, though the file asked for private. Unknown members, and
// members given twice, are now row errors naming the member.
func TestJSONLRefusesUnknownAndRepeatedMembers(t *testing.T) {
	body := `"body":{"title":"内部测试成果","summary":"仅本中心可见","industry":"new-materials"}`
	for _, c := range []struct{ line, column, message string }{
		{`{"key":"n-1","catalogue":"supply","visiblity":"private",` + body + `}`, "visiblity", `unknown member "visiblity"`},
		{`{"key":"n-1","catalogue":"supply","Visibility":"private",` + body + `}`, "Visibility", `unknown member "Visibility"`},
		{`{"key":"n-1","catalogue":"supply","visibility":"private","visibility":"public",` + body + `}`, "visibility", `member "visibility" given twice`},
		{`{"key":"n-1","catalogue":"supply","deleted":true,` + body + `}`, "deleted", "import does not delete records"},
		{`{"key":"n-1","catalogue":"supply","origin":"beijing",` + body + `}`, "origin", "a record of beijing"},
	} {
		rows := mustRead(t, []byte(c.line+"\n"), Options{Format: FormatJSONL, Catalogue: "supply", Centre: "tianjin"})
		if len(rows) != 1 || rows[0].Record != nil || len(rows[0].Errors) != 1 {
			t.Fatalf("%s: rows %+v", c.line, rows)
		}
		if e := rows[0].Errors[0]; e.Row != 1 || e.Column != c.column || !strings.Contains(e.Message, c.message) {
			t.Errorf("%s: error %v", c.line, e)
		}
	}
}

// Every member export writes imports: a record as export writes it, with
// the members the node sets, reads back as itself.
func TestJSONLReadsEveryMemberExportWrites(t *testing.T) {
	exp := time.Now().Add(90 * 24 * time.Hour).UTC().Truncate(time.Second)
	rec := &schema.Record{ID: "tianjin:n-1", Catalogue: "supply", Origin: "tianjin", Version: 7, Visibility: schema.VisibilityPrivate,
		Schema: schema.CurrentSchema, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(), ExpiresAt: &exp, Broker: "tianjin",
		Body: json.RawMessage(`{"title":"内部测试成果","summary":"仅本中心可见","industry":"new-materials"}`)}
	js, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	// deleted is written only when true, which export skips; false reads.
	line := strings.Replace(string(js), `"id"`, `"deleted":false,"id"`, 1)
	for _, m := range []string{"id", "catalogue", "origin", "version", "visibility", "schema", "created_at", "updated_at", "expires_at", "deleted", "broker", "body"} {
		if !strings.Contains(line, `"`+m+`":`) {
			t.Fatalf("the test line lacks %s: %s", m, line)
		}
	}
	rows := mustRead(t, []byte(line+"\n"), Options{Format: FormatJSONL, Catalogue: "supply", Centre: "tianjin"})
	if len(rows) != 1 || rows[0].Record == nil {
		t.Fatalf("rows %+v", rows)
	}
	if r := rows[0].Record; r.ID != rec.ID || r.Visibility != rec.Visibility || !r.ExpiresAt.Equal(exp) || !sameBody(t, r.Body, rec.Body) {
		t.Fatalf("record %+v", r)
	}
}

// Import read a bare expiry date (有效期至 2027-06-30, 2027年6月30日) as
// midnight UTC, 08:00 in China, where the web console reads it as the end
// of that day in China: the same date typed in either expired 16 hours
// apart. Import now reads it as the console does; a time with an offset is
// kept as given.
func TestExpiryDateIsTheEndOfThatDayInChina(t *testing.T) {
	china := time.FixedZone("UTC+8", 8*3600)
	year := time.Now().Year() + 2 // the API refuses an expiry already past
	end := time.Date(year, 6, 30, 23, 59, 59, 0, china)
	for _, c := range []struct {
		cell string
		want time.Time
	}{
		{fmt.Sprintf("%d-06-30", year), end},
		{fmt.Sprintf("%d年6月30日", year), end},
		{fmt.Sprintf("%d/6/30", year), end},
		{fmt.Sprintf("%d-06-30T00:00:00Z", year), time.Date(year, 6, 30, 0, 0, 0, 0, time.UTC)},
		{fmt.Sprintf("%d-06-30T09:30:00+08:00", year), time.Date(year, 6, 30, 9, 30, 0, 0, china)},
	} {
		csv := "编号,标题,摘要,所属领域,有效期至\ns-1,标题,摘要,新材料," + c.cell + "\n"
		rows := mustRead(t, []byte(csv), Options{Catalogue: "supply", Centre: "tianjin"})
		if len(rows) != 1 || rows[0].Record == nil {
			t.Fatalf("%s: rows %+v", c.cell, rows)
		}
		if e := rows[0].Record.ExpiresAt; e == nil || !e.Equal(c.want) || e.Location() != time.UTC {
			t.Errorf("%s: expires %v, want %v", c.cell, e, c.want.UTC())
		}
	}

	// An XLSX date cell is a bare date; a date-time cell, which has no
	// zone, is China's time.
	data := xlsxOf(t, [][]any{
		{"编号", "标题", "摘要", "所属领域", "有效期至"},
		{"s-1", "标题", "摘要", "新材料", time.Date(year, 6, 30, 0, 0, 0, 0, time.UTC)},
		{"s-2", "标题", "摘要", "新材料", time.Date(year, 6, 30, 9, 30, 0, 0, time.UTC)},
	})
	rows := mustRead(t, data, Options{Format: FormatXLSX, Catalogue: "supply", Centre: "tianjin"})
	for i, want := range []time.Time{end, time.Date(year, 6, 30, 9, 30, 0, 0, china)} {
		if len(rows) != 2 || rows[i].Record == nil {
			t.Fatalf("xlsx: rows %+v", rows)
		}
		if e := rows[i].Record.ExpiresAt; e == nil || !e.Equal(want) {
			t.Errorf("xlsx row %d: expires %v, want %v", i+2, e, want.UTC())
		}
	}
}
