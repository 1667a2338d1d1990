// Package chaos is the pure part of the integration chaos harness: the seeded
// fault schedule, the porcupine model of a record, and the checkers that judge
// what the harness observed (leaders per term, change feeds, a run's summary).
// It starts no process and opens no socket, so all of it is unit-tested; the
// harness that drives real liandong processes is integration/chaos_*_test.go.
package chaos

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Kind names a fault. Each fault is applied, held, then healed by the harness.
type Kind string

// The faults of the raft lane (the centre that runs three replicas) and of the
// federation lane (the single-replica centres and the links between centres).
const (
	KillReplica    Kind = "kill-replica"         // SIGKILL one replica, restart it after Hold
	KillLeader     Kind = "kill-leader"          // SIGKILL the replica that leads, restart after Hold
	PauseReplica   Kind = "pause-replica"        // SIGSTOP one replica for Hold (longer than the election timeout), SIGCONT
	PauseLeader    Kind = "pause-leader"         // SIGSTOP the leader for Hold, SIGCONT: a deposed leader wakes up
	RestartReplica Kind = "restart-replica"      // SIGTERM one replica (leadership hand-over), start it again
	KillAll        Kind = "kill-raft-centre"     // SIGKILL every replica of the raft centre, restart all after Hold
	KillCentre     Kind = "kill-centre"          // SIGKILL a single-replica centre, restart after Hold
	PauseCentre    Kind = "pause-centre"         // SIGSTOP a single-replica centre for Hold, SIGCONT
	RestartCentre  Kind = "restart-centre"       // SIGTERM a centre and start it again
	Isolate        Kind = "partition-isolate"    // a centre refuses every other centre for Hold
	CutLinks       Kind = "partition-bridge"     // a centre refuses one or two others; the rest relay (a bridge)
	IsolateReplica Kind = "raft-isolate-replica" // cut one replica off its raft group (clients still reach it)
	IsolateLeader  Kind = "raft-isolate-leader"  // cut the leader off its raft group: a deposed leader keeps serving clients
	SkewReplica    Kind = "clock-skew-replica"   // offset one replica's clock by Offset for Hold, then set it right
	SkewLeader     Kind = "clock-skew-leader"    // offset the leader's clock: it stamps the centre's writes
	SkewCentre     Kind = "clock-skew-centre"    // offset a single-replica centre's clock
	OneWay         Kind = "partition-one-way"    // a centre drops the sync streams one other opens to it, or refuses to open its own to it
	GaterCut       Kind = "partition-gater"      // a centre restarted with its connection gater refusing others, restarted again to heal
)

// Kinds lists every fault kind in a fixed order, for summaries.
var Kinds = []Kind{KillReplica, KillLeader, PauseReplica, PauseLeader, RestartReplica, KillAll,
	KillCentre, PauseCentre, RestartCentre, Isolate, CutLinks, IsolateReplica, IsolateLeader,
	SkewReplica, SkewLeader, SkewCentre, OneWay, GaterCut}

// Lane names which faults can overlap: one fault at a time per lane, the two
// lanes run side by side (they touch disjoint processes).
const (
	LaneRaft       = "raft"
	LaneFederation = "federation"
)

// Fault is one step of a schedule. At is when the harness applies it, relative
// to the start of the fault period; a lane that runs late (a slow restart)
// applies its next fault at once.
type Fault struct {
	Lane string
	At   time.Duration
	Kind Kind
	// Centre is the centre the fault touches.
	Centre string
	// Replica is the replica index for KillReplica, PauseReplica and
	// RestartReplica; -1 otherwise (the leader is found when the fault runs).
	Replica int
	// Block lists the centres Centre refuses during a partition (one, for OneWay).
	Block []string
	// Inbound says which way a OneWay cut goes: true, Centre drops the sync
	// streams Block[0] opens to it; false, Centre refuses to open streams to
	// Block[0]. Either way the other direction still works.
	Inbound bool
	// Offset is added to the target's clock by a clock skew.
	Offset time.Duration
	// Hold is how long the fault lasts before it is healed.
	Hold time.Duration
}

