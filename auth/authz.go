package auth

import (
	"fmt"
	"net/http"

	"liandong/schema"
)

// Action is what a request wants to do.
type Action string

// Actions.
const (
	ActionRead  Action = "read"
	ActionWrite Action = "write" // create, update, delete (tombstone)
	ActionAdmin Action = "admin" // operator endpoints
)

// Authorizer decides requests at one centre's node.
type Authorizer struct {
	Centre         string // this node's centre
	AllowAnonymous bool   // requests without a token may read public records
}

// Decision is the Authorizer's answer.
type Decision struct {
	Allow  bool
	Reason string // why, in words fit for a problem+json detail
	// Redact: strip contact blocks and personal data before returning records.
	Redact bool
	// Status is 401 (no or unusable credentials) or 403 (not allowed) when
	// denied, 0 when allowed.
	Status int
}

func allow(reason string, redact bool) Decision {
	return Decision{Allow: true, Reason: reason, Redact: redact}
}

func deny(status int, format string, args ...any) Decision {
	return Decision{Reason: fmt.Sprintf(format, args...), Redact: true, Status: status}
}

// Authorize decides whether p may do act on rec at this node. rec is nil for
// actions on collections (list, create); then only the principal and centre are
// checked, and the caller must authorize each record it returns (list endpoints
// call Authorize per item, which also gives the per-record Redact).
//
// Rules (see the package documentation for the scopes):
//   - nil or anonymous: read public records if AllowAnonymous; anything else 401.
//   - read needs scope read, or admin when the token was issued by this centre.
//     Federation and public records: any member's token. Private records: only
//     at their origin, with a token the origin issued. Unknown visibilities are
//     treated as private.
//   - Redact is false only with scope pii (or admin) on a token issued by this
//     centre, reading a record whose origin is this centre.
//   - write needs scope write or admin, a token issued by this centre, and (when
//     rec is given) a record whose origin is this centre.
//   - admin needs scope admin on a token issued by this centre.
func (a *Authorizer) Authorize(p *Principal, act Action, rec *schema.Record) Decision {
	if p == nil || p.Anonymous {
		return a.anonymous(act, rec)
	}
	if p.Centre == "" {
		return deny(http.StatusUnauthorized, "token names no issuing centre")
	}
	home := a.Centre != "" && p.Centre == a.Centre
	admin := home && p.Has(ScopeAdmin)
	redact := !(home && (p.Has(ScopePII) || admin) && (rec == nil || rec.Origin == a.Centre))

	switch act {
	case ActionRead:
		if !p.Has(ScopeRead) && !admin {
			return deny(http.StatusForbidden, "token lacks scope read")
		}
		if rec == nil {
			return allow("read", redact)
		}
		switch rec.Visibility {
		case schema.VisibilityPublic, schema.VisibilityFederation:
			return allow("read "+rec.Visibility+" record", redact)
		}
		if rec.Origin != a.Centre {
			return deny(http.StatusForbidden, "record %s is private to %s", rec.ID, rec.Origin)
		}
		if !home {
			return deny(http.StatusForbidden, "record %s is private to %s; a token issued by %s cannot read it", rec.ID, rec.Origin, p.Centre)
		}
		return allow("read private record at its origin", redact)

	case ActionWrite:
		if !home {
			return deny(http.StatusForbidden, "writes act only at the issuing centre's node: token issued by %s, this node is %s", p.Centre, a.Centre)
		}
		if !p.Has(ScopeWrite) && !admin {
			return deny(http.StatusForbidden, "token lacks scope write")
		}
		if rec != nil && rec.Origin != a.Centre {
			return deny(http.StatusForbidden, "record %s belongs to %s; only its origin changes it", rec.ID, rec.Origin)
		}
		return allow("write at this centre", redact)

	case ActionAdmin:
		if !home {
			return deny(http.StatusForbidden, "admin acts only at the issuing centre's node: token issued by %s, this node is %s", p.Centre, a.Centre)
		}
		if !admin {
			return deny(http.StatusForbidden, "token lacks scope admin")
		}
		return allow("admin at this centre", redact)
	}
	return deny(http.StatusForbidden, "unknown action %q", act)
}

func (a *Authorizer) anonymous(act Action, rec *schema.Record) Decision {
	if act != ActionRead {
		return deny(http.StatusUnauthorized, "%s needs a token", act)
	}
	if !a.AllowAnonymous {
		return deny(http.StatusUnauthorized, "this node requires a token")
	}
	if rec != nil && rec.Visibility != schema.VisibilityPublic {
		return deny(http.StatusUnauthorized, "record %s is not public; present a token", rec.ID)
	}
	return allow("anonymous read of public records", true)
}
