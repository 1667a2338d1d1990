package ui

import (
	"bytes"
	"encoding/json"
	"maps"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"liandong/client"
	"liandong/schema"
)

// The record forms. Form controls are named by the JSON path of the value they
// hold ("body.title", "body.budget.min", "expires_at"), which is also how the
// API names a field at fault, so its field errors land next to the controls.
// The console converts what was typed into JSON values and nothing more: every
// rule is checked by the API.

type fieldKind string

const (
	kText     fieldKind = "text"
	kTextarea fieldKind = "textarea"
	kInt      fieldKind = "int"
	kNumber   fieldKind = "number"
	kDate     fieldKind = "date"
	kSelect   fieldKind = "select"
	kChecks   fieldKind = "checks" // several codes → array
	kBool     fieldKind = "bool"
	kList     fieldKind = "list"  // words separated by commas or new lines (one a line on an edit, see listFormat) → array
	kLines    fieldKind = "lines" // one item a line → array
	kIP       fieldKind = "ip"    // "type | number | status" a line → array of objects
)

type option struct{ value, label string }

type fieldSpec struct {
	name     string // JSON path of the value
	label    string // message key
	kind     fieldKind
	options  []option // select and checks; a select also offers "" (not stated)
	required bool     // shown as a hint; the API decides
	hint     string   // message key
}

type sectionSpec struct {
	title  string // message key; "" for the main section
	group  string // JSON path of the object the section fills, errors on it show here
	pii    bool
	fields []fieldSpec
}

func codes(prefix string, values []string) []option {
	out := make([]option, len(values))
	for i, v := range values {
		out[i] = option{v, prefix + v}
	}
	return out
}

func industryOptions() []option {
	out := make([]option, len(schema.Industries))
	for i, in := range schema.Industries {
		out[i] = option{in.Code, "industry:" + in.Code}
	}
	return out
}

var visibilityOptions = codes("vis.", []string{schema.VisibilityFederation, schema.VisibilityPublic, schema.VisibilityPrivate})

func contactSection() sectionSpec {
	return sectionSpec{title: "form.group.contact", group: "body.contact", pii: true, fields: []fieldSpec{
		{name: "body.contact.person", label: "field.contact.person", kind: kText},
		{name: "body.contact.phone", label: "field.contact.phone", kind: kText},
		{name: "body.contact.email", label: "field.contact.email", kind: kText},
	}}
}

// formSpecs are the forms of the catalogues.
var formSpecs = map[string][]sectionSpec{
	schema.CatalogueSupply: {
		{fields: []fieldSpec{
			{name: "body.title", label: "field.title", kind: kText, required: true},
			{name: "body.summary", label: "field.summary", kind: kTextarea, required: true},
			{name: "body.industry", label: "field.industry", kind: kSelect, options: industryOptions(), required: true},
			{name: "body.keywords", label: "field.keywords", kind: kList, hint: "form.list.hint"},
			{name: "body.trl", label: "field.trl", kind: kInt},
			{name: "body.ip", label: "field.ip", kind: kIP, hint: "form.ip.hint"},
			{name: "body.transfer_modes", label: "field.transfer_modes", kind: kChecks, options: codes("mode.", schema.TransferModes)},
			{name: "body.owner_org", label: "field.owner_org", kind: kText},
			{name: "body.disruptive", label: "field.disruptive", kind: kBool},
			{name: "body.inventors", label: "field.inventors", kind: kLines, hint: "form.pii.hint"},
		}},
		contactSection(),
	},
	schema.CatalogueNeed: {
		{fields: []fieldSpec{
			{name: "body.title", label: "field.title", kind: kText, required: true},
			{name: "body.description", label: "field.description", kind: kTextarea, required: true},
			{name: "body.industry", label: "field.industry", kind: kSelect, options: industryOptions(), required: true},
			{name: "body.keywords", label: "field.keywords", kind: kList, hint: "form.list.hint"},
			{name: "body.enterprise", label: "field.enterprise", kind: kText, required: true},
			{name: "body.kind", label: "field.kind", kind: kSelect, options: codes("kind.", schema.NeedKinds)},
			{name: "body.status", label: "field.status", kind: kSelect, options: codes("status.", schema.NeedStatuses)},
			{name: "body.deadline", label: "field.deadline", kind: kDate},
		}},
		{title: "form.group.budget", group: "body.budget", fields: []fieldSpec{
			{name: "body.budget.min", label: "field.budget.min", kind: kNumber},
			{name: "body.budget.max", label: "field.budget.max", kind: kNumber},
			{name: "body.budget.currency", label: "field.budget.currency", kind: kText},
		}},
		{title: "form.group.challenge", group: "body.challenge", fields: []fieldSpec{
			{name: "body.challenge.bounty", label: "field.challenge.bounty", kind: kNumber},
			{name: "body.challenge.targets", label: "field.challenge.targets", kind: kLines, hint: "form.lines.hint"},
			{name: "body.challenge.max_months", label: "field.challenge.max_months", kind: kInt},
		}},
		contactSection(),
	},
	schema.CatalogueExpert: {
		{fields: []fieldSpec{
			{name: "body.name", label: "field.name", kind: kText, required: true},
			{name: "body.title", label: "field.expert.title", kind: kText},
			{name: "body.affiliation", label: "field.affiliation", kind: kText, required: true},
			{name: "body.fields", label: "field.fields", kind: kChecks, options: industryOptions()},
			{name: "body.keywords", label: "field.keywords", kind: kList, hint: "form.list.hint"},
			{name: "body.bio", label: "field.bio", kind: kTextarea},
			{name: "body.roles", label: "field.roles", kind: kChecks, options: codes("role.", schema.ExpertRoles)},
		}},
		contactSection(),
	},
}