func (f Fault) String() string {
	target := f.Centre
	if f.Replica >= 0 {
		target = fmt.Sprintf("%s/r%d", f.Centre, f.Replica+1)
	}
	s := fmt.Sprintf("%6.1fs %-10s %-18s %-12s hold %.1fs", f.At.Seconds(), f.Lane, f.Kind, target, f.Hold.Seconds())
	switch {
	case f.Kind == OneWay && f.Inbound:
		s += " dropping streams from " + strings.Join(f.Block, ",")
	case f.Kind == OneWay:
		s += " refusing streams to " + strings.Join(f.Block, ",")
	case len(f.Block) > 0:
		s += " refusing " + strings.Join(f.Block, ",")
	}
	if f.Offset != 0 {
		s += fmt.Sprintf(" clock %+v", f.Offset)
	}
	return s
}

// Topology is what a schedule may touch.
type Topology struct {
	// RaftCentre runs Replicas replicas (3); Singles run one each.
	RaftCentre string
	Replicas   int
	Singles    []string
	// Partitions says whether the harness can cut links between centres;
	// RaftPartitions, whether it can cut a replica off its raft group.
	Partitions     bool
	RaftPartitions bool
	// LiveFaults says whether the harness can offset a replica's clock and cut
	// one direction of a link while the processes run (the fault hooks of a
	// failpoints build); GaterCuts, whether it can restart a centre with its
	// connection gater refusing others.
	LiveFaults bool
	GaterCuts  bool
	// ElectionTimeout is the raft election timeout; pauses last longer.
	ElectionTimeout time.Duration
}

// Generate returns the schedule of seed for a fault period of d: the same seed,
// period and topology give the same schedule. Faults of a lane never overlap;
// each starts 0.5–3 s after the previous one was due to end, and each ends
// within the period.
func Generate(seed int64, d time.Duration, topo Topology) []Fault {
	if topo.ElectionTimeout <= 0 {
		topo.ElectionTimeout = time.Second
	}
	var out []Fault
	if topo.Replicas > 1 {
		out = append(out, lane(rand.New(rand.NewPCG(uint64(seed), 0x7261667421)), d, func(r *rand.Rand) Fault {
			return raftFault(r, topo)
		})...)
	}
	if len(topo.Singles) > 0 {
		out = append(out, lane(rand.New(rand.NewPCG(uint64(seed), 0x6665646572)), d, func(r *rand.Rand) Fault {
			return federationFault(r, topo)
		})...)
	}
	slices.SortStableFunc(out, func(a, b Fault) int { return int(a.At - b.At) })
	return out
}

func lane(r *rand.Rand, d time.Duration, next func(*rand.Rand) Fault) []Fault {
	var out []Fault
	at := between(r, 500*time.Millisecond, 2*time.Second)
	for at < d {
		f := next(r)
		f.At = at
		if f.At+f.Hold > d {
			break // it would not be healed in time
		}
		out = append(out, f)
		at += f.Hold + between(r, 500*time.Millisecond, 3*time.Second)
	}
	return out
}

func between(r *rand.Rand, lo, hi time.Duration) time.Duration {
	return lo + time.Duration(r.Int64N(int64(hi-lo)))
}

func raftFault(r *rand.Rand, topo Topology) Fault {
	f := Fault{Lane: LaneRaft, Centre: topo.RaftCentre, Replica: -1}
	// Drawn only with LiveFaults, so that schedules without them stay as they were.
	if topo.LiveFaults && r.IntN(100) < 15 {
		if r.IntN(2) == 0 {
			f.Kind, f.Replica = SkewReplica, r.IntN(topo.Replicas)
		} else {
			f.Kind = SkewLeader
		}
		f.Offset = skewOffset(r)
		f.Hold = between(r, 2*time.Second, 8*time.Second)
		return f
	}
	if topo.RaftPartitions && r.IntN(100) < 30 {
		if r.IntN(2) == 0 {
			f.Kind, f.Replica = IsolateReplica, r.IntN(topo.Replicas)
		} else {
			f.Kind = IsolateLeader
		}
		f.Hold = between(r, topo.ElectionTimeout*2, topo.ElectionTimeout*8)
		return f
	}
	// Weights: kills and pauses of the leader are the interesting ones.
	switch n := r.IntN(100); {
	case n < 20:
		f.Kind, f.Replica = KillReplica, r.IntN(topo.Replicas)
		f.Hold = between(r, time.Second, 6*time.Second)
	case n < 42:
		f.Kind = KillLeader
		f.Hold = between(r, time.Second, 6*time.Second)
	case n < 57:
		f.Kind, f.Replica = PauseReplica, r.IntN(topo.Replicas)
		f.Hold = between(r, topo.ElectionTimeout*3/2, topo.ElectionTimeout*5)
	case n < 77:
		f.Kind = PauseLeader
		f.Hold = between(r, topo.ElectionTimeout*3/2, topo.ElectionTimeout*5)
	case n < 90:
		f.Kind, f.Replica = RestartReplica, r.IntN(topo.Replicas)
	default:
		f.Kind = KillAll
		f.Hold = between(r, time.Second, 4*time.Second)
	}
	return f
}

