package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"liandong/auth"
	"liandong/node/search"
	"liandong/node/store"
	"liandong/sync/exchange/exchangetest"
)

// openGroupOfOne opens three replicas of tianjin on loopback raft
// transports, the first the only voter and the others nonvoters: a group
// whose leader cannot lose its leadership to a starved follower (the race
// detector on a loaded machine), for tests that hold on to it. Every replica
// is in raft's configuration, which is what groupHas reads.
func openGroupOfOne(t *testing.T, tweak func(cfg *Config)) []*Node {
	t.Helper()
	return openReplicasAs(t, func(_ int, cfg *Config) { tweak(cfg) }, false)
}

// purgeFederation is tianjin's federation with hebei and beijing, both
// removed: their records may be purged at tianjin.
func purgeFederation(t *testing.T) (*exchangetest.Federation, []byte) {
	t.Helper()
	fed, err := exchangetest.NewFederation("tianjin", "hebei", "beijing")
	if err != nil {
		t.Fatal(err)
	}
	left := time.Now().UTC()
	for i := range fed.Bundle.Members {
		if fed.Bundle.Members[i].ID != "tianjin" {
			fed.Bundle.Members[i].Removed = &left
		}
	}
	sb, err := auth.SignBundle(fed.Bundle, fed.Root)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := sb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return fed, signed
}

// fillOrigin applies n records of origin at the leader l, in one call (the
// node enqueues its batches together).
func fillOrigin(t *testing.T, l *Node, fed *exchangetest.Federation, origin string, n int) {
	t.Helper()
	es, err := fed.Author(origin).NextN(n)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.ApplyEntries(context.Background(), origin, es); err != nil {
		t.Fatal(err)
	}
}

// liveOf counts the records of origin's first n entries (exchangetest's
// ids) that n serves live.
func liveOf(t *testing.T, node *Node, origin string, n int) int {
	t.Helper()
	live := 0
	for seq := 1; seq <= n; seq++ {
		_, err := node.st.Get(fmt.Sprintf("%s:item-%08d", origin, seq))
		switch {
		case err == nil:
			live++
		case !errors.Is(err, store.ErrDeleted):
			t.Fatalf("%s:%d: %v", origin, seq, err)
		}
	}
	return live
}

// storedLive counts the records of origin n's state file holds live, a
// chunk of its purge still to come or none begun (readers see none of a
// purged origin's: liveOf).
func storedLive(t *testing.T, n *Node, origin string) int {
	t.Helper()
	counts, err := n.st.Counts()
	if err != nil {
		t.Fatal(err)
	}
	live := 0
	for _, c := range counts {
		if c.Origin == origin {
			live += int(c.N)
		}
	}
	return live
}

// purgeCommands counts the purge commands in n's raft log: whole ('P') and
// chunks ('Q').
func purgeCommands(t *testing.T, n *Node) (whole, chunks int) {
	t.Helper()
	first, err := n.logStore.FirstIndex()
	if err != nil {
		t.Fatal(err)
	}
	last, err := n.logStore.LastIndex()
	if err != nil {
		t.Fatal(err)
	}
	for i := first; i <= last && i > 0; i++ {
		var l raft.Log
		if err := n.logStore.GetLog(i, &l); err != nil {
			t.Fatal(err)
		}
		if len(l.Data) == 0 {
			continue
		}
		c, err := store.DecodeCommand(l.Data)
		if err != nil || c.Purge == nil {
			continue
		}
		if c.Purge.Limit == 0 {
			whole++
		} else {
			chunks++
		}
	}
	return whole, chunks
}

