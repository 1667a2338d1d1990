package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"

	"liandong/auth"
	"liandong/client"
	"liandong/node/server"
)

// The bundle's life, without a flag day: each change makes an unsigned next
// version from the current signed one; signers sign that file on their own
// machines (`sign` needs only the signer's own key); `publish` hands it to one
// node and sync carries it to every other.

// changeFlags are the flags every bundle change takes. Every change can renew
// the expiry: after a lapse, the next change is how the federation recovers.
func changeFlags(fs *flag.FlagSet) (base, out *string, ttl *time.Duration) {
	return fs.String("bundle", "", "current signed bundle"),
		fs.String("out", "", "where to write the unsigned next version"),
		fs.Duration("ttl", 0, "new lifetime from now: the next version expires this long after it is made (default: keep the current expiry; required once that has passed)")
}

// startChange reads the current signed bundle, checked against its own signers
// so a change is never built on a forged or half-signed base, and returns it
// with a deep copy to change. An expired base is accepted: it still authorises
// its successor (auth.VerifyBundle), and refusing it would leave a federation
// whose bundle lapsed with no way to build the next one.
func startChange(path string, now time.Time) (cur, next *auth.Bundle, err error) {
	if path == "" {
		return nil, nil, usagef("--bundle FILE (the current signed bundle) is required")
	}
	if cur, _, _, err = server.LoadSignedBundleAllowExpired(path, nil, now); err != nil {
		return nil, nil, fmt.Errorf("%w (the base of a change must be a fully signed bundle)", err)
	}
	next, err = cloneBundle(cur)
	return cur, next, err
}

// writeNext writes b as the next version, unsigned, to path.
func writeNext(path string, b *auth.Bundle, cur *auth.Bundle, now time.Time, ttl time.Duration, stdout io.Writer, what string) error {
	if path == "" {
		return usagef("--out FILE (where the unsigned next version goes) is required")
	}
	if ttl < 0 {
		return usagef("--ttl %v: want a positive lifetime, e.g. --ttl 8760h", ttl)
	}
	b.Version = cur.Version + 1
	b.IssuedAt = now
	if ttl > 0 {
		b.ExpiresAt = now.Add(ttl)
	}
	if !b.ExpiresAt.After(now) {
		return usagef("the current bundle v%d expired at %s, and the next version would keep that expiry: give it a new lifetime with --ttl (e.g. --ttl 8760h)",
			cur.Version, cur.ExpiresAt.UTC().Format(time.RFC3339))
	}
	sb, err := auth.EncodeBundle(b)
	if err != nil {
		return err
	}
	if err := server.WriteSignedBundle(path, sb); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: trust bundle v%d written to %s, unsigned; it needs %d signature(s) of: %s\n",
		what, b.Version, path, cur.Threshold, signerIDs(cur))
	return nil
}

func signerIDs(b *auth.Bundle) string {
	ids := make([]string, 0, len(b.Signers))
	for _, k := range b.Signers {
		ids = append(ids, k.ID)
	}
	return strings.Join(ids, ", ")
}

// cloneBundle deep-copies b through its JSON form.
func cloneBundle(b *auth.Bundle) (*auth.Bundle, error) {
	js, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	var out auth.Bundle
	return &out, json.Unmarshal(js, &out)
}

// centreFlags are the flags that describe one centre in the bundle, shared by
// `federation init` (the first centre) and `federation member` (any later one).
type centreFlags struct {
	data, centre, name, nameZH, p2pAddr, http *string
}

func addCentreFlags(fs *flag.FlagSet, defaultCentre string) *centreFlags {
	return &centreFlags{
		data:    fs.String("data", "", "the centre's data directory (its keys are created there if absent)"),
		centre:  fs.String("centre", defaultCentre, "centre id"),
		name:    fs.String("name", "", "centre name (English)"),
		nameZH:  fs.String("name-zh", "", "centre name (Chinese)"),
		p2pAddr: fs.String("p2p-addr", "", "comma-separated multiaddrs where its libp2p host is reached"),
		http:    fs.String("http", "", "its API URL"),
	}
}

