package auth

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// KeyPair is an ed25519 key with its id.
type KeyPair struct {
	ID      string
	Public  ed25519.PublicKey
	Private ed25519.PrivateKey
}

// Errors from key files. Each returned error wraps one of these and says what to do.
var (
	// ErrKeyMissing wraps fs.ErrNotExist.
	ErrKeyMissing     = fmt.Errorf("key file missing: %w", fs.ErrNotExist)
	ErrKeyPermissions = errors.New("key file readable by group or others")
	ErrKeyCorrupt     = errors.New("key file corrupt")
	ErrKeyExists      = errors.New("key file already exists")
)

// maxKeyFile bounds what LoadKey reads.
const maxKeyFile = 64 << 10

// maxKeyIDLen bounds key ids everywhere (bundle, entries, token headers).
const maxKeyIDLen = 128

// GenerateKey makes a new key whose id is KeyID(prefix, public key).
func GenerateKey(prefix string) (*KeyPair, error) {
	return generateKey(prefix, rand.Reader)
}

// NewKeyFromSeed derives the key pair for a 32-byte ed25519 seed; useful for
// deterministic test fixtures and for restoring a key kept elsewhere.
func NewKeyFromSeed(prefix string, seed []byte) (*KeyPair, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("key from seed: want %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	return generateKey(prefix, bytes.NewReader(seed))
}

func generateKey(prefix string, r io.Reader) (*KeyPair, error) {
	if err := checkKeyPrefix(prefix); err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(r)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return &KeyPair{ID: KeyID(prefix, pub), Public: pub, Private: priv}, nil
}

// ErrKeyPrefix refuses a key id prefix GenerateKey cannot use.
var ErrKeyPrefix = errors.New("key prefix")

func checkKeyPrefix(prefix string) error {
	if prefix == "" || len(prefix) > maxKeyIDLen-9 || !validKeyID(prefix) {
		return fmt.Errorf("%w %q: want 1-%d letters, digits, '-', '_' or '.'", ErrKeyPrefix, prefix, maxKeyIDLen-9)
	}
	return nil
}

// KeyID returns prefix + "-" + the first 8 hex digits of SHA-256(pub).
func KeyID(prefix string, pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return prefix + "-" + hex.EncodeToString(sum[:4])
}

// KeyFingerprint returns "sha256:" + the hex SHA-256 of pub: a full-strength pin,
// where a key id's 32 bits are not.
func KeyFingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// keyIDMatches reports whether id ends in the 8 hex digits KeyID would give pub.
func keyIDMatches(id string, pub ed25519.PublicKey) bool {
	i := strings.LastIndexByte(id, '-')
	return i > 0 && KeyID(id[:i], pub) == id
}

// validKeyID reports whether s is 1-128 ASCII letters, digits, '-', '_' or '.'.
func validKeyID(s string) bool {
	if len(s) == 0 || len(s) > maxKeyIDLen {
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

// BundleKey describes k's public half for the trust bundle, valid from notBefore.
func (k *KeyPair) BundleKey(notBefore time.Time) Key {
	return Key{ID: k.ID, Public: append([]byte(nil), k.Public...), NotBefore: notBefore.UTC()}
}

// keyFile is the on-disk form: the seed is enough, the public key and id let
// LoadKey notice corruption and mix-ups.
type keyFile struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Public  []byte `json:"public"`
	Seed    []byte `json:"seed"`
	Created string `json:"created,omitempty"`
}

const keyFileType = "liandong-ed25519-key"

// SaveKey writes k to path with mode 0600, atomically: the file appears whole or
// not at all. It never replaces an existing file (ErrKeyExists). The directory is
// created with mode 0700 if missing.
func SaveKey(path string, k *KeyPair) error {
	if k == nil || len(k.Private) != ed25519.PrivateKeySize || !validKeyID(k.ID) {
		return fmt.Errorf("save key %s: incomplete key pair", path)
	}
	if !bytes.Equal(k.Private.Public().(ed25519.PublicKey), k.Public) {
		return fmt.Errorf("save key %s: public key does not belong to private key", path)
	}
	if !keyIDMatches(k.ID, k.Public) {
		return fmt.Errorf("save key %s: key id %q was not made by KeyID from this public key", path, k.ID)
	}
	data, err := json.MarshalIndent(keyFile{
		Type: keyFileType, ID: k.ID, Public: k.Public, Seed: k.Private.Seed(),
		Created: time.Now().UTC().Format(time.RFC3339),
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	data = append(data, '\n')

	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("save key %s: %w; move it away first if you mean to replace it", path, ErrKeyExists)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after a successful link this removes only the temporary name
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("save key %s: %w", path, err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("save key %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("save key %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save key %s: %w", path, err)
	}
	// A hard link publishes the complete file under its name and, unlike rename,
	// fails when the name is taken.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("save key %s: %w; move it away first if you mean to replace it", path, ErrKeyExists)
		}
		// File systems without hard links: exclusive create, still never overwriting.
		if err := writeExclusive(path, data); err != nil {
			return err
		}
	}
	syncDir(dir)
	return nil
}

func writeExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("save key %s: %w; move it away first if you mean to replace it", path, ErrKeyExists)
		}
		return fmt.Errorf("save key %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("save key %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// LoadKey reads a key file written by SaveKey. It refuses a missing file
// (ErrKeyMissing), one readable by group or others (ErrKeyPermissions) and one
// that does not hold a consistent key (ErrKeyCorrupt).
func LoadKey(path string) (*KeyPair, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("load key %s: %w; run `liandong keygen` to create it", path, ErrKeyMissing)
		}
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("load key %s: %w: not a regular file", path, ErrKeyCorrupt)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("load key %s: %w (mode %04o); run `chmod 600 %s`", path, ErrKeyPermissions, fi.Mode().Perm(), path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", path, err)
	}
	corrupt := func(why string) error {
		return fmt.Errorf("load key %s: %w: %s; restore it from backup or make a new one with `liandong keygen`", path, ErrKeyCorrupt, why)
	}
	if len(data) > maxKeyFile {
		return nil, corrupt("file too large")
	}
	var kf keyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return nil, corrupt(err.Error())
	}
	if dec.More() {
		return nil, corrupt("data after the key")
	}
	switch {
	case kf.Type != keyFileType:
		return nil, corrupt(fmt.Sprintf("type %q, want %q", kf.Type, keyFileType))
	case len(kf.Seed) != ed25519.SeedSize:
		return nil, corrupt("seed is not 32 bytes")
	case !validKeyID(kf.ID):
		return nil, corrupt(fmt.Sprintf("bad key id %q", kf.ID))
	}
	priv := ed25519.NewKeyFromSeed(kf.Seed)
	pub := priv.Public().(ed25519.PublicKey)
	if !bytes.Equal(pub, kf.Public) {
		return nil, corrupt("public key does not match the seed")
	}
	if !keyIDMatches(kf.ID, pub) {
		return nil, corrupt(fmt.Sprintf("key id %q does not match the public key", kf.ID))
	}
	return &KeyPair{ID: kf.ID, Public: pub, Private: priv}, nil
}

// publicKeyFile is the public half of a key file: what a signer hands to
// headquarters to be listed in the bundle, without the seed, which stays on
// the signer's own machine.
type publicKeyFile struct {
	Type   string `json:"type"`
	ID     string `json:"id"`
	Public []byte `json:"public"`
}

const publicKeyFileType = "liandong-ed25519-public-key"

// SavePublicKey writes k's id and public key to path (mode 0644: it is public),
// replacing any file there, so that the key's holder can give it away without
// the seed.
func SavePublicKey(path string, k *KeyPair) error {
	if k == nil || len(k.Public) != ed25519.PublicKeySize || !keyIDMatches(k.ID, k.Public) {
		return fmt.Errorf("save public key %s: incomplete key", path)
	}
	data, err := json.MarshalIndent(publicKeyFile{Type: publicKeyFileType, ID: k.ID, Public: k.Public}, "", "  ")
	if err != nil {
		return fmt.Errorf("save public key %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("save public key %s: %w", path, err)
	}
	return nil
}

// LoadPublicKey reads the id and public key of a public key file written by
// SavePublicKey, or of a whole key file (SaveKey, read with LoadKey's checks),
// of which only the public half is returned. The id must be the one KeyID
// gives the public key, so a key cannot be listed under another key's name.
func LoadPublicKey(path string) (id string, pub ed25519.PublicKey, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", nil, fmt.Errorf("load public key %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return "", nil, fmt.Errorf("load public key %s: %w: file too large", path, ErrKeyCorrupt)
	}
	var probe struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return "", nil, fmt.Errorf("load public key %s: %w: %v", path, ErrKeyCorrupt, err)
	}
	if probe.Type == keyFileType {
		k, err := LoadKey(path)
		if err != nil {
			return "", nil, err
		}
		return k.ID, k.Public, nil
	}
	var pf publicKeyFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&pf); err != nil {
		return "", nil, fmt.Errorf("load public key %s: %w: %v", path, ErrKeyCorrupt, err)
	}
	switch {
	case pf.Type != publicKeyFileType:
		return "", nil, fmt.Errorf("load public key %s: %w: type %q, want %q (the .pub file `liandong keygen` writes beside the key)", path, ErrKeyCorrupt, pf.Type, publicKeyFileType)
	case len(pf.Public) != ed25519.PublicKeySize:
		return "", nil, fmt.Errorf("load public key %s: %w: public key is %d bytes, want %d", path, ErrKeyCorrupt, len(pf.Public), ed25519.PublicKeySize)
	case !validKeyID(pf.ID) || !keyIDMatches(pf.ID, pf.Public):
		return "", nil, fmt.Errorf("load public key %s: %w: key id %q does not match the public key", path, ErrKeyCorrupt, pf.ID)
	}
	return pf.ID, ed25519.PublicKey(pf.Public), nil
}
