package main

import (
	"os/exec"
	"runtime"
)

// lockedStarter starts child processes from one goroutine locked to its OS
// thread, and keeps that thread until Release. The kernel sends a child its
// parent-death signal (childProcAttr's Pdeathsig) when the thread that forked
// it exits, not the process (go.dev/issue/27505), and the Go runtime ends a
// thread whenever a goroutine exits while locked to it: a centre started
// from an ordinary goroutine could be killed mid-run because some other
// code's locked goroutine ended on the thread that had started it.
type lockedStarter struct {
	start   chan *exec.Cmd
	started chan error
	release chan struct{}
	done    chan struct{}
}

func newLockedStarter() *lockedStarter {
	s := &lockedStarter{start: make(chan *exec.Cmd), started: make(chan error),
		release: make(chan struct{}), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread()
		// Unlocked, the thread goes back to the runtime's pool rather than
		// ending, so children still running then are not signalled either.
		defer runtime.UnlockOSThread()
		defer close(s.done)
		for {
			select {
			case cmd := <-s.start:
				s.started <- cmd.Start()
			case <-s.release:
				return
			}
		}
	}()
	return s
}

// Start is cmd.Start on the starter's thread.
func (s *lockedStarter) Start(cmd *exec.Cmd) error {
	s.start <- cmd
	return <-s.started
}

// Release lets the starter's goroutine end; call it once its children have
// exited. It is safe to call more than once.
func (s *lockedStarter) Release() {
	select {
	case <-s.release:
	default:
		close(s.release)
	}
	<-s.done
}