// member creates the centre's keys if absent and returns its bundle entry,
// valid from since, with the config naming its files.
func (f *centreFlags) member(since time.Time) (auth.Member, *server.CentreKeys, server.Config, error) {
	if *f.data == "" || *f.centre == "" {
		return auth.Member{}, nil, server.Config{}, usagef("--data DIR and --centre ID are required")
	}
	cfg := server.Default()
	cfg.Centre, cfg.DataDir = *f.centre, *f.data
	if err := cfg.Validate(); err != nil {
		return auth.Member{}, nil, cfg, err
	}
	keys, err := server.EnsureKeys(&cfg)
	if err != nil {
		return auth.Member{}, nil, cfg, err
	}
	var addrs, https []string
	if *f.p2pAddr != "" {
		addrs = strings.Split(*f.p2pAddr, ",")
	}
	if *f.http != "" {
		https = []string{*f.http}
	}
	name := *f.name
	if name == "" {
		name = *f.centre
	}
	return server.MemberFor(*f.centre, name, *f.nameZH, keys, addrs, https, since), keys, cfg, nil
}

func federationMember(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("federation member", flag.ContinueOnError)
	cf := addCentreFlags(fs, "")
	out := fs.String("out", "", "write the member JSON here instead of stdout")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Whole seconds: tokens carry their issue time in seconds, and one issued
	// in the key's first second must not count as issued before it.
	m, _, _, err := cf.member(time.Now().UTC().Add(-time.Minute).Truncate(time.Second))
	if err != nil {
		return err
	}
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = fmt.Fprintf(stdout, "%s\n", js)
		return err
	}
	return os.WriteFile(*out, append(js, '\n'), 0o644)
}

func federationAddCentre(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("federation add-centre", flag.ContinueOnError)
	bundle, out, ttl := changeFlags(fs)
	memberFile := fs.String("member", "", "the new centre's member JSON, made by 'liandong federation member' at that centre: public keys only")
	if err := fs.Parse(args); err != nil {
		return err
	}
	now := time.Now().UTC()
	cur, next, err := startChange(*bundle, now)
	if err != nil {
		return err
	}
	if *memberFile == "" {
		return usagef("--member FILE is required (make it with `liandong federation member` at the new centre)")
	}
	js, err := os.ReadFile(*memberFile)
	if err != nil {
		return err
	}
	m, err := decodeMember(*memberFile, js)
	if err != nil {
		return err
	}
	if old, ok := cur.Member(m.ID); ok {
		if old.Removed == nil {
			return fmt.Errorf("centre %q is already a member; use rotate-key to change its keys", m.ID)
		}
		return fmt.Errorf("centre %q was removed at %s; a removed id is not reused — choose another id", m.ID, old.Removed.UTC().Format(time.RFC3339))
	}
	next.Members = append(next.Members, m)
	return writeNext(*out, next, cur, now, *ttl, stdout, "add centre "+m.ID)
}

// decodeMember reads a member file, as `federation member` writes it: one
// member entry with no unknown fields, and nothing after it (a second entry,
// as concatenated files leave, would otherwise be dropped unread).
func decodeMember(name string, js []byte) (auth.Member, error) {
	var m auth.Member
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return auth.Member{}, fmt.Errorf("member %s: %w", name, err)
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return auth.Member{}, fmt.Errorf("member %s: data after the member entry, which ends at byte %d: give one centre's entry per file", name, end)
	}
	return m, nil
}

