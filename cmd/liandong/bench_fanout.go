package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/multiformats/go-multiaddr"
	"github.com/oklog/ulid/v2"
	"github.com/prometheus/client_golang/prometheus"

	"liandong/schema"
	"liandong/sync/exchange"
	"liandong/sync/exchange/exchangetest"
	"liandong/sync/wire"
)

// The fanout scenario: the cost of one anti-entropy round as the federation
// grows, in the steady state between changes. N simulated centres, all
// connected to all as a federation of N members is; every node holds every
// origin's log at the same length, so a round is pure overhead: each node trades
// heads with each peer and finds nothing to pull. Nodes materialise only each
// log's last entry (signed, at seq = records): a heads exchange reads heads and
// nothing else, and a round that read or applied anything would show in the
// pull column.
//
// Two transports:
//
//   - libp2p: N real sync/exchange instances (libp2p hosts on loopback: TCP,
//     Noise, yamux, gater, resource manager) over in-memory nodes, counted from
//     the exchange's own metrics (liandong_sync_frames_sent_total,
//     liandong_sync_sent_bytes_total); with `ss` on the machine, also the TCP
//     payload of the hosts' sockets (Noise, yamux, multistream-select
//     included, approximate). Gossip, push and heartbeats are off: they are
//     not anti-entropy. N(N-1)/2 Noise connections and N(N-1) exchanges a round
//     make this heavy past ~20 centres on two shared cores.
//   - codec (the default): the same round counted without a network: for each
//     ordered pair of nodes, the heads request and the answer the exchange
//     builds (wire.Heads from Node.Heads, federation id, bundle version and
//     digests, heads left out by the exchange's rules once the pair has traded
//     them), encoded and decoded with sync/wire, bytes counted as the exchange
//     counts them (body plus length prefix). TestFanoutGrowth checks that it
//     counts the same bytes per exchange as the libp2p transport.
//
// Per node and round: frames and frame bytes sent; each frame sent is received
// by one peer, so the averages received equal these.

// fanoutOptions are the sizes of a fanout run.
type fanoutOptions struct {
	// Transport is "codec" (default) or "libp2p".
	Transport string
	Centres   []int
	Records   []int
	Rounds    int           // rounds measured per configuration
	Interval  time.Duration // anti-entropy interval; 0: 40 ms per centre, at least 1 s
	Logger    *slog.Logger
	// Progress, when set, receives a line as each federation comes up.
	Progress io.Writer
}

// fanoutResult is one configuration measured.
type fanoutResult struct {
	Transport string        `json:"transport"`
	Centres   int           `json:"centres"`
	Records   int           `json:"records_per_origin"`
	Interval  time.Duration `json:"anti_entropy_interval_ns"`
	// Rounds is the mean number of rounds each node ran in the window (heads
	// requests it sent divided by its peers).
	Rounds float64 `json:"rounds_per_node"`
	// MessagesPerRound and BytesPerRound are frames and frame bytes one node
	// sends in one round (its requests and its answers to its peers' requests).
	MessagesPerRound float64 `json:"messages_per_node_round"`
	BytesPerRound    float64 `json:"bytes_per_node_round"`
	// BytesPerExchange is one heads exchange with one peer, request and answer.
	BytesPerExchange float64 `json:"bytes_per_exchange"`
	// WireBytesPerRound is the TCP payload one node sends per round (-1: not
	// measured, `ss` missing).
	WireBytesPerRound float64 `json:"wire_bytes_per_node_round"`
	// PullFrames counts range requests, batches and pushes sent in the window,
	// and Reads the node reads and applies: 0 in the steady state measured.
	PullFrames float64 `json:"pull_frames"`
	Reads      int64   `json:"node_reads_and_applies"`
}

const fanoutHeader = "transport  centres  records/origin  interval  rounds  msgs/node/round  bytes/node/round  bytes/exchange  wire bytes/node/round  pulls"

func (r fanoutResult) row() string {
	wire := "-"
	if r.WireBytesPerRound >= 0 {
		wire = fmt.Sprintf("%.0f", r.WireBytesPerRound)
	}
	interval := "-"
	if r.Interval > 0 {
		interval = r.Interval.String()
	}
	return fmt.Sprintf("%-9s  %7d  %14d  %8s  %6.1f  %15.1f  %16.0f  %14.0f  %21s  %5.0f", r.Transport, r.Centres, r.Records, interval,
		r.Rounds, r.MessagesPerRound, r.BytesPerRound, r.BytesPerExchange, wire, r.PullFrames+float64(r.Reads))
}

