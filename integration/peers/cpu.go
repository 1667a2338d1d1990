package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is the unit of /proc/<pid>/stat's CPU times: USER_HZ, 100 on
// every Linux architecture Go builds for.
const clockTick = 10 * time.Millisecond

// cpuMeter sums the CPU time of this process (the load generator) and of the
// servers under test, by pid, so a peer's CPU per operation counts the same
// things as liandong's bench: its server and its clients, which there share
// one process.
type cpuMeter struct{ pids []int }

// parsePids reads --pids: comma-separated process ids, or empty for none.
func parsePids(s string) (cpuMeter, error) {
	var m cpuMeter
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return m, fmt.Errorf("--pids: %q is not a process id", f)
		}
		if _, err := procCPU(pid); err != nil {
			return m, fmt.Errorf("--pids: %w", err)
		}
		m.pids = append(m.pids, pid)
	}
	return m, nil
}

// total is the CPU time used so far; false when a server's cannot be read
// (it ended), and the measurement is then left out.
func (m cpuMeter) total() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	t := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	for _, pid := range m.pids {
		d, err := procCPU(pid)
		if err != nil {
			return 0, false
		}
		t += d
	}
	return t, true
}

// procCPU is a process's user and system time from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(string(data))
}

// parseStatCPU reads utime and stime, the 14th and 15th fields of a
// /proc/<pid>/stat line; the second field (the command, in parentheses) may
// hold spaces and parentheses itself, so fields are counted after its last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat %.40q: no command field", stat)
	}
	f := strings.Fields(stat[i+1:]) // from the 3rd field, state, on
	if len(f) < 13 {
		return 0, fmt.Errorf("stat %.40q: %d fields after the command", stat, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("stat: CPU time %q", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
