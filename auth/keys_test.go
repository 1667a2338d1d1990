package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	k, err := GenerateKey("tianjin-rec")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^tianjin-rec-[0-9a-f]{8}$`).MatchString(k.ID) {
		t.Fatalf("id %q", k.ID)
	}
	if k.ID != KeyID("tianjin-rec", k.Public) || len(k.Public) != ed25519.PublicKeySize || len(k.Private) != ed25519.PrivateKeySize {
		t.Fatalf("key %+v", k)
	}
	if !strings.HasPrefix(KeyFingerprint(k.Public), "sha256:") || len(KeyFingerprint(k.Public)) != 7+64 {
		t.Fatalf("fingerprint %q", KeyFingerprint(k.Public))
	}
	k2, _ := GenerateKey("tianjin-rec")
	if k2.ID == k.ID {
		t.Fatal("two keys, one id")
	}
	for _, bad := range []string{"", "has space", "斜线", strings.Repeat("a", 200)} {
		if _, err := GenerateKey(bad); err == nil {
			t.Errorf("prefix %q accepted", bad)
		}
	}
	// KeyID is sha256-based and stable.
	pub := make(ed25519.PublicKey, 32)
	if got := KeyID("x", pub); got != "x-66687aad" {
		t.Fatalf("KeyID of zero key = %q", got)
	}
}

func TestSaveLoadKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", "tianjin-rec.key")
	k, err := GenerateKey("tianjin-rec")
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveKey(path, k); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o, want 0600", fi.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !bytes.Contains(data, []byte(k.ID)) {
		t.Fatalf("file does not name the key id:\n%s", data)
	}
	got, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || !got.Public.Equal(k.Public) || !got.Private.Equal(k.Private) {
		t.Fatal("loaded key differs")
	}
	// No temporary files left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d files", len(entries))
	}

	// Never overwrites.
	other, _ := GenerateKey("tianjin-rec")
	if err := SaveKey(path, other); !errors.Is(err, ErrKeyExists) {
		t.Fatalf("overwrite: %v", err)
	}
	if again, _ := LoadKey(path); again == nil || again.ID != k.ID {
		t.Fatal("existing key file changed")
	}

	// Group- or world-readable files are refused, with the fix in the message.
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKey(path)
		if !errors.Is(err, ErrKeyPermissions) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path); err != nil {
		t.Fatalf("mode 0400: %v", err)
	}

	// Missing.
	missing := filepath.Join(dir, "nope.key")
	_, err = LoadKey(missing)
	if !errors.Is(err, ErrKeyMissing) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "liandong keygen") {
		t.Fatalf("missing: %v", err)
	}
}

func TestLoadKeyCorrupt(t *testing.T) {
	dir := t.TempDir()
	k := fixedKey(t, "hq-rec", "hq")
	other := fixedKey(t, "hq-rec", "other")
	good := filepath.Join(dir, "good.key")
	if err := SaveKey(good, k); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	pubB64 := b64std(k.Public)
	tests := map[string]string{
		"empty":             "",
		"not json":          "-----BEGIN PRIVATE KEY-----",
		"truncated":         string(data[:len(data)/2]),
		"wrong type":        strings.Replace(string(data), keyFileType, "ssh-ed25519", 1),
		"other public":      strings.Replace(string(data), pubB64, b64std(other.Public), 1),
		"id mismatch":       strings.Replace(string(data), k.ID, other.ID, 1),
		"unknown field":     strings.Replace(string(data), "{", `{"extra": 1,`, 1),
		"trailing data":     string(data) + "{}",
		"seed wrong length": strings.Replace(string(data), `"seed": "`, `"seed": "AAAA`, 1),
		"too large file":    string(data) + strings.Repeat(" ", maxKeyFile),
	}
	for name, content := range tests {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".key")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadKey(path); !errors.Is(err, ErrKeyCorrupt) {
				t.Fatalf("got %v, want ErrKeyCorrupt", err)
			}
		})
	}
	if _, err := LoadKey(dir); !errors.Is(err, ErrKeyCorrupt) {
		t.Fatalf("directory: %v", err)
	}
}

func TestSaveKeyRefusesBadKeys(t *testing.T) {
	dir := t.TempDir()
	k := fixedKey(t, "hq-rec", "hq")
	renamed := *k
	renamed.ID = "hq-rec-1"
	if err := SaveKey(filepath.Join(dir, "a.key"), &renamed); err == nil {
		t.Fatal("id not made by KeyID accepted")
	}
	mixed := *k
	mixed.Public = fixedKey(t, "hq-rec", "x").Public
	if err := SaveKey(filepath.Join(dir, "b.key"), &mixed); err == nil {
		t.Fatal("mismatched public key accepted")
	}
	if err := SaveKey(filepath.Join(dir, "c.key"), nil); err == nil {
		t.Fatal("nil key accepted")
	}
}

func b64std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