func (o fanoutOptions) interval(n int) time.Duration {
	if o.Interval > 0 {
		return o.Interval
	}
	return max(time.Second, time.Duration(n)*40*time.Millisecond)
}

// runFanout measures every centre count at every record count and hands each
// result to emit as it is measured.
func runFanout(ctx context.Context, o fanoutOptions, emit func(fanoutResult)) error {
	if len(o.Centres) == 0 || len(o.Records) == 0 || o.Rounds < 1 {
		return errors.New("fanout: need centre counts, record counts and at least one round")
	}
	for _, n := range o.Centres {
		if n < 2 || n > 1000 {
			return fmt.Errorf("fanout: %d centres (want 2-1000)", n)
		}
		var err error
		switch o.Transport {
		case "", "codec":
			err = fanoutCodec(ctx, n, o, emit)
		case "libp2p":
			err = fanoutFederation(ctx, n, o, emit)
		default:
			return fmt.Errorf("fanout: unknown transport %q (have: codec, libp2p)", o.Transport)
		}
		if err != nil {
			return fmt.Errorf("fanout, %d centres: %w", n, err)
		}
	}
	return nil
}

// fanoutLogs is what every simulated node holds: each origin's log of the same
// length, as heads and the signed last entry.
type fanoutLogs struct {
	heads []schema.Head
	tails map[string]*schema.Entry
}

// fanoutNode is an exchange.Node holding fanoutLogs (shared by all nodes: the
// federation is in the steady state). The embedded fake node supplies the
// rest of the interface (centre, bundle, leadership).
type fanoutNode struct {
	*exchangetest.Node
	logs  *atomic.Pointer[fanoutLogs]
	reads *atomic.Int64
}

func (n *fanoutNode) Heads(ctx context.Context) ([]schema.Head, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return append([]schema.Head(nil), n.logs.Load().heads...), nil
}

func (n *fanoutNode) ReadRangeRaw(ctx context.Context, origin string, fromSeq uint64, limit int) ([]*schema.Entry, error) {
	return n.ReadRange(ctx, origin, fromSeq, limit)
}

func (n *fanoutNode) ReadRange(ctx context.Context, origin string, fromSeq uint64, limit int) ([]*schema.Entry, error) {
	n.reads.Add(1)
	tail := n.logs.Load().tails[origin]
	if tail == nil || fromSeq > tail.Seq {
		return nil, nil
	}
	if fromSeq == tail.Seq && limit > 0 {
		return []*schema.Entry{tail}, nil
	}
	return nil, fmt.Errorf("fanout node: holds only the last entry of %s's log (asked from %d)", origin, fromSeq)
}

func (n *fanoutNode) ApplyEntries(context.Context, string, []*schema.Entry) error {
	n.reads.Add(1)
	return errors.New("fanout node: nothing to apply in the steady state")
}

// makeFanoutLogs signs, for each origin, the entry at seq records (its link to
// the entries before it is a stand-in: nobody reads them).
func makeFanoutLogs(fed *exchangetest.Federation, ids []string, epochs map[string]string, records int) (*fanoutLogs, error) {
	l := &fanoutLogs{tails: make(map[string]*schema.Entry, len(ids))}
	for _, id := range ids {
		a := fed.Author(id)
		a.Epoch = epochs[id]
		first, err := a.Next()
		if err != nil {
			return nil, err
		}
		e := first
		if records > 1 {
			prev := schema.Hash(sha256.Sum256([]byte(fmt.Sprintf("%s/%d", id, records-1))))
			if e, err = a.Sign(schema.EntryPayload{Origin: id, Epoch: a.Epoch, Seq: uint64(records), PrevHash: prev,
				SignedAt: first.SignedAt, Record: first.Record}); err != nil {
				return nil, err
			}
		}
		l.tails[id] = e
		l.heads = append(l.heads, schema.Head{Origin: id, Epoch: e.Epoch, Seq: e.Seq, Hash: e.Hash()})
	}
	return l, nil
}

