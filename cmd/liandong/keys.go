package main

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"liandong/auth"
	"liandong/node/server"
	"liandong/sync/exchange"
)

func cmdKeygen(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("keygen", flag.ContinueOnError)
	out := fs.String("out", "", "key file to create (0600)")
	prefix := fs.String("prefix", "", "key id prefix, e.g. tianjin-rec (record keys), tianjin-tok (token keys), root")
	p2p := fs.Bool("p2p", false, "create a libp2p identity instead, and print its peer id")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" {
		return usagef("--out FILE is required")
	}
	if *p2p {
		if _, err := os.Stat(*out); err == nil {
			return fmt.Errorf("%s exists; refusing to overwrite an identity", *out)
		}
		id, err := exchange.LoadOrCreateIdentity(*out)
		if err != nil {
			return err
		}
		pid, err := peer.IDFromPrivateKey(id)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "peer id %s written to %s\n", pid, *out)
		return nil
	}
	derived := *prefix == ""
	if derived {
		*prefix = strings.TrimSuffix(filepath.Base(*out), filepath.Ext(*out))
	}
	k, err := auth.GenerateKey(*prefix)
	if errors.Is(err, auth.ErrKeyPrefix) && derived {
		return usagef("the key id prefix is taken from the --out file name when --prefix is not given: %v; give --prefix", err)
	}
	if errors.Is(err, auth.ErrKeyPrefix) {
		return usagef("--prefix: %v", err)
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(*out), 0o700); err != nil {
		return err
	}
	if err := auth.SaveKey(*out, k); err != nil {
		return err
	}
	// The public half alone, to hand over (a new signer's, for `federation
	// signers --add`) without the key leaving its holder's machine.
	if err := auth.SavePublicKey(*out+".pub", k); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "key %s written to %s (public half: %s.pub)\npublic key (base64): %s\n", k.ID, *out, *out, base64.StdEncoding.EncodeToString(k.Public))
	return nil
}

