package ui

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"liandong/auth"
	"liandong/node"
	"liandong/node/api"
)

// replaying is the tianjin node while it replays its raft log after a restart
// (node.Node.CaughtUp answers ErrReplaying).
type replaying struct{ *node.Node }

func (replaying) CaughtUp() error { return node.ErrReplaying }

// TestSignInWhileReplayingNotSignedIn: while the replica replays its raft log
// the API answers 503 to every /v1 request before looking at the token. The
// sign-in then signs no one in, whatever was pasted (a token that is no token
// at all, a valid one), and says to retry in a moment or use another replica,
// in either language.
func TestSignInWhileReplayingNotSignedIn(t *testing.T) {
	e := newEnv(t)
	good := e.token("tianjin", auth.ScopeRead, auth.ScopeWrite)
	h, err := api.New(api.Options{
		Service:    replaying{e.node},
		Verifier:   &auth.TokenVerifier{Federation: testFederation, Bundle: e.node.Bundle},
		Authorizer: &auth.Authorizer{Centre: "tianjin", AllowAnonymous: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	console, err := New(Options{API: h, Centre: "tianjin", Bundle: e.node.Bundle})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Mount(console, h))
	defer srv.Close()
	e.srv = srv
	for _, c := range []struct{ path, tok, want string }{
		{"/ui/signin", "not-a-token", "此副本尚未就绪"},
		{"/ui/signin", good, "此副本尚未就绪"},
		{"/ui/signin?lang=en", "not-a-token", "This replica is not ready yet"},
	} {
		res := e.post(c.path, url.Values{"token": {c.tok}}, session("")...)
		if ck := res.cookie(sessionCookie); ck != nil || res.StatusCode == http.StatusSeeOther {
			t.Errorf("sign-in with %.12q… while the node replays: %d, session cookie %v (want it not signed in)", c.tok, res.StatusCode, ck != nil)
		}
		res.want(t, http.StatusServiceUnavailable, c.want, `id="signin-form"`)
	}
}

// TestSignInRefusesTokenNotAccepted: a sign-in is made only with a token the
// API verified: one it refuses with 401 is refused with the API's reason; one
// it answers with a success, or with 403 (verified, but without the read
// scope: a write-only token), signs in.
func TestSignInRefusesTokenNotAccepted(t *testing.T) {
	e := newEnv(t)
	res := e.post("/ui/signin", url.Values{"token": {"not-a-token"}}, session("")...)
	if ck := res.cookie(sessionCookie); ck != nil {
		t.Errorf("sign-in with not-a-token: session cookie set")
	}
	res.want(t, http.StatusUnauthorized, "令牌被拒绝")
	for _, scope := range []auth.Scope{auth.ScopeRead, auth.ScopeWrite} {
		res := e.post("/ui/signin", url.Values{"token": {e.token("tianjin", scope)}}, session("")...)
		if res.StatusCode != http.StatusSeeOther || res.cookie(sessionCookie) == nil {
			t.Errorf("sign-in with a %s token: %d, cookie %v", scope, res.StatusCode, res.cookie(sessionCookie) != nil)
		}
	}
}
