package harness

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// Runner implements TB outside `go test`, for the demo and bench commands:
// cleanups run newest first at Close, on Fatalf and on SIGINT/SIGTERM, so
// no Consul or bg is left running.
type Runner struct {
	root string // parent of every TempDir

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	closed   sync.Once
	closing  atomic.Bool
}

// NewRunner makes a runner whose temp dirs live under one new directory,
// named after the command.
func NewRunner(name string) (*Runner, error) {
	root, err := os.MkdirTemp("", name+"-")
	if err != nil {
		return nil, err
	}
	r := &Runner{root: root}
	r.handleSignals()
	return r, nil
}

// handleSignals cleans up and exits 128+signal on the first signal; a
// second one exits at once (children die with us through Pdeathsig).
func (r *Runner) handleSignals() {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		fmt.Fprintf(os.Stderr, "\n%v: cleaning up ...\n", sig)
		code := 128 + int(sig.(syscall.Signal))
		go func() { <-ch; os.Exit(code) }()
		r.Exit(code)
	}()
}

func (r *Runner) Helper() {}

func (r *Runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *Runner) Errorf(format string, args ...any) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
}

// Fatalf during cleanup comes from the run racing a signal whose handler
// is tearing things down and will exit: block rather than exit twice.
func (r *Runner) Fatalf(format string, args ...any) {
	if r.closing.Load() {
		select {}
	}
	r.Errorf(format, args...)
	r.Exit(1)
}

func (r *Runner) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Skipf: a test may skip when a dependency is missing; a command cannot.
func (r *Runner) Skipf(format string, args ...any) { r.Fatalf(format, args...) }

func (r *Runner) TempDir() string {
	d, err := os.MkdirTemp(r.root, "")
	if err != nil {
		r.Fatalf("temp dir: %v", err)
	}
	return d
}

// Closing reports whether the cleanups have begun (a signal arrived or
// the command is ending): what a command would print or check next is
// about processes being torn down.
func (r *Runner) Closing() bool { return r.closing.Load() }

func (r *Runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Close runs the cleanups newest first, once. Logs are kept when something
// failed.
func (r *Runner) Close() {
	r.closed.Do(func() {
		r.closing.Store(true)
		for {
			r.mu.Lock()
			n := len(r.cleanups)
			if n == 0 {
				r.mu.Unlock()
				break
			}
			f := r.cleanups[n-1]
			r.cleanups = r.cleanups[:n-1]
			r.mu.Unlock()
			f()
		}
		if r.Failed() {
			fmt.Fprintf(os.Stderr, "logs kept in %s\n", r.root)
		} else {
			os.RemoveAll(r.root)
		}
	})
}

// Exit closes the runner and exits with code.
func (r *Runner) Exit(code int) {
	r.Close()
	os.Exit(code)
}
