package schema

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// -update rewrites generated files under schema/ (JSON Schema documents, fuzz seeds).
var update = flag.Bool("update", false, "rewrite generated test files")

// nickelBody is a realistic supply body (about 1 KB as a record).
const nickelBody = `{
  "title": "高镍三元正极材料连续化制备技术",
  "summary": "针对高镍三元正极材料（NCM811）批次稳定性差、残碱高的问题，开发共沉淀—烧结连续化制备工艺，实现前驱体粒径分布可控、表面包覆均匀。已完成百吨级中试。",
  "industry": "new-materials",
  "keywords": ["正极材料", "锂电池", "高镍"],
  "trl": 6,
  "ip": [{"type": "patent", "number": "ZL202110345678.9", "status": "granted"}],
  "transfer_modes": ["license", "joint-development"],
  "owner_org": "天津大学",
  "disruptive": false,
  "inventors": ["王某某", "赵某"],
  "contact": {"person": "王老师", "phone": "022-27401234", "email": "tech-transfer@tju.edu.cn"}
}`

const challengeBody = `{
  "title": "风电齿轮箱轴承寿命预测", "description": "建立剩余寿命预测模型，提前30天预警失效。",
  "industry": "high-end-equipment", "keywords": ["轴承", "寿命预测"], "enterprise": "天津某装备制造公司",
  "kind": "challenge", "budget": {"min": 500000, "max": 2000000, "currency": "CNY"}, "deadline": "2027-06-30",
  "status": "open", "challenge": {"bounty": 1500000, "targets": ["预测误差 < 10%"], "max_months": 24},
  "contact": {"person": "刘工", "phone": "+86 138 0000 0000"}}`

const expertBody = `{"name": "李某", "title": "教授", "affiliation": "河北工业大学", "fields": ["new-materials"],
  "keywords": ["储能", "电池材料"], "bio": "从事电池材料研究。", "roles": ["evaluation", "consulting"],
  "contact": {"email": "li@hebut.edu.cn"}}`

// newRecord returns a valid-envelope record of the catalogue with the body.
func newRecord(catalogue, body string) *Record {
	return &Record{
		ID: "tianjin:01JNQ8ZK3M5T2V7W9X1Y4Z6A8B", Catalogue: catalogue, Origin: "tianjin",
		Version: 1, Visibility: VisibilityFederation, Schema: CurrentSchema,
		CreatedAt: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC), UpdatedAt: time.Date(2026, 3, 5, 14, 12, 8, 0, time.UTC),
		Body: json.RawMessage(body),
	}
}

// fieldErrors returns err's field errors as "path rule" strings; nil for nil err.
func fieldErrors(t testing.TB, err error) []string {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v (%T) is not a *ValidationError", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	var out []string
	for _, fe := range ve.Errors {
		if fe.Rule == "" || fe.Message == "" {
			t.Errorf("field error without rule or message: %+v", fe)
		}
		out = append(out, fe.Path+" "+fe.Rule)
	}
	return out
}

// sameSet reports whether a and b hold the same strings, ignoring order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// setBody returns body (a JSON object) without member k and, unless v is "", with
// `"k":v` spliced in first. v is raw text and is not checked, so it may be broken.
func setBody(t testing.TB, body, k, v string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, k)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if v == "" {
		return string(b)
	}
	key, _ := json.Marshal(k)
	sep := ","
	if len(m) == 0 {
		sep = ""
	}
	return "{" + string(key) + ":" + v + sep + string(b[1:])
}

func readCorpus(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "corpus", dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files in %s: %v", dir, err)
	}
	out := make(map[string][]byte, len(files))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(filepath.Base(f), ".json")] = b
	}
	return out
}
