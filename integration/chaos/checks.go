package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// LeaderSeen is one poll of a replica's GET /v1/federation "replica" block.
type LeaderSeen struct {
	At      time.Duration
	Replica string
	State   string // raft state: Leader, Follower, Candidate …
	Term    uint64
	Leader  string // the leader id the replica knows of
}

// OneLeaderPerTerm returns a violation for every term in which two replicas
// said they were the leader. Only a replica's claim about itself counts: a
// follower's idea of the leader and its term are read one after the other, so
// it may pair a new term with the old leader for an instant.
func OneLeaderPerTerm(seen []LeaderSeen) (terms int, violations []string) {
	claims := map[uint64]map[string]time.Duration{}
	for _, s := range seen {
		if s.State != "Leader" || s.Term == 0 {
			continue
		}
		if claims[s.Term] == nil {
			claims[s.Term] = map[string]time.Duration{}
		}
		if _, ok := claims[s.Term][s.Replica]; !ok {
			claims[s.Term][s.Replica] = s.At
		}
	}
	var ts []uint64
	for t := range claims {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	for _, t := range ts {
		if len(claims[t]) > 1 {
			var who []string
			for r, at := range claims[t] {
				who = append(who, fmt.Sprintf("%s (first at %.1fs)", r, at.Seconds()))
			}
			sort.Strings(who)
			violations = append(violations, fmt.Sprintf("term %d has %d leaders: %s", t, len(who), strings.Join(who, ", ")))
		}
	}
	return len(ts), violations
}

// Change is one entry of a replica's change feed.
type Change struct {
	ID         string
	Origin     string
	Version    uint64
	Visibility string
	Deleted    bool
}

func shared(c Change) bool { return c.Visibility == "federation" || c.Visibility == "public" }

// FeedApplyOnce checks a replica's whole change feed (read with an admin token of
// its centre) against its log heads (origin → seq): every (record, version) at
// most once; the centre's own records at versions 1, 2, 3 … without a gap, and
// its own log as long as the shared changes (and withdrawals) among them; for
// every other origin, one change per log entry and rising versions. Together:
// no entry applied twice, none skipped.
func FeedApplyOnce(name, centre string, feed []Change, heads map[string]uint64) []string {
	var out []string
	bad := func(format string, args ...any) {
		if len(out) < 10 {
			out = append(out, name+": "+fmt.Sprintf(format, args...))
		}
	}
	seen := map[string]bool{}
	last := map[string]Change{}
	perOrigin := map[string]uint64{}
	var ownLogged uint64
	for i, c := range feed {
		key := fmt.Sprintf("%s@%d", c.ID, c.Version)
		if seen[key] {
			bad("change %d: %s is in the feed twice", i, key)
		}
		seen[key] = true
		prev, had := last[c.ID]
		if c.Origin == centre {
			if want := prev.Version + 1; c.Version != want {
				bad("change %d: own record %s at v%d follows v%d", i, c.ID, c.Version, prev.Version)
			}
			if shared(c) || had && shared(prev) && !prev.Deleted {
				ownLogged++
			}
		} else {
			perOrigin[c.Origin]++
			if had && c.Version <= prev.Version {
				bad("change %d: %s at v%d after v%d", i, c.ID, c.Version, prev.Version)
			}
			if c.Visibility == "private" && !c.Deleted {
				bad("change %d: private record %s of %s is here", i, c.ID, c.Origin)
			}
		}
		last[c.ID] = c
	}
	if heads[centre] != ownLogged {
		bad("own log head is seq %d, the feed has %d shared changes and withdrawals", heads[centre], ownLogged)
	}
	for origin, n := range perOrigin {
		if heads[origin] != n {
			bad("%d changes of %s in the feed, its log head is seq %d", n, origin, heads[origin])
		}
	}
	for origin, seq := range heads {
		if origin != centre && seq > 0 && perOrigin[origin] == 0 {
			bad("log head of %s is seq %d but no change of it is in the feed", origin, seq)
		}
	}
	return out
}

// Summary adds up runs of the harness.
type Summary struct {
	Schedules int
	Faults    map[Kind]int
	Ops       map[string]int // "put ok", "read unknown" …
	Terms     int            // raft terms observed with a leader
	// Inconclusive counts linearizability checks that timed out.
	Inconclusive int
	// Probes counts token probes at replicas with a skewed clock that were
	// judged (a wrong answer is a violation); Unjudged those too close to a
	// boundary, or that got no answer.
	Probes, Unjudged int
	Violations       []string
	Elapsed          time.Duration
}

// Fault counts an injected fault.
func (s *Summary) Fault(k Kind) {
	if s.Faults == nil {
		s.Faults = map[Kind]int{}
	}
	s.Faults[k]++
}

// Op counts an operation.
func (s *Summary) Op(op Op) {
	if s.Ops == nil {
		s.Ops = map[string]int{}
	}
	s.Ops[op.In.Kind.String()+" "+op.Out.Status.String()]++
}

// Add merges another summary into s.
func (s *Summary) Add(o Summary) {
	s.Schedules += o.Schedules
	for k, n := range o.Faults {
		if s.Faults == nil {
			s.Faults = map[Kind]int{}
		}
		s.Faults[k] += n
	}
	for k, n := range o.Ops {
		if s.Ops == nil {
			s.Ops = map[string]int{}
		}
		s.Ops[k] += n
	}
	s.Terms += o.Terms
	s.Inconclusive += o.Inconclusive
	s.Probes += o.Probes
	s.Unjudged += o.Unjudged
	s.Violations = append(s.Violations, o.Violations...)
	s.Elapsed += o.Elapsed
}

func (s Summary) String() string {
	var b strings.Builder
	total := 0
	for _, n := range s.Faults {
		total += n
	}
	fmt.Fprintf(&b, "schedules %d, wall time %v\n", s.Schedules, s.Elapsed.Round(time.Second))
	fmt.Fprintf(&b, "faults injected %d:", total)
	for _, k := range Kinds {
		if n := s.Faults[k]; n > 0 {
			fmt.Fprintf(&b, " %s %d,", k, n)
		}
	}
	ops := 0
	var kinds []string
	for k, n := range s.Ops {
		ops += n
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	fmt.Fprintf(&b, "\noperations %d: %s\n", ops, strings.Join(kinds, ", "))
	fmt.Fprintf(&b, "raft terms with a leader observed %d; linearizability checks inconclusive (timed out) %d\n", s.Terms, s.Inconclusive)
	if s.Probes+s.Unjudged > 0 {
		fmt.Fprintf(&b, "token probes at skewed clocks judged %d, not judged %d\n", s.Probes, s.Unjudged)
	}
	fmt.Fprintf(&b, "violations %d", len(s.Violations))
	for _, v := range s.Violations {
		fmt.Fprintf(&b, "\n  %s", v)
	}
	return b.String()
}

// Seen is a read that may be stale: served from one replica's own state, or at a
// centre that is not the record's origin.
type Seen struct {
	Where, Key string
	Out        Output
}

// Written checks reads that may be stale but must not invent anything: a live
// record's title is the tag of a put on that record, at the version that put was
// acknowledged with (when it was), and no read is ahead of the record's final
// version at its origin (final; records missing from it are not judged on that).
func Written(ops []Op, reads []Seen, final map[string]State) []string {
	type write struct {
		key     string
		version uint64 // 0: the outcome is unknown
	}
	puts := map[string]write{}
	for _, op := range ops {
		if op.In.Kind == Put && op.Out.Status != Precondition {
			puts[op.In.Tag] = write{op.In.Key, op.Out.Version}
		}
	}
	var out []string
	bad := func(format string, args ...any) {
		if len(out) < 10 {
			out = append(out, fmt.Sprintf(format, args...))
		}
	}
	for _, r := range reads {
		f, known := final[r.Key]
		if known && r.Out.Version > f.Version {
			bad("%s served %s at v%d, beyond its final version v%d at the origin", r.Where, r.Key, r.Out.Version, f.Version)
		}
		if r.Out.Status != OK {
			continue
		}
		w, ok := puts[r.Out.Tag]
		switch {
		case !ok || w.key != r.Key:
			bad("%s served %s v%d with title %q, which no put on it wrote", r.Where, r.Key, r.Out.Version, r.Out.Tag)
		case w.version != 0 && w.version != r.Out.Version:
			bad("%s served %s v%d with title %q, which was acknowledged as v%d", r.Where, r.Key, r.Out.Version, r.Out.Tag, w.version)
		}
	}
	return out
}

// Token probe outcomes: what a replica whose clock is off should answer to a
// token issued at the moment of the probe.
const (
	ProbeAccepted    = "accepted"
	ProbeNotYetValid = "not valid yet" // as auth.ErrTokenNotYetValid says it
	ProbeExpired     = "expired"       // as auth.ErrTokenExpired says it
)

// TokenProbe says what a replica whose clock is offset should answer to a
// token issued now for ttl, given the verifier's leeway: refused as not yet
// valid when its clock is behind by more than the leeway, as expired when it
// is ahead past the token's expiry by more than the leeway, accepted
// otherwise. Within margin of a boundary (the probe takes time, and the offset
// is applied by polling) it says nothing: "".
func TokenProbe(offset, ttl, leeway, margin time.Duration) string {
	switch {
	case offset < -leeway-margin:
		return ProbeNotYetValid
	case offset > ttl+leeway+margin:
		return ProbeExpired
	case offset > -leeway+margin && offset < ttl+leeway-margin:
		return ProbeAccepted
	}
	return ""
}
