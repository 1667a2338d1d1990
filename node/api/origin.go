package api

import (
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

// checkOrigin refuses an origin= filter that names no centre this node
// knows: a partner who mistyped tianjn was answered an empty list, an empty
// search or a feed that never carried a change, and learnt nothing. A centre
// is known while the trust bundle lists it, removed ones included (their
// records stay readable, or stay as tombstones once purged), and while this
// node holds any record of it, live or deleted, should a bundle no longer
// list it at all. Without a bundle (a Service that has none) nothing is
// refused: there is nothing to judge by.
func (h *handler) checkOrigin(origin string) error {
	if origin == "" || origin == h.centre {
		return nil
	}
	b := h.svc.Bundle()
	if b == nil {
		return nil
	}
	if _, ok := b.Member(origin); ok {
		return nil
	}
	if oh, ok := h.svc.(originHolder); ok {
		held, err := oh.HoldsOrigin(origin)
		if err != nil {
			return fmt.Errorf("look up origin %q: %w", origin, err)
		}
		if held {
			return nil
		}
	}
	known := make([]string, 0, len(b.Members))
	for _, m := range b.Members {
		id := m.ID
		if m.Removed != nil {
			id += " (removed)"
		}
		known = append(known, id)
	}
	slices.Sort(known)
	return badParam("origin", schema.RuleEnum, fmt.Sprintf("no centre %q is known here; this node knows %s", clip(origin), strings.Join(known, ", ")))
}
