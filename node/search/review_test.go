package search

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"

	"liandong/schema"
)

// A need without a status member is open (schema: "absent: open"; match.go
// offers it as open): status=open must find it.
func TestStatusOpenFindsANeedWithoutStatus(t *testing.T) {
	src := newMemSource()
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
	need := func(id string, body map[string]any) *schema.Record {
		js, _ := json.Marshal(body)
		return &schema.Record{ID: id, Catalogue: schema.CatalogueNeed, Origin: "tianjin", Visibility: "federation", Schema: 1, Body: js}
	}
	src.put(need("tianjin:a", map[string]any{"title": "风电轴承寿命预测", "enterprise": "某公司", "status": "open"}))
	src.put(need("tianjin:b", map[string]any{"title": "风电齿轮箱寿命预测", "enterprise": "某公司"}))
	got := ids(search(t, ix, Query{Text: "寿命预测", Status: schema.NeedOpen}))
	slices.Sort(got)
	if !slices.Equal(got, []string{"tianjin:a", "tianjin:b"}) {
		t.Fatalf("status=open: %v, want both needs (b has no status: open)", got)
	}
}

// A one-character query finds a record holding that character, also when the
// character ends its run of Chinese text (新能源汽车, 数据分析).
func TestOneCharacterFindsTheEndOfARun(t *testing.T) {
	src := newMemSource()
	ix := mustOpen(t, filepath.Join(t.TempDir(), "search.db"), src)
	src.put(plainRecord("tianjin:car", "新能源汽车"))
	src.put(plainRecord("tianjin:ana", "工业数据分析"))
	for q, want := range map[string]string{"车": "tianjin:car", "析": "tianjin:ana", "汽": "tianjin:car"} {
		if got := ids(search(t, ix, Query{Text: q})); !slices.Equal(got, []string{want}) {
			t.Errorf("%s: %v, want [%s]", q, got, want)
		}
	}
}
