package auth

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// writeKeyFile writes data as a key file of mode 0600, as SaveKey leaves one.
func writeKeyFile(t *testing.T, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "k.key")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// FuzzLoadKey: a key file of any content is loaded or refused with
// ErrKeyCorrupt, never a panic; a loaded key is consistent, and saved again
// it loads to the same key.
func FuzzLoadKey(f *testing.F) {
	f.Add([]byte(`{"type":"liandong-ed25519-key","id":"x","public":"","seed":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := LoadKey(writeKeyFile(t, data))
		if err != nil {
			if k != nil {
				t.Fatal("key returned with an error")
			}
			if !errors.Is(err, ErrKeyCorrupt) {
				t.Fatalf("refusal does not wrap ErrKeyCorrupt: %v", err)
			}
			return
		}
		if !validKeyID(k.ID) || !keyIDMatches(k.ID, k.Public) ||
			!bytes.Equal(k.Private.Public().(ed25519.PublicKey), k.Public) {
			t.Fatalf("loaded an inconsistent key %q", k.ID)
		}
		again := filepath.Join(t.TempDir(), "again.key")
		if err := SaveKey(again, k); err != nil {
			t.Fatalf("loaded key does not save: %v", err)
		}
		k2, err := LoadKey(again)
		if err != nil {
			t.Fatalf("saved key does not load: %v", err)
		}
		if k2.ID != k.ID || !k2.Private.Equal(k.Private) {
			t.Fatalf("key changed on a round trip: %q then %q", k.ID, k2.ID)
		}
		// Its public half reads from the same file.
		id, pub, err := LoadPublicKey(again)
		if err != nil || id != k.ID || !pub.Equal(k.Public) {
			t.Fatalf("LoadPublicKey of the key file: %q, %v", id, err)
		}
	})
}

// FuzzLoadPublicKey: a public key file of any content is loaded or refused
// with ErrKeyCorrupt, never a panic; a loaded key's id is the one KeyID gives
// it, and saved again it loads to the same key.
func FuzzLoadPublicKey(f *testing.F) {
	f.Add([]byte(`{"type":"liandong-ed25519-public-key","id":"x","public":""}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		id, pub, err := LoadPublicKey(writeKeyFile(t, data))
		if err != nil {
			if id != "" || pub != nil {
				t.Fatal("key returned with an error")
			}
			if !errors.Is(err, ErrKeyCorrupt) {
				t.Fatalf("refusal does not wrap ErrKeyCorrupt: %v", err)
			}
			return
		}
		if !validKeyID(id) || !keyIDMatches(id, pub) {
			t.Fatalf("loaded key id %q that KeyID does not give its key", id)
		}
		again := filepath.Join(t.TempDir(), "again.pub")
		if err := SavePublicKey(again, &KeyPair{ID: id, Public: pub}); err != nil {
			t.Fatalf("loaded key does not save: %v", err)
		}
		id2, pub2, err := LoadPublicKey(again)
		if err != nil || id2 != id || !pub2.Equal(pub) {
			t.Fatalf("key changed on a round trip: %q then %q (%v)", id, id2, err)
		}
	})
}

// writeKeySeeds writes the seed corpora of FuzzLoadKey and FuzzLoadPublicKey
// (called by TestWriteFuzzSeeds).
func writeKeySeeds(t *testing.T) {
	k, err := NewKeyFromSeed("tianjin-rec", bytes.Repeat([]byte{7}, ed25519.SeedSize))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "k.key")
	if err := SaveKey(keyPath, k); err != nil {
		t.Fatal(err)
	}
	if err := SavePublicKey(keyPath+".pub", k); err != nil {
		t.Fatal(err)
	}
	keyFile, _ := os.ReadFile(keyPath)
	pubFile, _ := os.ReadFile(keyPath + ".pub")
	other, _ := NewKeyFromSeed("hq-rec", bytes.Repeat([]byte{9}, ed25519.SeedSize))
	otherPub := filepath.Join(dir, "other.pub")
	if err := SavePublicKey(otherPub, other); err != nil {
		t.Fatal(err)
	}
	otherFile, _ := os.ReadFile(otherPub)
	swapped := bytes.Replace(pubFile, []byte(k.ID), []byte(other.ID), 1) // another key's id
	keys := map[string][]byte{
		"valid":         keyFile,
		"public-half":   pubFile,
		"two-keys":      append(append([]byte(nil), keyFile...), keyFile...),
		"unknown-field": bytes.Replace(keyFile, []byte(`"type"`), []byte(`"x":1,"type"`), 1),
		"short-seed":    []byte(`{"type":"liandong-ed25519-key","id":"a-00000000","public":"AAAA","seed":"AAAA"}`),
		"empty":         nil,
	}
	for name, b := range keys {
		writeSeed(t, "FuzzLoadKey", name, fmt.Sprintf("[]byte(%q)", b))
	}
	pubs := map[string][]byte{
		"valid":      pubFile,
		"whole-key":  keyFile,
		"other-id":   swapped,
		"other":      otherFile,
		"trailing":   append(append([]byte(nil), pubFile...), "{}"...),
		"wrong-type": bytes.Replace(pubFile, []byte("public-key"), []byte("key"), 1),
		"null":       []byte("null"),
	}
	for name, b := range pubs {
		writeSeed(t, "FuzzLoadPublicKey", name, fmt.Sprintf("[]byte(%q)", b))
	}
}
