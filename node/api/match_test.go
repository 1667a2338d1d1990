package api

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"liandong/client"
	"liandong/schema"
)

// TestMatchThroughClient drives matchmaking and search through the client
// package against a real node.
func TestMatchThroughClient(t *testing.T) {
	e := newEnv(t, false)
	ctx := context.Background()
	w := client.New(e.srv.URL, e.writer(t))
	put := func(key, catalogue, visibility string, body map[string]any) *schema.Record {
		t.Helper()
		rec, err := w.Put(ctx, "tianjin:"+key, &schema.Record{Catalogue: catalogue, Visibility: visibility, Body: mustJSON(body)}, 0)
		if err != nil {
			t.Fatal(err)
		}
		return rec
	}
	need := needBody("风电机组轴承故障提前预警")
	need["keywords"] = []string{"风电", "轴承", "故障预警"}
	need["industry"] = "new-energy"
	put("need-1", "need", "public", need)
	wind := supplyBody("风电齿轮箱轴承寿命预测与健康管理")
	wind["keywords"], wind["industry"], wind["summary"] = []string{"风电", "轴承", "寿命预测"}, "new-energy", "融合振动与温度数据预测轴承剩余寿命，故障提前预警。"
	put("s-wind", "supply", "public", wind)
	vib := supplyBody("旋转机械振动监测与故障诊断系统")
	vib["keywords"], vib["industry"], vib["summary"], vib["trl"] = []string{"振动监测", "故障诊断", "轴承"}, "high-end-equipment", "识别轴承、齿轮等典型故障。", 7
	put("s-vib", "supply", "federation", vib)
	put("s-pv", "supply", "public", supplyBody("钙钛矿叠层太阳能电池"))
	put("e-wind", "expert", "federation", map[string]any{"name": "陈伟", "affiliation": "华北电力大学（保定）", "fields": []string{"new-energy"},
		"keywords": []string{"风电", "故障诊断"}, "bio": "长期从事风电机组状态监测。", "contact": map[string]string{"email": "chen@example.edu.cn"}})

	res, err := w.Match(ctx, "tianjin:need-1", "", 5)
	if err != nil {
		t.Fatal(err)
	}
	sup := res.Matches["supply"]
	if len(sup) != 2 || sup[0].ID != "tianjin:s-wind" || sup[1].ID != "tianjin:s-vib" {
		t.Fatalf("supply matches %+v", sup)
	}
	if r := sup[0].Reasons; len(r) < 3 || r[0].Kind != "text" || len(r[0].Terms) == 0 || len(r[0].Fields) == 0 {
		t.Fatalf("reasons %+v", r)
	}
	if ex := res.Matches["expert"]; len(ex) != 1 || ex[0].ID != "tianjin:e-wind" || !hasContact(ex[0].Record) {
		t.Fatalf("expert matches %+v", ex)
	}
	if res.Source.ID != "tianjin:need-1" {
		t.Fatalf("source %+v", res.Source)
	}

	// Anonymous: public candidates only, redacted; one list on request.
	anon := client.New(e.srv.URL, "")
	res, err = anon.Match(ctx, "tianjin:need-1", "supply", 0)
	if err != nil {
		t.Fatal(err)
	}
	if sup := res.Matches["supply"]; len(sup) != 1 || sup[0].ID != "tianjin:s-wind" || hasContact(sup[0].Record) || len(res.Matches) != 1 {
		t.Fatalf("anonymous matches %+v", res.Matches)
	}
	// The reverse: from a supply item to needs.
	res, err = w.Match(ctx, "tianjin:s-wind", "need", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Matches["need"]; len(n) != 1 || n[0].ID != "tianjin:need-1" {
		t.Fatalf("needs for s-wind: %+v", res.Matches)
	}

	// Problems come back as *client.Problem naming what is at fault.
	for _, c := range []struct {
		c         *client.Client
		id, cat   string
		limit     int
		status    int
		path      string
		errorPath string
	}{
		{w, "tianjin:e-wind", "", 0, http.StatusUnprocessableEntity, "id", "id"},
		{w, "tianjin:need-1", "need", 0, http.StatusBadRequest, "catalogue", "catalogue"},
		{w, "tianjin:need-1", "", 51, http.StatusBadRequest, "limit", "limit"},
		{w, "tianjin:nothing", "", 0, http.StatusNotFound, "", ""},
		{anon, "tianjin:s-vib", "", 0, http.StatusNotFound, "", ""}, // not public
		{client.New(e.srv.URL, "bad-token"), "tianjin:need-1", "", 0, http.StatusUnauthorized, "", ""},
	} {
		_, err := c.c.Match(ctx, c.id, c.cat, c.limit)
		var p *client.Problem
		if !errors.As(err, &p) || p.Status != c.status {
			t.Errorf("match %s: %v, want a %d problem", c.id, err, c.status)
			continue
		}
		if c.errorPath != "" && (len(p.Errors) != 1 || p.Errors[0].Path != c.errorPath) {
			t.Errorf("match %s: errors %+v, want one on %s", c.id, p.Errors, c.errorPath)
		}
	}

	// Search and paging through the client.
	page, err := w.Search(ctx, "轴承", client.ListOptions{Catalogue: "supply"})
	if err != nil {
		t.Fatal(err)
	}
	if page.Total != 2 || len(page.Hits) != 2 || page.Items[0].ID != "tianjin:s-wind" {
		t.Fatalf("search %+v", page)
	}
	n := 0
	for rec, err := range w.All(ctx, client.ListOptions{Limit: 2}) {
		if err != nil {
			t.Fatal(err)
		}
		if rec.ID == "" {
			t.Fatal("record without id")
		}
		n++
	}
	if n != 5 {
		t.Fatalf("All walked %d records, want 5", n)
	}
	if _, err := w.List(ctx, client.ListOptions{Sort: "relevance"}); !client.IsNotFound(err) {
		var p *client.Problem
		if !errors.As(err, &p) || p.Status != 400 || p.Kind() != "bad-parameter" {
			t.Fatalf("sort without q: %v", err)
		}
	}
}