// fanoutMembers makes a federation of n centres c001, c002, … and an epoch id
// for each, named as the node names its epochs.
func fanoutMembers(n int) (*exchangetest.Federation, []string, map[string]string, error) {
	ids := make([]string, n)
	epochs := map[string]string{}
	for i := range ids {
		ids[i] = fmt.Sprintf("c%03d", i+1)
		epochs[ids[i]] = ulid.Make().String()
	}
	fed, err := exchangetest.NewFederation(ids...)
	return fed, ids, epochs, err
}

// fanoutCodec counts o.Rounds rounds of n nodes without a network: every node
// sends every other its heads request and gets the answer, each built as the
// exchange builds it, encoded, length-prefixed and decoded with sync/wire.
func fanoutCodec(ctx context.Context, n int, o fanoutOptions, emit func(fanoutResult)) error {
	fed, ids, epochs, err := fanoutMembers(n)
	if err != nil {
		return err
	}
	b := fed.Bundle
	for _, records := range o.Records {
		logs, err := makeFanoutLogs(fed, ids, epochs, records)
		if err != nil {
			return err
		}
		// Every node holds the same logs; each builds its message from its own
		// Node.Heads, as the exchange's headsMessage does (sorted, digested).
		heads := func(request bool) *wire.Heads {
			h := &wire.Heads{Request: request, Federation: b.Federation, BundleVersion: b.Version,
				Heads: append([]schema.Head(nil), logs.heads...)}
			slices.SortFunc(h.Heads, func(x, y schema.Head) int { return strings.Compare(x.Origin, y.Origin) })
			if len(h.Heads) > wire.MaxHeads {
				h.Heads = h.Heads[:wire.MaxHeads]
			}
			h.Digest = wire.HeadsDigest(h.Heads)
			return h
		}
		local := map[string]schema.Head{}
		for _, h := range logs.heads {
			local[h.Origin] = h
		}
		// What each node holds of each peer, as the exchange keeps it:
		// theirs[i][j] the digest of j's heads i holds, sent[i][j] the digest
		// of i's heads j holds.
		theirs, sent := make([][]schema.Hash, n), make([][]schema.Hash, n)
		for i := range n {
			theirs[i], sent[i] = make([]schema.Hash, n), make([]schema.Hash, n)
		}
		r := fanoutResult{Transport: "codec", Centres: n, Records: records, WireBytesPerRound: -1}
		var frames, bytes float64
		// exchange runs i's heads request to j and j's answer, with the
		// exchange's rules for leaving heads out, and counts what was sent.
		exchange := func(i, j int, count bool) error {
			req := heads(true)
			req.Known = theirs[i][j]
			if sent[i][j] == req.Digest {
				req.Heads = nil
			}
			ans := heads(false)
			if req.Known == ans.Digest {
				ans.Heads = nil
			}
			for _, m := range []*wire.Heads{req, ans} {
				body := wire.Encode(m)
				got, err := wire.Decode(body)
				if err != nil {
					return fmt.Errorf("decode %s: %w", m.Type(), err)
				}
				h := got.(*wire.Heads)
				if !h.Omitted() {
					for _, hd := range h.Heads {
						if l := local[hd.Origin]; hd.Seq > l.Seq && count {
							r.PullFrames++ // the receiver would pull
						}
					}
				}
				if count {
					frames++
					bytes += float64(len(body) + uvarintLen(len(body)))
				}
			}
			if !req.Omitted() {
				theirs[j][i] = req.Digest
			}
			sent[j][i] = ans.Digest
			if !ans.Omitted() {
				theirs[i][j] = ans.Digest
			}
			sent[i][j] = req.Digest
			return nil
		}
		// One round first, uncounted: the steady state is between changes,
		// after every pair has traded the current heads once (as the libp2p
		// transport settles before counting).
		for round := range o.Rounds + 1 {
			for i := range n {
				if err := ctx.Err(); err != nil {
					return err
				}
				for j := range n {
					if i == j {
						continue
					}
					if err := exchange(i, j, round > 0); err != nil {
						return err
					}
				}
			}
		}
		exchanges := float64(o.Rounds * n * (n - 1))
		r.Rounds = float64(o.Rounds)
		r.MessagesPerRound = frames / float64(o.Rounds*n)
		r.BytesPerRound = bytes / float64(o.Rounds*n)
		r.BytesPerExchange = bytes / exchanges
		emit(r)
	}
	return nil
}