func federationFault(r *rand.Rand, topo Topology) Fault {
	f := Fault{Lane: LaneFederation, Centre: topo.Singles[r.IntN(len(topo.Singles))], Replica: -1}
	if topo.LiveFaults {
		switch n := r.IntN(100); {
		case n < 12:
			f.Kind = SkewCentre
			f.Offset = skewOffset(r)
			f.Hold = between(r, 2*time.Second, 8*time.Second)
			return f
		case n < 27:
			f.Kind = OneWay
			all := others(topo, f.Centre)
			f.Block = []string{all[r.IntN(len(all))]}
			f.Inbound = r.IntN(2) == 0
			f.Hold = between(r, 3*time.Second, 8*time.Second)
			return f
		case n < 33 && topo.GaterCuts:
			f.Kind = GaterCut
			all := others(topo, f.Centre)
			r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
			f.Block = all[:1+r.IntN(len(all))] // one link, several, or all: isolation
			slices.Sort(f.Block)
			f.Hold = between(r, 3*time.Second, 8*time.Second)
			return f
		}
	}
	n := r.IntN(100)
	if !topo.Partitions {
		n = n * 55 / 100 // only the first three kinds
	}
	switch {
	case n < 22:
		f.Kind = KillCentre
		f.Hold = between(r, time.Second, 6*time.Second)
	case n < 42:
		f.Kind = PauseCentre
		f.Hold = between(r, 2*time.Second, 6*time.Second)
	case n < 55:
		f.Kind = RestartCentre
	case n < 75:
		f.Kind = Isolate
		f.Block = others(topo, f.Centre)
		f.Hold = between(r, 3*time.Second, 8*time.Second)
	default:
		f.Kind = CutLinks
		all := others(topo, f.Centre)
		r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
		f.Block = all[:1+r.IntN(len(all)-1)] // at least one link stays: a bridge
		slices.Sort(f.Block)
		f.Hold = between(r, 3*time.Second, 8*time.Second)
	}
	return f
}

// skewOffset draws a clock offset of 2 s to 10 min either way, log-uniform, so
// that offsets within the token leeway (30 s) and far beyond it are both common.
func skewOffset(r *rand.Rand) time.Duration {
	lo, hi := math.Log(float64(2*time.Second)), math.Log(float64(10*time.Minute))
	d := time.Duration(math.Exp(lo + r.Float64()*(hi-lo))).Round(100 * time.Millisecond)
	if r.IntN(2) == 0 {
		d = -d
	}
	return d
}

// others lists every centre but c, in a fixed order.
func others(topo Topology, c string) []string {
	var out []string
	for _, o := range append([]string{topo.RaftCentre}, topo.Singles...) {
		if o != c && o != "" {
			out = append(out, o)
		}
	}
	return out
}

// Blocks lists the distinct refusal lists the gater cuts of a schedule use, per
// centre, so the harness can write their config files before the run.
func Blocks(faults []Fault) map[string][][]string {
	out := map[string][][]string{}
	for _, f := range faults {
		if f.Kind != GaterCut || len(f.Block) == 0 {
			continue
		}
		if !slices.ContainsFunc(out[f.Centre], func(b []string) bool { return slices.Equal(b, f.Block) }) {
			out[f.Centre] = append(out[f.Centre], f.Block)
		}
	}
	return out
}
