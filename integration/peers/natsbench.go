package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// cmdNATS measures NATS JetStream with file storage: server A holds stream
// BENCH, server B (a leaf node of A, JetStream domain "b") mirrors it as
// MIRROR. Publish throughput at each client count (to BENCH, mirrored); A→B
// mirror latency at --rate messages/s, from A's publish acknowledgement until an
// ordered consumer on B's mirror delivers the message; and the catch-up rate of
// a mirror created on B while A already holds --catchup messages.
func cmdNATS(ctx context.Context, args []string, stdout io.Writer) error {
	var c commonFlags
	fs, cl := newFlagSet("nats", &c, "1,16,64,256")
	urlA := fs.String("a", "", "client URL of server A (JetStream domain \"a\")")
	urlB := fs.String("b", "", "client URL of server B (leaf node of A, JetStream domain \"b\")")
	domainA := fs.String("domain-a", "a", "JetStream domain of server A")
	rate := fs.Int("rate", 200, "mirror latency: messages per second")
	catchup := fs.Int("catchup", 100000, "mirror catch-up: messages A holds when the mirror is created")
	conns := fs.Int("conns", 8, "connections the publishing clients share (at most one per client)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.finish(*cl); err != nil {
		return err
	}
	if *urlA == "" || *urlB == "" {
		return fmt.Errorf("nats: --a and --b are required")
	}
	if *rate < 1 || *rate > 100000 || *catchup < 1 || *catchup > 10000000 {
		return fmt.Errorf("nats: --rate must be 1-100000 and --catchup 1-10000000")
	}
	ncB, err := natsConnect(ctx, *urlB, "peerbench-b")
	if err != nil {
		return fmt.Errorf("connect to B: %w", err)
	}
	defer ncB.Close()
	jsB, err := jetstream.New(ncB)
	if err != nil {
		return err
	}
	// Through the leaf node, B's clients reach A's JetStream API by domain.
	jsAviaB, err := jetstream.NewWithDomain(ncB, *domainA)
	if err != nil {
		return err
	}
	maxConns := 1
	for _, n := range c.clients {
		maxConns = max(maxConns, min(n, *conns))
	}
	jsAs := make([]jetstream.JetStream, maxConns)
	for i := range jsAs {
		nc, err := natsConnect(ctx, *urlA, fmt.Sprintf("peerbench-a-%d", i))
		if err != nil {
			return fmt.Errorf("connect to A: %w", err)
		}
		defer nc.Close()
		if jsAs[i], err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096)); err != nil {
			return err
		}
	}
	jsA := jsAs[0]
	if err := waitJetStream(ctx, "A", jsA); err != nil {
		return err
	}
	if err := waitJetStream(ctx, "B", jsB); err != nil {
		return err
	}
	if err := waitJetStream(ctx, "A through B's leaf node", jsAviaB); err != nil {
		return err
	}

	em := &emitter{system: "nats", table: os.Stderr}
	bench, err := jsA.CreateStream(ctx, jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		return fmt.Errorf("create stream BENCH on A: %w", err)
	}
	mirror, err := jsB.CreateStream(ctx, jetstream.StreamConfig{Name: "MIRROR", Storage: jetstream.FileStorage,
		Mirror: &jetstream.StreamSource{Name: "BENCH", Domain: *domainA}})
	if err != nil {
		return fmt.Errorf("create stream MIRROR on B: %w", err)
	}
	data := payload("x", c.size)

	// Publish throughput: each client publishes and waits for the ack.
	for _, n := range c.clients {
		k := min(n, len(jsAs))
		cpu0, cpuOK := c.meter.total()
		r := load(ctx, c.meter, "publish", n, c.duration, 1<<40, func(ctx context.Context, client, _ int) error {
			octx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := jsAs[client%k].Publish(octx, "bench.p", data)
			return err
		})
		// A acknowledges before B's mirror holds the messages: let the mirror
		// drain what the run left it, so the next run starts with an idle
		// mirror and this row's CPU counts B's share of the messages too.
		if info, err := bench.Info(ctx); err == nil {
			waitMsgs(ctx, mirror, info.State.LastSeq, 2*time.Minute)
		}
		r.CPUPerOp = 0
		if cpu1, ok := c.meter.total(); ok && cpuOK && r.Ops > 0 {
			r.CPUPerOp = (cpu1 - cpu0) / time.Duration(r.Ops)
		}
		r.Note = fmt.Sprintf("%d-byte messages, acked, file store, stream mirrored to B (CPU until B holds them); %d conns", c.size, k)
		em.add(r)
	}

	r, err := natsMirrorLatency(ctx, jsA, jsB, *rate, c.duration, c.size)
	if err != nil {
		return err
	}
	em.add(r)

	r, err = natsMirrorCatchup(ctx, jsA, jsB, *domainA, *catchup, c.size)
	if err != nil {
		return err
	}
	em.add(r)
	return em.write(c.out, stdout)
}

