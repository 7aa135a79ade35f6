package harness

// Pid is the process id of bg's current (or last) run, 0 before the first
// start: for reading its /proc entries (e2e/scale measures RSS, CPU and
// sockets).
func (b *BG) Pid() int { return b.p.pid() }

func (p *proc) pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}
