package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"liandong/node"
	"liandong/node/store"
)

// TestProbeReplicas: each replica other than the leader is asked for its
// /healthz; what it lists, what its feed is named, or why it did not answer.
func TestProbeReplicas(t *testing.T) {
	health := func(body string) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	current := health(`{"status":"ok","features":["feed-epoch","if-absent","keep-catalogue","purge-chunks"],"feed_epoch":"e1"}`)
	older := health(`{"status":"ok"}`)
	session16 := health(`{"status":"ok","features":["feed-epoch"]}`)
	session21 := health(`{"status":"ok","features":["feed-epoch","if-absent"]}`)
	session23 := health(`{"status":"ok","features":["feed-epoch","if-absent","keep-catalogue"]}`)
	gone := health(`{}`)
	gone.Close()
	rep := func(id, url string) node.ReplicaInfo {
		return node.ReplicaInfo{Replica: store.Replica{ID: id, HTTP: url}, Suffrage: "Voter"}
	}
	got := probeReplicas(context.Background(), []node.ReplicaInfo{rep("tianjin-1", ""), rep("tianjin-2", current.URL),
		rep("tianjin-3", older.URL), rep("tianjin-4", gone.URL), rep("tianjin-5", "")}, "tianjin-1", nil)
	if len(got) != 4 {
		t.Fatalf("probed %d replicas, want the 4 other than the leader: %+v", len(got), got)
	}
	if p := got[0]; p.Err != nil || p.FeedEpoch != "e1" || len(p.Features) != 4 || p.Features[0] != node.FeatureFeedEpoch {
		t.Errorf("current build: %+v", p)
	}
	if p := got[1]; p.Err != nil || len(p.Features) != 0 || p.FeedEpoch != "" {
		t.Errorf("older build: %+v", p)
	}
	if p := got[2]; p.Err == nil {
		t.Errorf("a replica that is down answered: %+v", p)
	}
	if p := got[3]; p.Err == nil || !strings.Contains(p.Err.Error(), "no HTTP address") {
		t.Errorf("a replica without an address: %+v", p)
	}

	// The same question decides whether a replica may join a group whose
	// feed is named.
	for _, c := range []struct{ url, want string }{
		{current.URL, ""}, {older.URL, `older build than this centre's group (its /healthz lists no "feed-epoch")`},
		{session16.URL, `lists no "if-absent"`}, {session21.URL, `lists no "keep-catalogue"`},
		{session23.URL, `lists no "purge-chunks"`}, {gone.URL, "does not answer"},
	} {
		err := checkJoinerBuild(context.Background(), store.Replica{ID: "tianjin-9", HTTP: c.url}, nil)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("joiner at %s: %v, want %q", c.url, err, c.want)
		}
	}
}

// TestFeedNameToPropose: the leader names the feed only when every replica
// answers with a build that keeps names; it fills in its own name where a
// replica lacks it, adopts the others' name when it lacks one itself, and
// otherwise proposes nothing.
func TestFeedNameToPropose(t *testing.T) {
	cur := func(id, epoch string) replicaProbe {
		return replicaProbe{ID: id, Features: []string{node.FeatureFeedEpoch}, FeedEpoch: epoch}
	}
	old := replicaProbe{ID: "tianjin-3"}
	down := replicaProbe{ID: "tianjin-4", Err: errors.New("connection refused")}
	cases := []struct {
		name    string
		own     string
		probes  []replicaProbe
		propose bool
		want    string
	}{
		{"alone, unnamed: a fresh name", "", nil, true, ""},
		{"all current, none named: a fresh name", "", []replicaProbe{cur("tianjin-2", "")}, true, ""},
		{"an older build: wait", "", []replicaProbe{cur("tianjin-2", ""), old}, false, ""},
		{"one down: wait", "", []replicaProbe{cur("tianjin-2", ""), down}, false, ""},
		{"named everywhere: nothing", "e1", []replicaProbe{cur("tianjin-2", "e1")}, false, ""},
		{"a replica lacks it: propose it again", "e1", []replicaProbe{cur("tianjin-2", "e1"), cur("tianjin-3", "")}, true, "e1"},
		{"named, an older build back: wait", "e1", []replicaProbe{cur("tianjin-2", ""), old}, false, ""},
		{"the leader lacks it: adopt the others'", "", []replicaProbe{cur("tianjin-2", "e1"), cur("tianjin-3", "")}, true, "e1"},
		{"the leader lacks it, others disagree: the most held", "", []replicaProbe{cur("tianjin-2", "e2"), cur("tianjin-3", "e1"), cur("tianjin-4", "e2")}, true, "e2"},
		{"a tie: the least", "", []replicaProbe{cur("tianjin-2", "e2"), cur("tianjin-3", "e1")}, true, "e1"},
	}
	for _, c := range cases {
		propose, name, why := feedNameToPropose(c.own, c.probes)
		if propose != c.propose || name != c.want || why == "" {
			t.Errorf("%s: propose %v %q (%s), want %v %q", c.name, propose, name, why, c.propose, c.want)
		}
	}
}