func uvarintLen(n int) int {
	return len(binary.AppendUvarint(nil, uint64(n)))
}

type fanoutMember struct {
	x     *exchange.Exchange
	reg   *prometheus.Registry
	reads atomic.Int64
	port  int
}

func fanoutFederation(ctx context.Context, n int, o fanoutOptions, emit func(fanoutResult)) error {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	t0 := time.Now()
	fed, ids, epochs, err := fanoutMembers(n)
	if err != nil {
		return err
	}
	var logs atomic.Pointer[fanoutLogs]
	first, err := makeFanoutLogs(fed, ids, epochs, o.Records[0])
	if err != nil {
		return err
	}
	logs.Store(first)

	interval := o.interval(n)
	members := make([]*fanoutMember, n)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
		for _, m := range members {
			if m != nil {
				m.x.Close() // harmless after Run; releases one that never ran
			}
		}
	}()
	for i, id := range ids {
		m := &fanoutMember{reg: prometheus.NewRegistry()}
		cfg := exchange.DefaultConfig()
		cfg.ListenAddrs = []string{"/ip4/127.0.0.1/tcp/0"}
		cfg.Identity = fed.Identity(id)
		cfg.AntiEntropyInterval = interval
		cfg.HeartbeatInterval = time.Hour
		cfg.StallAfter = 2 * time.Hour
		cfg.RequestTimeout = 30 * time.Second
		cfg.DisableGossip, cfg.DisablePush = true, true
		cfg.MaxConns = max(cfg.MaxConns, 2*n+16)
		cfg.Registerer = m.reg
		cfg.Logger = logger.With("centre", id)
		node := &fanoutNode{Node: exchangetest.NewNode(id, fed.Bundle), logs: &logs, reads: &m.reads}
		if m.x, err = exchange.New(ctx, cfg, node); err != nil {
			return err
		}
		members[i] = m
		for _, a := range m.x.Addrs() {
			if v, err := a.ValueForProtocol(multiaddr.P_TCP); err == nil {
				m.port, _ = strconv.Atoi(v)
				break
			}
		}
	}
	built := time.Since(t0)
	for _, m := range members {
		wg.Add(1)
		go func() { defer wg.Done(); m.x.Run(runCtx) }()
	}
	if err := fanoutConnect(ctx, members); err != nil {
		return err
	}
	if o.Progress != nil {
		fmt.Fprintf(o.Progress, "(%d centres: hosts built in %s, all %d pairs connected %s later; anti-entropy every %s)\n", n,
			built.Round(time.Millisecond), n*(n-1)/2, (time.Since(t0) - built).Round(time.Millisecond), interval)
	}

	ports := map[int]bool{}
	for _, m := range members {
		ports[m.port] = true
	}
	for k, records := range o.Records {
		if k > 0 {
			next, err := makeFanoutLogs(fed, ids, epochs, records)
			if err != nil {
				return err
			}
			logs.Store(next)
		}
		// Settle: every node has traded the current heads at least once.
		if err := sleepCtx(ctx, 2*interval); err != nil {
			return err
		}
		before := fanoutSnapshot(members)
		wireBefore, wireErr := tcpSentBytes(ports)
		if err := sleepCtx(ctx, time.Duration(o.Rounds)*interval); err != nil {
			return err
		}
		after := fanoutSnapshot(members)
		wireAfter, err := tcpSentBytes(ports)
		if wireErr == nil {
			wireErr = err
		}
		r := fanoutResult{Transport: "libp2p", Centres: n, Records: records, Interval: interval, WireBytesPerRound: -1}
		// Requests and answers sent in the window, federation-wide: a window
		// edge may cut an exchange in two, so an exchange counts as half a
		// request plus half an answer, and everything is divided by exchanges,
		// whose frames the byte counts hold. A round is n(n-1) exchanges (each
		// node asks each peer once), of which each node sends n-1 requests and
		// n-1 answers on average.
		var frames, bytes, hello float64
		for i := range members {
			d := after[i].minus(before[i])
			hello += d.frames["heads-req"] + d.frames["heads"]
			for t, v := range d.frames {
				frames += v
				switch t {
				case "range-req", "batch", "push":
					r.PullFrames += v
				}
			}
			bytes += d.bytes
			r.Reads += d.reads
		}
		exchanges := hello / 2
		if exchanges == 0 {
			return fmt.Errorf("no anti-entropy round ran in %s", time.Duration(o.Rounds)*interval)
		}
		perNodeRound := float64(n-1) / exchanges // per exchange → per node and round
		r.Rounds = exchanges / float64(n*(n-1))
		r.MessagesPerRound = frames * perNodeRound
		r.BytesPerRound = bytes * perNodeRound
		r.BytesPerExchange = bytes / exchanges
		if wireErr == nil {
			var sent uint64
			for k, v := range wireAfter {
				sent += v - min(v, wireBefore[k])
			}
			r.WireBytesPerRound = float64(sent) * perNodeRound
		}
		emit(r)
	}
	return nil
}