func federationRemoveCentre(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("federation remove-centre", flag.ContinueOnError)
	bundle, out, ttl := changeFlags(fs)
	id := fs.String("centre", "", "centre id to remove")
	if err := fs.Parse(args); err != nil {
		return err
	}
	now := time.Now().UTC()
	cur, next, err := startChange(*bundle, now)
	if err != nil {
		return err
	}
	m, ok := next.Member(*id)
	if !ok {
		return usagef("centre %q is not a member (--centre)", *id)
	}
	if m.Removed != nil {
		return fmt.Errorf("centre %q was already removed at %s", *id, m.Removed.UTC().Format(time.RFC3339))
	}
	// Entries it signed before now keep verifying (history stays readable);
	// its peers and tokens are refused once the bundle arrives.
	m.Removed = &now
	return writeNext(*out, next, cur, now, *ttl, stdout, "remove centre "+*id)
}

func federationRotateKey(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("federation rotate-key", flag.ContinueOnError)
	bundle, out, ttl := changeFlags(fs)
	centre := fs.String("centre", "", "centre whose key changes")
	kind := fs.String("kind", "record", "record or token")
	keyFile := fs.String("key", "", "the new key file, made by 'liandong keygen'; only its public half is used")
	activate := fs.Duration("activate-in", time.Minute, "the new key becomes valid this long from now, so the bundle reaches every node before anything signed with it")
	retire := fs.Duration("retire-after", 24*time.Hour, "the old keys stay valid this long after the new one starts; what they signed before stays verifiable for ever")
	if err := fs.Parse(args); err != nil {
		return err
	}
	now := time.Now().UTC()
	cur, next, err := startChange(*bundle, now)
	if err != nil {
		return err
	}
	if *keyFile == "" {
		return usagef("--key FILE is required (create it with `liandong keygen --out FILE --prefix %s-rec`)", *centre)
	}
	k, err := auth.LoadKey(*keyFile)
	if err != nil {
		return err
	}
	m, ok := next.Member(*centre)
	if !ok || m.Removed != nil {
		return usagef("centre %q is not a current member (--centre)", *centre)
	}
	var keys *[]auth.Key
	switch *kind {
	case "record":
		keys = &m.RecordKeys
	case "token":
		keys = &m.TokenKeys
	default:
		return usagef("--kind %q: want record or token", *kind)
	}
	if *activate < 0 || *retire < 0 {
		// A negative window would retire the old keys in the past: what the
		// centre signed since would stop verifying wherever it has not
		// arrived yet, and the centre would have no valid key until the new
		// one starts.
		return usagef("--activate-in %v --retire-after %v: want durations of zero or more", *activate, *retire)
	}
	if slices.ContainsFunc(*keys, func(x auth.Key) bool { return x.ID == k.ID }) {
		return fmt.Errorf("key %s is already listed for %s", k.ID, *centre)
	}
	start := now.Add(*activate).Truncate(time.Second) // see federationMember
	end := start.Add(*retire)
	for i := range *keys {
		if old := &(*keys)[i]; old.NotAfter == nil || old.NotAfter.After(end) {
			old.NotAfter = &end
		}
	}
	*keys = append(*keys, auth.Key{ID: k.ID, Public: ed25519.PublicKey(k.Public), NotBefore: start})
	return writeNext(*out, next, cur, now, *ttl, stdout, fmt.Sprintf("rotate %s key of %s to %s (valid from %s; old keys retire at %s)",
		*kind, *centre, k.ID, start.Format(time.RFC3339), end.Format(time.RFC3339)))
}

// isRecordKey reports whether b lists kid as a member's record key.
func isRecordKey(b *auth.Bundle, kid string) bool {
	for _, m := range b.Members {
		if slices.ContainsFunc(m.RecordKeys, func(k auth.Key) bool { return k.ID == kid }) {
			return true
		}
	}
	return false
}

// revokeForever is the Before of a revocation that refuses everything its
// subject signed, whenever dated.
var revokeForever = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

