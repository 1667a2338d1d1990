package server

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"
)

// TLSConfig serves the API over HTTPS and says whom to trust when this replica
// calls its centre's other replicas (forwarding writes to the leader, joining,
// probing their health). Paths relative to the data directory.
type TLSConfig struct {
	// Cert and Key are PEM files of the API's certificate (chain first) and
	// its private key; both or neither. They are read again when either
	// file changes (a renewal by cert-manager or certbot needs no restart);
	// a pair that fails to load then is logged and the one before is kept.
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
	// CA is a PEM file of certificates to trust, besides the system's, for
	// the other replicas' APIs (a private CA that signs them).
	CA string `yaml:"ca"`
}

// certRecheck is how often, at most, a handshake looks at the files' times.
const certRecheck = time.Second

// certReloader hands the TLS server the certificate of the files, loading
// them again when their modification time or size changes.
type certReloader struct {
	certPath, keyPath string
	log               *slog.Logger
	now               func() time.Time

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string // modification times and sizes the cert was loaded at
	checked time.Time
}

func newCertReloader(certPath, keyPath string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certPath: certPath, keyPath: keyPath, log: log, now: time.Now}
	stamp, err := r.fileStamp()
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("tls.cert %s and tls.key %s: %w", certPath, keyPath, err)
	}
	r.cert, r.stamp, r.checked = &cert, stamp, r.now()
	return r, nil
}

func (r *certReloader) fileStamp() (string, error) {
	var stamp string
	for _, p := range []string{r.certPath, r.keyPath} {
		fi, err := os.Stat(p)
		if err != nil {
			return "", fmt.Errorf("tls: %w", err)
		}
		stamp += fmt.Sprintf("%d/%d;", fi.ModTime().UnixNano(), fi.Size())
	}
	return stamp, nil
}

// getCertificate is tls.Config.GetCertificate.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := r.now(); now.Sub(r.checked) >= certRecheck {
		r.checked = now
		if stamp, err := r.fileStamp(); err != nil {
			r.log.Warn("TLS certificate files unreadable; serving the one loaded before", "err", err)
		} else if stamp != r.stamp {
			// A renewal writes two files, not at once: a pair that does not
			// match yet is tried again at the next check.
			if cert, err := tls.LoadX509KeyPair(r.certPath, r.keyPath); err != nil {
				r.log.Warn("TLS certificate changed but does not load; serving the one loaded before", "err", err)
			} else {
				r.cert, r.stamp = &cert, stamp
				r.log.Info("TLS certificate loaded again", "cert", r.certPath)
			}
		}
	}
	return r.cert, nil
}

// serverTLS is the API's TLS configuration.
func (r *certReloader) serverTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate}
}

// replicaTransport is the transport of calls to the centre's other replicas:
// http.DefaultTransport (nil) unless a CA file adds roots to trust.
func replicaTransport(caPath string) (http.RoundTripper, error) {
	if caPath == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(caPath)
	if err != nil {
		return nil, fmt.Errorf("tls.ca: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls.ca %s: no PEM certificate in it", caPath)
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	return t, nil
}
