package node

import "time"

// RaftFaults is a test hook the chaos harness uses to cut one replica off its
// raft group on loopback, where there is no network to disconnect: while
// RaftIsolated reports true, every raft connection of this replica, in and out,
// is refused or closed, so it neither sends nor receives an RPC (votes,
// heartbeats, appends, snapshots). Clients still reach its HTTP API. It is
// honoured only in a build with `-tags failpoints` (faults_on.go); Config.Validate
// refuses it in any other build. RaftIsolated is called on every read and write
// of a raft connection, so it must be cheap and safe for concurrent use.
type RaftFaults interface {
	RaftIsolated() bool
}

// The raft TCP transport's connection pool size and I/O timeout, the same with
// and without fault injection.
const (
	raftMaxPool = 8
	raftTimeout = 10 * time.Second
)
