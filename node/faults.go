package node

import (
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

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

// raftTransportConfig is the raft transport's configuration over stream.
//
// Pipelined replication is off (MaxRPCsInFlight 1). In hashicorp/raft v1.8.0
// it can deadlock: with the default of 2 in flight both of a pipeline's
// channels are unbuffered, and when a follower answers Success=false (a log
// that does not match, after a change of leader) pipelineDecode returns while
// decodeResponses waits to hand it a response and the send loop, taking one
// more trigger, waits to queue another (net_transport.go decodeResponses,
// pipelineSend): that follower is never sent another entry while heartbeats
// keep it from calling an election, and the leader's Shutdown hangs
// (grafana/pyroscope#5518 found the same and turned pipelining off; a race
// test run here caught Close hanging in it). Each follower then has one
// AppendEntries in flight, carrying every entry queued since the last.
func raftTransportConfig(stream raft.StreamLayer, log hclog.Logger) *raft.NetworkTransportConfig {
	return &raft.NetworkTransportConfig{Stream: stream, MaxPool: raftMaxPool, Timeout: raftTimeout, Logger: log, MaxRPCsInFlight: 1}
}