func federationRevoke(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("federation revoke", flag.ContinueOnError)
	bundle, out, ttl := changeFlags(fs)
	subject := fs.String("subject", "", "jti:<token id>, sub:<centre>/<partner>, key:<key id> or peer:<peer id>")
	before := fs.String("before", "", "refuse what was issued or signed before this time (RFC 3339; default now, and for a token key: for ever, since a leaked key can sign at any time it likes)")
	forever := fs.Bool("forever", false, "refuse everything the subject signed, whenever dated; a record key needs this or --before (see the help)")
	reason := fs.String("reason", "", "why, for the record")
	if err := fs.Parse(args); err != nil {
		return err
	}
	now := time.Now().UTC()
	cur, next, err := startChange(*bundle, now)
	if err != nil {
		return err
	}
	at := now
	if *forever && *before != "" {
		return usagef("--forever and --before say different things: give one")
	}
	if kid, ok := strings.CutPrefix(*subject, auth.RevokeKey); ok && *before == "" {
		// Whoever holds a leaked key signs with whatever time suits them:
		// a revocation before now would leave their later-dated tokens and
		// entries valid (and JWKS, which drops any revoked key, would tell
		// partners otherwise). For a token key that costs nothing but its
		// tokens. A record key signed its centre's log: refusing all it
		// signed refuses the log from its first entry at every centre that
		// does not hold it yet, and everything chained after it too, so
		// the operator must choose.
		if isRecordKey(cur, kid) && !*forever {
			return usagef("--subject %s is a record key: give --before TIME, the time it may have leaked (entries it signed before stay verifiable), "+
				"or --forever (every entry it ever signed is refused: its centre's log, from its first entry, can then reach no centre that does not hold it already)", *subject)
		}
		at = revokeForever
	}
	if *forever {
		at = revokeForever
	}
	if *before != "" {
		if at, err = time.Parse(time.RFC3339, *before); err != nil {
			return usagef("--before %q: want RFC 3339, e.g. 2026-11-27T08:00:00Z", *before)
		}
	}
	next.Revocations = append(next.Revocations, auth.Revocation{Subject: *subject, Before: at.UTC(), Reason: *reason})
	if err := next.Validate(); err != nil {
		return usagef("--subject: %v", err)
	}
	what := "revoke " + *subject
	if at.Equal(revokeForever) {
		what += " outright (everything it signed, whenever dated)"
	}
	return writeNext(*out, next, cur, now, *ttl, stdout, what)
}

