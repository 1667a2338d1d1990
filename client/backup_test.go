package client

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBackupRedirectKeepsTLS: a follower reached over https redirects to its
// leader; if the leader's recorded URL is plain http (a TLS rollout half done,
// a typo in advertise_http), the admin token must not follow it in clear.
func TestBackupRedirectKeepsTLS(t *testing.T) {
	leaked := make(chan string, 1)
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case leaked <- r.Header.Get("Authorization"):
		default:
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer plain.Close()
	follower := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Location", plain.URL+r.URL.Path)
		w.WriteHeader(http.StatusTemporaryRedirect)
	}))
	defer follower.Close()
	c := New(follower.URL, "admin-secret")
	c.HTTP = follower.Client()
	_, err := c.Backup(context.Background(), &bytes.Buffer{})
	select {
	case auth := <-leaked:
		t.Fatalf("the token went in clear over http after an https redirect: %q (err %v)", auth, err)
	default:
	}
	if err == nil {
		t.Fatal("a redirect from https to http was followed without error")
	}
}

// TestBackupFromAnOlderBuildSaysSo: a node whose build has no backup route
// answers its generic 404; the error says the build predates backups rather
// than only "no such resource".
func TestBackupFromAnOlderBuildSaysSo(t *testing.T) {
	old := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(`{"type":"urn:liandong:problem:not-found","title":"Not found","status":404,"detail":"no such resource: /v1/admin/backup"}`))
	}))
	defer old.Close()
	_, err := New(old.URL, "admin-secret").Backup(context.Background(), &bytes.Buffer{})
	var p *Problem
	if err == nil || !errors.As(err, &p) || p.Status != http.StatusNotFound || !strings.Contains(err.Error(), "build from before backups") {
		t.Fatalf("backup from a build without the route: %v, want a 404 problem saying the build predates backups", err)
	}
}