// envelopeFields are the envelope members the forms set.
var envelopeFields = []fieldSpec{
	{name: "visibility", label: "form.visibility", kind: kSelect, options: visibilityOptions},
	{name: "expires_at", label: "form.expires_at", kind: kDate},
}

// formValues are the submitted (or loaded) values of a form by control name.
type formValues map[string][]string

func (v formValues) get(name string) string {
	if s := v[name]; len(s) > 0 {
		return s[0]
	}
	return ""
}

// normalizeDigits turns full-width digits and signs, as Chinese input methods
// type them, into ASCII.
func normalizeDigits(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= '０' && r <= '９':
			return '0' + (r - '０')
		case r == '．':
			return '.'
		case r == '－':
			return '-'
		case r == '，':
			return ','
		}
		return r
	}, strings.TrimSpace(s))
}

// listFormat names the form's hidden control that says how its list boxes
// (keywords) are written: listLines on an edit, where a stored list is shown
// one item a line and read back by lines only, so a keyword with a comma or 、
// in it (1,3-丁二烯, 锂、钠离子电池) stays one; absent on a new record's form,
// whose boxes take items separated by commas, 、, semicolons or new lines.
const (
	listFormat = "_list"
	listLines  = "lines"
)

// splitList splits words separated by commas (ASCII or full-width), 、, ; or new lines.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == '，' || r == '、' || r == ';' || r == '；' || r == '\n' || r == '\r'
	}) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func splitLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// jsonValue converts what was typed in one control to its JSON value; ok is
// false when the control was left empty. A number that does not parse is sent
// as the string typed, for the API to refuse with its own message.
func jsonValue(f fieldSpec, v formValues) (any, bool) {
	raw := v.get(f.name)
	switch f.kind {
	case kBool:
		return raw != "", true
	case kChecks:
		var out []string
		for _, o := range f.options {
			if slices.Contains(v[f.name], o.value) {
				out = append(out, o.value)
			}
		}
		return out, len(out) > 0
	case kList:
		out := splitList(raw)
		if v.get(listFormat) == listLines {
			out = splitLines(raw)
		}
		return out, len(out) > 0
	case kLines:
		out := splitLines(raw)
		return out, len(out) > 0
	case kIP:
		out := ipRights(raw, nil)
		return out, len(out) > 0
	case kInt:
		s := normalizeDigits(raw)
		if s == "" {
			return nil, false
		}
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, true
		}
		return raw, true
	case kNumber:
		s := strings.ReplaceAll(normalizeDigits(raw), ",", "")
		if s == "" {
			return nil, false
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil && !math.IsInf(f, 0) && !math.IsNaN(f) {
			return json.Number(s), true
		}
		return raw, true
	}
	s := strings.TrimSpace(raw)
	if f.kind == kTextarea {
		s = strings.ReplaceAll(s, "\r\n", "\n") // as a browser submits line breaks
	}
	return s, s != ""
}

