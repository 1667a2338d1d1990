package transfer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"liandong/schema"
)

// Over returns the record importing r writes over old, the stored record of
// its id (nil when there is none: r's record as read). A table says only what
// it has columns for, so what it cannot say is kept from old rather than
// erased: body members of the columns the file lacks, IP rights other than
// patents with a number and the details (status) of the patents its 专利号
// cell still lists, the visibility when the row does not give one, and the
// expiry when the file has no column for it. A column the file has decides,
// an empty cell removing the member. A JSON Lines row is a whole envelope,
// but for a visibility it does not give. Exporting records and importing the
// file again so changes nothing.
func (r *Row) Over(old *schema.Record) (*schema.Record, error) {
	rec := r.Record
	if rec == nil || old == nil || old.Deleted {
		return rec, nil
	}
	out := rec.Clone()
	if !r.saidVisibility {
		out.Visibility = old.Visibility
	}
	if r.covered == nil { // a whole envelope
		return out, nil
	}
	if !r.covered[fieldExpires] {
		out.ExpiresAt = old.ExpiresAt
	}
	if out.Catalogue != old.Catalogue {
		return out, nil // nothing of old's body fits; the node refuses the move
	}
	body, err := mergeBody(r.covered, r.defaulted, rec.Body, old.Body)
	if err != nil {
		return nil, fmt.Errorf("keep what the file does not say of %s: %w", old.ID, err)
	}
	out.Body = body
	return out, nil
}

// ipPatent is the IP type the 专利号 column lists.
const ipPatent = "patent"

// nested are the body members whose own members have columns of their own.
var nested = []string{"contact", "budget", "challenge"}

// mergeBody is body (a row's) with old's members added where no column of
// the file covers them: a member the file covers is the row's, present or
// not, but for one old holds empty ("", [], {}, null), which an export writes
// as an empty cell. A member reading defaulted is old's, or absent.
func mergeBody(covered, defaulted map[string]bool, body, old json.RawMessage) (json.RawMessage, error) {
	row, err := decodeObject(body)
	if err != nil {
		return nil, err
	}
	was, err := decodeObject(old)
	if err != nil {
		return nil, err
	}
	for name, v := range was {
		switch {
		case name == "ip":
			if ip := mergeIP(covered[fieldPatents], row["ip"], v); ip != nil {
				row["ip"] = ip
			} else {
				delete(row, "ip")
			}
		case slices.Contains(nested, name):
			sub, _ := v.(map[string]any)
			mine, _ := row[name].(map[string]any)
			if mine == nil {
				mine = map[string]any{}
			}
			for k, sv := range sub {
				if _, said := mine[k]; !covered[name+"."+k] || !said && isEmpty(sv) {
					mine[k] = sv
				}
			}
			switch {
			case len(mine) > 0:
				row[name] = mine
			case isEmpty(v):
				row[name] = v // {} or null, as it was
			default:
				delete(row, name) // every member cleared
			}
		case !covered["body."+name]:
			row[name] = v
		default:
			if _, said := row[name]; !said && isEmpty(v) {
				row[name] = v
			}
		}
	}
	for f := range defaulted {
		parent, member, _ := strings.Cut(f, ".")
		mine, _ := row[parent].(map[string]any)
		if mine == nil {
			continue
		}
		delete(mine, member)
		if sub, ok := was[parent].(map[string]any); ok {
			if v, ok := sub[member]; ok {
				mine[member] = v
			}
		}
	}
	if b, ok := row["budget"].(map[string]any); ok && b["min"] == nil && b["max"] == nil {
		// Both bounds cleared: a currency alone is no budget.
		if ob, _ := was["budget"].(map[string]any); ob["min"] != nil || ob["max"] != nil {
			delete(row, "budget")
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(row); err != nil {
		return nil, err
	}
	return json.RawMessage(bytes.TrimSpace(buf.Bytes())), nil
}

// isEmpty reports whether a JSON value is one an export writes as an empty
// cell: null, "", [] or {}.
func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// mergeIP is the IP rights of a row over old's. Only patents with a number
// have a column (专利号), which lists their numbers: old's other rights are
// kept, in their places, as are the details of a patent the cell still lists;
// a patent the cell no longer lists is dropped, and a number old lacks is
// added as a patent. Without the column, old's rights are kept as they were.
func mergeIP(covered bool, row, old any) any {
	was, _ := old.([]any)
	if !covered {
		if was == nil {
			return old // as it was (null)
		}
		return was
	}
	listed := map[string]bool{}
	var order []string
	if ips, ok := row.([]any); ok {
		for _, ip := range ips {
			if n := patentNumber(ip); n != "" && !listed[n] {
				listed[n] = true
				order = append(order, n)
			}
		}
	}
	out := []any{}
	kept := map[string]bool{}
	for _, ip := range was {
		n := patentNumber(ip)
		switch {
		case n == "":
			out = append(out, ip) // not a patent with a number: no column says it
		case listed[n]:
			kept[n] = true
			out = append(out, ip)
		}
	}
	for _, n := range order {
		if !kept[n] {
			out = append(out, map[string]any{"type": ipPatent, "number": n})
		}
	}
	if len(out) == 0 && was == nil {
		return nil
	}
	return out
}

// patentNumber is the number of an IP right that is a patent (what the
// 专利号 column lists), or "".
func patentNumber(ip any) string {
	m, ok := ip.(map[string]any)
	if !ok || m["type"] != ipPatent {
		return ""
	}
	n, _ := m["number"].(string)
	return strings.TrimSpace(n)
}

func decodeObject(raw json.RawMessage) (map[string]any, error) {
	m := map[string]any{}
	if len(raw) == 0 {
		return m, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}
