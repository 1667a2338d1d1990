package chaos

import (
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// OpKind is what a client asked of a record at its origin centre.
type OpKind uint8

const (
	// Read is GET /v1/records/{id}?consistent=true.
	Read OpKind = iota
	// Put is PUT /v1/records/{id}, with If-Match when IfMatch is not 0.
	Put
	// Delete is DELETE /v1/records/{id}, with If-Match when IfMatch is not 0.
	Delete
)

func (k OpKind) String() string {
	return [...]string{"read", "put", "delete"}[k]
}

// Status is how an operation ended.
type Status uint8

const (
	// Unknown: no answer (timeout, connection cut, a 5xx): the operation may
	// or may not have taken effect. Its return time is infinite.
	Unknown Status = iota
	// OK: 2xx. Version is the record's version (for a delete, the tombstone's);
	// Tag the title a read saw.
	OK
	// Precondition: 412, If-Match did not hold; nothing changed.
	Precondition
	// NotFound: 404 and the record was never written (or not visible).
	NotFound
	// Deleted: 404 "deleted at version Version".
	Deleted
)

func (s Status) String() string {
	return [...]string{"unknown", "ok", "412", "404", "404-deleted"}[s]
}

// Input is an operation on one record.
type Input struct {
	Key     string
	Kind    OpKind
	IfMatch uint64
	// Tag is the title a Put writes; unique per operation.
	Tag string
}

// Output is what the client saw.
type Output struct {
	Status  Status
	Version uint64
	Tag     string
}

// State is one record at its origin: version 0 means never written.
type State struct {
	Version uint64
	Deleted bool
	Tag     string
}

func (s State) live() bool { return s.Version > 0 && !s.Deleted }

// apply returns the state after in, whether it took effect, and the status the
// store answers when it did not.
func apply(s State, in Input) (State, bool, Status) {
	switch in.Kind {
	case Put:
		if in.IfMatch != 0 && (!s.live() || s.Version != in.IfMatch) {
			return s, false, Precondition
		}
		return State{Version: s.Version + 1, Tag: in.Tag}, true, OK
	case Delete:
		if !s.live() {
			return s, false, NotFound
		}
		if in.IfMatch != 0 && s.Version != in.IfMatch {
			return s, false, Precondition
		}
		return State{Version: s.Version + 1, Deleted: true}, true, OK
	}
	return s, false, OK
}

// step is the register's sequential specification. An Unknown write is
// linearized like any other: where it happened (its effect if the precondition
// holds there), or after everything (it never happened), which its infinite
// return time allows.
func step(state, input, output any) (bool, any) {
	s, in, out := state.(State), input.(Input), output.(Output)
	if in.Kind == Read {
		switch out.Status {
		case OK:
			return s.live() && s.Version == out.Version && s.Tag == out.Tag, s
		case Deleted:
			return s.Deleted && s.Version == out.Version, s
		case NotFound:
			return s.Version == 0, s
		}
		return true, s // an unknown read says nothing
	}
	next, took, refusal := apply(s, in)
	switch out.Status {
	case Unknown:
		return true, next
	case OK:
		return took && next.Version == out.Version, next
	default:
		return !took && refusal == out.Status, s
	}
}

// Model is the porcupine model of the federation's records: one register per
// record id, versions counted by the origin.
var Model = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range history {
			k := op.Input.(Input).Key
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], op)
		}
		sort.Strings(keys)
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, byKey[k])
		}
		return out
	},
	Init: func() any { return State{} },
	Step: step,
	Hash: func(state any) uint64 {
		s := state.(State)
		h := fnv.New64a()
		fmt.Fprintf(h, "%d/%v/%s", s.Version, s.Deleted, s.Tag)
		return h.Sum64()
	},
	DescribeOperation: func(input, output any) string {
		in, out := input.(Input), output.(Output)
		s := in.Kind.String()
		if in.IfMatch != 0 {
			s += fmt.Sprintf(" if-match %d", in.IfMatch)
		}
		if in.Tag != "" {
			s += " " + in.Tag
		}
		s += " → " + out.Status.String()
		if out.Version != 0 {
			s += fmt.Sprintf(" v%d", out.Version)
		}
		if out.Tag != "" {
			s += " " + out.Tag
		}
		return s
	},
	DescribeState: func(state any) string {
		s := state.(State)
		switch {
		case s.Version == 0:
			return "absent"
		case s.Deleted:
			return fmt.Sprintf("deleted v%d", s.Version)
		}
		return fmt.Sprintf("v%d %s", s.Version, s.Tag)
	},
}

// Op is one operation of a history as the harness records it: times are
// nanoseconds since the run began.
type Op struct {
	Client       int
	In           Input
	Out          Output
	Call, Return int64
}

// Linearizable checks a history with porcupine. It returns the result, and for
// a history that is not linearizable, the keys whose history is not, each with
// its operations in call order; visualize, when not empty, is a file to write
// porcupine's HTML visualization to.
func Linearizable(ops []Op, timeout time.Duration, visualize string) (porcupine.CheckResult, []string, error) {
	history := make([]porcupine.Operation, 0, len(ops))
	for _, op := range ops {
		ret := op.Return
		if op.Out.Status == Unknown {
			if op.In.Kind == Read {
				continue
			}
			ret = math.MaxInt64
		}
		history = append(history, porcupine.Operation{ClientId: op.Client, Input: op.In, Call: op.Call, Output: op.Out, Return: ret})
	}
	res, info := porcupine.CheckOperationsVerbose(Model, history, timeout)
	if res != porcupine.Illegal {
		return res, nil, nil
	}
	var bad []string
	for _, part := range Model.Partition(history) {
		if porcupine.CheckOperations(Model, part) {
			continue
		}
		var b strings.Builder
		fmt.Fprintf(&b, "record %s:", part[0].Input.(Input).Key)
		sort.SliceStable(part, func(i, j int) bool { return part[i].Call < part[j].Call })
		for _, op := range part {
			ret := "∞"
			if op.Return != math.MaxInt64 {
				ret = fmt.Sprintf("%.3fs", float64(op.Return)/1e9)
			}
			fmt.Fprintf(&b, "\n  c%d [%.3fs, %s] %s", op.ClientId, float64(op.Call)/1e9, ret, Model.DescribeOperation(op.Input, op.Output))
		}
		bad = append(bad, b.String())
	}
	var err error
	if visualize != "" {
		err = porcupine.VisualizePath(Model, info, visualize)
	}
	return res, bad, err
}
