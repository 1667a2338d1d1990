package schema

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// PersonalFields names the body members that hold personal data (PIPL): the contact
// block, inventor names, team member lists. They never leave the origin centre, and at
// the origin only tokens with the pii scope see them. They are removed by name from
// the top level of a body, whatever the catalogue and body schema version.
var PersonalFields = []string{"contact", "inventors", "team", "members"}

// ErrBodyNotObject is returned when a record body is neither an object nor absent.
var ErrBodyNotObject = errors.New("record body is not a JSON object")

// StripPersonal returns a copy of r for the federation's signed log: its body without
// personal data, and Broker set to r.Origin, the centre that brokers contact. Every
// other body member is kept byte for byte, in order, including members this build
// does not know. It fails if the body is not a JSON object (or absent).
func StripPersonal(r *Record) (*Record, error) {
	if r == nil {
		return nil, errors.New("strip personal data: no record")
	}
	body, err := stripPersonal(r.Body)
	if err != nil {
		return nil, fmt.Errorf("strip personal data from %s: %w", r.ID, err)
	}
	c := r.Clone()
	c.Body = body
	c.Broker = r.Origin
	return c, nil
}

// StripPersonalCanonical is StripPersonal for a record whose body is canonical
// (AsCanonical's result, as PrepareWrite has it): a body without personal
// members, the common case, is then told by its top-level names alone,
// without the parse into a tree StripPersonal makes. That parse was 1.5 % of
// a write's CPU, repeating the validator's.
func StripPersonalCanonical(r *Record) (*Record, error) {
	if r == nil || isNull(r.Body) || mayHavePersonal(r.Body) {
		return StripPersonal(r)
	}
	c := r.Clone()
	c.Broker = r.Origin
	return c, nil
}

// NamesNoPersonal reports whether body is a compact object that names none
// of PersonalFields at its top level: one StripPersonalCanonical returns
// unchanged, known without the copy it makes.
func NamesNoPersonal(body []byte) bool { return !isNull(body) && !mayHavePersonal(body) }

// mayHavePersonal reports whether a compact object names one of
// PersonalFields at its top level, or cannot be walked as one (so might).
// Names with escapes are not walked, so a name is compared as it is written.
func mayHavePersonal(body []byte) bool {
	found := false
	err := walkMembers(body, func(name []byte, _, _ int) error {
		for _, f := range PersonalFields {
			if string(name) == f {
				found = true
				return errStop
			}
		}
		return nil
	})
	return found || err != nil
}

// RedactContact returns a copy of r with the personal data removed from its body, for
// API reads without the pii scope. It does not set Broker. It fails closed: a body
// that cannot be read is replaced by an empty object.
func RedactContact(r *Record) *Record {
	if r == nil {
		return nil
	}
	c := r.Clone()
	body, err := stripPersonal(r.Body)
	if err != nil {
		body = []byte("{}")
	}
	c.Body = body
	return c
}

// HasPersonal reports whether the body of r holds any of PersonalFields at its top
// level (or cannot be read, so might).
func HasPersonal(r *Record) bool {
	if r == nil || isNull(r.Body) {
		return false
	}
	root, serr := parseTree(r.Body, "body", MaxDepth, nil)
	if serr != nil || root.kind != jObject {
		return true
	}
	for _, m := range root.members {
		if slices.Contains(PersonalFields, m.key) {
			return true
		}
	}
	return false
}

// KeepPersonal returns body with the personal members of prev that body lacks
// added at its end, byte for byte: an update written by a caller that could not
// read them (its read was redacted) and so did not send them must not erase
// them. A personal member body holds, even null, is the caller's own and wins.
// It fails if either body is not a JSON object (or absent).
func KeepPersonal(body, prev []byte) ([]byte, error) {
	if isNull(prev) {
		return body, nil
	}
	old, serr := parseTree(prev, "body", MaxDepth, nil)
	if serr != nil {
		return nil, fmt.Errorf("read previous body: %s at byte %d", serr.msg, serr.offset)
	}
	if old.kind != jObject {
		return nil, ErrBodyNotObject
	}
	var sent []jmember
	if !isNull(body) {
		root, serr := parseTree(body, "body", MaxDepth, nil)
		if serr != nil {
			return nil, fmt.Errorf("read body: %s at byte %d", serr.msg, serr.offset)
		}
		if root.kind != jObject {
			return nil, ErrBodyNotObject
		}
		sent = root.members
	}
	has := func(key string) bool {
		return slices.ContainsFunc(sent, func(m jmember) bool { return m.key == key })
	}
	var out []byte
	for _, m := range old.members {
		if !slices.Contains(PersonalFields, m.key) || has(m.key) {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(body)+len(prev))
			if len(sent) == 0 {
				out = append(out, '{')
			} else {
				// The object without its closing brace; white space after it is
				// dropped with it.
				end := bytes.LastIndexByte(body, '}')
				out = append(append(out, body[:end]...), ',')
			}
		} else {
			out = append(out, ',')
		}
		out = append(out, prev[m.keyStart:m.val.end]...)
	}
	if out == nil {
		return body, nil
	}
	return append(out, '}'), nil
}

// stripPersonal returns a copy of body without its personal members. Members are
// copied from the input as they are; only the white space between them changes.
func stripPersonal(body []byte) ([]byte, error) {
	if isNull(body) {
		return append([]byte(nil), body...), nil
	}
	root, serr := parseTree(body, "body", MaxDepth, nil)
	if serr != nil {
		return nil, fmt.Errorf("read body: %s at byte %d", serr.msg, serr.offset)
	}
	if root.kind != jObject {
		return nil, ErrBodyNotObject
	}
	drop := 0
	for _, m := range root.members {
		if slices.Contains(PersonalFields, m.key) {
			drop++
		}
	}
	if drop == 0 {
		return append([]byte(nil), body...), nil
	}
	out := make([]byte, 0, len(body))
	out = append(out, '{')
	first := true
	for _, m := range root.members {
		if slices.Contains(PersonalFields, m.key) {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		out = append(out, body[m.keyStart:m.val.end]...)
	}
	return append(out, '}'), nil
}
