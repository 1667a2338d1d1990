//go:build !linux

package main

import "syscall"

// childProcAttr: outside Linux there is no parent-death signal; stop kills
// the centres.
func childProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
