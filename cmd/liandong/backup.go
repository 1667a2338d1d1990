package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"liandong/client"
	"liandong/node"
	"liandong/node/store"
)

const restoreUsage = `liandong centre restore --from FILE (--config FILE | --data DIR --centre ID)
    lay a backup (centre backup) into an empty data directory, as the state of a replica
    that then starts with bootstrap: true (the others join it as new replicas). The node
    recovers what its centre signed after the backup from its federation peers before it
    writes; records kept private after the backup are lost.`

// takeBackup copies the node's state file to outPath, through a temporary
// file that is synced and checked before it takes the name: a backup cut
// short or damaged on the way never looks like a good one.
func takeBackup(ctx context.Context, c *client.Client, outPath string, stdout io.Writer) error {
	if outPath == "" {
		return usagef("backup needs --out FILE")
	}
	if _, err := os.Stat(outPath); err == nil {
		return fmt.Errorf("%s exists: choose another --out, or move it away", outPath)
	}
	f, err := os.CreateTemp(filepath.Dir(outPath), filepath.Base(outPath)+".partial-*")
	if err != nil {
		return fmt.Errorf("create the backup file: %w", err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			f.Close()
			os.Remove(tmp)
		}
	}()
	b, err := c.Backup(ctx, f)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", tmp, err)
	}
	info, err := store.Inspect(tmp)
	if err != nil {
		return fmt.Errorf("the copy received is not usable (%w); nothing was written to %s", err, outPath)
	}
	if info.Centre != b.Centre || info.AppliedIndex != b.AppliedIndex {
		return fmt.Errorf("the copy received holds centre %q at applied index %d, the node announced %q at %d; nothing was written to %s",
			info.Centre, info.AppliedIndex, b.Centre, b.AppliedIndex, outPath)
	}
	if err := os.Rename(tmp, outPath); err != nil {
		return fmt.Errorf("name the backup %s: %w", outPath, err)
	}
	done = true
	if d, err := os.Open(filepath.Dir(outPath)); err == nil {
		d.Sync()
		d.Close()
	}
	fmt.Fprintf(stdout, "wrote %s: centre %s, %d bytes, applied index %d, own log to seq %d, %d live records\n",
		outPath, info.Centre, info.Size, info.AppliedIndex, info.OwnSeq, info.Records)
	fmt.Fprintln(stdout, "it holds the centre's personal data and audit log: store it as such")
	return nil
}

// cmdRestore is `liandong centre restore`; it needs no node, only the files.
func cmdRestore(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("centre restore", flag.ContinueOnError)
	from := fs.String("from", "", "the backup file (liandong centre backup)")
	configPath := fs.String("config", "", "the replica's config file: its data directory and centre")
	dataDir := fs.String("data", "", "the data directory to restore into (empty or absent)")
	centre := fs.String("centre", "", "the centre the backup is of")
	fs.Usage = func() { fmt.Fprintln(fs.Output(), restoreUsage) }
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" {
		return usagef("restore needs --from FILE\n%s", restoreUsage)
	}
	if *configPath != "" {
		if *dataDir != "" || *centre != "" {
			return usagef("give --config, or --data and --centre, not both\n%s", restoreUsage)
		}
		cfg, err := loadConfig(*configPath, os.Environ())
		if err != nil {
			return err
		}
		*dataDir, *centre = cfg.DataDir, cfg.Centre
	}
	if *dataDir == "" || *centre == "" {
		return usagef("restore needs --config FILE, or --data DIR and --centre ID\n%s", restoreUsage)
	}
	info, err := node.Restore(*dataDir, *centre, *from)
	if err != nil {
		if errors.Is(err, store.ErrNotBackup) {
			return fmt.Errorf("%w (is %s a file `liandong centre backup` wrote?)", err, *from)
		}
		return err
	}
	fmt.Fprintf(stdout, "restored %s into %s: centre %s, own log to seq %d, %d live records\n", *from, *dataDir, info.Centre, info.OwnSeq, info.Records)
	fmt.Fprintln(stdout, "put the federation's current trust bundle in place (curl -o bundle.json http://ANY-NODE/v1/bundle), then start this replica with bootstrap: true; the others join it afresh, and it recovers what its centre signed since from its federation peers before it writes")
	return nil
}
