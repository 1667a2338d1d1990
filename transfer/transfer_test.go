package transfer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/encoding/simplifiedchinese"

	"liandong/schema"
	"liandong/schema/sample"
)

const supplyCSV = `编号,标题,摘要,所属领域,关键词,技术成熟度,所属单位,转化方式,颠覆性,专利号,联系人,联系电话,可见范围
s-001,高镍三元正极材料连续化制备技术,已完成百吨级中试。,新材料,"正极材料，锂电池、高镍",TRL6,天津大学,许可，合作开发,否,ZL202110345678.9,王老师,022-27400000,联盟
s-002,钙钛矿叠层太阳能电池,实验室效率超过31%。,new-energy,钙钛矿;光伏,5级,南开大学,转让,是,,,,公开
`

func mustRead(t *testing.T, data []byte, o Options) []Row {
	t.Helper()
	rows, err := Read(bytes.NewReader(data), o)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestReadCSVEncodings(t *testing.T) {
	gb, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(supplyCSV))
	if err != nil {
		t.Fatal(err)
	}
	var want []Row
	for name, data := range map[string][]byte{
		"utf-8":         []byte(supplyCSV),
		"utf-8 BOM":     append([]byte("\uFEFF"), supplyCSV...),
		"gb18030":       gb,
		"utf-8 CRLF":    []byte(strings.ReplaceAll(supplyCSV, "\n", "\r\n")),
		"english heads": []byte(strings.Replace(supplyCSV, "编号,标题,摘要,所属领域", "key,title,summary,industry", 1)),
	} {
		rows := mustRead(t, data, Options{Catalogue: "supply", Centre: "tianjin"})
		if len(rows) != 2 {
			t.Fatalf("%s: %d rows", name, len(rows))
		}
		for _, r := range rows {
			if len(r.Errors) > 0 || r.Record == nil {
				t.Fatalf("%s: row %d: %v", name, r.Row, r.Errors)
			}
		}
		if want == nil {
			want = rows
			continue
		}
		for i := range rows {
			if rows[i].Record.ID != want[i].Record.ID || !bytes.Equal(rows[i].Record.Body, want[i].Record.Body) || rows[i].Record.Visibility != want[i].Record.Visibility {
				t.Fatalf("%s: row %d differs:\n%s\n%s", name, i, rows[i].Record.Body, want[i].Record.Body)
			}
		}
	}
	r := want[0].Record
	var b schema.SupplyBody
	json.Unmarshal(r.Body, &b)
	if r.ID != "tianjin:s-001" || r.Visibility != "federation" || b.Industry != "new-materials" || b.TRL != 6 ||
		!reflect.DeepEqual(b.Keywords, []string{"正极材料", "锂电池", "高镍"}) || !reflect.DeepEqual(b.TransferModes, []string{"license", "joint-development"}) ||
		len(b.IP) != 1 || b.IP[0].Number != "ZL202110345678.9" || b.Contact == nil || b.Contact.Person != "王老师" {
		t.Fatalf("row 1: %+v %s", r, r.Body)
	}
	if want[1].Record.Visibility != "public" {
		t.Fatalf("row 2 visibility %q", want[1].Record.Visibility)
	}
}

// TestDryRunErrors reads a file with a mistake in most rows: every mistake is
// reported with its row and column, and the good rows still make records.
func TestDryRunErrors(t *testing.T) {
	data := `清单,编号,标题,需求描述,所属领域,需求企业,技术成熟度,截止日期,预算下限,预算上限,姓名,工作单位
需求,n-1,轴承寿命预测,风电齿轮箱轴承寿命预测。,高端装备,天津某装备公司,,2027-06-30,50万,200万,,
需求,n-2,,描述,高端装备,天津某装备公司,,2027年6月31日,,,,
需求,n 3,钢铁,描述,钢铁,某钢铁公司,,,300万,100万,,
成果,s-1,碳纤维,,新材料,,十,,,,,
专家,e-1,,,,,,,,,李明,河北工业大学
专利,x-1,,,,,,,,,,
`
	rows := mustRead(t, []byte(data), Options{Centre: "tianjin"})
	got := map[int][]string{}
	for _, r := range rows {
		for _, e := range r.Errors {
			got[r.Row] = append(got[r.Row], e.Column)
			if e.Row != r.Row || e.Message == "" {
				t.Errorf("error %+v", e)
			}
		}
	}
	want := map[int][]string{
		3: {"标题", "截止日期"},
		4: {"编号", "所属领域", "预算下限"},
		5: {"技术成熟度", ""}, // TRL not a number; no 摘要 column for the required summary
		7: {"清单"},
	}
	for row, cols := range want {
		for _, c := range cols {
			found := false
			for _, g := range got[row] {
				found = found || g == c
			}
			if !found {
				t.Errorf("row %d: no error on column %s; errors %v", row, c, got[row])
			}
		}
	}
	for _, r := range rows {
		if (r.Row == 2 || r.Row == 6) != (r.Record != nil) {
			t.Errorf("row %d: record %v, errors %v", r.Row, r.Record != nil, r.Errors)
		}
	}
	var b schema.NeedBody
	json.Unmarshal(rows[0].Record.Body, &b)
	if b.Budget == nil || b.Budget.Min != 500000 || b.Budget.Max != 2000000 || b.Budget.Currency != "CNY" || b.Industry != "high-end-equipment" {
		t.Errorf("row 2 body %s", rows[0].Record.Body)
	}
	for _, r := range rows {
		for _, e := range r.Errors {
			t.Logf("%s", e)
		}
	}

	// Whole-file problems.
	for _, c := range []struct{ data, want string }{
		{"编号,标题,颜色\nx,y,z\n", `"颜色"`},
		{"标题,摘要\nx,y\n", "编号"},
		{"", "empty"},
	} {
		_, err := Read(strings.NewReader(c.data), Options{Catalogue: "supply", Centre: "tianjin"})
		if !errors.Is(err, ErrFile) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v", c.data, err)
		}
	}
	if _, err := Read(bytes.NewReader([]byte{0xEF, 0xBB, 0xBF, 0xFF, 0xFE}), Options{Catalogue: "supply", Centre: "tianjin"}); !errors.Is(err, ErrFile) {
		t.Errorf("BOM then invalid UTF-8: %v", err)
	}
}