// awaitSameState waits until every replica applied what the leader did and
// holds the same state.
func awaitSameState(t *testing.T, l *Node, nodes []*Node) {
	t.Helper()
	want, err := l.st.Digest()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range nodes {
		for {
			got, err := n.st.Digest()
			if err == nil && got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: state differs from the leader's (%v)", n.cfg.ReplicaID, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// TestPurgeInChunksOnceEveryReplicaTakesThem: PurgeOrigin proposes one whole
// purge while a replica's build does not announce FeaturePurgeChunks (it
// would stop applying at a chunk), and chunks of PurgeChunk records once
// every replica does; either way every record of the origin is a tombstone
// on every replica, in the same state.
func TestPurgeInChunksOnceEveryReplicaTakesThem(t *testing.T) {
	fed, signed := purgeFederation(t)
	nodes := openGroupOfOne(t, func(cfg *Config) {
		cfg.RecordKey = fed.Members["tianjin"].RecordKey
		cfg.Bundle, cfg.BundleSigned = fed.Bundle, signed
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := nodes[0]
	var others []*Node
	for _, n := range nodes {
		if n != l {
			others = append(others, n)
			r := store.Replica{ID: n.cfg.ReplicaID, RaftAddr: n.cfg.RaftAddr, HTTP: "http://127.0.0.1:1"}
			if _, err := l.propose(ctx, &store.Command{Replica: &store.ReplicaCommand{Replica: r}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.RegisterSelf(ctx, store.Replica{RaftAddr: l.cfg.RaftAddr, HTTP: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	const records = PurgeChunk + PurgeChunk/2
	fillOrigin(t, l, fed, "hebei", records)
	fillOrigin(t, l, fed, "beijing", records)

	// One replica current, one of session 23's build.
	asked := l.Membership()
	if err := l.RecordFeatures(ctx, asked, others[0].cfg.ReplicaID, Features()); err != nil {
		t.Fatal(err)
	}
	if err := l.RecordFeatures(ctx, asked, others[1].cfg.ReplicaID, []string{FeatureFeedEpoch, FeatureIfAbsent, FeatureKeepCatalogue}); err != nil {
		t.Fatal(err)
	}
	if n, err := l.PurgeOrigin(ctx, "hebei", "test"); err != nil || n != records {
		t.Fatalf("purge with an older replica: %d, %v; want %d", n, err, records)
	}
	if whole, chunks := purgeCommands(t, l); whole != 1 || chunks != 0 {
		t.Fatalf("with an older replica: %d whole purges and %d chunks in the log, want 1 and 0", whole, chunks)
	}

	if err := l.RecordFeatures(ctx, asked, others[1].cfg.ReplicaID, Features()); err != nil {
		t.Fatal(err)
	}
	if n, err := l.PurgeOrigin(ctx, "beijing", "test"); err != nil || n != records {
		t.Fatalf("purge in chunks: %d, %v; want %d", n, err, records)
	}
	if whole, chunks := purgeCommands(t, l); whole != 1 || chunks != 2 {
		t.Fatalf("every replica current: %d whole purges and %d chunks in the log, want 1 and 2", whole, chunks)
	}
	awaitSameState(t, l, nodes)
	for _, n := range nodes {
		if left, err := n.st.UnfinishedPurges(); err != nil || len(left) != 0 {
			t.Fatalf("%s: unfinished purges %v, %v", n.cfg.ReplicaID, left, err)
		}
		for _, origin := range []string{"hebei", "beijing"} {
			if live, stored := liveOf(t, n, origin, records), storedLive(t, n, origin); live != 0 || stored != 0 {
				t.Fatalf("%s: %d records of %s live after the purge (%d in the state file)", n.cfg.ReplicaID, live, origin, stored)
			}
		}
	}
}

// TestResumePurges: a purge whose leader stopped after its first chunk
// (proposed here by hand) is listed as unfinished, and the leader's
// ResumePurges finishes it, at most maxChunks chunks a call.
func TestResumePurges(t *testing.T) {
	fed, signed := purgeFederation(t)
	dir := t.TempDir()
	cfg := DefaultConfig("tianjin", dir)
	cfg.RecordKey = fed.Members["tianjin"].RecordKey
	cfg.Bundle, cfg.BundleSigned = fed.Bundle, signed
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { n.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	const records = 3*PurgeChunk + 7
	fillOrigin(t, n, fed, "hebei", records)
	if res, err := n.propose(ctx, &store.Command{Purge: &store.PurgeCommand{Origin: "hebei", Limit: PurgeChunk}}); err != nil || res.Applied != PurgeChunk || !res.More {
		t.Fatalf("first chunk: %+v, %v", res, err)
	}
	// Purged for every reader from the first chunk: the search index
	// (which takes some records' last change from the feed, others from
	// before the purge) finds none, as Get serves none.
	if live, stored := liveOf(t, n, "hebei", records), storedLive(t, n, "hebei"); live != 0 || stored != records-PurgeChunk {
		t.Fatalf("after the first chunk Get serves %d records of hebei (%d in the state file, want %d)", live, stored, records-PurgeChunk)
	}
	if found := searchOrigin(t, n, "hebei"); found != 0 {
		t.Fatalf("after the first chunk search finds %d records of hebei", found)
	}
	// A restart of the (single) leader: the state says what is left.
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err = Open(cfg); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	if left, err := n.st.UnfinishedPurges(); err != nil || len(left) != 1 || left[0] != "hebei" {
		t.Fatalf("unfinished purges after the first chunk: %v, %v", left, err)
	}
	// The leader that finishes the purge says so in the audit log, naming
	// itself: no operator's call did.
	finishedBy := func() (actors []string) {
		t.Helper()
		for _, ev := range purgeEvents(ctx, t, n, "hebei: a purge cut short finished") {
			actors = append(actors, ev.Actor)
		}
		return actors
	}
	if got, err := n.ResumePurges(ctx, 1); err != nil || got != PurgeChunk {
		t.Fatalf("resume, one chunk: %d, %v", got, err)
	}
	if by := finishedBy(); len(by) != 0 {
		t.Fatalf("audited as finished by %v with a chunk still to come", by)
	}
	if got, err := n.ResumePurges(ctx, 20); err != nil || got != PurgeChunk+7 {
		t.Fatalf("resume, the rest: %d, %v", got, err)
	}
	if by := finishedBy(); len(by) != 1 || by[0] != "replica:"+n.cfg.ReplicaID {
		t.Fatalf("the resumed purge's end audited as finished by %v, want once by replica:%s", by, n.cfg.ReplicaID)
	}
	if left, err := n.st.UnfinishedPurges(); err != nil || len(left) != 0 {
		t.Fatalf("unfinished purges at the end: %v, %v", left, err)
	}
	if live := liveOf(t, n, "hebei", records); live != 0 {
		t.Fatalf("%d records of hebei live after the resumed purge", live)
	}
	if live, err := n.st.UnfinishedPurges(); err != nil || len(live) != 0 {
		t.Fatalf("unfinished purges %v, %v", live, err)
	}
	if got, err := n.ResumePurges(ctx, 20); err != nil || got != 0 {
		t.Fatalf("resume with nothing left: %d, %v", got, err)
	}
	if by := finishedBy(); len(by) != 1 {
		t.Fatalf("audited as finished %d times, once before nothing was left", len(by))
	}
	if found := searchOrigin(t, n, "hebei"); found != 0 {
		t.Fatalf("after the purge the search index finds %d records of hebei", found)
	}
}

// searchOrigin counts the records of origin n's search index finds (every
// exchangetest record mentions 京津冀), once the index has taken in the
// whole feed.
func searchOrigin(t *testing.T, n *Node, origin string) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		page, err := n.Search(context.Background(), search.Query{Text: "京津冀", Origin: origin, Limit: 10_000})
		if err != nil {
			t.Fatal(err)
		}
		if page.Behind == 0 {
			return len(page.Hits)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the search index is still %d changes behind", page.Behind)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cancelAfter is a context whose Done channel is nil (never ready) for its
// first calls and closed from the calls-th on: PurgeOrigin's wait for each
// chunk reads it once, so the caller gives up while that chunk is applied,
// as a client that stops waiting does, without timing. Not exactly that
// chunk: should the waiter be descheduled between starting its watcher and
// its select long enough for the chunk to commit, both cases are ready and
// select picks either, so the purge may be cut at a later chunk.
type cancelAfter struct {
	context.Context
	mu     sync.Mutex
	calls  int
	closed chan struct{}
}

func (c *cancelAfter) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls--; c.calls > 0 {
		return nil
	}
	return c.closed
}

func (c *cancelAfter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls > 0 {
		return nil
	}
	return context.Canceled
}

// openPurgeLeader opens a single replica of tianjin in fed (purgeFederation)
// and waits until it leads; the test's cleanup closes it.
func openPurgeLeader(t *testing.T, fed *exchangetest.Federation, signed []byte) *Node {
	t.Helper()
	cfg := DefaultConfig("tianjin", t.TempDir())
	cfg.RecordKey = fed.Members["tianjin"].RecordKey
	cfg.Bundle, cfg.BundleSigned = fed.Bundle, signed
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// purgeEvents returns n's origin.purge audit events whose detail contains
// detail ("" for all of them).
func purgeEvents(ctx context.Context, t *testing.T, n *Node, detail string) []store.AuditEvent {
	t.Helper()
	log, err := n.AuditLog(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditEvent
	for _, ev := range log {
		if ev.Action == "origin.purge" && strings.Contains(ev.Detail, detail) {
			out = append(out, ev)
		}
	}
	return out
}

// byActor reports whether one of events names actor.
func byActor(events []store.AuditEvent, actor string) bool {
	return slices.ContainsFunc(events, func(ev store.AuditEvent) bool { return ev.Actor == actor })
}

// TestPurgeCutShortIsAudited: a purge-origin whose caller stops waiting
// after its first chunk has withdrawn the origin from service (every reader
// sees it purged from that chunk on) and the leader finishes it on its own
// (ResumePurges): the audit log records it all the same, naming who asked.
// Before, only a purge that ran to its end was audited.
func TestPurgeCutShortIsAudited(t *testing.T) {
	fed, signed := purgeFederation(t)
	n := openPurgeLeader(t, fed, signed)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Four chunks: the purge runs to its end only if every chunk after the
	// first wins the race with the cut (cancelAfter).
	const records = 4 * PurgeChunk
	fillOrigin(t, n, fed, "hebei", records)
	// The group of one takes chunks (groupHas: no other replica).
	cut := &cancelAfter{Context: ctx, calls: 2, closed: make(chan struct{})}
	close(cut.closed)
	got, err := n.PurgeOrigin(cut, "hebei", "admin:ops")
	if !errors.Is(err, ErrTimeout) || got < PurgeChunk || got >= records {
		t.Fatalf("purge cut short after its first chunk: %d, %v; want ErrTimeout after %d (or, should the chunk's commit win the race with the cut, %d) of %d", got, err, PurgeChunk, 2*PurgeChunk, records)
	}
	if live := liveOf(t, n, "hebei", records); live != 0 {
		t.Fatalf("Get serves %d records of hebei after the first chunk", live)
	}
	if events := purgeEvents(ctx, t, n, "hebei: purge begun"); !byActor(events, "admin:ops") {
		t.Fatalf("hebei withdrawn from service, yet no origin.purge event in the audit log: %+v", events)
	}
	if _, err := n.ResumePurges(ctx, 20); err != nil {
		t.Fatal(err)
	}
	if left, err := n.st.UnfinishedPurges(); err != nil || len(left) != 0 {
		t.Fatalf("unfinished purges after ResumePurges: %v, %v", left, err)
	}
}

// TestPurgeCutAtItsFirstChunkIsAudited: a caller that stops waiting while
// the first chunk is applied leaves its outcome unknown (outcomeUnknown: an
// ErrTimeout), and the chunk commits all the same; the purge has begun and
// the audit log must say so. The test of a cut at the second chunk
// (TestPurgeCutShortIsAudited) counts the first as begun whatever
// outcomeUnknown says, so only this one shows a timeout counted as unknown.
func TestPurgeCutAtItsFirstChunkIsAudited(t *testing.T) {
	fed, signed := purgeFederation(t)
	n := openPurgeLeader(t, fed, signed)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const records = 2 * PurgeChunk
	fillOrigin(t, n, fed, "hebei", records)
	// Cut at the first wait (or, should the chunk's commit win the race
	// with the cut, a later one: begun all the same).
	cut := &cancelAfter{Context: ctx, calls: 1, closed: make(chan struct{})}
	close(cut.closed)
	got, err := n.PurgeOrigin(cut, "hebei", "admin:ops")
	if !errors.Is(err, ErrTimeout) || got >= records {
		t.Fatalf("purge cut at its first chunk: %d, %v; want ErrTimeout before the last of %d", got, err, records)
	}
	if events := purgeEvents(ctx, t, n, "hebei: purge begun"); !byActor(events, "admin:ops") {
		t.Fatalf("a purge whose first chunk's outcome is unknown (it commits) is not audited: %+v", events)
	}
}

// TestResumePurgesOnlyInChunks: a purge cut short after its first chunk, in
// a group one of whose replicas is not (or no longer: rolled back, its
// record missing) known to take chunks, is not finished by ResumePurges as
// one whole purge, which would hold the state machine, and every write of
// the centre, for the whole of it (38 s at 1,000,000 records) from the
// membership loop, unasked, where ResumePurges promises at most maxChunks
// chunks. It waits until the group takes chunks again; an operator's
// purge-origin still purges it whole meanwhile.
func TestResumePurgesOnlyInChunks(t *testing.T) {
	fed, signed := purgeFederation(t)
	nodes := openGroupOfOne(t, func(cfg *Config) {
		cfg.RecordKey = fed.Members["tianjin"].RecordKey
		cfg.Bundle, cfg.BundleSigned = fed.Bundle, signed
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	l := nodes[0]
	for _, n := range nodes[1:] {
		r := store.Replica{ID: n.cfg.ReplicaID, RaftAddr: n.cfg.RaftAddr, HTTP: "http://127.0.0.1:1"}
		if _, err := l.propose(ctx, &store.Command{Replica: &store.ReplicaCommand{Replica: r}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.RegisterSelf(ctx, store.Replica{RaftAddr: l.cfg.RaftAddr, HTTP: "http://127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	const records = 3 * PurgeChunk
	fillOrigin(t, l, fed, "hebei", records)
	asked := l.Membership()
	if err := l.RecordFeatures(ctx, asked, nodes[1].cfg.ReplicaID, Features()); err != nil {
		t.Fatal(err)
	}
	if err := l.RecordFeatures(ctx, asked, nodes[2].cfg.ReplicaID, Features()); err != nil {
		t.Fatal(err)
	}
	if res, err := l.propose(ctx, &store.Command{Purge: &store.PurgeCommand{Origin: "hebei", Limit: PurgeChunk}}); err != nil || !res.More {
		t.Fatalf("first chunk: %+v, %v", res, err)
	}
	// The leader stopped there; one replica now announces a build without
	// purge-chunks.
	if err := l.RecordFeatures(ctx, asked, nodes[2].cfg.ReplicaID, []string{FeatureFeedEpoch, FeatureIfAbsent, FeatureKeepCatalogue}); err != nil {
		t.Fatal(err)
	}
	got, err := l.ResumePurges(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if whole, chunks := purgeCommands(t, l); whole != 0 || chunks != 1 || got != 0 {
		t.Fatalf("resume, one chunk at most, with a replica lacking purge-chunks: %d records, %d whole purges and %d chunks in the log; want 0, 0 and 1", got, whole, chunks)
	}
	if left, err := l.st.UnfinishedPurges(); err != nil || len(left) != 1 {
		t.Fatalf("unfinished purges: %v, %v", left, err)
	}
	// Once it announces purge-chunks again, the leader goes on in chunks.
	if err := l.RecordFeatures(ctx, asked, nodes[2].cfg.ReplicaID, Features()); err != nil {
		t.Fatal(err)
	}
	if got, err := l.ResumePurges(ctx, 20); err != nil || got != records-PurgeChunk {
		t.Fatalf("resume once every replica takes chunks: %d, %v; want %d", got, err, records-PurgeChunk)
	}
	if whole, chunks := purgeCommands(t, l); whole != 0 || chunks != 3 {
		t.Fatalf("%d whole purges and %d chunks in the log, want 0 and 3", whole, chunks)
	}
	awaitSameState(t, l, nodes)
}

// TestPurgeRefusedAtItsFirstChunkIsNotAudited: a purge whose first command
// the state machine refused (here: the centre's own records, which a bundle
// marking this centre removed lets PurgeOrigin propose) withdrew nothing
// from service; the audit log must not say a purge began. Only a first
// command whose outcome is unknown (a timeout: it may yet commit) or that
// applied counts as begun.
func TestPurgeRefusedAtItsFirstChunkIsNotAudited(t *testing.T) {
	fed, err := exchangetest.NewFederation("tianjin", "hebei")
	if err != nil {
		t.Fatal(err)
	}
	left := time.Now().UTC()
	for i := range fed.Bundle.Members {
		fed.Bundle.Members[i].Removed = &left
	}
	sb, err := auth.SignBundle(fed.Bundle, fed.Root)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := sb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	n := openPurgeLeader(t, fed, signed)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := n.PurgeOrigin(ctx, "tianjin", "admin:ops"); !errors.Is(err, store.ErrNotOrigin) {
		t.Fatalf("purge of the centre's own records: %v, want ErrNotOrigin", err)
	}
	if events := purgeEvents(ctx, t, n, ""); len(events) != 0 {
		t.Fatalf("a purge refused at its first command is audited as begun: %+v", events)
	}
}

// TestPurgeOriginGivesUpWaitingForAnotherPurge: a purge-origin that waits
// behind another purge of this leader's (ResumePurges, up to its maxChunks
// chunks) gives up when its caller's context ends, with ErrTimeout and
// nothing proposed, as the node's other waits do; it used to wait for the
// lock whatever its context said. Once the other purge ends it runs.
func TestPurgeOriginGivesUpWaitingForAnotherPurge(t *testing.T) {
	fed, signed := purgeFederation(t)
	n := openPurgeLeader(t, fed, signed)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	fillOrigin(t, n, fed, "hebei", 10)
	n.purgeLock <- struct{}{} // another purge runs, as ResumePurges would
	short, stop := context.WithTimeout(ctx, 100*time.Millisecond)
	defer stop()
	type outcome struct {
		n   int
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		got, err := n.PurgeOrigin(short, "hebei", "admin:ops")
		done <- outcome{got, err}
	}()
	select {
	case o := <-done:
		if !errors.Is(o.err, ErrTimeout) || !errors.Is(o.err, context.DeadlineExceeded) || o.n != 0 {
			t.Fatalf("purge-origin behind another purge: %d, %v; want 0 and ErrTimeout", o.n, o.err)
		}
	case <-time.After(30 * time.Second):
		<-n.purgeLock // lets the waiting call run, so that the test ends
		t.Fatal("purge-origin still waits for another purge 30 s after its context ended")
	}
	if p, err := n.st.Purged("hebei"); err != nil || p {
		t.Fatalf("hebei marked purged (%v, %v) by a call that gave up before proposing", p, err)
	}
	<-n.purgeLock // the other purge ends
	if got, err := n.PurgeOrigin(ctx, "hebei", "admin:ops"); err != nil || got != 10 {
		t.Fatalf("purge-origin once the other purge ended: %d, %v", got, err)
	}
}
