package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// cmdEtcd puts values of --size bytes under fresh keys at each client count, on
// the cluster's leader (as liandong's write scenario writes to its leader).
func cmdEtcd(ctx context.Context, args []string, stdout io.Writer) error {
	var c commonFlags
	fs, cl := newFlagSet("etcd", &c, "1,16,64,256")
	endpoints := fs.String("endpoints", "", "comma-separated client URLs of the members")
	label := fs.String("label", "etcd", "system name in the results (e.g. etcd-1, etcd-3)")
	conns := fs.Int("conns", 8, "gRPC connections the clients share (at most one per client)")
	allMembers := fs.Bool("all-members", false, "spread clients over every member instead of the leader alone")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.finish(*cl); err != nil {
		return err
	}
	eps := strings.Split(*endpoints, ",")
	if *endpoints == "" {
		return fmt.Errorf("etcd: --endpoints is required")
	}
	leader, err := etcdLeader(ctx, eps)
	if err != nil {
		return err
	}
	if !*allMembers {
		eps = []string{leader}
	}
	fmt.Fprintf(os.Stderr, "(%s: leader at %s; clients on %s)\n", *label, leader, strings.Join(eps, ","))

	maxConns := 1
	for _, n := range c.clients {
		maxConns = max(maxConns, min(n, *conns))
	}
	clis := make([]*clientv3.Client, maxConns)
	for i := range clis {
		cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
		if err != nil {
			return fmt.Errorf("etcd client: %w", err)
		}
		defer cli.Close()
		clis[i] = cli
	}
	val := string(payload("v", c.size))
	em := &emitter{system: *label, table: os.Stderr}
	var seq atomic.Int64
	for _, n := range c.clients {
		k := min(n, len(clis))
		r := load(ctx, c.meter, "put", n, c.duration, 1<<40, func(ctx context.Context, client, _ int) error {
			octx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := clis[client%k].Put(octx, fmt.Sprintf("bench/%012d", seq.Add(1)), val)
			return err
		})
		r.Note = fmt.Sprintf("%d-byte values, %d gRPC conns", c.size, k)
		em.add(r)
	}
	return em.write(c.out, stdout)
}

// etcdLeader waits (at most 60 s) until the cluster has a leader that answers a
// put, and returns the leader's client URL.
func etcdLeader(ctx context.Context, eps []string) (string, error) {
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return "", fmt.Errorf("etcd client: %w", err)
	}
	defer cli.Close()
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for _, ep := range eps {
			sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			st, err := cli.Status(sctx, ep)
			cancel()
			if err != nil {
				last = err
				continue
			}
			if st.Leader != 0 && st.Leader == st.Header.MemberId {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := cli.Put(pctx, "bench/ready", "1")
				cancel()
				if err == nil {
					return ep, nil
				}
				last = err
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if last == nil {
		last = ctx.Err()
	}
	return "", fmt.Errorf("etcd at %s: no leader answering within 60 s: %v", strings.Join(eps, ","), last)
}
