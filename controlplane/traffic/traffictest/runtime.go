// Package traffictest holds test support shared by the packages that drive
// a traffic.Controller on a fake clock (traffic's own tests, releases).
package traffictest

import (
	"sort"
	"sync"
	"testing"
	"time"
)

// Runtime is a traffic.Runtime on a fake clock: timers, work and messages
// are queued and run in time order on the test's goroutine as the test
// advances the clock (Advance). Call runs at once: the caller is never on
// the loop here.
type Runtime struct {
	t   testing.TB
	mu  sync.Mutex
	now time.Time
	seq int
	q   []event
}

type event struct {
	at  time.Time
	seq int
	f   func()
}

// NewRuntime starts a fake clock at start.
func NewRuntime(t testing.TB, start time.Time) *Runtime { return &Runtime{t: t, now: start} }

// MaxEventsAtOnce bounds how much may run at one instant: more is a loop
// that never lets the clock move (rounds scheduled back to back).
const MaxEventsAtOnce = 10000

func (r *Runtime) Now() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *Runtime) add(d time.Duration, f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	r.q = append(r.q, event{at: r.now.Add(max(d, 0)), seq: r.seq, f: f})
}

func (r *Runtime) After(d time.Duration, f func()) { r.add(d, f) }
func (r *Runtime) Go(f func())                     { r.add(0, f) }
func (r *Runtime) Post(_ string, run func())       { r.add(0, run) }
func (r *Runtime) Call(_ string, run func())       { run() }

// Advance runs everything due within d, in order, and moves the clock on.
// It fails the test when more than MaxEventsAtOnce events run at one
// instant.
func (r *Runtime) Advance(d time.Duration) {
	r.t.Helper()
	r.mu.Lock()
	until := r.now.Add(d)
	r.mu.Unlock()
	same, last := 0, time.Time{}
	for {
		r.mu.Lock()
		sort.SliceStable(r.q, func(i, j int) bool {
			if !r.q[i].at.Equal(r.q[j].at) {
				return r.q[i].at.Before(r.q[j].at)
			}
			return r.q[i].seq < r.q[j].seq
		})
		if len(r.q) == 0 || r.q[0].at.After(until) {
			r.now = until
			r.mu.Unlock()
			return
		}
		ev := r.q[0]
		r.q = r.q[1:]
		r.now = ev.at
		r.mu.Unlock()
		if ev.at.Equal(last) {
			same++
		} else {
			same, last = 0, ev.at
		}
		if same > MaxEventsAtOnce {
			r.t.Fatalf("more than %d events at %s without the clock moving: something reschedules itself at once", MaxEventsAtOnce, ev.at)
		}
		ev.f()
	}
}
