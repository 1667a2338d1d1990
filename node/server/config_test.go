package server

import (
	"strings"
	"testing"
)

// TestValidateConfigMistakes: each mistake Validate knows is reported naming
// the key at fault, before any file is read.
func TestValidateConfigMistakes(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Config)
		want string // "" : valid
	}{
		{"default with centre and data", func(*Config) {}, ""},
		{"log store bolt", func(c *Config) { c.Raft.LogStore = "bolt" }, ""},
		{"log store lsm", func(c *Config) { c.Raft.LogStore = "lsm" }, `raft.log_store: "lsm"`},
		{"segment size 1 MiB", func(c *Config) { c.Raft.WALSegmentSize = 1 << 20 }, ""},
		{"segment size 100", func(c *Config) { c.Raft.WALSegmentSize = 100 }, "raft.wal_segment_size: 100"},
		{"block a centre", func(c *Config) { c.P2P.Block = []string{"hebei"} }, ""},
		{"block a non-id", func(c *Config) { c.P2P.Block = []string{"Tian Jin"} }, `p2p.block: "Tian Jin"`},
		{"max writes 64", func(c *Config) { c.MaxWrites = 64 }, ""},
		{"max writes unbounded", func(c *Config) { c.MaxWrites = -1 }, ""},
		{"max writes -5", func(c *Config) { c.MaxWrites = -5 }, "max_writes: -5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Centre, c.DataDir = "tianjin", t.TempDir()
			tc.edit(&c)
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want one with %q", err, tc.want)
			}
		})
	}
}