// TestExportImportRoundTrip: exporting records and importing the file again
// changes nothing (Row.Over), in every format, whatever a table cannot say:
// IP rights other than patents, a patent's status or lack of number, an
// absent disruptive, an expiry, a private record.
func TestExportImportRoundTrip(t *testing.T) {
	recs := roundTripRecords(t)
	for _, cat := range schema.Catalogues {
		for _, f := range []struct{ format, encoding string }{{FormatCSV, EncodingUTF8}, {FormatCSV, EncodingGB18030}, {FormatJSONL, ""}} {
			var buf bytes.Buffer
			w, err := NewWriter(&buf, f.format, cat, f.encoding, true)
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
			rows := mustRead(t, buf.Bytes(), Options{Format: f.format, Catalogue: cat, Centre: "tianjin"})
			checkRoundTrip(t, cat+" "+f.format+" "+f.encoding, rows, want)
		}
	}
}

// roundTripRecords are sample records of every catalogue, with supply records
// holding what a table has no column for.
func roundTripRecords(t *testing.T) []*schema.Record {
	recs := sample.Records("tianjin", 20, 3)
	exp := time.Date(2027, 6, 30, 0, 0, 0, 0, time.UTC)
	tricky := 0
	for i, r := range recs {
		r.ID, r.Origin, r.Version = fmt.Sprintf("tianjin:k-%03d", i), "tianjin", 1
		if r.Catalogue != schema.CatalogueSupply {
			continue
		}
		var body map[string]any
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		switch tricky {
		case 0:
			body["ip"] = []any{
				map[string]any{"type": "software-copyright", "number": "2023SR0123456", "status": "granted"},
				map[string]any{"type": "patent", "number": "ZL202110345678.9", "status": "pending"},
				map[string]any{"type": "know-how"},
				map[string]any{"type": "patent", "number": "ZL202210000001.1", "status": "granted"},
			}
			delete(body, "disruptive")
			r.ExpiresAt = &exp
		case 1:
			r.Visibility = schema.VisibilityPrivate
		}
		tricky++
		js, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r.Body = js
	}
	if tricky < 2 {
		t.Fatalf("only %d supply records in the sample", tricky)
	}
	return recs
}

// checkRoundTrip checks that each row read back, imported over the record it
// was exported from, is that record, and alone is a valid record of its id.
func checkRoundTrip(t *testing.T, label string, rows []Row, want map[string]*schema.Record) {
	t.Helper()
	if len(rows) != len(want) {
		t.Fatalf("%s: %d rows, want %d", label, len(rows), len(want))
	}
	for _, r := range rows {
		if len(r.Errors) > 0 {
			t.Fatalf("%s: row %d: %v", label, r.Row, r.Errors)
		}
		w := want[r.Record.ID]
		if w == nil {
			t.Fatalf("%s: row %d: unexpected %s", label, r.Row, r.Record.ID)
		}
		got, err := r.Over(w)
		if err != nil {
			t.Fatalf("%s: %s: %v", label, w.ID, err)
		}
		if got.Visibility != w.Visibility || !sameBody(t, got.Body, w.Body) ||
			(got.ExpiresAt == nil) != (w.ExpiresAt == nil) || got.ExpiresAt != nil && !got.ExpiresAt.Equal(*w.ExpiresAt) {
			t.Fatalf("%s: %s changed by its own export:\n got %s %s %v\nwant %s %s %v", label, w.ID, got.Visibility, got.Body, got.ExpiresAt, w.Visibility, w.Body, w.ExpiresAt)
		}
	}
}

// sameBody compares bodies as values.
func sameBody(t *testing.T, a, b json.RawMessage) bool {
	norm := func(raw json.RawMessage) any {
		var v map[string]any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	return reflect.DeepEqual(norm(a), norm(b))
}