func cmdToken(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "issue" {
		return usagef("want 'token issue'")
	}
	fs := flag.NewFlagSet("token issue", flag.ContinueOnError)
	data := fs.String("data", "", "a node's data directory: take the token key, centre and federation from it")
	keyPath := fs.String("key", "", "token-signing key file (default DATA/keys/token.key)")
	bundlePath := fs.String("bundle", "", "trust bundle file (default DATA/bundle.json)")
	centre := fs.String("centre", "", "issuing centre id (default: the bundle member holding the key)")
	sub := fs.String("sub", "", "subject: the partner system's name")
	scope := fs.String("scope", "read", "space- or comma-separated scopes: read, pii, write, admin")
	ttl := fs.Duration("ttl", 30*24*time.Hour, "lifetime")
	out := fs.String("out", "", "write the token to this file (0600) instead of standard output")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *sub == "" {
		return usagef("--sub NAME is required (the partner system the token is for)")
	}
	if *keyPath == "" {
		if *data == "" {
			return usagef("give --data DIR or --key FILE")
		}
		*keyPath = filepath.Join(*data, "keys", "token.key")
	}
	if *bundlePath == "" && *data != "" {
		*bundlePath = filepath.Join(*data, "bundle.json")
	}
	if *bundlePath == "" {
		return usagef("give --bundle FILE or --data DIR")
	}
	key, err := auth.LoadKey(*keyPath)
	if err != nil {
		return err
	}
	now := time.Now()
	// Nodes keep accepting tokens on a bundle that has expired (they run on
	// it until a new version comes): so does this check.
	bundle, _, _, err := server.LoadSignedBundleAllowExpired(*bundlePath, nil, now)
	if err != nil {
		return err
	}
	if *centre == "" {
		*centre = holderOf(bundle, key.ID, func(m *auth.Member) []auth.Key { return m.TokenKeys })
		if *centre == "" {
			return fmt.Errorf("token key %s is not listed in the bundle %s; add it to the centre's token keys first (`liandong federation rotate-key --kind token`), or pass the nodes' current bundle with --bundle (GET /v1/bundle on any node; DATA/bundle.json is the one the centre started with)", key.ID, *bundlePath)
		}
	}
	if err := checkTokenKey(bundle, *centre, key.ID, now); err != nil {
		return fmt.Errorf("%w; every node would refuse a token signed with it (bundle %s, v%d)", err, *bundlePath, bundle.Version)
	}
	scopes, err := auth.ParseScopes(strings.ReplaceAll(*scope, ",", " "))
	if err != nil {
		return usagef("--scope: %v", err)
	}
	iss := auth.TokenIssuer{Centre: *centre, Federation: bundle.Federation, Key: key}
	tok, err := iss.Issue(*sub, scopes, *ttl, now)
	if err != nil {
		return err
	}
	if *out != "" {
		return server.WriteToken(*out, tok)
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// checkTokenKey refuses to issue a token that nodes would refuse: they check
// its key with bundle.TokenKey(iss, kid, iat), so the same check runs here at
// the iat the token will carry (whole seconds), and the error says what to do.
func checkTokenKey(bundle *auth.Bundle, centre, kid string, now time.Time) error {
	iat := now.Truncate(time.Second)
	_, err := bundle.TokenKey(centre, kid, iat)
	if err == nil {
		return nil
	}
	tokenKeys := func(m *auth.Member) []auth.Key { return m.TokenKeys }
	recordKeys := func(m *auth.Member) []auth.Key { return m.RecordKeys }
	switch {
	case errors.Is(err, auth.ErrUnknownKey):
		if _, ok := bundle.Member(centre); !ok {
			return fmt.Errorf("--centre %q is not a member of federation %s: %w", centre, bundle.Federation, err)
		}
		if holder := holderOf(bundle, kid, tokenKeys); holder != "" {
			return fmt.Errorf("token key %s belongs to centre %s, not %s: use --centre %s, or %s's own token key: %w", kid, holder, centre, holder, centre, err)
		}
		if holder := holderOf(bundle, kid, recordKeys); holder != "" {
			return fmt.Errorf("key %s is a record-signing key of %s, not a token key: use the token key (DATA/keys/token.key): %w", kid, holder, err)
		}
		return fmt.Errorf("token key %s is not listed for %s; add it first (`liandong federation rotate-key --kind token`), or pass the nodes' current bundle with --bundle (GET /v1/bundle on any node; DATA/bundle.json is the one the centre started with): %w", kid, centre, err)
	case errors.Is(err, auth.ErrKeyRevoked):
		return fmt.Errorf("token key %s is revoked; issue with a current token key of %s: %w", kid, centre, err)
	default: // auth.ErrKeyNotValidAt: not active yet, retired, or the centre left
		if m, ok := bundle.Member(centre); ok {
			if m.Removed != nil {
				return fmt.Errorf("centre %s left the federation at %s: it issues no tokens: %w", centre, m.Removed.UTC().Format(time.RFC3339), err)
			}
			for _, k := range m.TokenKeys {
				if k.ID != kid {
					continue
				}
				if k.NotAfter != nil && !iat.Before(*k.NotAfter) {
					return fmt.Errorf("token key %s of %s retired at %s: issue with %s's current token key (the one rotate-key added): %w", kid, centre, k.NotAfter.UTC().Format(time.RFC3339), centre, err)
				}
				if iat.Before(k.NotBefore) {
					return fmt.Errorf("token key %s of %s is valid from %s: wait until then, or issue with a token key of %s valid now: %w", kid, centre, k.NotBefore.UTC().Format(time.RFC3339), centre, err)
				}
			}
		}
		return fmt.Errorf("token key %s of %s is not valid now: use a token key of %s valid now: %w", kid, centre, centre, err)
	}
}

// holderOf returns the member that lists key kid among keys(member), or "".
func holderOf(bundle *auth.Bundle, kid string, keys func(*auth.Member) []auth.Key) string {
	for i := range bundle.Members {
		m := &bundle.Members[i]
		for _, k := range keys(m) {
			if k.ID == kid {
				return m.ID
			}
		}
	}
	return ""
}
