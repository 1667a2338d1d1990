package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// invalidCorpus says, for each file in testdata/corpus/invalid, which field errors
// the Go validator must report (as "path rule"; others may be reported too), and
// whether JSON Schema cannot express the rule broken.
var invalidCorpus = map[string]struct {
	want   []string
	goOnly string // why JSON Schema accepts this record; empty: it must reject it
}{
	"env_unknown_catalogue":           {want: []string{"catalogue unknown_catalogue"}},
	"env_visibility_secret":           {want: []string{"visibility enum"}},
	"env_origin_uppercase":            {want: []string{"origin format"}},
	"env_id_origin_mismatch":          {want: []string{"id mismatch"}, goOnly: "JSON Schema cannot compare the id's centre with the origin member"},
	"env_id_malformed":                {want: []string{"id format"}},
	"env_version_zero":                {want: []string{"version min"}},
	"env_version_2_53":                {want: []string{"version max"}},
	"env_schema_newer":                {want: []string{"schema max"}},
	"env_broker_bad":                  {want: []string{"broker format"}},
	"env_body_missing":                {want: []string{"body required"}},
	"env_body_array":                  {want: []string{"body type"}},
	"env_body_null":                   {want: []string{"body required"}},
	"supply_required_missing":         {want: []string{"body.title required", "body.summary required", "body.industry required"}},
	"supply_title_201_chars":          {want: []string{"body.title max_length"}},
	"supply_title_blank":              {want: []string{"body.title required"}},
	"supply_title_empty":              {want: []string{"body.title required"}},
	"supply_title_null":               {want: []string{"body.title type"}},
	"supply_summary_5001_chars":       {want: []string{"body.summary max_length"}},
	"supply_trl_10":                   {want: []string{"body.trl max"}},
	"supply_trl_0":                    {want: []string{"body.trl min"}},
	"supply_trl_string":               {want: []string{"body.trl type"}},
	"supply_trl_fraction":             {want: []string{"body.trl type"}},
	"supply_industry_unknown":         {want: []string{"body.industry enum"}},
	"supply_industry_chinese":         {want: []string{"body.industry enum"}},
	"supply_keywords_21":              {want: []string{"body.keywords max_items"}},
	"supply_keyword_33_chars":         {want: []string{"body.keywords[1] max_length"}},
	"supply_keywords_duplicate":       {want: []string{"body.keywords[2] unique"}},
	"supply_keyword_blank":            {want: []string{"body.keywords[1] required"}},
	"supply_ip_51":                    {want: []string{"body.ip max_items"}},
	"supply_ip_status_unknown":        {want: []string{"body.ip[1].status enum"}},
	"supply_ip_type_missing":          {want: []string{"body.ip[0].type required"}},
	"supply_ip_not_objects":           {want: []string{"body.ip[0] type"}},
	"supply_transfer_mode_unknown":    {want: []string{"body.transfer_modes[0] enum"}},
	"supply_transfer_modes_duplicate": {want: []string{"body.transfer_modes[1] unique"}},
	"supply_disruptive_string":        {want: []string{"body.disruptive type"}},
	"supply_inventors_string":         {want: []string{"body.inventors type"}},
	"supply_owner_org_201":            {want: []string{"body.owner_org max_length"}},
	"supply_contact_string":           {want: []string{"body.contact type"}},
	"supply_contact_email_bad":        {want: []string{"body.contact.email format"}},
	"supply_contact_phone_letters":    {want: []string{"body.contact.phone format"}},
	"supply_contact_phone_short":      {want: []string{"body.contact.phone format"}},
	"supply_contact_phone_long":       {want: []string{"body.contact.phone format"}},
	"supply_many_errors": {want: []string{"body.title required", "body.summary required", "body.industry enum",
		"body.keywords type", "body.trl max", "body.disruptive type", "body.contact.email format"}},
	"need_required_missing":           {want: []string{"body.title required", "body.description required", "body.industry required", "body.enterprise required"}},
	"need_challenge_terms_missing":    {want: []string{"body.challenge required"}},
	"need_challenge_deadline_missing": {want: []string{"body.deadline required"}},
	"need_challenge_on_plain_need":    {want: []string{"body.challenge forbidden"}},
	"need_challenge_on_absent_kind":   {want: []string{"body.challenge forbidden"}},
	"need_deadline_slashes":           {want: []string{"body.deadline format"}},
	"need_deadline_feb_30":            {want: []string{"body.deadline format"}},
	"need_budget_min_gt_max":          {want: []string{"body.budget range"}, goOnly: "JSON Schema cannot compare two members (min ≤ max)"},
	"need_budget_negative":            {want: []string{"body.budget.min min"}},
	"need_budget_huge":                {want: []string{"body.budget.max max"}},
	"need_currency_lowercase":         {want: []string{"body.budget.currency format"}},
	"need_status_unknown":             {want: []string{"body.status enum"}},
	"need_kind_unknown":               {want: []string{"body.kind enum"}},
	"need_targets_empty":              {want: []string{"body.challenge.targets min_items"}},
	"need_targets_missing":            {want: []string{"body.challenge.targets required"}},
	"need_max_months_0":               {want: []string{"body.challenge.max_months min"}},
	"need_max_months_fraction":        {want: []string{"body.challenge.max_months type"}},
	"expert_required_missing":         {want: []string{"body.name required", "body.affiliation required"}},
	"expert_role_unknown":             {want: []string{"body.roles[1] enum"}},
	"expert_field_unknown":            {want: []string{"body.fields[0] enum"}},
	"expert_bio_5001":                 {want: []string{"body.bio max_length"}},
	"expert_name_65":                  {want: []string{"body.name max_length"}},

	// The canonical encoding's rules, which JSON Schema validators cannot see: they
	// read the document with an ordinary JSON parser first.
	"supply_trl_6_0":        {want: []string{"body.trl type"}, goOnly: "6.0 is an integer to JSON Schema; we refuse fraction syntax so that integer fields decode into Go ints"},
	"body_duplicate_key":    {want: []string{"body.title duplicate_key"}, goOnly: "JSON parsers keep the last of repeated member names"},
	"body_big_integer":      {want: []string{"body.serial number"}, goOnly: "integers of 2^53 or more are refused anywhere in a body, as the canonical encoding requires"},
	"body_lone_surrogate":   {want: []string{"body.title utf8"}, goOnly: "JSON parsers replace a lone surrogate escape with U+FFFD"},
	"body_invalid_utf8_gbk": {want: []string{"body.owner_org utf8"}, goOnly: "JSON parsers replace invalid UTF-8 with U+FFFD"},
}

