package node

import (
	"bytes"
	"context"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// newRaftLogger routes raft's hclog output into the node's slog logger, so a
// node's logs are one structured stream and tests can silence them.
func newRaftLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:            "raft",
		Level:           hclog.Info,
		Output:          slogWriter{l.With("component", "raft")},
		DisableTime:     true,
		IncludeLocation: false,
	})
}

// slogWriter turns hclog's text lines ("[WARN]  raft: message: k=v") into slog records.
type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		s := strings.TrimSpace(string(line))
		level := slog.LevelInfo
		switch {
		case strings.HasPrefix(s, "[ERROR]"):
			level = slog.LevelError
		case strings.HasPrefix(s, "[WARN]"):
			level = slog.LevelWarn
		case strings.HasPrefix(s, "[DEBUG]"), strings.HasPrefix(s, "[TRACE]"):
			level = slog.LevelDebug
		}
		if i := strings.Index(s, "]"); i >= 0 {
			s = strings.TrimSpace(s[i+1:])
		}
		s = strings.TrimPrefix(s, "raft: ")
		w.l.Log(context.Background(), level, s)
	}
	return len(p), nil
}
