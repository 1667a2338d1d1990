package main

import "syscall"

// childProcAttr puts a centre the bench starts in a process group of its own
// and has the kernel kill it if the bench dies first.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
