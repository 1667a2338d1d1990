package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	"go.etcd.io/bbolt"
)

// cmdRaft measures the store alone: hashicorp/raft with raft-boltdb or
// raft-wal (fsynced log, --log-store, as liandong's raft.log_store) and a bbolt
// state machine applying each batch in one transaction
// (without fsync, as liandong's state file), configured as liandong's node
// configures raft, with 1 KB commands from concurrent callers. No validation,
// signing, indexing or HTTP: what liandong's write path is built on.
func cmdRaft(ctx context.Context, args []string, stdout io.Writer) error {
	var c commonFlags
	fs, cl := newFlagSet("raft", &c, "1,16,64,256")
	voters := fs.Int("voters", 1, "voters in the group (1, or 3 over TCP on loopback in this process)")
	dir := fs.String("dir", "", "data directory (default: a temporary one, removed after)")
	logStore := fs.String("log-store", "bolt", "raft's log: bolt (raft-boltdb) or wal (raft-wal)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *logStore != "bolt" && *logStore != "wal" {
		return fmt.Errorf("raft: --log-store must be bolt or wal")
	}
	if err := c.finish(*cl); err != nil {
		return err
	}
	if *voters != 1 && *voters != 3 {
		return fmt.Errorf("raft: --voters must be 1 or 3")
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "peerbench-raft-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	g, err := startRaftGroup(ctx, *dir, *voters, *logStore)
	if err != nil {
		return err
	}
	defer g.close()

	label := fmt.Sprintf("raft-%d", *voters)
	logName := "raft-boltdb"
	if *logStore == "wal" {
		label += "-wal"
		logName = "raft-wal"
	}
	em := &emitter{system: label, table: os.Stderr}
	cmd := payload("cmd", c.size)
	for _, n := range c.clients {
		r := load(ctx, c.meter, "apply", n, c.duration, 1<<40, func(ctx context.Context, _, _ int) error {
			return g.leader.Apply(cmd, 10*time.Second).Error()
		})
		r.Note = fmt.Sprintf("%d-byte commands; %s log fsynced, bbolt FSM one tx per batch", c.size, logName)
		em.add(r)
	}
	return em.write(c.out, stdout)
}

type raftGroup struct {
	leader *raft.Raft
	rafts  []*raft.Raft
	closer []func()
}

func (g *raftGroup) close() {
	for _, r := range g.rafts {
		r.Shutdown().Error()
	}
	for i := len(g.closer) - 1; i >= 0; i-- {
		g.closer[i]()
	}
}

// raftLog is raft's log and stable store, of either kind.
type raftLog interface {
	raft.LogStore
	raft.StableStore
	Close() error
}

func openRaftLog(dir, kind string) (raftLog, error) {
	if kind == "wal" {
		d := filepath.Join(dir, "wal")
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
		return raftwal.Open(d)
	}
	return raftboltdb.New(raftboltdb.Options{Path: filepath.Join(dir, "log.db"),
		BoltOptions: &bbolt.Options{Timeout: 5 * time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType}})
}

func startRaftGroup(ctx context.Context, dir string, voters int, logStore string) (*raftGroup, error) {
	g := &raftGroup{}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Error, Output: os.Stderr})
	type member struct {
		rc    *raft.Config
		logs  raftLog
		snaps raft.SnapshotStore
		tr    raft.Transport
		fsm   *boltFSM
	}
	var ms []member
	var servers []raft.Server
	for i := range voters {
		d := filepath.Join(dir, fmt.Sprintf("r%d", i))
		if err := os.MkdirAll(d, 0o700); err != nil {
			g.close()
			return nil, err
		}
		logs, err := openRaftLog(d, logStore)
		if err != nil {
			g.close()
			return nil, err
		}
		g.closer = append(g.closer, func() { logs.Close() })
		snaps, err := raft.NewFileSnapshotStoreWithLogger(d, 2, hlog)
		if err != nil {
			g.close()
			return nil, err
		}
		fsm, err := openBoltFSM(filepath.Join(d, "state.db"))
		if err != nil {
			g.close()
			return nil, err
		}
		g.closer = append(g.closer, func() { fsm.db.Close() })
		id := raft.ServerID(fmt.Sprintf("r%d", i))
		var tr raft.Transport
		if voters == 1 {
			_, tr = raft.NewInmemTransport(raft.ServerAddress(id))
		} else {
			// As the node configures it (node/faults.go): no pipelining.
			t, err := raft.NewTCPTransportWithConfig("127.0.0.1:0", nil, &raft.NetworkTransportConfig{MaxPool: 8, Timeout: 10 * time.Second, Logger: hlog, MaxRPCsInFlight: 1})
			if err != nil {
				g.close()
				return nil, err
			}
			g.closer = append(g.closer, func() { t.Close() })
			tr = t
		}
		rc := raft.DefaultConfig()
		rc.LocalID = id
		rc.Logger = hlog
		rc.BatchApplyCh = true
		rc.MaxAppendEntries = 256
		rc.SnapshotThreshold = 8192
		rc.TrailingLogs = 4096
		rc.NoSnapshotRestoreOnStart = true
		rc.NoLegacyTelemetry = true
		if voters == 1 {
			rc.HeartbeatTimeout = 100 * time.Millisecond
			rc.ElectionTimeout = 100 * time.Millisecond
			rc.LeaderLeaseTimeout = 100 * time.Millisecond
		}
		ms = append(ms, member{rc, logs, snaps, tr, fsm})
		servers = append(servers, raft.Server{ID: id, Address: tr.LocalAddr(), Suffrage: raft.Voter})
	}
	for i, m := range ms {
		if i == 0 {
			if err := raft.BootstrapCluster(m.rc, m.logs, m.logs, m.snaps, m.tr, raft.Configuration{Servers: servers}); err != nil {
				g.close()
				return nil, fmt.Errorf("bootstrap raft: %w", err)
			}
		}
		r, err := raft.NewRaft(m.rc, m.fsm, m.logs, m.logs, m.snaps, m.tr)
		if err != nil {
			g.close()
			return nil, err
		}
		g.rafts = append(g.rafts, r)
	}
	deadline := time.Now().Add(30 * time.Second)
	for g.leader == nil {
		for _, r := range g.rafts {
			if r.State() == raft.Leader {
				g.leader = r
			}
		}
		if g.leader != nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			g.close()
			return nil, fmt.Errorf("raft: no leader within 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := g.leader.Barrier(10 * time.Second).Error(); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// boltFSM stores every command under its raft index, one bbolt transaction per
// batch, without fsync (raft's log is the durable copy).
type boltFSM struct{ db *bbolt.DB }

var fsmBucket = []byte("cmds")

func openBoltFSM(path string) (*boltFSM, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{NoSync: true, NoFreelistSync: true, Timeout: 5 * time.Second})
	if err != nil {
		return nil, err
	}
	return &boltFSM{db: db}, nil
}

func (f *boltFSM) ApplyBatch(logs []*raft.Log) []any {
	out := make([]any, len(logs))
	err := f.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(fsmBucket)
		if err != nil {
			return err
		}
		var k [8]byte
		for _, l := range logs {
			if l.Type != raft.LogCommand {
				continue
			}
			binary.BigEndian.PutUint64(k[:], l.Index)
			if err := b.Put(k[:], l.Data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		for i := range out {
			out[i] = err
		}
	}
	return out
}

func (f *boltFSM) Apply(l *raft.Log) any { return f.ApplyBatch([]*raft.Log{l})[0] }

func (f *boltFSM) Snapshot() (raft.FSMSnapshot, error) {
	tx, err := f.db.Begin(false)
	if err != nil {
		return nil, err
	}
	return boltSnapshot{tx}, nil
}

func (f *boltFSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	_, err := io.Copy(io.Discard, rc) // never restored in a benchmark run
	return err
}

type boltSnapshot struct{ tx *bbolt.Tx }

func (s boltSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := s.tx.WriteTo(sink); err != nil {
		sink.Cancel()
		return err
	}
	return sink.Close()
}

func (s boltSnapshot) Release() { s.tx.Rollback() }
