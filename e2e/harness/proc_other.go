//go:build !linux

package harness

import "syscall"

// childSysProcAttr: no parent-death signal outside Linux; t.Cleanup still
// stops children on a normal test exit.
func childSysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
