package node

import (
	"fmt"
	"strconv"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
	"liandong/schema"
)

// metrics are registered on the Registerer passed in Config, so several nodes can
// live in one test process.
type metrics struct {
	reg           prometheus.Registerer
	applyDuration prometheus.Histogram
	applyBatch    prometheus.Histogram
	remoteApplied *prometheus.CounterVec
	collector     *scrapeCollector
}

func newMetrics(reg prometheus.Registerer, n *Node) (*metrics, error) {
	m := &metrics{
		reg: reg,
		applyDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "liandong", Subsystem: "raft", Name: "apply_duration_seconds",
			Help:    "Time to apply one batch of committed raft entries to the state file.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		applyBatch: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "liandong", Subsystem: "raft", Name: "apply_batch_commands",
			Help:    "Commands applied per state-file transaction (group commit at work).",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10),
		}),
		remoteApplied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "liandong", Subsystem: "store", Name: "remote_entries_applied_total",
			Help: "Log entries of other origins applied through raft at this replica's proposal.",
		}, []string{"origin"}),
		collector: &scrapeCollector{n: n},
	}
	m.collector.m = m
	// remoteApplied is collected by the scrapeCollector, which first starts
	// the series of the bundle's centres.
	for _, c := range []prometheus.Collector{m.applyDuration, m.applyBatch, m.collector} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register node metrics: %w", err)
		}
	}
	return m, nil
}

// knowOrigins exports at zero the remote-applied series of every other centre
// b lists (removed ones aside), so that the first entries applied of a centre
// count as an increase. The scrapeCollector calls it with the bundle held at
// each scrape, before it collects remoteApplied, so a centre a new bundle adds
// has its series from the first scrape after. The node's own centre is left
// out (its log comes from peers only while it recovers).
//
// A centre the bundle removed loses its series again, unless this node holds
// some of its log (held): a zero kept for it would read as a centre in step.
func (m *metrics) knowOrigins(b *auth.Bundle, self string, held func(origin string) bool) {
	for _, origin := range listedOrigins(b) {
		if origin != self {
			m.remoteApplied.WithLabelValues(origin)
		}
	}
	if b == nil {
		return
	}
	for _, mem := range b.Members {
		if mem.Removed != nil && mem.ID != self && !held(mem.ID) {
			m.remoteApplied.DeleteLabelValues(mem.ID)
		}
	}
}

// listedOrigins are the centres b lists and has not removed: the origins whose
// series start at zero.
func listedOrigins(b *auth.Bundle) []string {
	if b == nil {
		return nil
	}
	var out []string
	for _, mem := range b.Members {
		if mem.Removed == nil {
			out = append(out, mem.ID)
		}
	}
	return out
}

func (m *metrics) unregister() {
	m.reg.Unregister(m.applyDuration)
	m.reg.Unregister(m.applyBatch)
	m.reg.Unregister(m.collector)
}

var (
	descRecords = prometheus.NewDesc("liandong_records",
		"Live records held by this node, by catalogue, origin centre and visibility.",
		[]string{"catalogue", "origin", "visibility"}, nil)
	descLogHead = prometheus.NewDesc("liandong_log_head_seq",
		"Sequence number of the newest entry held of each origin's signed log; 0 for a centre the trust bundle lists of which none is held.",
		[]string{"origin"}, nil)
	descRaftState = prometheus.NewDesc("liandong_raft_state",
		"Raft role of this replica: 1 for the current state label, 0 otherwise.",
		[]string{"state"}, nil)
	descRaftTerm = prometheus.NewDesc("liandong_raft_term",
		"Current raft term.", nil, nil)
	descRaftCommit = prometheus.NewDesc("liandong_raft_commit_index",
		"Raft commit index.", nil, nil)
	descRaftApplied = prometheus.NewDesc("liandong_raft_applied_index",
		"Last raft index raft has handed to the state file; it counts the entries a failed state file refused too (liandong_state_apply_failed).", nil, nil)
	descStateFailed = prometheus.NewDesc("liandong_state_apply_failed",
		"1 when the state file refused a transaction and this replica stopped applying raft's log (it serves no writes and answers /readyz 503 until restarted); 0 otherwise.", nil, nil)
	descRaftLeader = prometheus.NewDesc("liandong_raft_has_leader",
		"1 when this replica knows a raft leader.", nil, nil)
	descStateSize = prometheus.NewDesc("liandong_bbolt_size_bytes",
		"Size of the state file's data in bytes.", nil, nil)
	descFeed = prometheus.NewDesc("liandong_changes_position",
		"Newest change-feed position at this replica.", nil, nil)
	descRaftLogStore = prometheus.NewDesc("liandong_raft_log_store_info",
		"1, labelled with the kind of raft log this replica keeps: bolt (raft-boltdb, the default for a new data directory) or wal (raft-wal, opt-in with raft.log_store).",
		[]string{"kind"}, nil)
	descRaftVoters = prometheus.NewDesc("liandong_raft_voters",
		"Voters in this centre's raft group, as this replica's configuration lists them.", nil, nil)
	descBundleVersion = prometheus.NewDesc("liandong_bundle_version",
		"Version of the trust bundle this node holds.", nil, nil)
	descBundleExpiry = prometheus.NewDesc("liandong_bundle_expiry_timestamp_seconds",
		"When the trust bundle this node holds expires (Unix time); headquarters must publish a newer version before then.", nil, nil)
	descBundleExpiresIn = prometheus.NewDesc("liandong_trust_bundle_expiry_seconds",
		"Seconds until the trust bundle this node holds expires (negative once expired); the same as liandong_bundle_expiry_timestamp_seconds - time(), for dashboards without PromQL arithmetic.", nil, nil)
	descFSAvail = prometheus.NewDesc("liandong_data_filesystem_avail_bytes",
		"Bytes available to unprivileged users on the filesystem holding the data directory.", nil, nil)
	descFSSize = prometheus.NewDesc("liandong_data_filesystem_size_bytes",
		"Size in bytes of the filesystem holding the data directory.", nil, nil)
)

