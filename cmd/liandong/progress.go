package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress reports how far a long command is: a line rewritten in place on a
// terminal, a plain line every few seconds otherwise (logs, pipes, CI).
type progress struct {
	w     io.Writer
	what  string
	tty   bool
	start time.Time
	last  time.Time
}

func newProgress(w io.Writer, what string) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	now := time.Now()
	return &progress{w: w, what: what, tty: tty, start: now, last: now}
}

func (p *progress) update(n int) {
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if time.Since(p.last) < every {
		return
	}
	p.last = time.Now()
	rate := float64(n) / time.Since(p.start).Seconds()
	if p.tty {
		fmt.Fprintf(p.w, "\r%s: %d records, %.0f/s ", p.what, n, rate)
		return
	}
	fmt.Fprintf(p.w, "%s: %d records so far (%.0f/s)\n", p.what, n, rate)
}

// done ends the in-place line on a terminal.
func (p *progress) done(int) {
	if p.tty && time.Since(p.start) >= 200*time.Millisecond {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
