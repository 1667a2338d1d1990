package server

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"liandong/node/server/servertest"
)

// TestTLSServesAndReloads: with tls.cert and tls.key the API answers over
// HTTPS only, at an https URL, and a renewed certificate is served without a
// restart.
func TestTLSServesAndReloads(t *testing.T) {
	f := newBundleFixture(t)
	ca := servertest.NewCA(t)
	ca.Issue(t, 100, f.cfg.Path("api.crt"), f.cfg.Path("api.key"))
	f.cfg.TLS = TLSConfig{Cert: "api.crt", Key: "api.key"}
	s := runTestServer(t, f.cfg)
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("URL %s with TLS configured", s.URL)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	cli := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	serial := func() int64 {
		t.Helper()
		resp, err := cli.Get(s.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /healthz over TLS: %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].SerialNumber.Int64()
	}
	if got := serial(); got != 100 {
		t.Fatalf("served certificate %d, want 100", got)
	}
	plain := strings.Replace(s.URL, "https://", "http://", 1)
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(plain + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 on a TLS listener")
		}
	}
	// A renewal: new files; each new connection may see them after a second.
	ca.Issue(t, 101, f.cfg.Path("api.crt"), f.cfg.Path("api.key"))
	got := int64(0)
	for i := 0; i < 50 && got != 101; i++ {
		time.Sleep(100 * time.Millisecond)
		cli.CloseIdleConnections()
		got = serial()
	}
	if got != 101 {
		t.Fatalf("served certificate %d after a renewal, want 101", got)
	}
	// A broken renewal (a key that does not match) keeps the last good pair.
	other := filepath.Join(t.TempDir(), "other.key")
	ca.Issue(t, 102, filepath.Join(t.TempDir(), "other.crt"), other)
	key, _ := os.ReadFile(other)
	if err := os.WriteFile(f.cfg.Path("api.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	cli.CloseIdleConnections()
	if got := serial(); got != 101 {
		t.Fatalf("served certificate %d after a mismatched key was written, want 101 (the last good pair)", got)
	}
}

// TestTLSConfigMistakes: half a pair, unreadable files and a CA file without a
// certificate are refused at start, naming the key.
func TestTLSConfigMistakes(t *testing.T) {
	f := newBundleFixture(t)
	ca := servertest.NewCA(t)
	ca.Issue(t, 1, f.cfg.Path("api.crt"), f.cfg.Path("api.key"))
	os.WriteFile(f.cfg.Path("junk.pem"), []byte("not pem"), 0o600)
	for _, tc := range []struct {
		name string
		tls  TLSConfig
		want string
	}{
		{"cert without key", TLSConfig{Cert: "api.crt"}, "tls.cert and tls.key"},
		{"missing cert", TLSConfig{Cert: "nope.crt", Key: "api.key"}, "nope.crt"},
		{"key of another cert", TLSConfig{Cert: "api.crt", Key: "junk.pem"}, "tls.cert"},
		{"CA without certificates", TLSConfig{CA: "junk.pem"}, "tls.ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := f.cfg
			cfg.TLS = tc.tls
			s, err := Start(t.Context(), cfg)
			if err == nil {
				s.Close()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not name %s", err, tc.want)
			}
		})
	}
}

// TestReplicaTransportTrustsTheCA: calls to other replicas trust tls.ca's
// certificates besides the system's; without it a private CA's are refused.
func TestReplicaTransportTrustsTheCA(t *testing.T) {
	ca := servertest.NewCA(t)
	dir := t.TempDir()
	ca.Issue(t, 7, filepath.Join(dir, "srv.crt"), filepath.Join(dir, "srv.key"))
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "srv.crt"), filepath.Join(dir, "srv.key"))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	caFile := filepath.Join(dir, "ca.PEM")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	rt, err := replicaTransport(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := (&http.Client{Transport: rt, Timeout: 10 * time.Second}).Get(srv.URL); err != nil {
		t.Fatalf("with tls.ca: %v", err)
	} else {
		resp.Body.Close()
	}
	if rt, err := replicaTransport(""); err != nil || rt != nil {
		t.Fatalf("without tls.ca: %v, %v; want the default transport", rt, err)
	}
	if _, err := (&http.Client{Timeout: 10 * time.Second}).Get(srv.URL); err == nil {
		t.Fatal("the default transport trusted a private CA")
	}
}
