package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestSearchLagNote (review 122): the catch-up result says the joiner's
// search index is current only once it reached the store's position; when
// the wait ends first (its deadline, an interrupt), the note says it was
// not, and where the index stood.
func TestSearchLagNote(t *testing.T) {
	past := time.Now().Add(-time.Second)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name     string
		ctx      context.Context
		deadline time.Time
		pos      uint64
		want     string
	}{
		{"current", context.Background(), time.Now().Add(time.Minute), 100, "; its search index current "},
		{"past the deadline", context.Background(), past, 40, "; its search index NOT current "},
		{"interrupted", canceled, time.Now().Add(time.Minute), 40, "(at position 40 of 100)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := searchLagNote(tc.ctx, tc.deadline, func() uint64 { return tc.pos }, 100, past)
			if !strings.Contains(got, tc.want) {
				t.Fatalf("note %q, want it to contain %q", got, tc.want)
			}
		})
	}
}