// scrapeCollector reads values that already live in raft and the store at scrape
// time, rather than copying them into gauges on every change.
type scrapeCollector struct {
	n *Node
	m *metrics // its remoteApplied, started and collected here
}

func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRecords, descLogHead, descRaftState, descRaftTerm, descRaftCommit, descRaftApplied,
		descRaftLeader, descRaftLogStore, descStateFailed, descStateSize, descFeed, descRaftVoters, descBundleVersion, descBundleExpiry, descBundleExpiresIn, descFSAvail, descFSSize} {
		ch <- d
	}
	c.m.remoteApplied.Describe(ch)
}

func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	held := map[string]bool{}
	var heads []schema.Head
	headsErr := ErrShutdown
	if n.st != nil && !n.closed.Load() {
		heads, headsErr = n.st.Heads()
	}
	for _, h := range heads {
		held[h.Origin] = true
	}
	// Unread heads hold nothing back: a series is deleted only when the
	// heads say the origin's log is not held.
	c.m.knowOrigins(n.Bundle(), n.cfg.Centre, func(origin string) bool { return headsErr != nil || held[origin] })
	c.m.remoteApplied.Collect(ch)
	if n.closed.Load() || n.raft == nil {
		return
	}
	if counts, err := n.st.Counts(); err == nil {
		for _, k := range counts {
			ch <- prometheus.MustNewConstMetric(descRecords, prometheus.GaugeValue, float64(k.N), k.Catalogue, k.Origin, k.Visibility)
		}
	}
	if headsErr == nil {
		for _, h := range heads {
			ch <- prometheus.MustNewConstMetric(descLogHead, prometheus.GaugeValue, float64(h.Seq), h.Origin)
		}
		for _, origin := range listedOrigins(n.Bundle()) {
			if !held[origin] {
				ch <- prometheus.MustNewConstMetric(descLogHead, prometheus.GaugeValue, 0, origin)
			}
		}
	}
	state := n.raft.State()
	for _, s := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		v := 0.0
		if s == state {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(descRaftState, prometheus.GaugeValue, v, s.String())
	}
	stats := n.raft.Stats()
	if t, err := strconv.ParseUint(stats["term"], 10, 64); err == nil {
		ch <- prometheus.MustNewConstMetric(descRaftTerm, prometheus.GaugeValue, float64(t))
	}
	ch <- prometheus.MustNewConstMetric(descRaftCommit, prometheus.GaugeValue, float64(n.raft.CommitIndex()))
	ch <- prometheus.MustNewConstMetric(descRaftApplied, prometheus.GaugeValue, float64(n.raft.AppliedIndex()))
	leader := 0.0
	if addr, _ := n.raft.LeaderWithID(); addr != "" {
		leader = 1
	}
	ch <- prometheus.MustNewConstMetric(descRaftLeader, prometheus.GaugeValue, leader)
	ch <- prometheus.MustNewConstMetric(descRaftLogStore, prometheus.GaugeValue, 1, n.logStoreKind)
	failed := 0.0
	if n.fsm != nil && n.fsm.failure() != nil {
		failed = 1
	}
	ch <- prometheus.MustNewConstMetric(descStateFailed, prometheus.GaugeValue, failed)
	if size, err := n.st.Size(); err == nil {
		ch <- prometheus.MustNewConstMetric(descStateSize, prometheus.GaugeValue, float64(size))
	}
	if pos, err := n.st.LastPosition(); err == nil {
		ch <- prometheus.MustNewConstMetric(descFeed, prometheus.GaugeValue, float64(pos))
	}
	if servers := n.servers(); servers != nil {
		voters := 0
		for _, s := range servers {
			if s.Suffrage == raft.Voter {
				voters++
			}
		}
		ch <- prometheus.MustNewConstMetric(descRaftVoters, prometheus.GaugeValue, float64(voters))
	}
	if b := n.Bundle(); b != nil {
		ch <- prometheus.MustNewConstMetric(descBundleVersion, prometheus.GaugeValue, float64(b.Version))
		if !b.ExpiresAt.IsZero() {
			ch <- prometheus.MustNewConstMetric(descBundleExpiry, prometheus.GaugeValue, float64(b.ExpiresAt.UnixNano())/1e9)
			ch <- prometheus.MustNewConstMetric(descBundleExpiresIn, prometheus.GaugeValue, b.ExpiresIn(n.cfg.Now()).Seconds())
		}
	}
	if avail, size, ok := filesystemSpace(n.cfg.DataDir); ok {
		ch <- prometheus.MustNewConstMetric(descFSAvail, prometheus.GaugeValue, avail)
		ch <- prometheus.MustNewConstMetric(descFSSize, prometheus.GaugeValue, size)
	}
}
