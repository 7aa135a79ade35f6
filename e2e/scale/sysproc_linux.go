package scale

import "syscall"

// childSysProcAttr makes the kernel kill the bare server when the bench
// dies, as the harness does for Consul and bg.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
