package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"liandong/auth"
)

// federationSigners builds the next version with signers added or removed
// and/or a new threshold. Nodes install that version on the signatures of the
// signers of the version they hold (the chain of trust); read on its own — a
// node that starts from the file, and startChange, which checks the base of
// every change that way — it must meet its own threshold with its own signers.
// So a version that raises the threshold or hands signing to new keys needs
// both sets of signatures before the next change can be built on it, and the
// messages say so.
func federationSigners(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("federation signers", flag.ContinueOnError)
	bundle, out, ttl := changeFlags(fs)
	var adds, removes []string
	fs.Func("add", "a new signer's public key `FILE` (the KEY.pub `liandong keygen` writes beside KEY, so the key itself stays with its holder); repeatable", func(s string) error {
		adds = append(adds, s)
		return nil
	})
	fs.Func("remove", "key `ID` of a signer to drop; repeatable", func(s string) error {
		removes = append(removes, s)
		return nil
	})
	threshold := fs.Int("threshold", 0, "how many signers' signatures each later version needs (default: keep the current threshold)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	thresholdSet := false
	fs.Visit(func(f *flag.Flag) { thresholdSet = thresholdSet || f.Name == "threshold" })
	if len(adds) == 0 && len(removes) == 0 && !thresholdSet {
		return usagef("say what changes: --add KEY.pub (a new signer), --remove KEYID and/or --threshold N")
	}
	if thresholdSet && *threshold < 1 {
		return usagef("--threshold %d: want 1 or more (the number of signers' signatures each later version needs)", *threshold)
	}
	now := time.Now().UTC()
	cur, next, err := startChange(*bundle, now)
	if err != nil {
		return err
	}
	var what []string
	for _, kid := range removes {
		i := slices.IndexFunc(next.Signers, func(k auth.Key) bool { return k.ID == kid })
		if i < 0 {
			return usagef("--remove %s: not a signer of v%d (its signers: %s)", kid, cur.Version, signerIDs(next))
		}
		next.Signers = slices.Delete(next.Signers, i, i+1)
		what = append(what, "remove signer "+kid)
	}
	// A minute back, as for a new member's keys: the key is valid on a signer
	// machine whose clock is a little behind.
	notBefore := now.Add(-time.Minute).Truncate(time.Second)
	for _, path := range adds {
		id, pub, err := auth.LoadPublicKey(path)
		if err != nil {
			return fmt.Errorf("--add: %w", err)
		}
		if slices.ContainsFunc(cur.Signers, func(k auth.Key) bool { return k.ID == id }) {
			return usagef("--add %s: %s is already a signer of v%d", path, id, cur.Version)
		}
		if j := slices.IndexFunc(next.Signers, func(k auth.Key) bool { return bytes.Equal(k.Public, pub) }); j >= 0 {
			return usagef("--add %s: key %s is the key of signer %s (given twice, or the same key under another id): each signer needs a key of its own", path, id, next.Signers[j].ID)
		}
		if _, revoked := cur.RevokedBefore(auth.RevokeKey + id); revoked {
			return usagef("--add %s: key %s is revoked in v%d, and nodes never count a revoked key's signature: its holder makes a new one with `liandong keygen`", path, id, cur.Version)
		}
		next.Signers = append(next.Signers, auth.Key{ID: id, Public: pub, NotBefore: notBefore})
		what = append(what, "add signer "+id)
	}
	if len(next.Signers) == 0 {
		return usagef("--remove would leave v%d without a signer, and no later version could be signed: add the new signers (--add KEY.pub) in the same change", next.Version+1)
	}
	if thresholdSet {
		if *threshold == cur.Threshold && len(adds) == 0 && len(removes) == 0 {
			return usagef("--threshold %d: v%d already needs %d: nothing changes", *threshold, cur.Version, cur.Threshold)
		}
		next.Threshold = *threshold
		if *threshold != cur.Threshold {
			what = append(what, fmt.Sprintf("threshold %d (was %d)", *threshold, cur.Threshold))
		}
	}
	if next.Threshold > len(next.Signers) {
		if thresholdSet {
			return usagef("--threshold %d: the next version would have only %d signer(s) (%s): add signers with --add, or ask for fewer", next.Threshold, len(next.Signers), signerIDs(next))
		}
		return usagef("the next version would have %d signer(s) (%s) and keep threshold %d, which they could never meet: lower it in the same change with --threshold N (N at most %d)",
			len(next.Signers), signerIDs(next), next.Threshold, len(next.Signers))
	}
	// Signers whose window has closed, or whose key is revoked, are listed
	// but sign nothing a node counts: they do not help meet the threshold.
	var unusable []string
	for _, k := range next.Signers {
		if _, revoked := next.RevokedBefore(auth.RevokeKey + k.ID); revoked || !k.ValidAt(now) {
			unusable = append(unusable, k.ID)
		}
	}
	if usable := len(next.Signers) - len(unusable); next.Threshold > usable {
		return usagef("threshold %d, but only %d of the next version's signers can sign now (%s: retired, not valid yet or revoked): remove them, add new signers (--add), or lower --threshold",
			next.Threshold, usable, strings.Join(unusable, ", "))
	}
	if err := writeNext(*out, next, cur, now, *ttl, stdout, strings.Join(what, ", ")); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "read on its own (by a node that starts from this file, and as the base of the next change) v%d counts its own signers instead: "+
		"it needs %d signature(s) of: %s. Until it carries those too, no change can be built on it, nor can a node start from it. "+
		"Sign it with `liandong federation sign --bundle %s --key KEY --current %s`: it takes a key of either version and says which threshold the signatures meet\n",
		next.Version, next.Threshold, signerIDs(next), *out, *bundle)
	return nil
}

