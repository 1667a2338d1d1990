package server

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/auth"
	"liandong/sync/exchange"
)

// CentreKeys are the keys of one centre as files in its data directory.
type CentreKeys struct {
	Record *auth.KeyPair
	Token  *auth.KeyPair
	PeerID peer.ID
}

// EnsureKeys loads the record, token and libp2p keys named by cfg, creating any
// that do not exist yet (0600, in a 0700 directory).
func EnsureKeys(cfg *Config) (*CentreKeys, error) {
	var ck CentreKeys
	var err error
	if ck.Record, err = loadOrCreateKey(cfg.Path(cfg.Keys.Record), cfg.Centre+"-rec"); err != nil {
		return nil, err
	}
	if ck.Token, err = loadOrCreateKey(cfg.Path(cfg.Keys.Token), cfg.Centre+"-tok"); err != nil {
		return nil, err
	}
	id, err := exchange.LoadOrCreateIdentity(cfg.Path(cfg.Keys.P2P))
	if err != nil {
		return nil, err
	}
	if ck.PeerID, err = peer.IDFromPrivateKey(id); err != nil {
		return nil, fmt.Errorf("peer id: %w", err)
	}
	return &ck, nil
}

func loadOrCreateKey(path, prefix string) (*auth.KeyPair, error) {
	k, err := auth.LoadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	if k, err = auth.GenerateKey(prefix); err != nil {
		return nil, err
	}
	if err := auth.SaveKey(path, k); err != nil {
		return nil, err
	}
	return k, nil
}

// MemberFor describes a centre in the bundle from its keys.
func MemberFor(id, name, nameZH string, keys *CentreKeys, p2pAddrs, http []string, since time.Time) auth.Member {
	return auth.Member{
		ID: id, Name: name, NameZH: nameZH,
		RecordKeys: []auth.Key{{ID: keys.Record.ID, Public: keys.Record.Public, NotBefore: since}},
		TokenKeys:  []auth.Key{{ID: keys.Token.ID, Public: keys.Token.Public, NotBefore: since}},
		Peers:      []auth.Peer{{ID: keys.PeerID.String(), Addrs: p2pAddrs}},
		HTTP:       http,
	}
}

// SignNewBundle builds, signs with root and writes a bundle file.
func SignNewBundle(path string, b *auth.Bundle, root *auth.KeyPair) (*auth.SignedBundle, error) {
	sb, err := auth.SignBundle(b, root)
	if err != nil {
		return nil, err
	}
	return sb, WriteSignedBundle(path, sb)
}

// WriteSignedBundle writes a (possibly partly signed) bundle file atomically, so
// a crash while a signer signs never leaves a file that lost its signatures.
func WriteSignedBundle(path string, sb *auth.SignedBundle) error {
	data, err := sb.MarshalJSON()
	if err != nil {
		return err
	}
	if err := writeFileAtomic(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write trust bundle: %w", err)
	}
	return nil
}

// WriteToken writes a token file readable by its owner only.
func WriteToken(path, token string) error {
	return writeFileAtomic(path, []byte(token+"\n"), 0o600)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// DevSetup prepares a data directory for a one-centre federation, for
// `serve --dev`: keys, a root key, a bundle listing this centre alone, and an
// admin token. Existing files are kept.
func DevSetup(cfg *Config, now time.Time) (adminTokenPath string, err error) {
	keys, err := EnsureKeys(cfg)
	if err != nil {
		return "", err
	}
	root, err := loadOrCreateKey(cfg.Path("keys/root.key"), "root")
	if err != nil {
		return "", err
	}
	bundlePath := cfg.Path(cfg.Bundle)
	if _, err := os.Stat(bundlePath); errors.Is(err, fs.ErrNotExist) {
		b := &auth.Bundle{
			Federation: "jjj-dev",
			Version:    1,
			IssuedAt:   now.UTC(),
			ExpiresAt:  now.UTC().AddDate(1, 0, 0),
			Signers:    []auth.Key{{ID: root.ID, Public: root.Public, NotBefore: now.UTC().Add(-time.Hour)}},
			Threshold:  1,
			Members:    []auth.Member{MemberFor(cfg.Centre, cfg.Centre, cfg.Centre, keys, nil, []string{"http://" + cfg.HTTP}, now.UTC().Add(-time.Hour))},
		}
		if _, err := SignNewBundle(bundlePath, b, root); err != nil {
			return "", err
		}
	}
	// Only its federation is needed here; an expired dev bundle must not stop
	// serve --dev, which Start itself would allow (it warns).
	bundle, _, _, err := LoadSignedBundleAllowExpired(bundlePath, nil, now)
	if err != nil {
		return "", err
	}
	adminTokenPath = cfg.Path("admin.token")
	if _, err := os.Stat(adminTokenPath); errors.Is(err, fs.ErrNotExist) {
		iss := auth.TokenIssuer{Centre: cfg.Centre, Federation: bundle.Federation, Key: keys.Token}
		tok, err := iss.Issue("admin", auth.AllScopes, 365*24*time.Hour, now)
		if err != nil {
			return "", err
		}
		if err := WriteToken(adminTokenPath, tok); err != nil {
			return "", err
		}
	}
	return adminTokenPath, nil
}
