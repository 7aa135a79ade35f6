package consul

import (
	"context"
	"sync"
)

// queue holds the Consul services due for a read: those known to have
// changed first, then those queued by a resync. A service is never read
// twice at once; one marked while being read is read again afterwards,
// since the read in flight may predate the change.
type queue struct {
	mu             sync.Mutex
	first, resyncs fifo
	inflight       map[string]bool
	wake           chan struct{}
}

func newQueue() *queue {
	return &queue{first: newFIFO(), resyncs: newFIFO(), inflight: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// urgent queues names ahead of any resync.
func (q *queue) urgent(names ...string) { q.add(&q.first, names) }

// resync queues names behind the urgent ones.
func (q *queue) resync(names []string) { q.add(&q.resyncs, names) }

func (q *queue) add(f *fifo, names []string) {
	if len(names) == 0 {
		return
	}
	q.mu.Lock()
	for _, n := range names {
		f.push(n)
	}
	q.mu.Unlock()
	q.signal()
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns the next service to read and marks it in flight; it waits
// for one, and returns false when ctx ends. It has one caller at a time.
func (q *queue) take(ctx context.Context) (string, bool) {
	for {
		q.mu.Lock()
		free := func(n string) bool { return !q.inflight[n] }
		name, ok := q.first.pop(free)
		if !ok {
			name, ok = q.resyncs.pop(func(n string) bool { return free(n) && !q.first.has(n) })
		}
		if ok {
			q.inflight[name] = true
			q.resyncs.remove(name) // a read that starts now serves a queued resync too
		}
		q.mu.Unlock()
		if ok {
			return name, true
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return "", false
		}
	}
}

// done ends a read started by take.
func (q *queue) done(name string) {
	q.mu.Lock()
	delete(q.inflight, name)
	q.mu.Unlock()
	q.signal()
}

// pending counts queued services (for tests and status).
func (q *queue) pending() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.first.order) + len(q.resyncs.order)
}

// fifo is an ordered set.
type fifo struct {
	order []string
	in    map[string]bool
}

func newFIFO() fifo { return fifo{in: map[string]bool{}} }

func (f *fifo) has(n string) bool { return f.in[n] }

func (f *fifo) push(n string) {
	if !f.in[n] {
		f.in[n] = true
		f.order = append(f.order, n)
	}
}

func (f *fifo) remove(n string) {
	if f.in[n] {
		f.pop(func(m string) bool { return m == n })
	}
}

// pop removes and returns the first name ok accepts.
func (f *fifo) pop(ok func(string) bool) (string, bool) {
	for i, n := range f.order {
		if ok(n) {
			f.order = append(f.order[:i], f.order[i+1:]...)
			delete(f.in, n)
			return n, true
		}
	}
	return "", false
}
