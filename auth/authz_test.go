package auth

import (
	"net/http"
	"testing"
	"time"

	"liandong/schema"
)

func TestAuthorize(t *testing.T) {
	rec := func(origin, vis string) *schema.Record {
		return &schema.Record{ID: origin + ":r1", Catalogue: schema.CatalogueSupply, Origin: origin, Version: 1, Visibility: vis}
	}
	tok := func(centre string, scopes ...Scope) *Principal {
		return &Principal{Centre: centre, Subject: "partner", Scopes: scopes}
	}
	var (
		tjPublic   = rec("tianjin", schema.VisibilityPublic)
		tjFed      = rec("tianjin", schema.VisibilityFederation)
		tjPrivate  = rec("tianjin", schema.VisibilityPrivate)
		tjOddVis   = rec("tianjin", "secret")
		hbFed      = rec("hebei", schema.VisibilityFederation)
		hbPublic   = rec("hebei", schema.VisibilityPublic)
		hbPrivate  = rec("hebei", schema.VisibilityPrivate)
		open       = &Authorizer{Centre: "tianjin", AllowAnonymous: true}
		closed     = &Authorizer{Centre: "tianjin"}
		anon       = AnonymousPrincipal()
		allowed    = Decision{Allow: true}
		redacted   = Decision{Allow: true, Redact: true}
		noAuth     = Decision{Status: http.StatusUnauthorized, Redact: true}
		forbidden  = Decision{Status: http.StatusForbidden, Redact: true}
		tjRead     = tok("tianjin", ScopeRead)
		tjReadPII  = tok("tianjin", ScopeRead, ScopePII)
		tjPIIOnly  = tok("tianjin", ScopePII)
		tjWrite    = tok("tianjin", ScopeWrite)
		tjRW       = tok("tianjin", ScopeRead, ScopeWrite)
		tjAdmin    = tok("tianjin", ScopeAdmin)
		hbRead     = tok("hebei", ScopeRead)
		hbReadPII  = tok("hebei", ScopeRead, ScopePII)
		hbAll      = tok("hebei", ScopeRead, ScopePII, ScopeWrite, ScopeAdmin)
		noScopes   = tok("tianjin")
		noIssuer   = &Principal{Subject: "x", Scopes: []Scope{ScopeRead}}
		unknownAct = Action("delete-everything")
	)
	tests := []struct {
		name string
		a    *Authorizer
		p    *Principal
		act  Action
		rec  *schema.Record
		want Decision
	}{
		// No token.
		{"nil principal reads public", open, nil, ActionRead, tjPublic, redacted},
		{"anonymous reads public", open, anon, ActionRead, hbPublic, redacted},
		{"anonymous lists", open, anon, ActionRead, nil, redacted},
		{"anonymous reads federation", open, anon, ActionRead, tjFed, noAuth},
		{"anonymous reads private", open, anon, ActionRead, tjPrivate, noAuth},
		{"anonymous off: public", closed, anon, ActionRead, tjPublic, noAuth},
		{"anonymous off: list", closed, nil, ActionRead, nil, noAuth},
		{"anonymous writes", open, anon, ActionWrite, tjPublic, noAuth},
		{"anonymous creates", open, nil, ActionWrite, nil, noAuth},
		{"anonymous admin", open, anon, ActionAdmin, nil, noAuth},
		{"token without issuer", open, noIssuer, ActionRead, tjPublic, noAuth},

		// Read: federated trust for federation and public records.
		{"own token reads own federation record", closed, tjRead, ActionRead, tjFed, redacted},
		{"own token reads other origin's record", closed, tjRead, ActionRead, hbFed, redacted},
		{"other centre's token reads federation record", closed, hbRead, ActionRead, tjFed, redacted},
		{"other centre's token reads public record", closed, hbRead, ActionRead, hbPublic, redacted},
		{"other centre's token lists", closed, hbRead, ActionRead, nil, redacted},
		{"no scopes", closed, noScopes, ActionRead, tjFed, forbidden},
		{"pii alone does not read", closed, tjPIIOnly, ActionRead, tjFed, forbidden},
		{"write alone does not read", closed, tjWrite, ActionRead, tjFed, forbidden},

		// Read: private records only at the origin with the origin's token.
		{"own token reads own private", closed, tjRead, ActionRead, tjPrivate, redacted},
		{"other centre's token reads private", closed, hbRead, ActionRead, tjPrivate, forbidden},
		{"private record of another origin", closed, tjRead, ActionRead, hbPrivate, forbidden},
		{"unknown visibility treated as private: other token", closed, hbRead, ActionRead, tjOddVis, forbidden},
		{"unknown visibility treated as private: own token", closed, tjRead, ActionRead, tjOddVis, redacted},

		// Redaction: only pii (or admin), own token, own record.
		{"pii, own token, own record", closed, tjReadPII, ActionRead, tjFed, allowed},
		{"pii, own token, own private record", closed, tjReadPII, ActionRead, tjPrivate, allowed},
		{"pii, own token, own public record", closed, tjReadPII, ActionRead, tjPublic, allowed},
		{"pii, own token, list", closed, tjReadPII, ActionRead, nil, allowed},
		{"pii, own token, other origin's record", closed, tjReadPII, ActionRead, hbFed, redacted},
		{"pii, other centre's token", closed, hbReadPII, ActionRead, tjFed, redacted},
		{"pii, other centre's token, its own record", closed, hbReadPII, ActionRead, hbFed, redacted},
		{"admin, own token, own record", closed, tjAdmin, ActionRead, tjFed, allowed},
		{"admin, own token, other origin", closed, tjAdmin, ActionRead, hbFed, redacted},

		// Write: only at the issuing centre, only own records.
		{"write own record", closed, tjWrite, ActionWrite, tjFed, redacted},
		{"write own private record", closed, tjRW, ActionWrite, tjPrivate, redacted},
		{"create", closed, tjWrite, ActionWrite, nil, redacted},
		{"admin writes", closed, tjAdmin, ActionWrite, tjFed, allowed},
		{"write another origin's record", closed, tjWrite, ActionWrite, hbFed, forbidden},
		{"write at another centre", closed, hbAll, ActionWrite, tjFed, forbidden},
		{"create at another centre", closed, hbAll, ActionWrite, nil, forbidden},
		{"write at another centre, own origin's record", closed, hbAll, ActionWrite, hbFed, forbidden},
		{"write without scope", closed, tjReadPII, ActionWrite, tjFed, forbidden},

		// Admin.
		{"admin at own centre", closed, tjAdmin, ActionAdmin, nil, allowed},
		{"admin at another centre", closed, hbAll, ActionAdmin, nil, forbidden},
		{"admin without scope", closed, tjRW, ActionAdmin, nil, forbidden},
		{"admin at another centre reads", closed, tok("hebei", ScopeAdmin), ActionRead, tjFed, forbidden},

		{"unknown action", closed, hbAll, unknownAct, tjFed, forbidden},
		{"unknown action, own centre", closed, tjAdmin, unknownAct, tjFed, forbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.a.Authorize(tc.p, tc.act, tc.rec)
			if got.Allow != tc.want.Allow || got.Redact != tc.want.Redact || got.Status != tc.want.Status {
				t.Fatalf("got %+v, want allow=%v redact=%v status=%d", got, tc.want.Allow, tc.want.Redact, tc.want.Status)
			}
			if got.Reason == "" {
				t.Fatal("no reason given")
			}
		})
	}
}

