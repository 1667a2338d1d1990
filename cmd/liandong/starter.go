package main

import (
	"errors"
	"os/exec"
	"runtime"
	"sync"
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
	once    sync.Once
	done    chan struct{}
}

// errStarterReleased is Start's answer once Release has been called.
var errStarterReleased = errors.New("start a child: the starter was released")

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
	select {
	case s.start <- cmd:
		return <-s.started
	case <-s.done:
		return errStarterReleased
	}
}

// Release lets the starter's goroutine end; call it once its children have
// exited. It is safe to call more than once, and concurrently.
func (s *lockedStarter) Release() {
	s.once.Do(func() { close(s.release) })
	<-s.done
}