// compileSchemas compiles the three catalogue schemas with format assertion on.
func compileSchemas(t testing.TB) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	out := make(map[string]*jsonschema.Schema)
	for _, cat := range Catalogues {
		b, err := JSONSchema(cat)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s schema is not JSON: %v", cat, err)
		}
		if err := c.AddResource(SchemaIDPrefix+cat, doc); err != nil {
			t.Fatal(err)
		}
		s, err := c.Compile(SchemaIDPrefix + cat)
		if err != nil {
			t.Fatalf("compile %s schema: %v", cat, err)
		}
		out[cat] = s
	}
	return out
}

// schemaAccepts validates doc against its catalogue's schema; a document of no known
// catalogue must satisfy one of the three.
func schemaAccepts(t testing.TB, schemas map[string]*jsonschema.Schema, data []byte) (bool, error) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return false, err
	}
	if m, ok := doc.(map[string]any); ok {
		if cat, ok := m["catalogue"].(string); ok && schemas[cat] != nil {
			err := schemas[cat].Validate(doc)
			return err == nil, err
		}
	}
	var last error
	for _, s := range schemas {
		if last = s.Validate(doc); last == nil {
			return true, nil
		}
	}
	return false, last
}

// goAccepts decodes and validates as the API does for a write at this centre.
func goAccepts(data []byte) error {
	r, err := DecodeRecord(data)
	if err != nil {
		return err
	}
	return ValidateRecord(r, ValidateOptions{Strict: true})
}

