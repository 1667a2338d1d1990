package api

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"liandong/schema"
)

// originHolder is a Service that can tell whether it holds records of a
// centre (node.Node.HoldsOrigin).
type originHolder interface {
	HoldsOrigin(origin string) (bool, error)
}

// errOriginForLeader: a follower does not know the origin, but may only be
// behind the leader (the bundle listing a centre just added, or the first of
// its records, not applied here yet); the request goes to the leader, which
// decides (originAtLeader).
var errOriginForLeader = errors.New("an origin this replica does not know: the leader decides")

// checkOrigin refuses an origin= filter that names no centre this node
// knows: a partner who mistyped tianjn was answered an empty list, an empty
// search or a feed that never carried a change, and learnt nothing. A centre
// is known while the trust bundle lists it, removed ones included (their
// records stay readable, or stay as tombstones once purged), and while this
// node holds any record of it, live or deleted, should a bundle no longer
// list it at all. Without a bundle (a Service that has none) nothing is
// refused: there is nothing to judge by.
//
// Both the bundle and the records come through raft, so a replica that is
// behind may not know a centre the group knows. As with a plain cursor past
// the head (checkPlainCursor), only the leader refuses, once a barrier has it
// apply everything committed; a follower answers errOriginForLeader, and a
// leader whose barrier fails takes the filter (an empty answer, as before the
// check) rather than refuse a centre it may not have applied yet.
func (h *handler) checkOrigin(ctx context.Context, origin string) error {
	if origin == "" || origin == h.centre {
		return nil
	}
	known, err := h.knowsOrigin(origin)
	if err != nil || known {
		return err
	}
	if rep, ok := h.svc.(Replicated); ok {
		if !rep.IsLeader() {
			return errOriginForLeader
		}
		if rep.Barrier(ctx) != nil {
			return nil
		}
		if known, err := h.knowsOrigin(origin); err != nil || known {
			return err
		}
	}
	b := h.svc.Bundle()
	if b == nil {
		return nil
	}
	members := make([]string, 0, len(b.Members))
	for _, m := range b.Members {
		id := m.ID
		if m.Removed != nil {
			id += " (removed)"
		}
		members = append(members, id)
	}
	slices.Sort(members)
	return badParam("origin", schema.RuleEnum, fmt.Sprintf("no centre %q is known here; this node knows %s", clip(origin), strings.Join(members, ", ")))
}

// knowsOrigin reports whether origin names a centre this replica's bundle
// lists or whose records it holds; true without a bundle (nothing to judge
// by).
func (h *handler) knowsOrigin(origin string) (bool, error) {
	b := h.svc.Bundle()
	if b == nil {
		return true, nil
	}
	if _, ok := b.Member(origin); ok {
		return true, nil
	}
	if oh, ok := h.svc.(originHolder); ok {
		held, err := oh.HoldsOrigin(origin)
		if err != nil {
			return false, fmt.Errorf("look up origin %q: %w", origin, err)
		}
		return held, nil
	}
	return false, nil
}
