package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"liandong/auth"
	"liandong/node/server"
)

const federationUsage = `liandong federation init --data DIR --centre ID [--federation ID] [--root-key FILE] [--p2p-addr MULTIADDR] [--http URL]
    a trust bundle (version 1) listing one centre, whose keys are created in DIR if absent,
    signed by the root key (created if absent); written to DIR/bundle.json
liandong federation member --data DIR --centre ID [--name N] [--name-zh N] [--p2p-addr MULTIADDR] [--http URL] [--out FILE]
    at a new centre: create its keys and print its member entry (public keys only) for add-centre
liandong federation add-centre --bundle CUR --member FILE --out NEXT [--ttl D]
liandong federation remove-centre --bundle CUR --centre ID --out NEXT [--ttl D]
liandong federation add-peer --bundle CUR --centre ID --peer-id ID[,ID...] [--addr MULTIADDR,...] --out NEXT [--ttl D]
    list a new replica's libp2p peer id (from its 'liandong keygen --p2p') for its centre: needed
    before 'centre add-replica' or its raft.join, and before other centres accept it. Several
    (--peer-id repeated or a comma list) make one version, all or nothing; then each --addr
    ends in /p2p/ID to say whose it is
liandong federation rotate-key --bundle CUR --centre ID --kind record|token --key NEWKEY --out NEXT [--activate-in 1m] [--retire-after 24h] [--ttl D]
liandong federation revoke --bundle CUR --subject jti:ID|sub:CENTRE/PARTNER|key:KID|peer:ID [--before RFC3339] [--reason R] --out NEXT [--ttl D]
liandong federation renew --bundle CUR --ttl D --out NEXT [--shorten]
    the same bundle, expiring D from now (an expiring or expired bundle, when nothing else changes);
    refused when that is before the current version expires, unless --shorten
liandong federation signers --bundle CUR [--add SIGNER.key.pub]... [--remove KEYID]... [--threshold N] --out NEXT [--ttl D]
    each writes the next version, unsigned, built on the current signed bundle CUR (which may
    have expired): the last version published, or GET /v1/bundle on any node, not a
    bundle.json a node started with after a newer one was published (nodes would refuse
    the result); --ttl D makes the next version expire D from now (default: keep the
    current expiry, which must not have passed)
    signers: --add takes the public key file "liandong keygen" writes beside a key (KEY.pub; the
    key stays with its holder); it refuses a threshold below 1 or above the signers, removing
    the last signer, and a key listed twice. Nodes holding CUR install NEXT on CUR's signers'
    signatures; read on its own (a new node's bundle.json, the base of the next change) NEXT
    needs its own threshold of its own signers: have both sign (sign --current CUR)
liandong federation sign --bundle NEXT --key SIGNER.key [--current CUR]
    add this signer's signature (each signer on their own machine, in turn); refuses a key that
    is not a signer, or is outside its window or revoked. With --current (the bundle nodes hold),
    a signer of either version may sign, and it says which version's threshold is met
liandong federation publish --bundle NEXT --node URL --token ADMIN.token
    install it at one node; sync spreads it to every centre
liandong federation show --bundle FILE
    verify a bundle's signatures and print it`

func cmdFederation(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return usagef("want a subcommand:\n%s", federationUsage)
	}
	switch args[0] {
	case "init":
		return federationInit(args[1:], stdout)
	case "show":
		return federationShow(args[1:], stdout)
	case "member":
		return federationMember(args[1:], stdout)
	case "add-centre":
		return federationAddCentre(args[1:], stdout)
	case "remove-centre":
		return federationRemoveCentre(args[1:], stdout)
	case "add-peer":
		return federationAddPeer(args[1:], stdout)
	case "rotate-key":
		return federationRotateKey(args[1:], stdout)
	case "revoke":
		return federationRevoke(args[1:], stdout)
	case "renew":
		return federationRenew(args[1:], stdout)
	case "signers":
		return federationSigners(args[1:], stdout)
	case "sign":
		return federationSign(args[1:], stdout)
	case "publish":
		return federationPublish(args[1:], stdout)
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, federationUsage)
		return nil
	}
	return usagef("unknown subcommand %q:\n%s", args[0], federationUsage)
}

func federationInit(args []string, stdout io.Writer) error {
	flags := flag.NewFlagSet("federation init", flag.ContinueOnError)
	cf := addCentreFlags(flags, "hq")
	federation := flags.String("federation", "jjj", "federation id")
	rootKey := flags.String("root-key", "", "federation root key (default DIR/keys/root.key, created if absent)")
	ttl := flags.Duration("ttl", 365*24*time.Hour, "bundle lifetime")
	if err := flags.Parse(args); err != nil {
		return err
	}
	// A second init would replace the federation's bundle, and with it every
	// member, revocation and version since, by a fresh v1 (keys are never
	// overwritten; the bundle must not be either). Checked before any key is made.
	if *cf.data != "" {
		dc := server.Default()
		dc.DataDir = *cf.data
		if path := dc.Path(dc.Bundle); fileExists(path) {
			return fmt.Errorf("%s exists; refusing to overwrite a trust bundle. To change it, build the next version (`liandong federation add-centre|remove-centre|rotate-key|revoke`); to start a new federation, use another --data or remove %s deliberately", path, path)
		}
	}
	now := time.Now().UTC()
	member, keys, cfg, err := cf.member(now.Add(-time.Hour).Truncate(time.Second))
	if err != nil {
		return err
	}
	if *rootKey == "" {
		*rootKey = filepath.Join(*cf.data, "keys", "root.key")
	}
	root, err := auth.LoadKey(*rootKey)
	if errors.Is(err, fs.ErrNotExist) {
		if root, err = auth.GenerateKey("root"); err == nil {
			err = auth.SaveKey(*rootKey, root)
		}
	}
	if err != nil {
		return err
	}
	b := &auth.Bundle{
		Federation: *federation, Version: 1, IssuedAt: now, ExpiresAt: now.Add(*ttl),
		Signers:   []auth.Key{{ID: root.ID, Public: root.Public, NotBefore: now.Add(-time.Hour)}},
		Threshold: 1,
		Members:   []auth.Member{member},
	}
	path := cfg.Path(cfg.Bundle)
	if _, err := server.SignNewBundle(path, b, root); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bundle %s v1 for %s written to %s, signed by %s\nrecord key %s, token key %s, peer id %s\n",
		*federation, member.ID, path, root.ID, keys.Record.ID, keys.Token.ID, keys.PeerID)
	return nil
}

func federationShow(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("federation show", flag.ContinueOnError)
	path := fs.String("bundle", "", "bundle file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return usagef("--bundle FILE is required")
	}
	// A signer reads a next version before signing it, so an unsigned or
	// partly signed bundle is shown too, with what its signatures amount to.
	data, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	sb, err := auth.ParseSignedBundle(data)
	if err != nil {
		return err
	}
	b, err := sb.Bundle()
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(b); err != nil {
		return err
	}
	if _, err := auth.VerifyBundle(sb, nil, time.Now()); err != nil {
		fmt.Fprintf(stdout, "signatures: %d (%s); not yet valid on its own: %v\n", len(sb.Signatures), sigIDs(sb), err)
		return nil
	}
	fmt.Fprintf(stdout, "signatures: %d (%s); valid against its own signers (a node also checks them against the version it holds)\n", len(sb.Signatures), sigIDs(sb))
	return nil
}

// fileExists reports whether path exists; an error other than "does not
// exist" (permissions) counts as existing, so nothing is overwritten blindly.
func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}
