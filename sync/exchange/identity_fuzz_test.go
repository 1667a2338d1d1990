package exchange_test

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"

	"liandong/sync/exchange"
)

// FuzzLoadIdentity: a libp2p identity file of any content is loaded or
// refused with an error naming the file, never a panic (and never replaced:
// only a missing file is created). A loaded key is ed25519, its public half
// is the one its seed gives (the peer id is made from the public half, the
// handshake signatures from the seed: a mismatch would name the node by one
// key and sign with another), and it re-encodes to a key equal to itself.
func FuzzLoadIdentity(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzLoadIdentity.
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "p2p.key")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := exchange.LoadOrCreateIdentity(path)
		if after, rerr := os.ReadFile(path); rerr != nil || !bytes.Equal(after, data) {
			t.Fatalf("identity file changed by loading it (%v)", rerr)
		}
		if err != nil {
			if k != nil {
				t.Fatal("key returned with an error")
			}
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if k.Type() != crypto.Ed25519 {
			t.Fatalf("loaded a %v key", k.Type())
		}
		// What it signs verifies under the key its peer id is made of.
		sig, err := k.Sign([]byte("liandong handshake"))
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := k.GetPublic().Verify([]byte("liandong handshake"), sig); !ok || err != nil {
			t.Fatalf("a signature of the loaded key does not verify under its public key (%v)", err)
		}
		raw, err := k.Raw()
		if err != nil || len(raw) != ed25519.PrivateKeySize {
			t.Fatalf("raw key: %d bytes, %v", len(raw), err)
		}
		pub, err := k.GetPublic().Raw()
		if err != nil {
			t.Fatal(err)
		}
		derived := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize]).Public().(ed25519.PublicKey)
		if !bytes.Equal(pub, derived) {
			t.Fatalf("loaded a key whose public half %x is not its seed's %x", pub, derived)
		}
		enc, err := crypto.MarshalPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := crypto.UnmarshalPrivateKey(enc)
		if err != nil || !k2.Equals(k) {
			t.Fatalf("key changed on a round trip (%v)", err)
		}
	})
}