// signerStanding says whether b lists k as a signer (same id and public key)
// and, if it does, why a node would not count k's signature now ("" when it
// would): the signer's window, or a "key:" revocation in b.
func signerStanding(b *auth.Bundle, k *auth.KeyPair, now time.Time) (listed bool, why string) {
	i := slices.IndexFunc(b.Signers, func(s auth.Key) bool { return s.ID == k.ID && bytes.Equal(s.Public, k.Public) })
	if i < 0 {
		return false, ""
	}
	s := b.Signers[i]
	if before, revoked := b.RevokedBefore(auth.RevokeKey + k.ID); revoked {
		// Any revocation of a signer key, whatever its time, stops it
		// counting (auth.VerifyBundle).
		return true, fmt.Sprintf("it is revoked in v%d (key:%s, before %s)", b.Version, k.ID, before.UTC().Format(time.RFC3339))
	}
	switch {
	case now.Before(s.NotBefore):
		return true, fmt.Sprintf("in v%d it is valid only from %s", b.Version, s.NotBefore.UTC().Format(time.RFC3339))
	case s.NotAfter != nil && !now.Before(*s.NotAfter):
		return true, fmt.Sprintf("in v%d it retired at %s", b.Version, s.NotAfter.UTC().Format(time.RFC3339))
	}
	return true, ""
}

// signatureTally is what sb's signatures amount to against one version's
// signers and threshold, as a node counts them.
type signatureTally struct {
	version   uint64
	counted   []string
	threshold int
	missing   []string // signers whose signature is not counted yet
}

func tally(sb *auth.SignedBundle, authority *auth.Bundle, now time.Time) signatureTally {
	counted, _ := sb.CountSignatures(authority, now)
	t := signatureTally{version: authority.Version, counted: counted, threshold: max(authority.Threshold, 1)}
	for _, s := range authority.Signers {
		if !slices.Contains(counted, s.ID) {
			t.missing = append(t.missing, s.ID)
		}
	}
	return t
}

func (t signatureTally) met() bool { return len(t.counted) >= t.threshold }

// need says how many more signatures t needs, and from whom.
func (t signatureTally) need() string {
	return fmt.Sprintf("%d more of: %s", t.threshold-len(t.counted), strings.Join(t.missing, ", "))
}
