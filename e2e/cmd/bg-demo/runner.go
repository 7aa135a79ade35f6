package main

import (
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
)

// runner implements harness.TB outside `go test`: cleanups run in reverse
// order at the end, on Fatalf, and on SIGINT/SIGTERM, so the demo never
// leaves Consul or bg running.
type runner struct {
	root string // parent of every TempDir

	mu       sync.Mutex
	cleanups []func()
	failed   bool
	closed   sync.Once
	closing  atomic.Bool // set when cleanups begin
}

func newRunner() (*runner, error) {
	root, err := os.MkdirTemp("", "bg-demo-")
	if err != nil {
		return nil, err
	}
	return &runner{root: root}, nil
}

// handleSignals cleans up and exits 128+signal on the first signal; a
// second one exits at once (children still die with us through Pdeathsig).
func (r *runner) handleSignals() {
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		sig := <-ch
		fmt.Fprintf(os.Stderr, "\n%v: cleaning up ...\n", sig)
		code := 128 + int(sig.(syscall.Signal)) // the shell's convention
		go func() { <-ch; os.Exit(code) }()
		r.exit(code)
	}()
}

func (r *runner) Helper() {}

func (r *runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

func (r *runner) Errorf(format string, args ...any) {
	r.markFailed()
	fmt.Fprintf(os.Stderr, "error: "+format+"\n", args...)
}

// Fatalf during cleanup comes from the story racing a signal, whose
// handler is tearing things down and will exit: its failure is only noise.
func (r *runner) Fatalf(format string, args ...any) {
	if r.closing.Load() {
		select {}
	}
	r.Errorf(format, args...)
	r.exit(1)
}

func (r *runner) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

// Skipf: a test may skip when a dependency is missing; the demo cannot.
func (r *runner) Skipf(format string, args ...any) { r.Fatalf(format, args...) }

func (r *runner) TempDir() string {
	d, err := os.MkdirTemp(r.root, "")
	if err != nil {
		r.Fatalf("temp dir: %v", err)
	}
	return d
}

func (r *runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

func (r *runner) markFailed() {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
}

// close runs the cleanups newest first, once; a concurrent caller (signal
// vs. Fatalf) waits for it. Logs are kept when something failed.
func (r *runner) close() {
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

func (r *runner) exit(code int) {
	r.close()
	os.Exit(code)
}
