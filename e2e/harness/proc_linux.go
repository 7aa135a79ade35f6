package harness

import "syscall"

// childSysProcAttr makes the kernel SIGKILL the child when the test process
// dies, so a killed `go test` leaves no Consul or bg behind. Pdeathsig fires
// when the forking OS thread exits; Go keeps threads alive unless a
// LockOSThread goroutine exits, which the harness never does.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
