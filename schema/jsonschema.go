package schema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
)

// JSON Schema (draft 2020-12) documents of records, one per catalogue, as served at
// /v1/schema/{catalogue}. They are generated from the same specs as the Go
// validator and describe its Strict rules. What JSON Schema cannot say is only in
// the Go validator: budget min ≤ max, an id naming the record's origin, the body's
// size in bytes, and the encoding rules of the canonical form (valid UTF-8 without
// lone surrogates, no repeated member names, integers below 2^53, nesting depth).
// Formats are meant to be asserted ("format": "date", "date-time").
//
// The generated documents are also kept in schema/jsonschema/ for reading; a test
// checks they are current (go test ./schema -run TestJSONSchemaFiles -update).

// SchemaIDPrefix begins the $id of each catalogue's JSON Schema.
const SchemaIDPrefix = "urn:liandong:schema:"

var schemaDocs = sync.OnceValues(func() (map[string][]byte, error) {
	docs := make(map[string][]byte, len(Catalogues))
	for _, c := range Catalogues {
		b, err := marshalSchema(recordSchema(c, bodySpecs[c]))
		if err != nil {
			return nil, fmt.Errorf("generate JSON Schema of %s: %w", c, err)
		}
		docs[c] = b
	}
	return docs, nil
})

// JSONSchema returns the JSON Schema of a record of the catalogue, indented, ending
// in a newline. The caller may modify the returned slice.
func JSONSchema(catalogue string) ([]byte, error) {
	docs, err := schemaDocs()
	if err != nil {
		return nil, err
	}
	b, ok := docs[catalogue]
	if !ok {
		return nil, fmt.Errorf("json schema: %w %q", ErrUnknownCatalogue, catalogue)
	}
	return bytes.Clone(b), nil
}

// jsObj is a JSON object that keeps its members in order, for readable output.
type jsObj []jsKV

type jsKV struct {
	k string
	v any
}

func (o jsObj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, kv := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(kv.k)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		v, err := marshalNoEscape(kv.v)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func marshalSchema(o jsObj) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(o); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var catalogueTitles = map[string]string{
	CatalogueSupply: "科技成果供给清单 supply record",
	CatalogueNeed:   "产业技术需求清单 need record",
	CatalogueExpert: "专家库 expert record",
}

func recordSchema(catalogue string, body *spec) jsObj {
	// Members that may be absent may also be null, as the server reads them.
	stringOrNull := []string{"string", "null"}
	optional := func(title, pattern string) jsObj {
		return jsObj{{"title", title}, {"type", stringOrNull}, {"pattern", "^(?:" + pattern[1:len(pattern)-1] + ")?$"}}
	}
	dateTime := jsObj{{"type", stringOrNull}, {"format", "date-time"}}
	props := jsObj{
		{"id", optional("记录标识 record id, <origin>:<key>; absent when creating", idFormat.pattern)},
		{"catalogue", jsObj{{"const", catalogue}}},
		{"origin", jsObj{{"title", "所属中心 origin centre"}, {"type", "string"}, {"pattern", centreFormat.pattern}}},
		{"version", jsObj{{"type", "integer"}, {"minimum", 1}, {"maximum", maxSafeInteger - 1}}},
		{"visibility", jsObj{{"enum", []string{VisibilityPrivate, VisibilityFederation, VisibilityPublic}}}},
		{"schema", jsObj{{"title", "body schema version; absent or 0 for the current one"}, {"type", "integer"}, {"minimum", 0}, {"maximum", CurrentSchema}}},
		{"created_at", jsObj{{"title", "创建时间 when the origin first wrote this id; a record deleted and revived under its id (its version going on from the tombstone's) keeps it: the revival's time is the revived version's updated_at"}, {"type", stringOrNull}, {"format", "date-time"}}},
		{"updated_at", dateTime},
		{"expires_at", dateTime},
		{"deleted", jsObj{{"title", "tombstone"}, {"type", []string{"boolean", "null"}}}},
		{"broker", optional("centre that brokers contact", centreFormat.pattern)},
		{"body", jsObj{{"type", []string{"object", "null"}}}},
	}
	return jsObj{
		{"$schema", "https://json-schema.org/draft/2020-12/schema"},
		{"$id", SchemaIDPrefix + catalogue},
		{"title", catalogueTitles[catalogue]},
		{"description", "A liandong record envelope with its " + catalogue + " body, as written at the origin centre. " +
			"Lengths count characters. Records from other centres may carry codes and body members added later. " +
			"Personal data (contact, inventors) never leaves the origin centre."},
		{"type", "object"},
		{"required", []string{"catalogue", "origin", "version", "visibility"}},
		{"properties", props},
		// A tombstone may have no body; any other record must have a valid one.
		{"if", jsObj{{"required", []string{"deleted"}}, {"properties", jsObj{{"deleted", jsObj{{"const", true}}}}}}},
		{"else", jsObj{{"required", []string{"body"}}, {"properties", jsObj{{"body", jsObj{{"$ref", "#/$defs/body"}}}}}}},
		{"$defs", jsObj{{"body", specSchema(body)}}},
	}
}

// specSchema renders s as JSON Schema, with the Strict rules.
func specSchema(s *spec) jsObj {
	var o jsObj
	if s.title != "" {
		o = append(o, jsKV{"title", s.title})
	}
	switch s.kind {
	case sString:
		o = append(o, jsKV{"type", "string"})
		if s.maxLen > 0 {
			o = append(o, jsKV{"maxLength", s.maxLen})
		}
		switch {
		case s.nonBlank && s.format != nil:
			panic("schema: a spec has both nonBlank and a format") // one pattern only
		case s.nonBlank:
			o = append(o, jsKV{"minLength", 1}, jsKV{"pattern", nonBlankPattern})
		case s.format != nil:
			o = append(o, jsKV{"pattern", s.format.pattern})
			if s.format.jsonFormat != "" {
				o = append(o, jsKV{"format", s.format.jsonFormat})
			}
		}
	case sCode:
		o = append(o, jsKV{"enum", s.enum})
	case sInteger, sNumber:
		if s.kind == sInteger {
			o = append(o, jsKV{"type", "integer"})
		} else {
			o = append(o, jsKV{"type", "number"})
		}
		if s.min != nil {
			o = append(o, jsKV{"minimum", *s.min})
		}
		if s.max != nil {
			o = append(o, jsKV{"maximum", *s.max})
		}
	case sBool:
		o = append(o, jsKV{"type", "boolean"})
	case sArray:
		o = append(o, jsKV{"type", "array"})
		if s.minItems > 0 {
			o = append(o, jsKV{"minItems", s.minItems})
		}
		if s.maxItems > 0 {
			o = append(o, jsKV{"maxItems", s.maxItems})
		}
		if s.unique {
			o = append(o, jsKV{"uniqueItems", true})
		}
		o = append(o, jsKV{"items", specSchema(s.items)})
	case sObject:
		o = append(o, jsKV{"type", "object"})
		var required []string
		var props jsObj
		for _, p := range s.props {
			if p.required {
				required = append(required, p.name)
			}
			props = append(props, jsKV{p.name, specSchema(p.spec)})
		}
		if len(required) > 0 {
			o = append(o, jsKV{"required", required})
		}
		o = append(o, jsKV{"properties", props})
		if s.schemaExtra != nil {
			o = append(o, s.schemaExtra()...)
		}
	}
	return o
}
