package search

import (
	"encoding/json"
	"math"
	"time"

	"liandong/schema"
)

// Fields of a document, weighted in BM25F.
const (
	fieldTitle    = iota // title of a supply item or need
	fieldKeywords        // keywords
	fieldText            // summary, description, bio, challenge targets
	fieldOrg             // owner_org, enterprise, affiliation
	fieldName            // an expert's name
	fieldMeta            // industry names, an expert's professional title, 揭榜挂帅, patent numbers
	numFields
)

// FieldNames name the fields in match reasons.
var FieldNames = [numFields]string{"title", "keywords", "text", "organisation", "name", "industry"}

// BM25F parameters: per-field weight and length normalisation, and k1.
var (
	fieldWeight = [numFields]float64{3, 2.5, 1, 1.5, 2, 0.5}
	fieldB      = [numFields]float64{0.75, 0.5, 0.75, 0.5, 0.3, 0.3}
)

const k1 = 1.2

// textBody is every body member the index reads, over all catalogues, so a body
// of an unknown catalogue still yields what it has in common with the known ones.
type textBody struct {
	Title       string            `json:"title"`
	Summary     string            `json:"summary"`
	Description string            `json:"description"`
	Industry    string            `json:"industry"`
	Keywords    []string          `json:"keywords"`
	TRL         int               `json:"trl"`
	IP          []schema.IPRight  `json:"ip"`
	OwnerOrg    string            `json:"owner_org"`
	Enterprise  string            `json:"enterprise"`
	Status      string            `json:"status"`
	Kind        string            `json:"kind"`
	Challenge   *schema.Challenge `json:"challenge"`
	Name        string            `json:"name"`
	ProfTitle   string            `json:"-"`
	Affiliation string            `json:"affiliation"`
	Fields      []string          `json:"fields"`
	Bio         string            `json:"bio"`
	Deadline    string            `json:"deadline"`
}

// decodeText reads the indexed members of a body, tolerating members of an
// unexpected type (they are skipped, the rest still count).
func decodeText(r *schema.Record) textBody {
	var b textBody
	if json.Unmarshal(r.Body, &b) != nil {
		// A member of the wrong type stops encoding/json for the whole struct;
		// decode member by member instead.
		var m map[string]json.RawMessage
		json.Unmarshal(r.Body, &m)
		b = textBody{}
		for k, v := range m {
			one, _ := json.Marshal(map[string]json.RawMessage{k: v})
			var part textBody
			if json.Unmarshal(one, &part) == nil {
				mergeText(&b, &part)
			}
		}
	}
	if r.Catalogue == schema.CatalogueExpert {
		// An expert's title is a professional title (教授), not a headline.
		b.ProfTitle, b.Title = b.Title, ""
	}
	return b
}

func mergeText(dst, src *textBody) {
	if src.Title != "" {
		dst.Title = src.Title
	}
	if src.Summary != "" {
		dst.Summary = src.Summary
	}
	if src.Description != "" {
		dst.Description = src.Description
	}
	if src.Industry != "" {
		dst.Industry = src.Industry
	}
	if src.Keywords != nil {
		dst.Keywords = src.Keywords
	}
	if src.TRL != 0 {
		dst.TRL = src.TRL
	}
	if src.IP != nil {
		dst.IP = src.IP
	}
	if src.OwnerOrg != "" {
		dst.OwnerOrg = src.OwnerOrg
	}
	if src.Enterprise != "" {
		dst.Enterprise = src.Enterprise
	}
	if src.Status != "" {
		dst.Status = src.Status
	}
	if src.Kind != "" {
		dst.Kind = src.Kind
	}
	if src.Challenge != nil {
		dst.Challenge = src.Challenge
	}
	if src.Name != "" {
		dst.Name = src.Name
	}
	if src.Affiliation != "" {
		dst.Affiliation = src.Affiliation
	}
	if src.Fields != nil {
		dst.Fields = src.Fields
	}
	if src.Bio != "" {
		dst.Bio = src.Bio
	}
	if src.Deadline != "" {
		dst.Deadline = src.Deadline
	}
}