// buildBody applies the form's body values to base (the record's current body
// on an edit, nil for a new record) and returns the result. Only the members
// the form has controls for are set, or removed when left empty; everything
// else is kept as stored, at any depth: members the form does not show, inside
// the objects it fills in part (budget, challenge, contact) too. Such an object
// is dropped only when nothing is left in it, but for one holding personal
// data (schema.PersonalFields: contact): when every control of its section
// that showed a stored value was cleared, and none has one, the whole object
// goes, the members the form does not show with it: a person who asks for
// their details to be erased is erased.
func buildBody(sections []sectionSpec, v formValues, base json.RawMessage) (json.RawMessage, error) {
	body, err := decodeBody(base)
	if err != nil {
		return nil, err
	}
	for _, sec := range sections {
		if top, ok := personalGroup(sec); ok && personalCleared(sec, v, body[top]) {
			delete(body, top)
			continue
		}
		for _, f := range sec.fields {
			path := strings.Split(strings.TrimPrefix(f.name, "body."), ".")
			parent, key := body, path[0]
			var wasEmpty bool
			if len(path) == 2 {
				stored, present := body[path[0]]
				obj, isObj := stored.(map[string]any)
				switch {
				case isObj:
					wasEmpty = len(obj) == 0
				case present:
					if _, typed := jsonValue(f, v); !typed {
						// Not an object: the form could not show it, and
						// nothing was typed to replace it.
						continue
					}
					obj = map[string]any{}
				default:
					obj = map[string]any{}
				}
				parent, key = obj, path[1]
			}
			old, had := parent[key]
			if val, ok := fieldValue(f, v, old, had); ok {
				parent[key] = val
			} else {
				delete(parent, key)
			}
			if len(path) == 2 {
				if len(parent) == 0 && !wasEmpty {
					delete(body, path[0])
				} else {
					body[path[0]] = parent
				}
			}
		}
	}
	return marshal(body)
}

// personalGroup returns the body member a section fills when it is an object
// holding personal data.
func personalGroup(sec sectionSpec) (string, bool) {
	top, ok := strings.CutPrefix(sec.group, "body.")
	if !ok || strings.Contains(top, ".") || !slices.Contains(schema.PersonalFields, top) {
		return "", false
	}
	return top, true
}

// personalCleared reports whether every control of a section was submitted
// empty while at least one of them showed a member of stored, the object the
// section fills: staff cleared the personal data it holds.
func personalCleared(sec sectionSpec, v formValues, stored any) bool {
	obj, ok := stored.(map[string]any)
	if !ok {
		return false
	}
	shown := false
	for _, f := range sec.fields {
		if _, typed := jsonValue(f, v); typed && (f.kind != kBool || v.get(f.name) != "") {
			return false
		}
		key := f.name[strings.LastIndexByte(f.name, '.')+1:]
		if val, had := obj[key]; had && strings.TrimSpace(strings.Join(formText(f, val), "")) != "" {
			shown = true
		}
	}
	return shown
}

// unshownMembers lists the members of stored, the object a section fills,
// that the section has no control for, by name, their values as text.
func unshownMembers(sec sectionSpec, stored any) []kv {
	obj, _ := stored.(map[string]any)
	var out []kv
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.ContainsFunc(sec.fields, func(f fieldSpec) bool { return f.name == sec.group+"."+k }) {
			out = append(out, kv{Label: k, Value: textOf(obj[k])})
		}
	}
	return out
}

// decodeBody decodes a stored body, numbers kept as they were written.
func decodeBody(raw json.RawMessage) (map[string]any, error) {
	body := map[string]any{}
	if b := bytes.TrimSpace(raw); len(b) > 0 && !bytes.Equal(b, []byte("null")) {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			return nil, err
		}
	}
	return body, nil
}

