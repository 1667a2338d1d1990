package main

import (
	"errors"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The main goroutine keeps the main thread, which Go never lets end (a
// goroutine that exits locked to it only parks it): a test goroutine that
// ran there could not end its thread, and the kernel would send no
// parent-death signal (helper-48 saw the first check below fail 4 runs in 5
// without this).
func init() { runtime.LockOSThread() }

// TestLockedStarterOutlivesTheCallersThread starts children with a
// parent-death signal and ends threads around them. A child forked from a
// thread that ends is killed (the kernel's behaviour, checked first); one
// started through lockedStarter lives on while its caller's thread ends and
// while many other locked goroutines end theirs, one of which would, without
// the starter's lock, end the thread that forked it.
func TestLockedStarterOutlivesTheCallersThread(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatalf("this test needs sleep(1): %v", err)
	}
	// endThreads ends n threads: goroutines that lock theirs and exit.
	endThreads := func(n int) {
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() { runtime.LockOSThread() })
		}
		wg.Wait()
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
	endThreads(200)
	if sig := waitExit(child, time.Second); sig != -1 {
		t.Fatalf("a child started by lockedStarter ended (signal %v) when other threads did", sig)
	}

	s.Release()
	s.Release()
	if err := s.Start(exec.Command(sleep, "30")); !errors.Is(err, errStarterReleased) {
		t.Fatalf("Start after Release: %v, want errStarterReleased", err)
	}
}
