//go:build !unix

package bench

import "time"

// processCPU is not measured outside Unix: Load then reports no CPU per op.
func processCPU() time.Duration { return 0 }
