package main

import (
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// TestLockedStarterOutlivesTheCallersThread starts a child with a
// parent-death signal from a goroutine that then ends while locked to its
// thread, which ends the thread: the child must live on, as it would not had
// it been forked from that thread (the first case shows the kernel does
// signal then).
func TestLockedStarterOutlivesTheCallersThread(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("this test needs sleep(1): %v", err)
	}
	// startFromEndingThread starts a child through start from a goroutine
	// locked to a thread that ends right after.
	startFromEndingThread := func(start func(*exec.Cmd) error) *exec.Cmd {
		cmd := exec.Command(sleep, "30")
		cmd.SysProcAttr = childProcAttr()
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			errc <- start(cmd)
		}()
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	// waitExit waits up to d for cmd to end and returns its signal, or -1.
	waitExit := func(cmd *exec.Cmd, d time.Duration) syscall.Signal {
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				return ws.Signal()
			}
			return 0
		case <-time.After(d):
			cmd.Process.Kill()
			<-done
			return -1
		}
	}

	direct := startFromEndingThread(func(cmd *exec.Cmd) error { return cmd.Start() })
	if sig := waitExit(direct, 10*time.Second); sig != syscall.SIGKILL {
		t.Fatalf("a child forked from a thread that ended: signal %v, want SIGKILL (the kernel's behaviour this guards against)", sig)
	}

	s := newLockedStarter()
	defer s.Release()
	child := startFromEndingThread(s.Start)
	if sig := waitExit(child, time.Second); sig != -1 {
		t.Fatalf("a child started by lockedStarter ended (signal %v) when its caller's thread did", sig)
	}
}