// fieldTexts lists the text of each field of a record.
func fieldTexts(b *textBody) [numFields][]string {
	var f [numFields][]string
	f[fieldTitle] = []string{b.Title}
	f[fieldKeywords] = b.Keywords
	f[fieldText] = []string{b.Summary, b.Description, b.Bio}
	if b.Challenge != nil {
		f[fieldText] = append(f[fieldText], b.Challenge.Targets...)
	}
	f[fieldOrg] = []string{b.OwnerOrg, b.Enterprise, b.Affiliation}
	f[fieldName] = []string{b.Name}
	for _, code := range industries(b) {
		if in, ok := schema.LookupIndustry(code); ok {
			f[fieldMeta] = append(f[fieldMeta], in.ZH, in.EN)
		}
	}
	f[fieldMeta] = append(f[fieldMeta], b.ProfTitle)
	if b.Kind == schema.NeedKindChallenge {
		f[fieldMeta] = append(f[fieldMeta], "揭榜挂帅 challenge")
	}
	for _, ip := range b.IP {
		f[fieldMeta] = append(f[fieldMeta], ip.Number)
	}
	return f
}

// industries lists a body's industry codes: its industry, then an expert's fields.
func industries(b *textBody) []string {
	var out []string
	if b.Industry != "" {
		out = append(out, b.Industry)
	}
	for _, f := range b.Fields {
		if f != "" && f != b.Industry {
			out = append(out, f)
		}
	}
	return out
}

// Doc is what the index keeps of a record besides its terms: enough to filter
// and authorize hits without reading the records. Every indexed record's Doc
// stays in memory, so it is kept small: the attributes many records share
// (catalogue, origin, visibility, industries, status, kind) are one shared
// DocAttrs, and the update time is kept as nanoseconds. A Doc is never
// modified once indexed; callers must not modify it either.
type Doc struct {
	ID string
	*DocAttrs
	TRL int
	// updated is UpdatedAt in Unix nanoseconds (see UpdatedAt).
	updated int64
	// Len is the number of terms in each field.
	Len [numFields]uint32
}

// DocAttrs are the attributes of a Doc that many docs share.
type DocAttrs struct {
	Catalogue  string
	Origin     string
	Visibility string
	Industries []string
	Status     string
	Kind       string
}

// noAttrs are the attributes of a doc made without any.
var noAttrs = &DocAttrs{}

// Nanoseconds of the zero time and the bounds of the times a Doc keeps
// exactly (years 1678 to 2262); times outside them are kept as the bound.
const (
	zeroTime = math.MinInt64
	minTime  = math.MinInt64 + 1
)

func unixNanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return zeroTime
	case t.Before(time.Unix(0, minTime)):
		return minTime
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// UpdatedAt returns the record's update time, in UTC.
func (d *Doc) UpdatedAt() time.Time {
	if d.updated == zeroTime {
		return time.Time{}
	}
	return time.Unix(0, d.updated).UTC()
}

// Record returns a record envelope with the doc's id, catalogue, origin,
// visibility and update time and no body: what an authorizer needs to decide
// whether a caller may read it.
func (d *Doc) Record() *schema.Record {
	a := d.attrs()
	return &schema.Record{ID: d.ID, Catalogue: a.Catalogue, Origin: a.Origin, Visibility: a.Visibility, UpdatedAt: d.UpdatedAt()}
}

func (d *Doc) attrs() *DocAttrs {
	if d.DocAttrs == nil {
		return noAttrs
	}
	return d.DocAttrs
}

// analyzed is a record turned into a doc and its term frequencies per field.
type analyzed struct {
	doc   Doc
	terms map[string]*[numFields]uint32
}

func analyzeRecord(r *schema.Record) *analyzed {
	b := decodeText(r)
	a := &analyzed{
		doc: Doc{
			ID: r.ID, TRL: b.TRL, updated: unixNanos(r.UpdatedAt),
			DocAttrs: &DocAttrs{Catalogue: r.Catalogue, Origin: r.Origin, Visibility: r.Visibility,
				Industries: industries(&b), Status: b.Status, Kind: b.Kind},
		},
	}
	texts := fieldTexts(&b)
	// A Chinese text has up to a bigram for every three bytes, most often
	// half as many distinct ones; their frequencies are allocated in chunks.
	size := 0
	for f := range numFields {
		for _, s := range texts[f] {
			size += len(s)
		}
	}
	a.terms = make(map[string]*[numFields]uint32, min(size/6+8, 2048))
	var chunk [][numFields]uint32
	for f := range numFields {
		for _, s := range texts[f] {
			analyzeInto(s, func(t []byte) {
				tf := a.terms[string(t)]
				if tf == nil {
					if len(chunk) == cap(chunk) {
						chunk = make([][numFields]uint32, 0, 64)
					}
					chunk = chunk[:len(chunk)+1]
					tf = &chunk[len(chunk)-1]
					a.terms[string(t)] = tf
				}
				tf[f]++
				a.doc.Len[f]++
			})
		}
	}
	return a
}