func federationSign(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("federation sign", flag.ContinueOnError)
	path := fs.String("bundle", "", "the bundle to sign, in place (unsigned or partly signed)")
	keyFile := fs.String("key", "", "this signer's key file")
	current := fs.String("current", "", "the bundle nodes hold now (GET /v1/bundle): give it when this version changes the signers; then a signer of either version may sign, and sign says which threshold the signatures meet")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" || *keyFile == "" {
		return usagef("--bundle FILE and --key FILE are required")
	}
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
	k, err := auth.LoadKey(*keyFile)
	if err != nil {
		return err
	}
	// Nodes count the signatures of the signers of the bundle they hold
	// (auth.VerifyBundle), which are this version's unless it changes them; a
	// node that starts from this file alone, and the next change built on it,
	// count this version's own. A key that neither counts would be carried,
	// and look counted here, but by no node: the bundle would look ready and
	// be refused. So would a listed signer's key outside its window or
	// revoked, which nodes skip.
	now := time.Now()
	if *current == "" {
		listed, why := signerStanding(b, k, now)
		switch {
		case !listed:
			return usagef("key %s (%s) is not one of the bundle's signers (%s): sign with one of theirs; if this version changes the signers, nodes count those of the bundle they hold: give it with --current FILE", k.ID, *keyFile, signerIDs(b))
		case why != "":
			return usagef("key %s (%s) is a signer of v%d, but %s: no node reading this version counts its signature; sign with another of its signers (%s). If this version is the one that changes it, nodes holding the current version count that version's signers: give it with --current FILE",
				k.ID, *keyFile, b.Version, why, signerIDs(b))
		}
	}
	var cur *auth.Bundle
	var note string // why k counts for one of the two versions only
	if *current != "" {
		if cur, _, _, err = server.LoadSignedBundleAllowExpired(*current, nil, now); err != nil {
			return err
		}
		if err := auth.CheckUpgrade(cur, b); err != nil || b.Version <= cur.Version {
			if err == nil {
				err = fmt.Errorf("v%d is not newer", b.Version)
			}
			return usagef("--current %s (v%d) is not a version that v%d succeeds: %v; give the bundle nodes hold now (GET /v1/bundle on any node)", *current, cur.Version, b.Version, err)
		}
		inCur, whyCur := signerStanding(cur, k, now)
		inNext, whyNext := signerStanding(b, k, now)
		switch {
		case !inCur && !inNext:
			return usagef("key %s (%s) is a signer neither of the bundle nodes hold (%s, v%d: %s) nor of v%d (%s): sign with one of theirs",
				k.ID, *keyFile, *current, cur.Version, signerIDs(cur), b.Version, signerIDs(b))
		case (!inCur || whyCur != "") && (!inNext || whyNext != ""):
			var whys []string
			for _, w := range []string{whyCur, whyNext} {
				if w != "" {
					whys = append(whys, w)
				}
			}
			return usagef("key %s (%s): %s, so no node counts its signature; sign with a signer of v%d (%s) or of v%d (%s) valid now",
				k.ID, *keyFile, strings.Join(whys, "; "), cur.Version, signerIDs(cur), b.Version, signerIDs(b))
		case whyCur != "":
			note = fmt.Sprintf("%s counts for v%d only: %s", k.ID, b.Version, whyCur)
		case whyNext != "":
			note = fmt.Sprintf("%s counts for v%d only: %s", k.ID, cur.Version, whyNext)
		}
	}
	if err := sb.Sign(k); err != nil {
		return err
	}
	if err := server.WriteSignedBundle(*path, sb); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signed trust bundle v%d with %s; it now carries %d signature(s): %s\n",
		b.Version, k.ID, len(sb.Signatures), sigIDs(sb))
	own := tally(sb, b, now)
	if cur == nil {
		fmt.Fprintf(stdout, "counted: %d of its signers' signatures, %d required", len(own.counted), own.threshold)
		if !own.met() {
			fmt.Fprintf(stdout, "; it needs %s", own.need())
		}
		fmt.Fprintf(stdout, " (nodes count the signers of the version they hold: if this one changes them, sign with --current FILE to see both)\n")
		return nil
	}
	held := tally(sb, cur, now)
	fmt.Fprintf(stdout, "counted: %d of %d of the current v%d's signers (what nodes holding v%d require); %d of %d of v%d's own (what a node starting from this file alone, and the next change built on it, require)\n",
		len(held.counted), held.threshold, cur.Version, cur.Version, len(own.counted), own.threshold, b.Version)
	switch {
	case held.met() && own.met():
		fmt.Fprintf(stdout, "ready: publish it; it is also the base for the next change\n")
	case held.met():
		fmt.Fprintf(stdout, "nodes holding v%d install it once published, but it is not yet a base for the next change nor a bundle.json a new node can start from: it needs %s\n", cur.Version, own.need())
	case own.met():
		fmt.Fprintf(stdout, "nodes holding v%d refuse it until it carries %s\n", cur.Version, held.need())
	default:
		fmt.Fprintf(stdout, "nodes holding v%d refuse it until it carries %s; read on its own it needs %s\n", cur.Version, held.need(), own.need())
	}
	if note != "" {
		fmt.Fprintf(stdout, "note: %s\n", note)
	}
	if b.Version != cur.Version+1 {
		// Legitimate when a version between was never published; otherwise
		// the counts above are against the wrong version.
		fmt.Fprintf(stdout, "warning: --current is v%d and this is v%d: the counts above hold for nodes that still hold v%d; if v%d or a later one was published, give that as --current instead\n",
			cur.Version, b.Version, cur.Version, cur.Version+1)
	}
	return nil
}

func sigIDs(sb *auth.SignedBundle) string {
	ids := make([]string, 0, len(sb.Signatures))
	for _, s := range sb.Signatures {
		ids = append(ids, s.KeyID)
	}
	return strings.Join(ids, ", ")
}

