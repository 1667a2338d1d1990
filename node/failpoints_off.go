//go:build !failpoints

package node

import (
	"io"

	"github.com/hashicorp/raft"
)

// The crash points of node/failpoints_on.go exist only in a build with
// `-tags failpoints`; in every other build these are the identity and cost nothing.

func withFailpointsLogStore(s raft.LogStore) raft.LogStore { return s }

func withFailpointsFSM(f *fsm) raft.BatchingFSM { return f }

func withFailpointsRestore(r io.ReadCloser) io.ReadCloser { return r }

// failpointMoveRemoved is the hook between a move's two steps
// (failpoints_on.go); nothing here.
func failpointMoveRemoved(*Node, string) {}