// fanoutConnect connects every pair once (the lower index dials) and waits until
// every node counts all others as connected.
func fanoutConnect(ctx context.Context, members []*fanoutMember) error {
	type pair struct{ i, j int }
	pairs := make(chan pair)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range pairs {
				var err error
				for try := 0; try < 3; try++ {
					cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					err = members[p.i].x.Connect(cctx, members[p.j].x.AddrInfo())
					cancel()
					if err == nil {
						break
					}
				}
				if err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for i := range members {
		for j := i + 1; j < len(members); j++ {
			pairs <- pair{i, j}
		}
	}
	close(pairs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
	}
	want := float64(len(members) - 1)
	deadline := time.Now().Add(30*time.Second + time.Duration(len(members))*time.Second)
	for {
		short := 0
		for _, m := range members {
			if gatherValue(m.reg, "liandong_sync_peers_connected", "") < want {
				short++
			}
		}
		if short == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d nodes are not connected to all %d others", short, len(members), len(members)-1)
		}
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

type fanoutCounters struct {
	frames map[string]float64
	bytes  float64
	reads  int64
}

func (c fanoutCounters) minus(b fanoutCounters) fanoutCounters {
	d := fanoutCounters{frames: map[string]float64{}, bytes: c.bytes - b.bytes, reads: c.reads - b.reads}
	for t, v := range c.frames {
		d.frames[t] = v - b.frames[t]
	}
	return d
}

func fanoutSnapshot(members []*fanoutMember) []fanoutCounters {
	out := make([]fanoutCounters, len(members))
	for i, m := range members {
		c := fanoutCounters{frames: map[string]float64{}, reads: m.reads.Load()}
		mfs, _ := m.reg.Gather()
		for _, mf := range mfs {
			switch mf.GetName() {
			case "liandong_sync_sent_bytes_total":
				for _, mm := range mf.GetMetric() {
					c.bytes += mm.GetCounter().GetValue()
				}
			case "liandong_sync_frames_sent_total":
				for _, mm := range mf.GetMetric() {
					for _, lp := range mm.GetLabel() {
						if lp.GetName() == "type" {
							c.frames[lp.GetValue()] += mm.GetCounter().GetValue()
						}
					}
				}
			}
		}
		out[i] = c
	}
	return out
}

// gatherValue returns the value of an unlabelled gauge or counter, or the sum
// of its series whose label values include label ("" for all).
func gatherValue(reg *prometheus.Registry, name, label string) float64 {
	mfs, _ := reg.Gather()
	var v float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := label == ""
			for _, lp := range m.GetLabel() {
				match = match || lp.GetValue() == label
			}
			if !match {
				continue
			}
			if g := m.GetGauge(); g != nil {
				v += g.GetValue()
			} else if c := m.GetCounter(); c != nil {
				v += c.GetValue()
			}
		}
	}
	return v
}

