package integration

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// orphanHelperEnv makes the test binary, run by TestChildrenDieWithTheTestBinary,
// start a child the way the tests do and wait to be killed.
const orphanHelperEnv = "LIANDONG_IT_ORPHAN_HELPER"

// orphanHelper starts `sleep 60` with childAttr, prints its pid and waits (at
// most a minute) for its own end.
func orphanHelper() int {
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println(cmd.Process.Pid)
	time.Sleep(time.Minute)
	return 0
}

// TestChildrenDieWithTheTestBinary: a process a test started goes when the test
// binary is killed before its cleanups run, as when `go test -timeout` ends it
// or an operator interrupts a run. Before childAttr set Pdeathsig, such nodes
// were left running, holding their ports, for hours.
func TestChildrenDieWithTheTestBinary(t *testing.T) {
	helper := exec.Command(os.Args[0], "-test.run=^$")
	helper.Env = append(os.Environ(), orphanHelperEnv+"=1")
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { helper.Process.Kill(); helper.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("read the child's pid from the helper: %v", err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || child <= 1 {
		t.Fatalf("helper printed %q, not a pid", line)
	}
	t.Cleanup(func() {
		// Only a child still there: a pid reaped long ago may be another's now.
		if alive(child) {
			syscall.Kill(child, syscall.SIGKILL)
		}
	})
	if !alive(child) {
		t.Fatalf("child %d not running before its parent was killed", child)
	}

	if err := helper.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	helper.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for alive(child) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still running 10 s after the test binary that started it was killed", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid is a running process (a zombie, killed and not yet
// reaped, is not).
func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command's closing parenthesis: "pid (comm) S ...".
	rest := stat[strings.LastIndexByte(string(stat), ')')+1:]
	return !strings.HasPrefix(strings.TrimSpace(string(rest)), "Z")
}
