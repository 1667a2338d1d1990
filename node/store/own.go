package store

import "sync"

// ownWrites holds the raft payloads of writes this process encoded from
// bodies it made or checked canonical itself (PrepareWrite, EncodeOwn), until
// its state machine applies them or the proposer gives up on them.
//
// The state machine checks every write's bodies canonical before it signs
// them, because a command in the raft log may come from another replica's
// build or a damaged file. Raft hands the leader's state machine the very
// slice the leader proposed (hashicorp/raft keeps the proposal's Log in its
// inflight list), so for that slice the check would repeat the proposer's,
// one walk of the body a write. A slice is known by its first byte's address
// and its length; the set holds the slice, so that address cannot be reused
// for other bytes while it is listed, and nothing writes into a proposed
// payload. A follower's copy, or a log read back at start, is another slice
// and is checked.
type ownWrites struct {
	mu sync.Mutex
	m  map[*byte]int
}

func (o *ownWrites) add(data []byte) {
	if len(data) == 0 {
		return
	}
	o.mu.Lock()
	if o.m == nil {
		o.m = make(map[*byte]int)
	}
	o.m[&data[0]] = len(data)
	o.mu.Unlock()
}

// take reports whether data is a listed payload, and unlists it: a payload
// is applied once.
func (o *ownWrites) take(data []byte) bool {
	if len(data) == 0 {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	n, ok := o.m[&data[0]]
	if !ok || n != len(data) {
		return false
	}
	delete(o.m, &data[0])
	return true
}

// EncodeOwn is EncodeCommand for a command this process proposes. When c is
// a write whose bodies PrepareWrite prepared here and went into data as they
// are, data is listed so that this process's Apply of those very bytes skips
// checking them again (ownWrites). release unlists data; call it once the
// proposal is settled, whatever its outcome (an Apply after it checks).
func (s *Store) EncodeOwn(c *Command) (data []byte, release func(), err error) {
	if c.Write == nil || !c.Write.prepared {
		data, err = EncodeCommand(c)
		return data, func() {}, err
	}
	data, ok := appendWriteCommand([]byte{cmdWrite}, c.Write)
	if !ok {
		// encoding/json's way may escape a body's bytes (U+2028), so the
		// state machine checks what it gets.
		data, err = EncodeCommand(c)
		return data, func() {}, err
	}
	s.own.add(data)
	return data, func() { s.own.take(data) }, nil
}
