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

// RaftOneWay is what a RaftFaults may also implement to cut one direction of
// this replica's raft traffic, as a firewall rule on one side or a full
// conntrack table does, rather than both. Raft runs over TCP, which needs both
// directions, so the cut behaves as TCP's would: while either direction is
// cut no connection is set up (a dial waits out its timeout, as an unanswered
// SYN does, and a connection accepted meanwhile carries nothing until the cut
// heals); on a connection set up before, the bytes of the cut direction are
// held, not lost (TCP delivers them once the cut heals), so their reader waits
// until then or its deadline. Nothing is closed or refused: the other side
// learns of the cut only by its timeouts. Both methods are called on every
// read, write and dial of a raft connection, like RaftIsolated.
type RaftOneWay interface {
	// RaftDropIn reports whether what other replicas send this one is held
	// back: it can send, and receives nothing.
	RaftDropIn() bool
	// RaftDropOut reports whether what this replica sends is held back: it
	// receives, and its answers go nowhere.
	RaftDropOut() bool
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
