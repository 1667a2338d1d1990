package schema

import (
	"encoding/json"
	"testing"
)

func TestIndustries(t *testing.T) {
	want := map[string]string{
		"intelligent-tech": "智能科技", "it-innovation": "信创", "biomedicine": "生物医药", "new-energy": "新能源",
		"new-materials": "新材料", "aerospace": "航空航天", "high-end-equipment": "高端装备", "automotive": "汽车",
		"green-petrochemicals": "绿色石化", "other": "其他",
	}
	if len(Industries) != len(want) {
		t.Errorf("%d industries, want %d", len(Industries), len(want))
	}
	for code, zh := range want {
		in, ok := LookupIndustry(code)
		if !ok || in.ZH != zh || in.EN == "" || in.Code != code {
			t.Errorf("LookupIndustry(%s) = %+v, %v", code, in, ok)
		}
		if !codeFormat.match(code) || len(code) > MaxCodeChars {
			t.Errorf("industry code %q is not code-shaped", code)
		}
	}
	if in, _ := LookupIndustry("it-innovation"); in.Parent != "intelligent-tech" {
		t.Errorf("it-innovation parent %q", in.Parent)
	}
	for _, in := range Industries {
		if in.Parent != "" {
			if _, ok := LookupIndustry(in.Parent); !ok {
				t.Errorf("%s: unknown parent %s", in.Code, in.Parent)
			}
		}
	}
	if _, ok := LookupIndustry("新材料"); ok {
		t.Error("LookupIndustry accepts a Chinese name")
	}
}

// Every enumerated value is code-shaped, so that a peer running this build keeps
// values added later (see ValidateOptions).
func TestCodesAreCodeShaped(t *testing.T) {
	for _, list := range [][]string{TransferModes, IPStatuses, NeedStatuses, NeedKinds, ExpertRoles, Catalogues} {
		for _, c := range list {
			if !codeFormat.match(c) || len(c) > MaxCodeChars {
				t.Errorf("%q is not code-shaped", c)
			}
		}
	}
	for _, c := range Catalogues {
		if !KnownCatalogue(c) || bodySpecs[c] == nil {
			t.Errorf("catalogue %s has no spec", c)
		}
	}
	if KnownCatalogue("patent") || KnownCatalogue("") {
		t.Error("KnownCatalogue accepts unknown names")
	}
}

func TestDecodeBody(t *testing.T) {
	v, err := DecodeBody(newRecord(CatalogueSupply, nickelBody))
	if err != nil {
		t.Fatal(err)
	}
	s := v.(*SupplyBody)
	if s.Title != "高镍三元正极材料连续化制备技术" || s.TRL != 6 || s.OwnerOrg != "天津大学" || len(s.IP) != 1 ||
		s.IP[0].Status != IPGranted || s.Contact == nil || s.Contact.Phone != "022-27401234" || s.Disruptive {
		t.Errorf("supply %+v", s)
	}
	v, err = DecodeBody(newRecord(CatalogueNeed, challengeBody))
	if err != nil {
		t.Fatal(err)
	}
	n := v.(*NeedBody)
	if n.Kind != NeedKindChallenge || n.Challenge == nil || n.Challenge.Bounty != 1500000 || n.Challenge.MaxMonths != 24 ||
		n.Budget == nil || n.Budget.Max != 2000000 || n.Budget.Currency != "CNY" || n.Deadline != "2027-06-30" {
		t.Errorf("need %+v", n)
	}
	v, err = DecodeBody(newRecord(CatalogueExpert, expertBody))
	if err != nil {
		t.Fatal(err)
	}
	if e := v.(*ExpertBody); e.Affiliation != "河北工业大学" || len(e.Roles) != 2 || e.Fields[0] != "new-materials" {
		t.Errorf("expert %+v", e)
	}
	if _, err := DecodeBody(newRecord("patent", `{}`)); err == nil {
		t.Error("unknown catalogue decoded")
	}
	if _, err := DecodeBody(newRecord(CatalogueSupply, `{"trl":"6"}`)); err == nil {
		t.Error("wrong type decoded")
	}
}

// Bodies built from the Go types validate, and survive a round trip.
func TestBodyTypesValidate(t *testing.T) {
	bodies := map[string]any{
		CatalogueSupply: SupplyBody{Title: "工业视觉缺陷检测深度学习算法", Summary: "小样本缺陷检测。", Industry: "intelligent-tech",
			Keywords: []string{"机器视觉"}, TRL: 7, IP: []IPRight{{Type: "patent", Number: "ZL2022", Status: IPPending}},
			TransferModes: []string{TransferLicense}, Inventors: []string{"某某"}, Contact: &Contact{Email: "a@b.cn"}},
		CatalogueNeed: NeedBody{Title: "揭榜挂帅：高精度减速器", Description: "传动误差≤1弧分。", Industry: "high-end-equipment",
			Enterprise: "天津某公司", Kind: NeedKindChallenge, Deadline: "2027-12-31", Status: NeedOpen,
			Budget: &Budget{Max: 3e6, Currency: "CNY"}, Challenge: &Challenge{Bounty: 2e6, Targets: []string{"寿命≥6000小时"}, MaxMonths: 18}},
		CatalogueExpert: ExpertBody{Name: "赵某", Affiliation: "天津科技大学", Fields: []string{"biomedicine"}, Roles: ExpertRoles},
	}
	for cat, b := range bodies {
		js, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := ValidateRecord(newRecord(cat, string(js)), ValidateOptions{Strict: true}); err != nil {
			t.Errorf("%s built from Go types: %v\n%s", cat, err, js)
		}
	}
}
