package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

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
	cfg.Logger = newLogger(stderr, *logLevel)
	if *dev {
		if cfg.Centre == "" {
			cfg.Centre = "hq"
		}
		if cfg.DataDir == "" {
			return usagef("--dev needs --data DIR")
		}
		if err := cfg.Validate(); err != nil {
			return err
		}
		tokenPath, err := server.DevSetup(&cfg, time.Now())
		if err != nil {
			return fmt.Errorf("prepare %s: %w", cfg.DataDir, err)
		}
		fmt.Fprintf(stdout, "admin token (scopes read pii write admin): %s\n", tokenPath)
	}
	s, err := server.Start(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "liandong %s serving at %s (data %s, peer %s)\n", cfg.Centre, s.URL, cfg.DataDir, s.Exchange.ID())
	return s.Run(ctx)
}
