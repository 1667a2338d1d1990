package bench

import (
	"testing"

	"liandong/node/api"
)

// TestFloorServerHasTheNodesLimits: the floor's server times out and limits
// headers as a node's does, or the two would not measure the same stack.
func TestFloorServerHasTheNodesLimits(t *testing.T) {
	got, want := floorServer(), api.NewServer("", nil)
	if got.ReadHeaderTimeout != want.ReadHeaderTimeout || got.ReadTimeout != want.ReadTimeout || got.WriteTimeout != want.WriteTimeout ||
		got.IdleTimeout != want.IdleTimeout || got.MaxHeaderBytes != want.MaxHeaderBytes {
		t.Errorf("floor server limits %v/%v/%v/%v/%d, a node's %v/%v/%v/%v/%d",
			got.ReadHeaderTimeout, got.ReadTimeout, got.WriteTimeout, got.IdleTimeout, got.MaxHeaderBytes,
			want.ReadHeaderTimeout, want.ReadTimeout, want.WriteTimeout, want.IdleTimeout, want.MaxHeaderBytes)
	}
}
