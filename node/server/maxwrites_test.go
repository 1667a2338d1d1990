package server

import (
	"testing"
	"time"
)

// TestMaxWritesReachesTheAPI: the config's max_writes is the bound the API
// serves with (its liandong_http_max_writes gauge), and unset, the API's
// default.
func TestMaxWritesReachesTheAPI(t *testing.T) {
	for _, c := range []struct {
		name      string
		maxWrites int
		want      float64
	}{
		{"set", 7, 7},
		{"unset", 0, 1024},
		{"unbounded", -1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := Default()
			cfg.Centre = "tianjin"
			cfg.DataDir = t.TempDir()
			cfg.HTTP = "127.0.0.1:0"
			cfg.P2P.Listen = []string{"/ip4/127.0.0.1/tcp/0"}
			cfg.MaxWrites = c.maxWrites
			if _, err := DevSetup(&cfg, time.Now()); err != nil {
				t.Fatal(err)
			}
			s := runTestServer(t, cfg)
			mfs, err := s.Registry.Gather()
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, mf := range mfs {
				if mf.GetName() == "liandong_http_max_writes" {
					found = true
					if got := mf.GetMetric()[0].GetGauge().GetValue(); got != c.want {
						t.Errorf("liandong_http_max_writes %v, want %v", got, c.want)
					}
				}
			}
			if !found {
				t.Error("no liandong_http_max_writes")
			}
		})
	}
}