// fieldValue is the value a control sets: old is the stored value (had says
// whether there is one). ok false removes the member.
func fieldValue(f fieldSpec, v formValues, old any, had bool) (any, bool) {
	if f.kind == kBool && v.get(f.name) == "" && !had {
		// An unticked box says nothing about a flag the record never had.
		return nil, false
	}
	if had && f.kind != kBool && unchanged(f, v, old) {
		// As the form showed it: the stored value, even where the form's
		// text differs from it (spaces around, line breaks, order of boxes).
		return old, true
	}
	if f.kind == kIP {
		out := ipRights(v.get(f.name), old)
		return out, len(out) > 0
	}
	if f.kind == kChecks {
		// A stored code the form does not offer is shown ticked (see
		// renderField): still ticked, it is kept, after the offered ones.
		out, _ := jsonValue(f, v)
		codes, _ := out.([]string)
		vals := make([]any, 0, len(codes))
		seen := map[string]bool{}
		for _, c := range codes {
			vals, seen[c] = append(vals, c), true
		}
		stored, _ := old.([]any)
		for _, x := range stored {
			if c := textOf(x); !seen[c] && slices.Contains(v[f.name], c) {
				vals, seen[c] = append(vals, x), true
			}
		}
		return vals, len(vals) > 0
	}
	return jsonValue(f, v)
}

// unchanged reports whether a control was submitted as the edit form showed
// the stored value old: the same text but for line breaks (a browser submits
// CRLF, and none from a single-line input) and the spaces around it, or the
// same boxes checked.
func unchanged(f fieldSpec, v formValues, old any) bool {
	shown := formText(f, old)
	if f.kind == kChecks {
		got := slices.Clone(v[f.name])
		slices.Sort(got)
		slices.Sort(shown)
		return slices.Equal(got, slices.Compact(shown))
	}
	if len(shown) != 1 {
		return false
	}
	norm := func(s string) string { return strings.TrimSpace(strings.ReplaceAll(s, "\r\n", "\n")) }
	if singleLine(f.kind) {
		// An <input> cannot hold a line break: a browser strips CR and LF
		// from its value, so a stored text with one comes back without.
		return norm(stripBreaks(v.get(f.name))) == norm(stripBreaks(shown[0]))
	}
	return norm(v.get(f.name)) == norm(shown[0])
}

// singleLine reports whether a kind of control is an <input> of one line.
func singleLine(k fieldKind) bool {
	return k == kText || k == kInt || k == kNumber || k == kDate
}

var breaks = strings.NewReplacer("\r", "", "\n", "")

// stripBreaks removes CR and LF, as a browser does from an <input>'s value.
func stripBreaks(s string) string { return breaks.Replace(s) }

// The IP rights text box holds one right a line, its columns separated by
// " | ", "-" for one left empty: "patent | ZL 202110345678.9 | granted". A
// line without "|" (or a tab, as pasted from a spreadsheet) is read as words
// separated by spaces: the type, the number, the status last (a second word
// that is a status code is the status, a right without a number).
var ipColumns = []string{"type", "number", "status"}

const ipSep = " | "

// ipLine renders a stored right as its line.
func ipLine(x any) string {
	o, ok := x.(map[string]any)
	if !ok {
		return strings.ReplaceAll(textOf(x), "\n", " ")
	}
	cols := make([]string, len(ipColumns))
	for i, k := range ipColumns {
		cols[i] = strings.Join(strings.Fields(textOf(o[k])), " ")
		if cols[i] == "" {
			cols[i] = "-"
		}
	}
	return strings.Join(cols, ipSep)
}

// parseIPLine reads one line of the IP rights text box: its columns, ""
// for one left empty. Surplus columns go to the status, for the API to refuse.
func parseIPLine(l string) []string {
	cols := make([]string, len(ipColumns))
	if strings.ContainsAny(l, "|｜\t") {
		parts := strings.Split(strings.NewReplacer("｜", "|", "\t", "|").Replace(l), "|")
		if n := len(ipColumns); len(parts) > n {
			parts = append(parts[:n-1], strings.Join(parts[n-1:], "|"))
		}
		for i, p := range parts {
			if p = strings.TrimSpace(p); p != "-" && p != "—" {
				cols[i] = p
			}
		}
		return cols
	}
	words := strings.FieldsFunc(l, func(r rune) bool { return r == ' ' || r == ',' || r == '，' || r == '\u3000' })
	switch n := len(words); {
	case n == 0:
	case n == 1:
		cols[0] = words[0]
	case n == 2 && slices.Contains(schema.IPStatuses, words[1]):
		// "know-how granted": a right without a number.
		cols[0], cols[2] = words[0], words[1]
	case n == 2:
		cols[0], cols[1] = words[0], words[1]
	default:
		// "patent ZL 202110345678.9 granted": the words between the type
		// and the status are the number.
		cols[0], cols[1], cols[2] = words[0], strings.Join(words[1:n-1], " "), words[n-1]
	}
	return cols
}