// fakeNamer is a leader whose group is reps and whose feed is named own.
type fakeNamer struct {
	reps     []node.ReplicaInfo
	own      string
	proposed []string
	features map[string][]string
}

func (f *fakeNamer) Membership() node.MembershipMark { return node.MembershipMark{} }

func (f *fakeNamer) RecordFeatures(_ context.Context, _ node.MembershipMark, id string, features []string) error {
	if f.features == nil {
		f.features = map[string][]string{}
	}
	f.features[id] = features
	return nil
}

func (f *fakeNamer) Replicas() ([]node.ReplicaInfo, error) { return f.reps, nil }
func (f *fakeNamer) FeedEpoch() string                     { return f.own }
func (f *fakeNamer) NameFeed(_ context.Context, _ store.Replica, name string) error {
	f.proposed = append(f.proposed, name)
	return nil
}

// TestNameFeedWaitsForEveryReplica: the membership loop's step proposes
// nothing while a replica runs an older build, a fresh name once all run this
// one, and the feed's own name when a replica reports none.
func TestNameFeedWaitsForEveryReplica(t *testing.T) {
	var body atomic.Value
	body.Store(`{"status":"ok"}`)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(body.Load().(string)))
	}))
	defer other.Close()
	f := &fakeNamer{reps: []node.ReplicaInfo{
		{Replica: store.Replica{ID: "tianjin-1"}, Suffrage: "Voter"},
		{Replica: store.Replica{ID: "tianjin-2", HTTP: other.URL}, Suffrage: "Voter"},
	}}
	self := store.Replica{ID: "tianjin-1"}
	log := slog.New(slog.DiscardHandler)
	var since time.Time
	ctx := context.Background()
	nameFeed(ctx, f, self, nil, log, &since)
	if len(f.proposed) != 0 || since.IsZero() {
		t.Fatalf("with an older build in the group: proposed %q (waiting since %v)", f.proposed, since)
	}
	if got, ok := f.features["tianjin-2"]; !ok || len(got) != 0 {
		t.Fatalf("features noted for the older build: %q (noted: %v)", got, ok)
	}
	body.Store(`{"status":"ok","features":["feed-epoch","if-absent"]}`)
	nameFeed(ctx, f, self, nil, log, &since)
	if len(f.proposed) != 1 || f.proposed[0] != "" {
		t.Fatalf("every replica current: proposed %q, want one fresh name", f.proposed)
	}
	if got := f.features["tianjin-2"]; len(got) != 2 || got[1] != node.FeatureIfAbsent {
		t.Fatalf("features noted: %q", got)
	}
	f.own = "e1"
	nameFeed(ctx, f, self, nil, log, &since)
	if len(f.proposed) != 2 || f.proposed[1] != "e1" {
		t.Fatalf("a replica without the name: proposed %q, want e1 again", f.proposed)
	}
	body.Store(`{"status":"ok","features":["feed-epoch"],"feed_epoch":"e1"}`)
	nameFeed(ctx, f, self, nil, log, &since)
	if len(f.proposed) != 2 {
		t.Fatalf("every replica named: proposed %q", f.proposed)
	}
}

// TestProbeVoter: the leader counts on a voter for a majority when it answers
// /healthz and its disk is not full.
func TestProbeVoter(t *testing.T) {
	health := func(body string) string {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(body))
		}))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	for _, c := range []struct{ name, url, want string }{
		{"healthy", health(`{"status":"ok","features":["feed-epoch"]}`), ""},
		{"an older build", health(`{"status":"ok"}`), ""},
		{"disk full", health(`{"status":"ok","disk_full":true,"disk":"disk full: raft's log cannot grow"}`), "it reports its disk full (raft's log cannot grow)"},
		{"down", gone.URL, "connection refused"},
	} {
		err := probeVoter(context.Background(), store.Replica{ID: "tianjin-2", HTTP: c.url}, nil)
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
