// Package sim is bg's deterministic fault simulation. The real per-service
// reconcilers (traffic.Controller with its executor and the rollout,
// rolling and guard machines) run against a simulated Consul (KV with
// check-and-set and fencing, the leader lock and sessions, health reads,
// the state watch), a simulated Prometheus, proxies that ACK, and a
// simulated clock. One seeded scheduler orders every event, so a seed
// replays exactly. Faults are injected at random and the invariants
// (invariants.go) are checked after every event.
package sim

import (
	"container/heap"
	"fmt"
	"math/rand"
	"strings"
	"time"
)

// event is one thing that happens at a simulated time.
type event struct {
	at   time.Time
	seq  uint64
	what string
	fn   func()
}

type queue []*event

func (q queue) Len() int { return len(q) }
func (q queue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q queue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *queue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *queue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// Scheduler runs events in time order; ties keep the order they were queued.
type Scheduler struct {
	now  time.Time
	q    queue
	seq  uint64
	rng  *rand.Rand
	log  []string
	keep int
}

// simStart is when every run begins.
var simStart = time.Date(2026, 1, 5, 10, 0, 0, 0, time.UTC)

func newScheduler(seed int64) *Scheduler {
	return &Scheduler{now: simStart, rng: rand.New(rand.NewSource(seed)), keep: 400}
}

// Now is the simulated time.
func (s *Scheduler) Now() time.Time { return s.now }

// At queues fn at t (not before now).
func (s *Scheduler) At(t time.Time, what string, fn func()) {
	if t.Before(s.now) {
		t = s.now
	}
	s.seq++
	heap.Push(&s.q, &event{at: t, seq: s.seq, what: what, fn: fn})
}

// After queues fn d from now.
func (s *Scheduler) After(d time.Duration, what string, fn func()) { s.At(s.now.Add(d), what, fn) }

// jitter is a random duration in [lo, hi).
func (s *Scheduler) jitter(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(s.rng.Int63n(int64(hi-lo)))
}

// step runs the next event at or before until; false when none is left.
func (s *Scheduler) step(until time.Time) bool {
	if len(s.q) == 0 || s.q[0].at.After(until) {
		return false
	}
	e := heap.Pop(&s.q).(*event)
	s.now = e.at
	if e.what != "" {
		s.trace("%s", e.what)
	}
	e.fn()
	return true
}

// trace keeps the last events for a failure report.
func (s *Scheduler) trace(format string, args ...any) {
	line := fmt.Sprintf("%8.3fs ", s.now.Sub(simStart).Seconds()) + fmt.Sprintf(format, args...)
	s.log = append(s.log, line)
	if len(s.log) > s.keep {
		s.log = s.log[len(s.log)-s.keep:]
	}
}

// Trace returns the last events, oldest first.
func (s *Scheduler) Trace() string { return strings.Join(s.log, "\n") }
