package exchange

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
)

// metrics are the liandong_sync_* series. Peer series are labelled by member
// centre id, never by raw peer id, to keep cardinality bounded by the bundle.
type metrics struct {
	peersConnected prometheus.Gauge
	peersStalled   *prometheus.GaugeVec // member
	lagEntries     *prometheus.GaugeVec // origin
	lagSeconds     *prometheus.GaugeVec // origin
	localSeq       *prometheus.GaugeVec // origin
	peerBehind     *prometheus.GaugeVec // member, origin
	applied        *prometheus.CounterVec
	rejected       *prometheus.CounterVec // reason
	faults         *prometheus.CounterVec // reason
	forks          *prometheus.CounterVec // origin
	framesSent     *prometheus.CounterVec // type
	framesRecv     *prometheus.CounterVec // type
	bytesSent      prometheus.Counter
	bytesRecv      prometheus.Counter
	announces      *prometheus.CounterVec // direction
	delay          *prometheus.HistogramVec
}

// Fault reasons beyond auth.ChainReason values: why a peer was cut off.
const (
	reasonOversized = "oversized-frame"
	reasonMalformed = "malformed-frame"
	reasonProtocol  = "protocol-violation"
	reasonFork      = "fork"
	reasonOwnOrigin = "own-origin"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "liandong", "sync"
	m := &metrics{
		peersConnected: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "peers_connected", Help: "Federation peers with an open connection."}),
		peersStalled: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "peers_stalled", Help: "Connected peers of a member centre that have answered nothing for longer than the stall limit."}, []string{"member"}),
		lagEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "lag_entries", Help: "Best head seq seen at any peer minus the local head seq, per origin."}, []string{"origin"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "lag_seconds", Help: "How long this node has known of entries of the origin it does not hold yet; 0 when caught up."}, []string{"origin"}),
		localSeq: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "local_head_seq", Help: "Seq of the local head of each origin's log."}, []string{"origin"}),
		peerBehind: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub,
			Name: "peer_behind_entries", Help: "Entries of an origin this node holds beyond the most a member's connected peers claim (0 when they are level or ahead)."}, []string{"member", "origin"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "entries_applied_total", Help: "Entries received from peers, verified and applied, by origin."}, []string{"origin"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "entries_rejected_total", Help: "Entries received from peers and refused, by reason; a refused batch counts all its entries."}, []string{"reason"}),
		faults: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "peer_faults_total", Help: "Peers cut off and backed off for breaking the protocol or sending bad entries, by reason."}, []string{"reason"}),
		forks: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "forks_detected_total", Help: "Validly signed entries conflicting with held entries of the same origin and seq (the origin forked its log)."}, []string{"origin"}),
		framesSent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "frames_sent_total", Help: "Sync protocol frames sent, by message type."}, []string{"type"}),
		framesRecv: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "frames_received_total", Help: "Sync protocol frames received, by message type."}, []string{"type"}),
		bytesSent: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "sent_bytes_total", Help: "Sync protocol bytes sent, frame headers included."}),
		bytesRecv: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "received_bytes_total", Help: "Sync protocol bytes received, frame headers included."}),
		announces: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub,
			Name: "announcements_total", Help: "Heads announcements on gossipsub, published and received."}, []string{"direction"}),
		delay: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns,
			Name: "replication_delay_seconds", Help: "Time from an entry's signing at its origin to its apply here, by origin.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600}}, []string{"origin"}),
	}
	// Known label values start at zero, so rate() and alerts see them at once.
	for _, r := range auth.ChainReasons {
		m.rejected.WithLabelValues(string(r))
		m.faults.WithLabelValues(string(r))
	}
	for _, r := range []string{reasonOversized, reasonMalformed, reasonProtocol, reasonFork, reasonOwnOrigin} {
		m.rejected.WithLabelValues(r)
		m.faults.WithLabelValues(r)
	}
	m.announces.WithLabelValues("sent")
	m.announces.WithLabelValues("received")
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.peersConnected, m.peersStalled, m.lagEntries, m.lagSeconds,
		m.localSeq, m.peerBehind, m.applied, m.rejected, m.faults, m.forks, m.framesSent, m.framesRecv, m.bytesSent,
		m.bytesRecv, m.announces, m.delay} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if errors.As(err, &are) {
				return nil, errors.New("register sync metrics: already registered (one Exchange per registry)")
			}
			return nil, fmt.Errorf("register sync metrics: %w", err)
		}
	}
	return m, nil
}
