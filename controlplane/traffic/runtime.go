package traffic

import (
	"sync"
	"time"
)

// Runtime is where a controller's reconcilers get time, timers and their
// turn to run. Production uses goroutines and the wall clock; the fault
// simulation (controlplane/sim) runs every reconciler on one seeded
// scheduler with a simulated clock, so a failing seed replays exactly.
type Runtime interface {
	Now() time.Time
	// After runs f once d has passed. f only posts messages.
	After(d time.Duration, f func())
	// Go runs slow work (queries, gate calls, ACK waits) off the loop; it
	// reports back by posting a message.
	Go(f func())
	// Post queues run on the loop of one service: runs of the same key
	// never overlap and keep their order.
	Post(key string, run func())
	// Call runs run on the loop of key and returns once it has run.
	Call(key string, run func())
}

// realRuntime is the production runtime: one mailbox per service, drained
// by at most one goroutine at a time.
type realRuntime struct {
	mu    sync.Mutex
	boxes map[string]*mailbox
}

type mailbox struct {
	q       []func()
	running bool
}

func newRealRuntime() *realRuntime { return &realRuntime{boxes: map[string]*mailbox{}} }

func (*realRuntime) Now() time.Time                  { return time.Now() }
func (*realRuntime) After(d time.Duration, f func()) { time.AfterFunc(d, f) }
func (*realRuntime) Go(f func())                     { go f() }

func (r *realRuntime) Post(key string, run func()) {
	r.mu.Lock()
	b := r.boxes[key]
	if b == nil {
		b = &mailbox{}
		r.boxes[key] = b
	}
	b.q = append(b.q, run)
	start := !b.running
	b.running = true
	r.mu.Unlock()
	if start {
		go r.drain(b)
	}
}

func (r *realRuntime) drain(b *mailbox) {
	for {
		r.mu.Lock()
		if len(b.q) == 0 {
			b.running = false
			r.mu.Unlock()
			return
		}
		run := b.q[0]
		b.q[0] = nil
		b.q = b.q[1:]
		r.mu.Unlock()
		run()
	}
}

func (r *realRuntime) Call(key string, run func()) {
	done := make(chan struct{})
	r.Post(key, func() {
		defer close(done)
		run()
	})
	<-done
}
