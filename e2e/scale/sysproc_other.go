//go:build !linux

package scale

import "syscall"

// childSysProcAttr: no parent-death signal outside Linux (the bench reads
// /proc and runs on Linux only anyway).
func childSysProcAttr() *syscall.SysProcAttr { return nil }
