package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Catalogue names.
const (
	CatalogueSupply = "supply"
	CatalogueNeed   = "need"
	CatalogueExpert = "expert"
)

// Catalogues lists the catalogues this build knows, in a stable order.
var Catalogues = []string{CatalogueSupply, CatalogueNeed, CatalogueExpert}

// Visibility values. A private record never leaves its origin; federation records
// replicate to every member; public records replicate and are also readable anonymously.
const (
	VisibilityPrivate    = "private"
	VisibilityFederation = "federation"
	VisibilityPublic     = "public"
)

// CurrentSchema is the body schema version this build writes and fully understands.
// A record carrying a higher version is stored and relayed byte-for-byte.
const CurrentSchema = 1

// MaxBodyBytes bounds one record body.
const MaxBodyBytes = 64 << 10

// Record is the envelope every catalogue item travels in: through the API, in the
// store, and inside signed log entries. Body is kept as raw JSON so that fields this
// build does not know (from a newer peer) survive storage and relay unchanged.
type Record struct {
	ID         string     `json:"id"`
	Catalogue  string     `json:"catalogue"`
	Origin     string     `json:"origin"`
	Version    uint64     `json:"version"`
	Visibility string     `json:"visibility"`
	Schema     int        `json:"schema"`
	CreatedAt  time.Time  `json:"created_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	Deleted    bool       `json:"deleted,omitempty"`
	// Broker names the centre that brokers contact for this record. It is set on
	// records that leave their origin, whose personal data has been stripped.
	Broker string          `json:"broker,omitempty"`
	Body   json.RawMessage `json:"body"`

	// checkedBody is Body as it was when someone in this process found it
	// canonical (MarkBodyCanonical): the answer kept with the body, so that
	// the walks after it (PrepareWrite, the API's answer) need not ask again.
	// It holds only while Body is that same slice (BodyCanonical).
	checkedBody []byte
}

// Clone returns a deep copy of r, with BodyCanonical's answer.
func (r *Record) Clone() *Record {
	c := *r
	if r.ExpiresAt != nil {
		t := *r.ExpiresAt
		c.ExpiresAt = &t
	}
	c.Body = append(json.RawMessage(nil), r.Body...)
	c.checkedBody = nil
	if r.BodyCanonical() {
		c.checkedBody = c.Body
	}
	return &c
}

// MarkBodyCanonical records that r.Body is canonical (CheckCanonical passed
// on it, or on a document it is a value of), for BodyCanonical. The caller
// must know, not hope: a body marked by mistake is spliced into signed
// entries that every peer refuses. Bodies are never changed in place here;
// one that is replaced loses the mark.
func (r *Record) MarkBodyCanonical() {
	r.checkedBody = r.Body
}

// BodyCanonical reports whether r.Body is the very slice MarkBodyCanonical
// was called on (or Clone copied from one), so known canonical without a
// walk. False means only "not known".
func (r *Record) BodyCanonical() bool {
	return len(r.Body) > 0 && len(r.checkedBody) == len(r.Body) && &r.checkedBody[0] == &r.Body[0]
}

// Expired reports whether the record has an expiry at or before now.
func (r *Record) Expired(now time.Time) bool {
	return r.ExpiresAt != nil && !now.Before(*r.ExpiresAt)
}

// Shared reports whether the record belongs in its origin's signed log.
func (r *Record) Shared() bool {
	return r.Visibility == VisibilityFederation || r.Visibility == VisibilityPublic
}

// ErrBadID is returned for record ids that are not "<origin>:<key>".
var ErrBadID = errors.New("bad record id")

// SplitID splits "<origin>:<key>" into its parts.
func SplitID(id string) (origin, key string, err error) {
	origin, key, ok := strings.Cut(id, ":")
	if !ok || !ValidCentreID(origin) || !validKey(key) {
		return "", "", fmt.Errorf("%w %q: want <centre>:<key>, key of 1-128 letters, digits, '-', '_' or '.'", ErrBadID, id)
	}
	return origin, key, nil
}

// ValidCentreID reports whether s is a well-formed centre id: 1–32 lowercase ASCII
// letters, digits or '-', starting with a letter.
func ValidCentreID(s string) bool {
	if len(s) == 0 || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validKey(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
