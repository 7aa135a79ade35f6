package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one child process that can be stopped and started again with the
// same command line, appending to one log file across restarts.
type proc struct {
	name    string
	bin     string
	args    []string
	env     []string // added to os.Environ()
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when the current run has exited
}

func newProc(t TB, name, bin string, args, env []string) *proc {
	p := &proc{
		name:    name,
		bin:     bin,
		args:    args,
		env:     env,
		logPath: fmt.Sprintf("%s/%s.log", t.TempDir(), name),
	}
	// Registered before the caller's stop cleanup, so it runs after it and
	// prints the complete log.
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("---- %s log tail (%s) ----\n%s", p.name, p.logPath, tailFile(p.logPath, 40))
		}
	})
	return p
}

// start launches the process; it fails if a run is still alive.
func (p *proc) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		select {
		case <-p.done:
		default:
			return fmt.Errorf("%s: already running", p.name)
		}
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "==== %s start %s: %s %s\n", p.name, time.Now().Format(time.RFC3339Nano), p.bin, strings.Join(p.args, " "))
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = append(os.Environ(), p.env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = childSysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("%s: %w", p.name, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		fmt.Fprintf(logf, "==== %s exited %s: %v\n", p.name, time.Now().Format(time.RFC3339Nano), err)
		logf.Close()
		close(done)
	}()
	p.cmd, p.done = cmd, done
	return nil
}

// exited is closed when the current run ends (nil before the first start).
func (p *proc) exited() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

func (p *proc) running() bool {
	d := p.exited()
	if d == nil {
		return false
	}
	select {
	case <-d:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and escalates to SIGKILL after grace. It reports whether
// the process exited within grace.
func (p *proc) stop(grace time.Duration) bool {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return true
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return true
	case <-time.After(grace):
	}
	_ = cmd.Process.Kill()
	<-done
	return false
}

// signal sends sig to the running process, if any.
func (p *proc) signal(sig os.Signal) {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd != nil && cmd.Process != nil {
		_ = cmd.Process.Signal(sig)
	}
}

func (p *proc) kill() {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
}

// exitCode of the last finished run, -1 if none finished or it was signalled.
func (p *proc) exitCode() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

// tailFile returns the last n lines of a file, or a note why it can't.
// noise is a log line that says nothing about a failure; dropping it keeps
// the test's own failure message inside what CI shows of the output.
func noise(line []byte) bool {
	return bytes.Contains(line, []byte("Check status updated")) || bytes.Contains(line, []byte("Synced check"))
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	b = bytes.TrimRight(b, "\n")
	var lines [][]byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if !noise(l) {
			lines = append(lines, l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// startReady starts the process and polls ready every interval until it
// succeeds, the process exits, or timeout passes.
func (p *proc) startReady(what string, timeout, every time.Duration, ready func() error) error {
	if err := p.start(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		select {
		case <-p.exited():
			return fmt.Errorf("%s exited early (code %d); log %s", what, p.exitCode(), p.logPath)
		default:
		}
		last := ready()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready after %v: %w", what, timeout, last)
		case <-time.After(every):
		}
	}
}
