// Package node runs one replica of a centre's node: a hashicorp/raft group whose
// state machine is the bbolt state file of node/store, and the service the HTTP API
// and the federation exchange call into.
//
// Writes become raft commands carrying everything that varies between replicas
// (time, new ids, the log epoch) so that applying them is deterministic; the leader
// proposes, every replica applies the same batch in one bbolt transaction. Reads are
// served from the local state file. Remote entries arrive from sync/exchange already
// verified and are applied through the same raft path.
//
// Errors from raft and the store are translated here into this package's sentinels,
// so callers (node/api, cmd) never import raft.
package node
