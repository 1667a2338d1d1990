package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"liandong/auth"
	"liandong/node"
	"liandong/node/server"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "config file (YAML)")
	dev := fs.Bool("dev", false, "one-centre development node: create keys, bundle and admin token in --data if absent")
	data := fs.String("data", "", "data directory (overrides data_dir)")
	httpAddr := fs.String("http", "", "HTTP listen address (overrides http)")
	centre := fs.String("centre", "", "centre id (overrides centre; --dev defaults to hq)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	join := fs.String("join", "", "API URL of a running replica of this centre to join (overrides raft.join)")
	joinToken := fs.String("join-token", "", "file with an admin token of this centre, for --join (overrides raft.join_token)")
	raftAddr := fs.String("raft-addr", "", "address raft listens on for the other replicas (overrides raft.addr)")
	replicaID := fs.String("replica-id", "", "this replica's id, <centre>-<name> (overrides raft.replica_id)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if !*dev && *configPath == "" && os.Getenv("LIANDONG_CENTRE") == "" {
		return usagef("give --config FILE, or --dev --data DIR for a one-centre node")
	}
	cfg, err := loadConfig(*configPath, os.Environ())
	if err != nil {
		return err
	}
	if *data != "" {
		cfg.DataDir = *data
	}
	if *httpAddr != "" {
		cfg.HTTP = *httpAddr
	}
	if *centre != "" {
		cfg.Centre = *centre
	}
	if *join != "" {
		cfg.Raft.Join = *join
	}
	if *joinToken != "" {
		cfg.Raft.JoinToken = *joinToken
	}
	if *raftAddr != "" {
		cfg.Raft.Addr = *raftAddr
	}
	if *replicaID != "" {
		cfg.Raft.ReplicaID = *replicaID
	}
	cfg.Logger = newLogger(stderr, *logLevel)
	faultsFromEnv(&cfg)
	if *dev {
		if cfg.Centre == "" {
			cfg.Centre = "hq"
		}
		if cfg.DataDir == "" {
			return usagef("--dev needs --data DIR")
		}
	}
	// server.Start validates too, but its error cannot be told from a failure
	// to start; checked here, a mistake exits 2 (see exitMistake).
	if err := cfg.Validate(); err != nil {
		return configError{fmt.Errorf("config: %w", err)}
	}
	if *dev {
		tokenPath, err := server.DevSetup(&cfg, time.Now())
		if err != nil {
			return fmt.Errorf("prepare %s: %w", cfg.DataDir, err)
		}
		fmt.Fprintf(stdout, "admin token (scopes read pii write admin): %s\n", tokenPath)
	}
	s, err := server.Start(ctx, cfg)
	if errors.Is(err, server.ErrListenHTTP) && errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w; choose another with --http (or http in the config)", err)
	}
	// raft.log_store naming the other kind of log than the data directory
	// holds is a setting to correct: restarting (systemd does, on exit 1)
	// meets the same refusal every time.
	if errors.Is(err, node.ErrLogStoreMismatch) {
		return configError{err}
	}
	if err != nil {
		return err
	}
	warnConfig(cfg.Logger, cfg, s.Node.Bundle(), *dev)
	fmt.Fprintf(stdout, "liandong %s serving at %s (data %s, peer %s)\n", cfg.Centre, s.URL, cfg.DataDir, s.Exchange.ID())
	done := make(chan struct{})
	defer close(done)
	go shutdownWatchdog(ctx, done, cfg.ShutdownTimeout+5*time.Second, stderr)
	return s.Run(ctx)
}

// warnConfig logs what a node runs with but should not, against the trust
// bundle it runs on (only known once started).
func warnConfig(log *slog.Logger, cfg server.Config, b *auth.Bundle, dev bool) {
	if len(cfg.RootKeys) == 0 && !dev {
		// Unpinned, the bundle file is trusted on its own signatures: whoever
		// can replace it can replace the federation's keys.
		var signers []string
		for _, k := range b.Signers {
			signers = append(signers, k.ID+" = "+auth.KeyFingerprint(k.Public))
		}
		log.Warn("no root key pinned: the trust bundle is accepted on its own signatures; set root_keys (or LIANDONG_ROOT_KEYS) to the root key's fingerprint, sha256:…, as the federation's root key holder gives it",
			"bundle_signers", strings.Join(signers, ", "))
	}
	var centres []string
	for _, m := range b.Members {
		centres = append(centres, m.ID)
	}
	for _, c := range cfg.P2P.Block {
		if !slices.Contains(centres, c) {
			log.Warn("p2p.block names no centre of the trust bundle, so blocks nothing", "entry", c, "centres", strings.Join(centres, ", "))
		}
	}
}

// shutdownWatchdog ends a process whose orderly shutdown, begun when ctx ended,
// has not finished within limit: it prints every goroutine's stack (what is
// stuck, for the next engineer) and exits exitShutdownHung: not 2, which tells
// systemd the configuration is wrong and not to restart. An acknowledged write is in raft's
// fsynced log, so the next start loses nothing; a supervisor waiting on a stop
// must not wait for ever.
func shutdownWatchdog(ctx context.Context, done <-chan struct{}, limit time.Duration, stderr io.Writer) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		fmt.Fprintf(stderr, "liandong: shutdown did not finish within %v; goroutines:\n", limit)
		pprof.Lookup("goroutine").WriteTo(stderr, 2)
		os.Exit(exitShutdownHung)
	}
}