func federationPublish(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("federation publish", flag.ContinueOnError)
	path := fs.String("bundle", "", "the signed bundle to publish")
	node := fs.String("node", "", "API URL of one node of the federation")
	tokenFile := fs.String("token", "", "file holding an admin token of that node's centre")
	timeout := fs.Duration("timeout", 30*time.Second, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" || *node == "" || *tokenFile == "" {
		return usagef("--bundle FILE, --node URL and --token FILE are required")
	}
	if err := checkNodeURL(*node); err != nil {
		return err
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		return err
	}
	tok, err := os.ReadFile(*tokenFile)
	if err != nil {
		return fmt.Errorf("read token: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	res, err := client.New(*node, strings.TrimSpace(string(tok))).PublishBundle(ctx, data)
	if err != nil {
		var p *client.Problem
		if errors.As(err, &p) {
			return fmt.Errorf("the node refused the bundle: %s", p.Detail)
		}
		return err
	}
	if !res.Installed {
		fmt.Fprintf(stdout, "%s already runs on trust bundle v%d; nothing to do\n", *node, res.Version)
		return nil
	}
	fmt.Fprintf(stdout, "trust bundle v%d installed at %s; sync carries it to the other centres (watch `liandong status`)\n", res.Version, *node)
	return nil
}

// federationAddPeer lists more libp2p peers (new replicas) for a centre.
// A replica's peer id must be in the bundle before its centre adds it to raft
// (the leader refuses it otherwise) and before other centres accept its
// connections; without this command a new replica needed a hand-built bundle.
// The replica's key stays on its machine: only the id it printed is needed.
// Several ids (--peer-id repeated, or a comma list) make one version, each
// checked as one alone would be, and nothing is written if any is refused: a
// centre growing by two replicas needs one round of signatures, not two.
func federationAddPeer(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("federation add-peer", flag.ContinueOnError)
	bundle, out, ttl := changeFlags(fs)
	centre := fs.String("centre", "", "the centre the replicas belong to")
	var given []string
	fs.Func("peer-id", "a replica's libp2p peer `ID`, as 'liandong keygen --p2p' printed it; repeatable, or several comma-separated", func(s string) error {
		for id := range strings.SplitSeq(s, ",") {
			given = append(given, strings.TrimSpace(id))
		}
		return nil
	})
	addrs := fs.String("addr", "", "comma-separated multiaddrs where the other centres reach it, e.g. /ip4/10.0.2.12/tcp/8712,/ip4/10.0.2.12/udp/8712/quic-v1; with several peer ids, each ends in /p2p/ID to say whose it is")
	if err := fs.Parse(args); err != nil {
		return err
	}
	now := time.Now().UTC()
	cur, next, err := startChange(*bundle, now)
	if err != nil {
		return err
	}
	if len(given) == 0 {
		return usagef("--peer-id ID is required (`liandong keygen --p2p --out FILE` prints it)")
	}
	m, ok := next.Member(*centre)
	if !ok {
		return usagef("--centre %q is not a member of the bundle", *centre)
	}
	if m.Removed != nil {
		return usagef("--centre %q was removed at %s", *centre, m.Removed.UTC().Format(time.RFC3339))
	}
	var pids []peer.ID
	for _, id := range given {
		if id == "" {
			return usagef("--peer-id: an empty id in %q", strings.Join(given, ","))
		}
		pid, err := peer.Decode(id)
		if err != nil {
			return usagef("--peer-id %q is not a libp2p peer id: %v", id, err)
		}
		// Nodes match the bundle against an id's base58 text (12D3KooW…):
		// another spelling libp2p reads (a CID, bafz…) would admit nothing
		// and pass the listed and revoked checks below unseen.
		if owner, listed := listedPeer(cur, pid.String()); listed {
			return usagef("--peer-id %s is already listed for %s", pid, owner)
		}
		// Any peer: revocation refuses the peer for good
		// (auth.Bundle.PeerAllowed): listing it again would admit nothing.
		if _, revoked := cur.RevokedBefore(auth.RevokePeer + pid.String()); revoked {
			return usagef("--peer-id %s is revoked in bundle v%d; make the replica a new identity (`liandong keygen --p2p`)", pid, cur.Version)
		}
		if slices.Contains(pids, pid) {
			return usagef("--peer-id %s is given twice", pid)
		}
		pids = append(pids, pid)
	}
	lists := make(map[peer.ID][]string, len(pids))
	for a := range strings.SplitSeq(*addrs, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		ma, err := multiaddr.NewMultiaddr(a)
		if err != nil {
			return usagef("--addr %q: %v", a, err)
		}
		// A node refuses to dial a listed peer any of whose addresses
		// names another peer (exchange's bundlePeerInfo).
		_, named := peer.SplitAddr(ma)
		owner := named
		switch {
		case named == "" && len(pids) == 1:
			owner = pids[0]
		case named == "":
			return usagef("--addr %q names no peer, and %d are given: end it in /p2p/ID to say whose it is", a, len(pids))
		case !slices.Contains(pids, named):
			return usagef("--addr %q names peer %s, not %s", a, named, peerList(pids))
		}
		lists[owner] = append(lists[owner], a)
	}
	var names []string
	for _, pid := range pids {
		m.Peers = append(m.Peers, auth.Peer{ID: pid.String(), Addrs: lists[pid]})
		names = append(names, pid.String())
	}
	if err := next.Validate(); err != nil {
		return usagef("%v", err)
	}
	what := "add peer"
	if len(names) > 1 {
		what = "add peers"
	}
	return writeNext(*out, next, cur, now, *ttl, stdout, what+" "+strings.Join(names, ", ")+" to "+*centre)
}

// peerList is ids as a message names them.
func peerList(ids []peer.ID) string {
	s := make([]string, len(ids))
	for i, id := range ids {
		s[i] = id.String()
	}
	return strings.Join(s, " or ")
}

// listedPeer says which centre of b lists peerID, removed centres included.
func listedPeer(b *auth.Bundle, peerID string) (string, bool) {
	for _, m := range b.Members {
		for _, p := range m.Peers {
			if p.ID == peerID {
				return m.ID, true
			}
		}
	}
	return "", false
}

// federationRenew makes the next version with nothing changed but its expiry:
// the LiandongBundleExpiring runbook's answer when nothing else is due, which
// before had to be dressed up as some other change (every one refuses a no-op).
func federationRenew(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("federation renew", flag.ContinueOnError)
	bundle, out, ttl := changeFlags(fs)
	shorten := fs.Bool("shorten", false, "allow a next version that expires before the current one does (to cut its life short on purpose)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ttl <= 0 {
		return usagef("--ttl D is required: the next version expires D from now (e.g. --ttl 8760h)")
	}
	now := time.Now().UTC()
	cur, next, err := startChange(*bundle, now)
	if err != nil {
		return err
	}
	// A renewal is asked for to lengthen a bundle's life: --ttl counted
	// from now is easily read as "this much more", and --ttl 1h on a
	// bundle with a month left made one that lapsed within the hour,
	// taking every centre's trust with it.
	if end := now.Add(*ttl); end.Before(cur.ExpiresAt) && !*shorten {
		left := cur.ExpiresAt.Sub(now).Truncate(time.Minute)
		return usagef("--ttl %v would end the bundle at %s, before v%d's own expiry (%s, %v from now): "+
			"a renewal counts --ttl from now, so give one longer than %v (a year more: --ttl %dh), or add --shorten to end its life sooner on purpose",
			*ttl, end.Format(time.RFC3339), cur.Version, cur.ExpiresAt.UTC().Format(time.RFC3339), left, left, int(left.Hours())+1+8760)
	}
	return writeNext(*out, next, cur, now, *ttl, stdout, "renew until "+now.Add(*ttl).Format(time.RFC3339))
}
