package main

import (
	"os"
	"runtime/debug"
)

// Garbage collector defaults for the liandong process, used unless the
// operator sets GOGC or GOMEMLIMIT. A node's live heap is small (tens of MB
// per 100,000 records) and its allocation rate high (JSON, signing,
// indexing): at Go's default GOGC=100 the collector took about a tenth of the
// CPU of a saturated write path. GOGC=400 collects a quarter as often, for
// 25-35 % more writes per second at 64 clients on two cores (BENCHMARKS.md);
// the soft limit makes the collector work harder before the heap passes
// 1 GiB, so a large centre (a million records, ~250 MB live) does not grow to
// five times its live heap.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 1 << 30
)

// gcSettings returns the GC percent and memory limit to set, or -1 for each
// the environment already sets (the runtime has read it).
func gcSettings(getenv func(string) string) (percent int, limit int64) {
	percent, limit = defaultGCPercent, defaultMemoryLimit
	if getenv("GOGC") != "" {
		percent = -1
	}
	if getenv("GOMEMLIMIT") != "" {
		limit = -1
	}
	return percent, limit
}

// tuneGC applies gcSettings to this process.
func tuneGC() {
	percent, limit := gcSettings(os.Getenv)
	if percent >= 0 {
		debug.SetGCPercent(percent)
	}
	if limit >= 0 {
		debug.SetMemoryLimit(limit)
	}
}
