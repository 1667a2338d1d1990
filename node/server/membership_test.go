package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"liandong/node"
	"liandong/node/store"
)

// TestReplicasLacking: the leader names the feed only once every other replica
// answers /healthz listing the feature; an older build (no features), one that
// does not answer and one whose address is not recorded all hold it back.
func TestReplicasLacking(t *testing.T) {
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
	current := health(`{"status":"ok","features":["feed-epoch"]}`)
	older := health(`{"status":"ok"}`)
	gone := health(`{}`)
	gone.Close()
	rep := func(id, url string) node.ReplicaInfo {
		return node.ReplicaInfo{Replica: store.Replica{ID: id, HTTP: url}, Suffrage: "Voter"}
	}
	ctx := context.Background()
	cases := []struct {
		name string
		reps []node.ReplicaInfo
		want string // prefix of the replica named, "" for none
	}{
		{"all current", []node.ReplicaInfo{rep("tianjin-1", ""), rep("tianjin-2", current.URL), rep("tianjin-3", current.URL)}, ""},
		{"alone", []node.ReplicaInfo{rep("tianjin-1", "")}, ""},
		{"an older build", []node.ReplicaInfo{rep("tianjin-1", ""), rep("tianjin-2", current.URL), rep("tianjin-3", older.URL)}, "tianjin-3 (an older build)"},
		{"one down", []node.ReplicaInfo{rep("tianjin-1", ""), rep("tianjin-2", gone.URL)}, "tianjin-2 ("},
		{"no address", []node.ReplicaInfo{rep("tianjin-1", ""), rep("tianjin-2", "")}, "tianjin-2 (no HTTP address"},
	}
	for _, c := range cases {
		got := replicasLacking(ctx, c.reps, "tianjin-1", node.FeatureFeedEpoch)
		if c.want == "" && got != "" || c.want != "" && !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
