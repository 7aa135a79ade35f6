// Package memrelease returns the memory of a burst of work to the OS once
// the work has gone quiet.
//
// A control plane's load comes in bursts: proxies reconnecting after a
// restart or a network blip, a first start. A burst leaves garbage that
// Go collects only when the heap reaches its goal (twice the live heap by
// default), and pages the collector freed stay resident until the
// background scavenger returns them, which it does not do while the heap
// stays below that goal. So an idle control plane holds the high-water
// mark of its last burst. A Releaser, told of each unit of work (Touch),
// waits until none has come for its quiet period and then, if the garbage
// accumulated since the last collection is large enough to matter, runs
// debug.FreeOSMemory once: one collection per burst, none at idle. It
// arms no timer while idle, so it costs an idle process no wakeup.
package memrelease

import (
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

// MinGarbage is the least garbage worth a collection; below it a quiet
// period does nothing. A burst must also have left at least a quarter of
// the live heap as garbage (see Releaser).
const MinGarbage = 8 << 20

// Releaser runs debug.FreeOSMemory once work has been quiet for Quiet, if
// the heap holds at least max(MinGarbage, live/4) bytes of garbage.
type Releaser struct {
	quiet time.Duration
	log   *slog.Logger
	// garbage reports the bytes allocated since the last collection (dead
	// or not yet marked) and the live heap the last collection marked.
	garbage func() (garbage, live uint64)
	release func()
	now     func() time.Time

	last  atomic.Int64 // unix nanoseconds of the last Touch
	armed atomic.Bool  // the timer is set
	mu    sync.Mutex   // guards t
	t     *time.Timer

	// Releases counts the collections run; Checks the quiet periods seen.
	Releases, Checks atomic.Int64
}

// New returns a Releaser with the runtime's own measurements.
func New(quiet time.Duration, log *slog.Logger) *Releaser {
	return newReleaser(quiet, log, heapGarbage, debug.FreeOSMemory)
}

func newReleaser(quiet time.Duration, log *slog.Logger, garbage func() (uint64, uint64), release func()) *Releaser {
	return &Releaser{quiet: quiet, log: log, garbage: garbage, release: release, now: time.Now}
}

// Touch records a unit of work. It is cheap enough for every xDS request:
// an atomic store, and a timer reset only when none is armed.
func (r *Releaser) Touch() {
	r.last.Store(r.now().UnixNano())
	if r.armed.Load() || !r.armed.CompareAndSwap(false, true) {
		return
	}
	r.mu.Lock()
	if r.t == nil {
		r.t = time.AfterFunc(r.quiet, r.fire)
	} else {
		r.t.Reset(r.quiet)
	}
	r.mu.Unlock()
}

// Armed reports whether a timer is set (tests: an idle Releaser has none).
func (r *Releaser) Armed() bool { return r.armed.Load() }

func (r *Releaser) fire() {
	if since := time.Duration(r.now().UnixNano() - r.last.Load()); since < r.quiet {
		r.mu.Lock()
		r.t.Reset(r.quiet - since) // work came meanwhile: wait for its quiet
		r.mu.Unlock()
		return
	}
	r.armed.Store(false)
	// A Touch from here on arms the timer again; at worst one more check.
	r.Checks.Add(1)
	garbage, live := r.garbage()
	if garbage < MinGarbage || garbage < live/4 {
		return
	}
	began := r.now()
	r.release()
	r.Releases.Add(1)
	if r.log != nil {
		r.log.Debug("returned a burst's memory to the OS", "garbage_mib", garbage>>20, "live_mib", live>>20,
			"took", r.now().Sub(began).Round(time.Millisecond))
	}
}

var samples = []metrics.Sample{
	{Name: "/memory/classes/heap/objects:bytes"}, // live and not yet collected dead objects
	{Name: "/gc/heap/live:bytes"},                // live heap marked by the last collection
}

var samplesMu sync.Mutex

func heapGarbage() (garbage, live uint64) {
	samplesMu.Lock()
	defer samplesMu.Unlock()
	metrics.Read(samples)
	if samples[0].Value.Kind() != metrics.KindUint64 || samples[1].Value.Kind() != metrics.KindUint64 {
		return 0, 0
	}
	objects, live := samples[0].Value.Uint64(), samples[1].Value.Uint64()
	if objects < live {
		return 0, live
	}
	return objects - live, live
}