// tcpSentBytes reads, with `ss`, the payload bytes each established TCP socket
// of this machine whose local or remote port is in ports has had acknowledged,
// keyed by its address pair.
func tcpSentBytes(ports map[int]bool) (map[string]uint64, error) {
	path, err := exec.LookPath("ss")
	if err != nil {
		return nil, err
	}
	out, err := exec.Command(path, "-tinH", "state", "established").Output()
	if err != nil {
		return nil, fmt.Errorf("ss: %w", err)
	}
	res := map[string]uint64{}
	port := func(addr string) int {
		i := strings.LastIndexByte(addr, ':')
		p, _ := strconv.Atoi(addr[i+1:])
		return p
	}
	key := ""
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		if line[0] != ' ' && line[0] != '\t' {
			// Recv-Q Send-Q Local:Port Peer:Port (the state is filtered away).
			f := strings.Fields(line)
			key = ""
			if len(f) >= 4 && (ports[port(f[2])] || ports[port(f[3])]) {
				key = f[2] + " " + f[3]
			}
			continue
		}
		if key == "" {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "bytes_acked:"); ok {
				n, _ := strconv.ParseUint(v, 10, 64)
				res[key] = n
			}
		}
		key = ""
	}
	if len(res) == 0 {
		return nil, errors.New("ss: no sockets of the fanout hosts found")
	}
	return res, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fanoutGrowth summarises results: for each record count, how per-node bytes
// per round grow from the fewest centres to the most, against the growth of the
// centre count; and for each centre count, bytes per round at the most records
// over the fewest.
func fanoutGrowth(rs []fanoutResult) []string {
	by := map[[2]int]fanoutResult{}
	var centres, records []int
	for _, r := range rs {
		by[[2]int{r.Centres, r.Records}] = r
		if !containsInt(centres, r.Centres) {
			centres = append(centres, r.Centres)
		}
		if !containsInt(records, r.Records) {
			records = append(records, r.Records)
		}
	}
	var out []string
	if len(centres) > 1 {
		lo, hi := centres[0], centres[len(centres)-1]
		for _, rec := range records {
			a, b := by[[2]int{lo, rec}], by[[2]int{hi, rec}]
			if a.BytesPerRound == 0 {
				continue
			}
			g := b.BytesPerRound / a.BytesPerRound
			out = append(out, fmt.Sprintf("%d records/origin, %d → %d centres (×%.1f): messages/node/round ×%.2f, bytes/node/round ×%.2f (exponent %.2f in centres), bytes/exchange ×%.2f",
				rec, lo, hi, float64(hi)/float64(lo), b.MessagesPerRound/a.MessagesPerRound, g,
				math.Log(g)/math.Log(float64(hi)/float64(lo)), b.BytesPerExchange/a.BytesPerExchange))
		}
	}
	if len(records) > 1 {
		lo, hi := records[0], records[len(records)-1]
		for _, c := range centres {
			a, b := by[[2]int{c, lo}], by[[2]int{c, hi}]
			if a.BytesPerRound == 0 {
				continue
			}
			out = append(out, fmt.Sprintf("%d centres, %d → %d records/origin: bytes/node/round ×%.3f", c, lo, hi, b.BytesPerRound/a.BytesPerRound))
		}
	}
	return out
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// cmdBenchFanout runs the fanout scenario and prints its table (or JSON).
func cmdBenchFanout(ctx context.Context, o fanoutOptions, asJSON bool, stdout, stderr io.Writer) error {
	var results []fanoutResult
	if !asJSON {
		o.Progress = stdout
		fmt.Fprintln(stdout, "fanout: anti-entropy cost per node and round, steady state (all logs level), full mesh")
		fmt.Fprintln(stdout, fanoutHeader)
	} else {
		o.Progress = stderr
	}
	err := runFanout(ctx, o, func(r fanoutResult) {
		results = append(results, r)
		if !asJSON {
			fmt.Fprintln(stdout, r.row())
		}
	})
	if err != nil {
		return err
	}
	growth := fanoutGrowth(results)
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Results []fanoutResult `json:"fanout"`
			Growth  []string       `json:"growth"`
		}{results, growth})
	}
	for _, g := range growth {
		fmt.Fprintln(stdout, g)
	}
	return nil
}

// parseInts reads a comma-separated list of counts within [lo, hi].
func parseInts(flagName, s string, lo, hi int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < lo || n > hi {
			return nil, usagef("--%s: %q is not a count (%d-%d)", flagName, f, lo, hi)
		}
		out = append(out, n)
	}
	return out, nil
}