// natsConnect connects to url, retrying for up to 30 s while the server starts.
func natsConnect(ctx context.Context, url, name string) (*nats.Conn, error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		nc, err := nats.Connect(url, nats.Name(name))
		if err == nil {
			return nc, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitJetStream(ctx context.Context, name string, js jetstream.JetStream) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.AccountInfo(actx)
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("JetStream of %s not ready within 30 s: %w", name, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitMsgs waits (at most d) until s holds seq lastSeq; it reports whether it does.
func waitMsgs(ctx context.Context, s jetstream.Stream, lastSeq uint64, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		info, err := s.Info(ctx)
		if err == nil && info.State.LastSeq >= lastSeq {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// natsMirrorLatency publishes rate messages/s to A for d and measures each from
// A's acknowledgement until B's mirror delivers it to an ordered consumer.
func natsMirrorLatency(ctx context.Context, jsA, jsB jetstream.JetStream, rate int, d time.Duration, size int) (Result, error) {
	n := int(d.Seconds() * float64(rate))
	acked := make([]time.Time, n)
	arrived := make([]time.Time, n)
	var mu sync.Mutex
	got := 0
	cons, err := jsB.OrderedConsumer(ctx, "MIRROR", jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return Result{}, fmt.Errorf("ordered consumer on B's mirror: %w", err)
	}
	prefix := []byte("lat-")
	cc, err := cons.Consume(func(m jetstream.Msg) {
		now := time.Now()
		b := m.Data()
		if !bytes.HasPrefix(b, prefix) {
			return
		}
		end := bytes.IndexByte(b, ';')
		if end < 0 {
			return
		}
		i, err := strconv.Atoi(string(b[len(prefix):end]))
		if err != nil || i < 0 || i >= n {
			return
		}
		mu.Lock()
		if arrived[i].IsZero() {
			arrived[i] = now
			got++
		}
		mu.Unlock()
	})
	if err != nil {
		return Result{}, fmt.Errorf("consume B's mirror: %w", err)
	}
	defer cc.Stop()
	time.Sleep(200 * time.Millisecond) // the consumer's first pull request

	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	errs := 0
	for i := 0; i < n && ctx.Err() == nil; i++ {
		<-tick.C
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg := payload(fmt.Sprintf("lat-%d;", i), size)
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			_, err := jsA.Publish(pctx, "bench.lat", msg)
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs++
				return
			}
			acked[i] = now
		}()
	}
	wg.Wait()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		done := got >= n-errs
		mu.Unlock()
		if done {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	missing := 0
	for i := range n {
		if acked[i].IsZero() {
			continue
		}
		if arrived[i].IsZero() {
			missing++
			continue
		}
		lat = append(lat, max(arrived[i].Sub(acked[i]), 0))
	}
	r := summarise("mirror-latency", 1, lat, errs+missing, d)
	r.PerSec = float64(n) / d.Seconds()
	r.Note = fmt.Sprintf("ack at A → delivered from B's mirror; %d/s offered, %d never arrived", rate, missing)
	return r, nil
}

// natsMirrorCatchup fills a fresh stream CATCH on A with n messages, then
// creates B's mirror of it and measures messages/s until the mirror holds all.
func natsMirrorCatchup(ctx context.Context, jsA, jsB jetstream.JetStream, domainA string, n, size int) (Result, error) {
	src, err := jsA.CreateStream(ctx, jetstream.StreamConfig{Name: "CATCH", Subjects: []string{"catch.>"}, Storage: jetstream.FileStorage})
	if err != nil {
		return Result{}, fmt.Errorf("create stream CATCH on A: %w", err)
	}
	data := payload("c", size)
	t0 := time.Now()
	// Windows of 1,000 asynchronous publishes, each window acknowledged before
	// the next (the client refuses more than its pending limit).
	for i := 0; i < n; {
		for k := 0; k < 1000 && i < n; k, i = k+1, i+1 {
			if _, err := jsA.PublishAsync("catch.x", data); err != nil {
				return Result{}, fmt.Errorf("fill CATCH: %w", err)
			}
		}
		select {
		case <-jsA.PublishAsyncComplete():
		case <-ctx.Done():
			return Result{}, ctx.Err()
		case <-time.After(time.Minute):
			return Result{}, fmt.Errorf("fill CATCH: acknowledgements missing after 1 min")
		}
	}
	info, err := src.Info(ctx)
	if err != nil {
		return Result{}, err
	}
	fmt.Fprintf(os.Stderr, "(filled CATCH on A with %d messages in %s)\n", info.State.Msgs, time.Since(t0).Round(time.Millisecond))
	last := info.State.LastSeq

	start := time.Now()
	m, err := jsB.CreateStream(ctx, jetstream.StreamConfig{Name: "CATCHM", Storage: jetstream.FileStorage,
		Mirror: &jetstream.StreamSource{Name: "CATCH", Domain: domainA}})
	if err != nil {
		return Result{}, fmt.Errorf("create mirror CATCHM on B: %w", err)
	}
	if !waitMsgs(ctx, m, last, 10*time.Minute) {
		return Result{}, fmt.Errorf("mirror catch-up of %d messages did not finish within 10 min", n)
	}
	el := time.Since(start)
	return Result{Scenario: "mirror-catchup", Clients: 1, Ops: int(info.State.Msgs), Elapsed: el,
		PerSec: float64(info.State.Msgs) / el.Seconds(),
		Note:   fmt.Sprintf("fresh mirror on B of %d %d-byte messages on A", info.State.Msgs, size)}, nil
}