// ipRights converts the IP rights text box into the body's array. old is the
// stored array on an edit. Each line is paired with the stored right it was
// shown from, so that members of a right the form does not show (country,
// note) stay with that right whatever lines were removed, moved or added:
//
//  1. a line as it was rendered keeps its stored right as it was; the lines
//     left in place (the longest common subsequence of the lines and the
//     stored rights' lines) anchor the rest, a line moved elsewhere keeps
//     its right too;
//  2. a changed line is merged into the one stored right left with its type
//     and number, when exactly one is and no other changed line has them;
//  3. the changed lines left between two anchors are merged into the stored
//     rights left between the same anchors, in order, when there are as many
//     of each there (lines edited in place);
//  4. any other line is a new right: it borrows nothing from a stored one.
func ipRights(raw string, old any) []any {
	lines := splitLines(raw)
	stored, _ := old.([]any)
	shown := make([]string, len(stored))
	for j, x := range stored {
		shown[j] = ipLine(x)
	}
	out := make([]any, len(lines))
	pair := make([]int, len(lines)) // the stored right of line i, or -1
	used := make([]bool, len(stored))
	for i := range pair {
		pair[i] = -1
	}
	// 1. Lines as rendered: in place, then moved.
	anchors, diffed := commonLines(lines, shown)
	for _, a := range anchors {
		pair[a[0]], used[a[1]] = a[1], true
	}
	// Indexed rather than scanned: a form of thousands of lines against as
	// many stored rights would otherwise cost lines × rights comparisons.
	unpairedShown := map[string][]int{}
	for j := range stored {
		if !used[j] {
			unpairedShown[shown[j]] = append(unpairedShown[shown[j]], j)
		}
	}
	for i, l := range lines {
		if pair[i] >= 0 {
			continue
		}
		if js := unpairedShown[l]; len(js) > 0 {
			pair[i], used[js[0]] = js[0], true
			unpairedShown[l] = js[1:]
		}
	}
	for i, j := range pair {
		if j >= 0 {
			out[i] = stored[j]
		}
	}
	// 2. Changed lines by type and number.
	cols := make([][]string, len(lines))
	for i, l := range lines {
		if pair[i] < 0 {
			cols[i] = parseIPLine(l)
		}
	}
	key := func(c []string) string {
		return strings.Join(strings.Fields(c[0]), " ") + "\x00" + strings.Join(strings.Fields(c[1]), " ")
	}
	storedByKey := map[string][]int{}
	for j := range stored {
		if o, ok := stored[j].(map[string]any); ok && !used[j] {
			k := key([]string{textOf(o["type"]), textOf(o["number"])})
			storedByKey[k] = append(storedByKey[k], j)
		}
	}
	lineKeys := map[string]int{}
	for i := range lines {
		if pair[i] < 0 {
			lineKeys[key(cols[i])]++
		}
	}
	for i := range lines {
		k := ""
		if pair[i] < 0 {
			k = key(cols[i])
		}
		if pair[i] >= 0 || lineKeys[k] != 1 {
			continue
		}
		// A key is on one line only, so no other line of this step takes
		// its stored rights; two stored rights with the key are ambiguous.
		if js := storedByKey[k]; len(js) == 1 {
			pair[i], used[js[0]] = js[0], true
		}
	}
	// 3. Changed lines in place, between the same anchors.
	if diffed {
		bounds := append(slices.Clip(anchors), [2]int{len(lines), len(stored)})
		li, sj := 0, 0
		for _, b := range bounds {
			var ls, ss []int
			for i := li; i < b[0]; i++ {
				if pair[i] < 0 {
					ls = append(ls, i)
				}
			}
			for j := sj; j < b[1]; j++ {
				if _, ok := stored[j].(map[string]any); ok && !used[j] {
					ss = append(ss, j)
				}
			}
			if len(ls) == len(ss) {
				for n, i := range ls {
					pair[i], used[ss[n]] = ss[n], true
				}
			}
			li, sj = b[0]+1, b[1]+1
		}
	}
	// Merge the changed lines into their rights.
	for i := range lines {
		if out[i] != nil {
			continue
		}
		right := map[string]any{}
		if j := pair[i]; j >= 0 {
			maps.Copy(right, stored[j].(map[string]any))
		}
		for k, col := range cols[i] {
			if col == "" {
				delete(right, ipColumns[k])
			} else {
				right[ipColumns[k]] = col
			}
		}
		out[i] = right
	}
	return out
}