// TestReadDecisionIgnoresTheRest: whether a read is allowed (and redacted)
// depends on the principal and the record's origin and visibility only.
// Search and matchmaking rely on it to ask once per attribute set, not per hit.
func TestReadDecisionIgnoresTheRest(t *testing.T) {
	principals := []*Principal{
		AnonymousPrincipal(), {Centre: "tianjin", Scopes: []Scope{ScopeRead}}, {Centre: "tianjin", Scopes: []Scope{ScopeRead, ScopePII}},
		{Centre: "tianjin", Scopes: []Scope{ScopeAdmin}}, {Centre: "hebei", Scopes: []Scope{ScopeRead}}, {Centre: "tianjin", Scopes: []Scope{ScopeWrite}}, {},
	}
	variants := []func(origin, vis string) *schema.Record{
		func(o, v string) *schema.Record {
			return &schema.Record{ID: o + ":a", Catalogue: schema.CatalogueSupply, Origin: o, Visibility: v, Version: 1}
		},
		func(o, v string) *schema.Record {
			return &schema.Record{ID: o + ":zz9", Catalogue: schema.CatalogueExpert, Origin: o, Visibility: v, Version: 7, Deleted: true, Broker: "hq",
				UpdatedAt: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), Body: []byte(`{"name":"李某"}`)}
		},
	}
	for _, a := range []*Authorizer{{Centre: "tianjin"}, {Centre: "tianjin", AllowAnonymous: true}} {
		for _, p := range principals {
			for _, origin := range []string{"tianjin", "hebei"} {
				for _, vis := range []string{schema.VisibilityPublic, schema.VisibilityFederation, schema.VisibilityPrivate, "other"} {
					first := a.Authorize(p, ActionRead, variants[0](origin, vis))
					for _, v := range variants[1:] {
						d := a.Authorize(p, ActionRead, v(origin, vis))
						if d.Allow != first.Allow || d.Redact != first.Redact || d.Status != first.Status {
							t.Errorf("principal %+v, %s %s record: %+v, then %+v for another record of the same origin and visibility", p, origin, vis, first, d)
						}
					}
				}
			}
		}
	}
}
