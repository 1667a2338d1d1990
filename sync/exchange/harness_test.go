package exchange_test

import (
	"bufio"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"liandong/schema"
	"liandong/sync/wire"
)

// harness is a peer that speaks the sync protocol directly, as scripted: it
// claims heads, answers pings and range requests its own way, or blocks.
type harness struct {
	h          host.Host
	federation string
	claims     []schema.Head
	// answer writes the answer to a range request (whole frames, or not).
	answer func(w *bufio.Writer, req *wire.RangeReq)
	// blockAll, when set, makes the handler sit on every request until unblock.
	blockAll bool
	// headsAnswer, when set, replaces the honest answer to a heads request
	// (claims, left out when the request says it holds them).
	headsAnswer func(req *wire.Heads) *wire.Heads
	// trust, when set, is the bundle a trust request is answered with
	// (otherwise it is not answered).
	trust []byte
	// stallTrust makes the handler sit on trust requests until unblock.
	stallTrust bool
	// protocol is the one version of the sync protocol the harness speaks
	// (wire.ProtocolID when empty).
	protocol protocol.ID

	mu       sync.Mutex
	blocked  chan struct{}
	requests []wire.Type
	pushed   []*schema.Entry // entries of push frames received, in order
	// pushStreams counts the streams push frames came on; pushStreamsDone
	// those of them the sender closed.
	pushStreams, pushStreamsDone int
	headsReqs                    []*wire.Heads // heads requests received, in order
	headsSizes                   []int         // their encoded sizes
	rangeReqs                    []*wire.RangeReq
	pushSizes                    []int // encoded sizes of the push frames received
}

// honestHeads answers req as a real peer would: claims, left out when req
// says it holds their digest.
func (hz *harness) honestHeads(req *wire.Heads) *wire.Heads {
	hz.mu.Lock()
	claims := hz.claims
	hz.mu.Unlock()
	m := &wire.Heads{Federation: hz.federation, BundleVersion: 1, Heads: claims, Digest: wire.HeadsDigest(claims)}
	if req.Known == m.Digest {
		m.Heads = nil
	}
	return m
}

func startHarness(t testing.TB, id crypto.PrivKey, hz *harness) *harness {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(id), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	hz.h = h
	hz.blocked = make(chan struct{})
	if hz.protocol == "" {
		hz.protocol = wire.ProtocolID
	}
	h.SetStreamHandler(hz.protocol, hz.handle)
	t.Cleanup(func() {
		hz.unblock()
		h.Close()
	})
	return hz
}

func (hz *harness) unblock() {
	hz.mu.Lock()
	defer hz.mu.Unlock()
	select {
	case <-hz.blocked:
	default:
		close(hz.blocked)
	}
}

func (hz *harness) handle(s network.Stream) {
	defer s.Close()
	r, w := bufio.NewReader(s), bufio.NewWriter(s)
	pushes := false
	for {
		body, err := wire.ReadFrame(r, 64<<20)
		if err != nil {
			if pushes && err == io.EOF {
				hz.mu.Lock()
				hz.pushStreamsDone++
				hz.mu.Unlock()
			}
			return
		}
		m, err := wire.Decode(body)
		if err != nil {
			s.Reset()
			return
		}
		hz.mu.Lock()
		hz.requests = append(hz.requests, m.Type())
		if p, ok := m.(*wire.Push); ok {
			hz.pushed = append(hz.pushed, p.Entries...)
			hz.pushSizes = append(hz.pushSizes, len(body))
			if !pushes {
				pushes = true
				hz.pushStreams++
			}
		}
		if r, ok := m.(*wire.RangeReq); ok {
			hz.rangeReqs = append(hz.rangeReqs, r)
		}
		if h, ok := m.(*wire.Heads); ok {
			hz.headsReqs = append(hz.headsReqs, h)
			hz.headsSizes = append(hz.headsSizes, len(body))
		}
		block := hz.blockAll
		answerHeads := hz.headsAnswer
		hz.mu.Unlock()
		if block {
			<-hz.blocked
		}
		switch m := m.(type) {
		case *wire.Ping:
			w.Write(wire.AppendFrame(nil, &wire.Pong{Nonce: m.Nonce}))
		case *wire.Heads:
			if answerHeads == nil {
				answerHeads = hz.honestHeads
			}
			w.Write(wire.AppendFrame(nil, answerHeads(m)))
		case *wire.RangeReq:
			if hz.answer != nil {
				hz.answer(w, m)
			}
		case *wire.TrustReq:
			if hz.stallTrust {
				<-hz.blocked
			}
			if hz.trust != nil {
				w.Write(wire.AppendFrame(nil, &wire.Trust{Bundle: hz.trust}))
			}
		}
		if w.Flush() != nil {
			return
		}
	}
}

// canOpenStream connects the harness to p and reports whether a sync stream opens.
func (hz *harness) canOpenStream(p peer.AddrInfo) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := hz.h.Connect(ctx, p); err != nil {
		return false
	}
	s, err := hz.h.NewStream(ctx, p.ID, wire.ProtocolID)
	if err != nil {
		return false
	}
	defer s.Close()
	// The gater's refusal may show only once the stream is used.
	w := bufio.NewWriter(s)
	w.Write(wire.AppendFrame(nil, &wire.Ping{Nonce: 7}))
	if w.Flush() != nil {
		return false
	}
	s.SetReadDeadline(time.Now().Add(2 * time.Second))
	body, err := wire.ReadFrame(bufio.NewReader(s), 1<<20)
	if err != nil {
		return false
	}
	m, err := wire.Decode(body)
	return err == nil && m.Type() == wire.TypePong
}

func (hz *harness) connect(t testing.TB, p peer.AddrInfo) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := hz.h.Connect(ctx, p); err != nil {
		t.Fatal(err)
	}
}

// pushTo sends a Push frame to p on a fresh stream.
func (hz *harness) pushTo(t testing.TB, p peer.AddrInfo, m *wire.Push) {
	t.Helper()
	hz.connect(t, p)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s, err := hz.h.NewStream(ctx, p.ID, wire.ProtocolID)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Write(wire.AppendFrame(nil, m)); err != nil {
		t.Fatal(err)
	}
}

// holdStreams opens n sync streams to p at once, each with half a frame
// header written so p's handler sits on it, and returns those that opened;
// the caller resets them.
func (hz *harness) holdStreams(p peer.ID, n int) []network.Stream {
	return holdOpen(n, 5*time.Second, 0x80, func(ctx context.Context) (network.Stream, error) {
		return hz.h.NewStream(ctx, p, wire.ProtocolID)
	})
}

// holdOpen opens n streams at once with open, writes first on each (a byte
// that leaves the other side waiting for more) and returns those that opened.
func holdOpen(n int, timeout time.Duration, first byte, open func(context.Context) (network.Stream, error)) []network.Stream {
	var (
		mu     sync.Mutex
		opened []network.Stream
		wg     sync.WaitGroup
	)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			s, err := open(ctx)
			if err != nil {
				return
			}
			if _, err := s.Write([]byte{first}); err != nil {
				s.Reset()
				return
			}
			mu.Lock()
			opened = append(opened, s)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return opened
}
