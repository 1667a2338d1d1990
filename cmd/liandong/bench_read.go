package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"liandong/auth"
	"liandong/integration/bench"
	"liandong/node"
	"liandong/node/search"
	"liandong/node/server"
	"liandong/node/store"
	"liandong/schema"
)

// Queries of the read scenario's search pages. Topic words match about 1/24
// of bench.VariedRecordJSON's records; 成果转化 (the summaries' padding) every one.
var (
	selectiveQueries = []string{"轴承", "氢燃料电池", "减速器", "数据库 迁移", "钙钛矿"}
	broadQueries     = []string{"成果转化"}
)

// benchRead measures reads at a single-replica centre of its own holding n
// records of about size bytes: GET by id, filtered list pages, full-text search
// pages (selective and broad), and the process's Go heap and RSS once the
// records and their search index are loaded. The records are written through
// the store, not the API (a million creates over HTTP would take most of an
// hour), and indexed before the clock starts, as a running centre's are.
func benchRead(ctx context.Context, dir string, n, size int, d time.Duration, memProfile string, emit func(bench.Result), logger *slog.Logger) error {
	cfg := server.Default()
	cfg.Centre, cfg.DataDir, cfg.HTTP = "tianjin", dir, "127.0.0.1:0"
	cfg.Logger = logger
	if err := cfg.Validate(); err != nil {
		return err
	}
	tokenPath, err := server.DevSetup(&cfg, time.Now())
	if err != nil {
		return err
	}
	// A first start creates the raft state the preloaded state file joins.
	_, stop, err := startServer(ctx, cfg)
	if err != nil {
		return err
	}
	stop()

	t0 := time.Now()
	key, err := auth.LoadKey(cfg.Path(cfg.Keys.Record))
	if err != nil {
		return err
	}
	st, err := store.Open(filepath.Join(dir, "state.db"), store.Options{Centre: cfg.Centre, Signer: node.KeySigner(key), NoSync: true})
	if err != nil {
		return err
	}
	ids, err := preloadRecords(st, cfg.Centre, n, func(i int) []byte { return bench.VariedRecordJSON(i, size) })
	if err == nil {
		err = buildSearchIndex(dir, st)
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "(preloaded and indexed %d records in %s)\n", n, time.Since(t0).Round(time.Millisecond))

	s, stop, err := startServer(ctx, cfg)
	if err != nil {
		return err
	}
	defer stop()
	tok, err := os.ReadFile(tokenPath)
	if err != nil {
		return err
	}
	api := bench.NewAPI(s.URL, strings.TrimSpace(string(tok)), 64)
	emit(memoryResult(n))
	if memProfile != "" {
		if err := writeHeapProfile(memProfile); err != nil {
			return err
		}
	}
	emit(bench.GetByID(ctx, api, ids, 16, d))
	emit(bench.ListPages(ctx, api, 16, d, n))
	// Searches one at a time: their latency is the service time, which the
	// target is about; 16 clients on two cores would measure the queue.
	emit(bench.SearchPages(ctx, api, "search-page", selectiveQueries, 1, d, n))
	emit(bench.SearchPages(ctx, api, "search-broad", broadQueries, 1, d, n))
	return nil
}

// startServer starts a node from cfg and returns it once it leads; stop ends it.
func startServer(ctx context.Context, cfg server.Config) (*server.Server, func(), error) {
	s, err := server.Start(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()
	stop := func() { cancel(); <-done }
	if err := s.Node.WaitLeader(ctx); err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}

// preloadRecords writes n records of centre's own (record(i) is the create
// request) straight into st, 1,000 per transaction, and returns their ids.
func preloadRecords(st *store.Store, centre string, n int, record func(i int) []byte) ([]string, error) {
	ids := make([]string, 0, n)
	for done := 0; done < n; {
		batch := make([]store.Log, 0, 1000)
		for k := 0; k < 1000 && done < n; k, done = k+1, done+1 {
			rec, err := schema.DecodeRecord(record(done))
			if err != nil {
				return nil, err
			}
			id := fmt.Sprintf("%s:bench%08d", centre, done)
			data, err := store.EncodeCommand(&store.Command{Write: &store.WriteCommand{
				Op: store.OpCreate, ID: id, Record: rec, At: time.Now().UTC(), Epoch: "bench-" + centre,
			}})
			if err != nil {
				return nil, err
			}
			batch = append(batch, store.Log{Data: data})
			ids = append(ids, id)
		}
		if _, err := st.Apply(batch); err != nil {
			return nil, fmt.Errorf("preload %s: %w", centre, err)
		}
	}
	return ids, nil
}

// buildSearchIndex brings the search index in dataDir up to st.
func buildSearchIndex(dataDir string, st *store.Store) error {
	idx, err := search.Open(filepath.Join(dataDir, "search.db"), st, search.Options{})
	if err == nil {
		err = idx.Sync()
		if cerr := idx.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("index the preloaded records in %s: %w", dataDir, err)
	}
	return nil
}

// memoryResult reports the Go heap after a collection and the process's
// resident set, with n records loaded.
func memoryResult(n int) bench.Result {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	rss := "unknown"
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				if kb, err := strconv.ParseUint(f[1], 10, 64); err == nil {
					rss = fmt.Sprintf("%.0f MiB", float64(kb)/1024)
				}
			}
		}
	}
	return bench.Result{Scenario: "memory", Ops: n, HeapBytes: ms.HeapAlloc,
		Note: fmt.Sprintf("%d records: Go heap %.0f MiB after GC (heap in use %.0f MiB, from the OS %.0f MiB), RSS %s; one node, the load generator idle",
			n, float64(ms.HeapAlloc)/(1<<20), float64(ms.HeapInuse)/(1<<20), float64(ms.Sys)/(1<<20), rss)}
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return fmt.Errorf("write heap profile %s: %w", path, err)
	}
	return f.Close()
}
