package search

import (
	"bytes"
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

// textFields name textBody's members in the order decodeTextFast numbers them.
var textFields = []string{"title", "summary", "description", "industry", "keywords", "trl", "ip",
	"owner_org", "enterprise", "status", "kind", "challenge", "name", "affiliation", "fields", "bio", "deadline"}

// decodeTextFast is json.Unmarshal(body, b) for a compact body whose strings
// have no escapes, which is what the index reads almost always (a sixth of
// analysing a record went to encoding/json). It reports false, leaving b
// to be decoded again, for anything else. It does not validate the members
// it skips: bodies reach the index from the state file, validated or
// verified canonical on the way in.
func decodeTextFast(body []byte, b *textBody) bool {
	return schema.DecodeMembers(body, textFields, func(field int, v []byte) bool {
		switch field {
		case 0:
			return schema.MemberString(v, &b.Title)
		case 1:
			return schema.MemberString(v, &b.Summary)
		case 2:
			return schema.MemberString(v, &b.Description)
		case 3:
			return schema.MemberString(v, &b.Industry)
		case 4:
			return memberStrings(v, &b.Keywords)
		case 5:
			return schema.MemberInt(v, &b.TRL)
		case 6:
			return json.Unmarshal(v, &b.IP) == nil
		case 7:
			return schema.MemberString(v, &b.OwnerOrg)
		case 8:
			return schema.MemberString(v, &b.Enterprise)
		case 9:
			return schema.MemberString(v, &b.Status)
		case 10:
			return schema.MemberString(v, &b.Kind)
		case 11:
			return json.Unmarshal(v, &b.Challenge) == nil
		case 12:
			return schema.MemberString(v, &b.Name)
		case 13:
			return schema.MemberString(v, &b.Affiliation)
		case 14:
			return memberStrings(v, &b.Fields)
		case 15:
			return schema.MemberString(v, &b.Bio)
		default:
			return schema.MemberString(v, &b.Deadline)
		}
	})
}

// memberStrings sets *out from a compact JSON array of strings without
// escapes; anything else reports false.
func memberStrings(v []byte, out *[]string) bool {
	if len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
		return false
	}
	in := v[1 : len(v)-1]
	list := []string{}
	for len(in) > 0 {
		if in[0] != '"' {
			return false
		}
		// Without escapes (MemberString refuses them) the next quote ends it.
		end := bytes.IndexByte(in[1:], '"')
		if end < 0 {
			return false
		}
		var s string
		if !schema.MemberString(in[:end+2], &s) {
			return false
		}
		list = append(list, s)
		in = in[end+2:]
		if len(in) > 0 {
			if in[0] != ',' || len(in) == 1 {
				return false
			}
			in = in[1:]
		}
	}
	*out = list
	return true
}

// decodeText reads the indexed members of a body, tolerating members of an
// unexpected type (they are skipped, the rest still count).
func decodeText(r *schema.Record) textBody {
	var b textBody
	if decodeTextFast(r.Body, &b) {
		return finishText(r, b)
	}
	// The fast path may have set some members: start again.
	return finishText(r, decodeTextSlow(r.Body))
}

// decodeTextSlow is decodeText's encoding/json path.
func decodeTextSlow(body []byte) textBody {
	var b textBody
	if json.Unmarshal(body, &b) != nil {
		// A member of the wrong type stops encoding/json for the whole struct;
		// decode member by member instead.
		var m map[string]json.RawMessage
		json.Unmarshal(body, &m)
		b = textBody{}
		for k, v := range m {
			one, _ := json.Marshal(map[string]json.RawMessage{k: v})
			var part textBody
			if json.Unmarshal(one, &part) == nil {
				mergeText(&b, &part)
			}
		}
	}
	return b
}

// finishText applies what r's catalogue means to its decoded body b.
func finishText(r *schema.Record, b textBody) textBody {
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
	// expires is ExpiresAt in Unix nanoseconds, 0 when the record has none
	// (see expiresNanos): a need past it is closed (DESIGN), and nothing past
	// it is suggested by matchmaking.
	expires int64
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

// status is the need status a filter compares: a need without one is open
// (schema), as matchmaking and the console take it.
func (a *DocAttrs) status() string {
	if a.Status == "" && a.Catalogue == schema.CatalogueNeed {
		return schema.NeedOpen
	}
	return a.Status
}

// expiredAt reports whether the doc's record has an expiry at or before now
// (Unix nanoseconds), as schema.Record.Expired does.
func (d *Doc) expiredAt(now int64) bool {
	return d.expires != 0 && now >= d.expires
}

// expiresNanos is a Doc's expires for an expiry t: 0 stands for none, so the
// instants that would be 0 (the Unix epoch) or zeroTime (the zero time) are
// kept a nanosecond earlier, or as the earliest time kept.
func expiresNanos(t time.Time) int64 {
	switch n := unixNanos(t); n {
	case 0:
		return -1
	case zeroTime:
		return minTime
	default:
		return n
	}
}

// statusAt is the need status a filter compares at now: a need without a
// status is open (schema), and an open need whose expiry has passed is
// closed, as the design has needs close at expires_at. A "matched" need stays
// matched.
func (d *Doc) statusAt(now int64) string {
	a := d.attrs()
	st := a.status()
	if st == schema.NeedOpen && a.Catalogue == schema.CatalogueNeed && d.expiredAt(now) {
		return schema.NeedClosed
	}
	return st
}

// nowNanos is now in Unix nanoseconds, time.Now() when now is zero.
func nowNanos(now time.Time) int64 {
	if now.IsZero() {
		now = time.Now()
	}
	return unixNanos(now)
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

// analyzeRecord analyzes one record on its own (matchmaking's source record);
// the index analyzes a batch's records straight into its batchWriter
// (batchWriter.addRecord), without a map per record.
func analyzeRecord(r *schema.Record) *analyzed {
	a := &analyzed{}
	texts := recordDoc(r, &a.doc)
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
	analyzeFields(&texts, &a.doc, func(f int, t []byte) {
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
	})
	return a
}

// recordDoc fills d with r's doc but for the field lengths, and returns the
// text of each of r's fields.
func recordDoc(r *schema.Record, d *Doc) [numFields][]string {
	b := decodeText(r)
	*d = Doc{
		ID: r.ID, TRL: b.TRL, updated: unixNanos(r.UpdatedAt),
		DocAttrs: &DocAttrs{Catalogue: r.Catalogue, Origin: r.Origin, Visibility: r.Visibility,
			Industries: industries(&b), Status: b.Status, Kind: b.Kind},
	}
	if r.ExpiresAt != nil {
		d.expires = expiresNanos(*r.ExpiresAt)
	}
	return fieldTexts(&b)
}

// analyzeFields hands every term of texts to emit with its field (the bytes
// are valid only during the call), counting d's field lengths.
func analyzeFields(texts *[numFields][]string, d *Doc, emit func(f int, t []byte)) {
	for f := range numFields {
		for _, s := range texts[f] {
			analyzeInto(s, true, func(t []byte) {
				emit(f, t)
				d.Len[f]++
			})
		}
	}
}