func TestCorpusValid(t *testing.T) {
	schemas := compileSchemas(t)
	files := readCorpus(t, "valid")
	if len(files) < 15 {
		t.Errorf("only %d valid corpus files", len(files))
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			if err := goAccepts(data); err != nil {
				t.Errorf("Go validator refuses: %v", err)
			}
			if ok, err := schemaAccepts(t, schemas, data); !ok {
				t.Errorf("JSON Schema refuses: %v", err)
			}
		})
	}
}

func TestCorpusInvalid(t *testing.T) {
	schemas := compileSchemas(t)
	files := readCorpus(t, "invalid")
	for name := range invalidCorpus {
		if files[name] == nil {
			t.Errorf("invalidCorpus lists %s, which is not in testdata/corpus/invalid", name)
		}
	}
	rules := map[string]bool{}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			c, ok := invalidCorpus[name]
			if !ok {
				t.Fatalf("no expectation for %s in invalidCorpus", name)
			}
			err := goAccepts(data)
			if err == nil {
				t.Fatal("Go validator accepts it")
			}
			got := fieldErrors(t, err)
			for _, w := range c.want {
				if !slices.Contains(got, w) {
					t.Errorf("Go validator: want %q among %q", w, got)
				}
				rules[strings.Fields(w)[1]] = true
			}
			ok, serr := schemaAccepts(t, schemas, data)
			switch {
			case c.goOnly == "" && ok:
				t.Errorf("JSON Schema accepts what the Go validator refuses (%q)", got)
			case c.goOnly != "" && !ok:
				t.Errorf("JSON Schema now refuses it (%v); drop it from the Go-only list", serr)
			}
		})
	}
	// The corpus spans every body and envelope rule.
	for _, r := range []string{RuleRequired, RuleType, RuleMaxLength, RuleMinItems, RuleMaxItems, RuleUnique,
		RuleMin, RuleMax, RuleEnum, RuleFormat, RuleUTF8, RuleUnknownCatalogue, RuleForbidden, RuleRange,
		RuleMismatch, RuleDuplicateKey, RuleNumber} {
		if !rules[r] {
			t.Errorf("no corpus file exercises rule %s", r)
		}
	}
}

// The many-errors file reports all of its errors, and nothing else.
func TestCorpusAllErrorsAtOnce(t *testing.T) {
	data := readCorpus(t, "invalid")["supply_many_errors"]
	got := fieldErrors(t, goAccepts(data))
	if want := invalidCorpus["supply_many_errors"].want; !sameSet(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestJSONSchemaUnknownCatalogue(t *testing.T) {
	if _, err := JSONSchema("patent"); !errors.Is(err, ErrUnknownCatalogue) {
		t.Errorf("JSONSchema(patent) error = %v, want ErrUnknownCatalogue", err)
	}
	a, _ := JSONSchema(CatalogueSupply)
	a[0] = 'x'
	if b, _ := JSONSchema(CatalogueSupply); b[0] != '{' {
		t.Error("JSONSchema returns shared memory")
	}
}

// The documents in schema/jsonschema/ are the generated ones.
func TestJSONSchemaFiles(t *testing.T) {
	for _, cat := range Catalogues {
		want, err := JSONSchema(cat)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := json.Unmarshal(want, &v); err != nil {
			t.Fatalf("%s: %v", cat, err)
		}
		path := filepath.Join("jsonschema", cat+".json")
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is not current (%v); run go test ./schema -run TestJSONSchemaFiles -update", path, err)
		}
	}
}

// The non-blank pattern published in JSON Schema means what isBlank means.
func TestNonBlankPatternMatchesIsSpace(t *testing.T) {
	re := regexp.MustCompile(nonBlankPattern)
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		s := string(r)
		if re.MatchString(s) == unicode.IsSpace(r) {
			t.Errorf("U+%04X: pattern matches %v, unicode.IsSpace %v", r, re.MatchString(s), unicode.IsSpace(r))
		}
	}
}