// maxIPCells bounds the table commonLines fills (lines × stored rights).
const maxIPCells = 1 << 20

// commonLines returns a longest common subsequence of a and b as pairs of
// indices (into a, into b), in order; ok is false when the table it needs
// would exceed maxIPCells (no diff was made).
func commonLines(a, b []string) (common [][2]int, ok bool) {
	n, m := len(a), len(b)
	if (n+1)*(m+1) > maxIPCells {
		return nil, false
	}
	// t[i][j] is the length of an LCS of a[i:] and b[j:].
	t := make([][]int32, n+1)
	for i := range t {
		t[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			switch {
			case a[i] == b[j]:
				t[i][j] = t[i+1][j+1] + 1
			case t[i+1][j] >= t[i][j+1]:
				t[i][j] = t[i+1][j]
			default:
				t[i][j] = t[i][j+1]
			}
		}
	}
	var out [][2]int
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case a[i] == b[j]:
			out = append(out, [2]int{i, j})
			i, j = i+1, j+1
		case t[i][j+1] >= t[i+1][j]:
			// On a tie, pass a stored line rather than a submitted one:
			// unchanged lines anchor as late as they can, so an edit of
			// the first of two lines shown alike pairs with the first.
			j++
		default:
			i++
		}
	}
	return out, true
}

// marshal encodes v as JSON without escaping <, > and & (the API stores text as
// it came).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// valuesOf fills a form from a record (for editing).
func valuesOf(sections []sectionSpec, rec *schema.Record) formValues {
	v := formValues{"visibility": {rec.Visibility}, listFormat: {listLines}}
	if rec.ExpiresAt != nil {
		v["expires_at"] = []string{rec.ExpiresAt.In(chinaTime).Format(time.DateOnly)}
	}
	var body map[string]any
	dec := json.NewDecoder(bytes.NewReader(rec.Body))
	dec.UseNumber()
	if dec.Decode(&body) != nil {
		return v
	}
	for _, sec := range sections {
		for _, f := range sec.fields {
			val, ok := lookup(body, strings.TrimPrefix(f.name, "body."))
			if !ok {
				continue
			}
			v[f.name] = formText(f, val)
		}
	}
	return v
}

func lookup(m map[string]any, path string) (any, bool) {
	parts := strings.Split(path, ".")
	var cur any = m
	for _, p := range parts {
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[p]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// formText renders a JSON value as the control's text (or the checked values).
func formText(f fieldSpec, val any) []string {
	arr, isArr := val.([]any)
	switch f.kind {
	case kChecks:
		out := make([]string, 0, len(arr))
		for _, x := range arr {
			out = append(out, textOf(x))
		}
		return out
	case kList, kLines:
		if !isArr {
			return []string{textOf(val)}
		}
		parts := make([]string, 0, len(arr))
		for _, x := range arr {
			parts = append(parts, textOf(x))
		}
		return []string{strings.Join(parts, "\n")}
	case kIP:
		if !isArr {
			return []string{textOf(val)}
		}
		lines := make([]string, 0, len(arr))
		for _, x := range arr {
			lines = append(lines, ipLine(x))
		}
		return []string{strings.Join(lines, "\n")}
	}
	return []string{textOf(val)}
}

// textOf is a JSON value as text: a string as it is, a number as written, true
// as "on", null as "", anything else as JSON.
func textOf(x any) string {
	switch x := x.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		if x {
			return "on"
		}
		return ""
	case nil:
		return ""
	}
	js, _ := marshal(x)
	return string(js)
}

// chinaTime is the time zone dates are entered and shown in (UTC+8, no DST).
var chinaTime = time.FixedZone("CST", 8*3600)

// expiresAt converts the expiry date typed into the envelope's expires_at: the
// end of that day in China. Anything else is sent as typed, for the API to refuse.
func expiresAt(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", false
	}
	if d, err := time.ParseInLocation(time.DateOnly, normalizeDigits(s), chinaTime); err == nil {
		return d.Add(24*time.Hour - time.Second).Format(time.RFC3339), true
	}
	return s, true
}

