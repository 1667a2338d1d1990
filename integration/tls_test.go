package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a private certificate authority for replicas serving HTTPS.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "liandong integration CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a certificate for 127.0.0.1 and its key.
func (ca *testCA) issue(t testing.TB, serial int64, certPath, keyPath string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "replica"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// transport trusts the CA only.
func (ca *testCA) transport() *http.Transport {
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	return &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
}

// TestReplicasOverTLS: three replicas whose APIs serve HTTPS with a private
// CA's certificates join through https://, and a follower forwards a write to
// its leader over TLS (tls.ca); plain HTTP is not served.
func TestReplicasOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three nodes")
	}
	g := newCentreGroupWith(t, 3, groupOptions{tls: true})
	leader := g.leader(-1)
	follower := (leader + 1) % 3
	var rec envelope
	if code, err := g.clients[follower].do(t.Context(), http.MethodPost, "/v1/records", map[string]any{
		"catalogue": "supply", "visibility": "federation", "body": supplyBody("经由 TLS 转发"),
	}, &rec); err != nil || code != http.StatusCreated {
		t.Fatalf("write at follower %s over TLS: %d %v", g.ids[follower], code, err)
	}
	for i := range g.clients {
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, _ := g.clients[i].do(t.Context(), http.MethodGet, "/v1/records/"+rec.ID, nil, nil)
			if code == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s at %s: %d", rec.ID, g.ids[i], code)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	plain := strings.Replace(g.urls[0], "https://", "http://", 1)
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(plain + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP answered 200 where TLS is configured")
		}
	}
}
