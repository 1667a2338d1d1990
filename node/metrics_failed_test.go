package node

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"liandong/auth"
)

// TestMetricsShowAStoppedStateFile: a replica whose state file refused a
// transaction stops applying for good (fsm.failed, sticky until a restart):
// it answers /readyz 503 and refuses writes. Its /metrics must say so, or no
// alert can: raft counts the failed entries as applied, so
// liandong_raft_applied_index keeps pace with liandong_raft_commit_index
// (LiandongRaftApplyBehind stays quiet) and liandong_raft_has_leader stays 1
// (LiandongNoRaftLeader too).
func TestMetricsShowAStoppedStateFile(t *testing.T) {
	key, _ := auth.GenerateKey("tianjin-rec")
	reg := prometheus.NewRegistry()
	n := mustOpenNodeWith(t, t.TempDir(), key, func(c *Config) { c.Registerer = reg })
	defer n.Close()
	if _, err := n.Create(context.Background(), supplyRecord("之前")); err != nil {
		t.Fatal(err)
	}
	if got := gaugeValue(t, reg, "liandong_state_apply_failed"); got != 0 {
		t.Fatalf("liandong_state_apply_failed = %v on a healthy replica, want 0", got)
	}
	// A command this build cannot read stops the replica (store.Apply).
	for range 3 {
		if err := n.raft.Apply([]byte(`X{}`), 5*time.Second).Error(); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Ready(); !errors.Is(err, ErrStateFailed) {
		t.Fatalf("ready: %v, want ErrStateFailed", err)
	}
	applied := gaugeValue(t, reg, "liandong_raft_applied_index")
	commit := gaugeValue(t, reg, "liandong_raft_commit_index")
	stateApplied, _, _ := n.st.AppliedIndex()
	t.Logf("raft commit %v, liandong_raft_applied_index %v, state file applied %d, has_leader %v",
		commit, applied, stateApplied, gaugeValue(t, reg, "liandong_raft_has_leader"))
	if got := gaugeValue(t, reg, "liandong_state_apply_failed"); got != 1 {
		t.Errorf("liandong_state_apply_failed = %v after the state file stopped applying, want 1: nothing in /metrics tells this replica from a healthy one", got)
	}
}

// gaugeValue is the value of the unlabelled series name in reg, 0 when absent.
func gaugeValue(t *testing.T, reg prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return 0
}

// TestReplicaStatusSaysNotReady: /v1/federation's "replica" (ReplicaStatus),
// which `liandong status` reads, must tell a replica that cannot serve from a
// healthy one: after its state file stopped applying it still reads as a
// leader with a leader known, and status exited 0 ("OK: nothing needs
// attention") while /readyz answered 503.
func TestReplicaStatusSaysNotReady(t *testing.T) {
	key, _ := auth.GenerateKey("tianjin-rec")
	n := mustOpenNode(t, t.TempDir(), key)
	defer n.Close()
	if _, err := n.Create(context.Background(), supplyRecord("之前")); err != nil {
		t.Fatal(err)
	}
	healthy, err := json.Marshal(n.ReplicaStatus())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(healthy), "not_ready") {
		t.Fatalf("a ready replica's status says not_ready: %s", healthy)
	}
	if err := n.raft.Apply([]byte(`X{}`), 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	if err := n.Ready(); !errors.Is(err, ErrStateFailed) {
		t.Fatalf("ready: %v, want ErrStateFailed", err)
	}
	failed, err := json.Marshal(n.ReplicaStatus())
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(failed, &doc); err != nil {
		t.Fatal(err)
	}
	if s, _ := doc["not_ready"].(string); !strings.Contains(s, "state file failed") {
		t.Errorf("replica status of a replica whose state file failed: %s; want not_ready saying why", failed)
	}
}