// fieldErrors maps the API's field errors to the form's controls. Errors on
// paths the form has no control for are returned as general.
func fieldErrors(l string, sections []sectionSpec, errs []client.FieldError) (byField map[string][]string, general []string) {
	known := map[string]bool{"visibility": true, "expires_at": true}
	for _, sec := range sections {
		if sec.group != "" {
			known[sec.group] = true
		}
		for _, f := range sec.fields {
			known[f.name] = true
		}
	}
	byField = map[string][]string{}
	for _, e := range errs {
		msg := e.Message
		if rt := ruleText(l, e.Rule); rt != "" && l == langZH {
			msg = rt + "：" + e.Message
		}
		key := e.Path
		if i := strings.IndexByte(key, '['); i >= 0 {
			key = key[:i]
		}
		for key != "" && !known[key] {
			// body.budget.min → body.budget → body
			i := strings.LastIndexByte(key, '.')
			if i < 0 {
				key = ""
				break
			}
			key = key[:i]
		}
		if key == "" {
			p := e.Path
			if p == "" {
				general = append(general, msg)
			} else {
				general = append(general, p+": "+msg)
			}
			continue
		}
		byField[key] = append(byField[key], msg)
	}
	return byField, general
}

// formField is one control as the template renders it.
type formField struct {
	Name, Label, Kind, Hint string
	Value                   string
	Options                 []formOption
	Required                bool
	Errors                  []string
}

type formOption struct {
	Value, Label string
	Selected     bool
}

type formSection struct {
	Title  string
	Group  string
	PII    bool
	Errors []string
	Fields []formField
	// Unshown are the stored members of a personal object the section has
	// no control for, UnshownNote says how to erase them.
	Unshown     []kv
	UnshownNote string
}

// unshownPersonal lists, in the sections of an edit form, the members of the
// stored body's personal objects that they have no control for.
func unshownPersonal(p *page, sections []sectionSpec, stored json.RawMessage, out []formSection) {
	body, err := decodeBody(stored)
	if err != nil {
		return
	}
	for i, sec := range sections {
		top, ok := personalGroup(sec)
		if !ok || i >= len(out) {
			continue
		}
		if out[i].Unshown = unshownMembers(sec, body[top]); out[i].Unshown == nil {
			continue
		}
		out[i].UnshownNote = p.T("form.pii.unshown.only")
		if personalCleared(sec, formValues{}, body[top]) {
			// A control shows a stored value: clearing them all erases.
			out[i].UnshownNote = p.T("form.pii.unshown")
		}
	}
}

// render prepares the sections of a form for the template.
func renderForm(p *page, sections []sectionSpec, v formValues, errs map[string][]string) []formSection {
	out := make([]formSection, 0, len(sections))
	for _, sec := range sections {
		fs := formSection{Group: sec.group, PII: sec.pii, Errors: errs[sec.group]}
		if sec.title != "" {
			fs.Title = p.T(sec.title)
		}
		for _, f := range sec.fields {
			fs.Fields = append(fs.Fields, renderField(p, f, v, errs))
		}
		out = append(out, fs)
	}
	return out
}

func renderField(p *page, f fieldSpec, v formValues, errs map[string][]string) formField {
	ff := formField{Name: f.name, Label: p.T(f.label), Kind: string(f.kind), Value: v.get(f.name), Required: f.required, Errors: errs[f.name]}
	if f.hint != "" {
		ff.Hint = p.T(f.hint)
	}
	if f.kind == kList && v.get(listFormat) == listLines {
		ff.Hint = p.T("form.list.lines.hint")
	}
	for _, o := range f.options {
		ff.Options = append(ff.Options, formOption{Value: o.value, Label: p.optionLabel(o.label), Selected: slices.Contains(v[f.name], o.value)})
	}
	if f.kind == kSelect || f.kind == kChecks {
		// A stored code the form does not offer (a newer build's, say) is
		// offered too, selected, so that saving keeps it.
		for _, val := range v[f.name] {
			if val != "" && !slices.ContainsFunc(ff.Options, func(o formOption) bool { return o.Value == val }) {
				ff.Options = append(ff.Options, formOption{Value: val, Label: val, Selected: true})
			}
		}
	}
	return ff
}

// formFromRequest reads the submitted values of a form.
func formFromRequest(form url.Values) formValues {
	v := formValues{}
	for k, vals := range form {
		if k == "body" || strings.HasPrefix(k, "body.") || k == "visibility" || k == "expires_at" || k == listFormat {
			v[k] = vals
		}
	}
	return v
}
