package transfer

import (
	"bytes"
	"encoding/json"
	"testing"

	"liandong/schema"
)

// TestOverRoundTrip: a record exported alone and read back, imported over
// itself, is unchanged, whatever a table has no way to say.
func TestOverRoundTrip(t *testing.T) {
	for _, tc := range []struct{ name, catalogue, body string }{
		{"empty ip list", schema.CatalogueSupply, `{"title":"高镍三元","summary":"中试","industry":"new-materials","ip":[]}`},
		{"empty contact", schema.CatalogueSupply, `{"title":"高镍三元","summary":"中试","industry":"new-materials","contact":{}}`},
		{"empty keywords", schema.CatalogueSupply, `{"title":"高镍三元","summary":"中试","industry":"new-materials","keywords":[]}`},
		{"a patent listed twice", schema.CatalogueSupply, `{"title":"高镍三元","summary":"中试","industry":"new-materials","ip":[{"type":"patent","number":"ZL1","status":"pending"},{"type":"patent","number":"ZL1","status":"granted"}]}`},
		{"a budget without currency", schema.CatalogueNeed, `{"title":"风电齿轮箱","description":"寿命预测","industry":"new-energy","enterprise":"某企业","budget":{"min":100,"max":200}}`},
		{"a budget in dollars", schema.CatalogueNeed, `{"title":"风电齿轮箱","description":"寿命预测","industry":"new-energy","enterprise":"某企业","budget":{"min":100,"max":200,"currency":"USD"}}`},
		{"an expert", schema.CatalogueExpert, `{"name":"李明","affiliation":"天津大学","fields":["new-materials"],"roles":["evaluation"],"contact":{"email":"li@example.cn"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := storedRecord(tc.catalogue, tc.body)
			if err := schema.ValidateRecord(old, schema.ValidateOptions{Strict: true}); err != nil {
				t.Fatal(err)
			}
			for _, format := range []string{FormatCSV, FormatXLSX} {
				var buf bytes.Buffer
				w, err := NewWriter(&buf, format, old.Catalogue, EncodingUTF8, true)
				if err != nil {
					t.Fatal(err)
				}
				if err := w.Write(old); err != nil {
					t.Fatal(err)
				}
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				rows := mustRead(t, buf.Bytes(), Options{Format: format, Catalogue: old.Catalogue, Centre: "tianjin"})
				got := over(t, rows, old)
				if !sameBody(t, got.Body, old.Body) {
					t.Fatalf("%s: changed by its own export:\n got %s\nwant %s", format, got.Body, old.Body)
				}
			}
		})
	}
}

// TestOverEdits: what a file of chosen columns does to a stored record.
func TestOverEdits(t *testing.T) {
	need := `{"title":"风电齿轮箱","description":"寿命预测","industry":"new-energy","enterprise":"某企业","kind":"need","budget":{"min":100,"max":200,"currency":"USD"},"contact":{"person":"王工","phone":"022-27400000"}}`
	for _, tc := range []struct {
		name, csv string
		o         Options
		want      string // the body
		wantVis   string
	}{
		{"challenge terms make a challenge over a stored kind",
			"编号,标题,需求描述,所属领域,需求企业,截止日期,悬赏金额,攻关目标\nk-1,风电齿轮箱,寿命预测,new-energy,某企业,2027-06-30,500000,误差小于10%\n", Options{},
			`{"title":"风电齿轮箱","description":"寿命预测","industry":"new-energy","enterprise":"某企业","deadline":"2027-06-30","kind":"challenge","challenge":{"bounty":500000,"targets":["误差小于10%"]},"budget":{"min":100,"max":200,"currency":"USD"},"contact":{"person":"王工","phone":"022-27400000"}}`,
			schema.VisibilityPrivate},
		{"both bounds cleared: no budget left",
			"编号,标题,需求描述,所属领域,需求企业,预算下限,预算上限\nk-1,风电齿轮箱,寿命预测,new-energy,某企业,,\n", Options{},
			`{"title":"风电齿轮箱","description":"寿命预测","industry":"new-energy","enterprise":"某企业","kind":"need","contact":{"person":"王工","phone":"022-27400000"}}`,
			schema.VisibilityPrivate},
		{"a cleared cell removes its member, others stay",
			"编号,标题,需求描述,所属领域,需求企业,联系电话\nk-1,风电齿轮箱（二）,寿命预测,new-energy,某企业,\n", Options{},
			`{"title":"风电齿轮箱（二）","description":"寿命预测","industry":"new-energy","enterprise":"某企业","kind":"need","budget":{"min":100,"max":200,"currency":"USD"},"contact":{"person":"王工"}}`,
			schema.VisibilityPrivate},
		{"a new lower bound keeps the currency",
			"编号,标题,需求描述,所属领域,需求企业,预算下限\nk-1,风电齿轮箱,寿命预测,new-energy,某企业,50\n", Options{},
			`{"title":"风电齿轮箱","description":"寿命预测","industry":"new-energy","enterprise":"某企业","kind":"need","budget":{"min":50,"max":200,"currency":"USD"},"contact":{"person":"王工","phone":"022-27400000"}}`,
			schema.VisibilityPrivate},
		{"--visibility given applies to rows that do not say",
			"编号,标题,需求描述,所属领域,需求企业\nk-1,风电齿轮箱,寿命预测,new-energy,某企业\n", Options{Visibility: schema.VisibilityPublic, VisibilityGiven: true},
			need, schema.VisibilityPublic},
		{"a row's own visibility",
			"编号,标题,需求描述,所属领域,需求企业,可见范围\nk-1,风电齿轮箱,寿命预测,new-energy,某企业,联盟\n", Options{},
			need, schema.VisibilityFederation},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := storedRecord(schema.CatalogueNeed, need)
			old.Visibility = schema.VisibilityPrivate
			o := tc.o
			o.Format, o.Catalogue, o.Centre = FormatCSV, schema.CatalogueNeed, "tianjin"
			got := over(t, mustRead(t, []byte(tc.csv), o), old)
			if !sameBody(t, got.Body, json.RawMessage(tc.want)) || got.Visibility != tc.wantVis {
				t.Fatalf("\n got %s %s\nwant %s %s", got.Visibility, got.Body, tc.wantVis, tc.want)
			}
			if err := schema.ValidateRecord(got, schema.ValidateOptions{Strict: true}); err != nil {
				t.Fatalf("merged record refused: %v", err)
			}
		})
	}
}

func storedRecord(catalogue, body string) *schema.Record {
	return &schema.Record{ID: "tianjin:k-1", Catalogue: catalogue, Origin: "tianjin", Version: 3,
		Visibility: schema.VisibilityFederation, Schema: schema.CurrentSchema, Body: json.RawMessage(body)}
}

// over is the one row of rows imported over old.
func over(t *testing.T, rows []Row, old *schema.Record) *schema.Record {
	t.Helper()
	if len(rows) != 1 || len(rows[0].Errors) > 0 {
		t.Fatalf("rows: %+v", rows)
	}
	got, err := rows[0].Over(old)
	if err != nil {
		t.Fatal(err)
	}
	return got
}
