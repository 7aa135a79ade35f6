package memrelease

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

type fakeHeap struct{ garbage, live atomic.Uint64 }

func (h *fakeHeap) read() (uint64, uint64) { return h.garbage.Load(), h.live.Load() }

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// A burst is released once, after its quiet period, and leaves no timer.
func TestReleasesOnceAfterABurst(t *testing.T) {
	const quiet = 300 * time.Millisecond // far above a loaded machine's sleep overshoot
	h := &fakeHeap{}
	h.garbage.Store(40 << 20)
	h.live.Store(60 << 20)
	var released atomic.Int64
	var releasedAt atomic.Int64
	r := newReleaser(quiet, nil, h.read, func() {
		releasedAt.Store(time.Now().UnixNano())
		released.Add(1)
		h.garbage.Store(0)
	})
	var lastTouch time.Time
	burstEnd := time.Now().Add(100 * time.Millisecond)
	for time.Now().Before(burstEnd) {
		lastTouch = time.Now()
		r.Touch()
		time.Sleep(2 * time.Millisecond)
	}
	if n := released.Load(); n != 0 {
		t.Fatalf("released %d times during the burst", n)
	}
	waitUntil(t, "the release", func() bool { return released.Load() == 1 })
	if d := time.Unix(0, releasedAt.Load()).Sub(lastTouch); d < quiet {
		t.Fatalf("released %v after the last touch; want after the %v quiet period", d, quiet)
	}
	time.Sleep(quiet)
	if n := released.Load(); n != 1 || r.Armed() {
		t.Fatalf("after the burst: %d releases, armed %v; want 1 and no timer at idle", n, r.Armed())
	}
	// The next burst is released again.
	h.garbage.Store(40 << 20)
	r.Touch()
	waitUntil(t, "the second release", func() bool { return released.Load() == 2 })
}

// Quiet periods with little garbage release nothing: below MinGarbage, or
// below a quarter of the live heap.
func TestLittleGarbageIsLeftToTheCollector(t *testing.T) {
	for _, c := range []struct {
		name           string
		garbage, live  uint64
		wantReleaseNum int64
	}{
		{"below MinGarbage", MinGarbage - 1, 1 << 20, 0},
		{"below a quarter of the live heap", 20 << 20, 100 << 20, 0},
		{"a quarter of the live heap", 25 << 20, 100 << 20, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := &fakeHeap{}
			h.garbage.Store(c.garbage)
			h.live.Store(c.live)
			var released atomic.Int64
			r := newReleaser(5*time.Millisecond, nil, h.read, func() { released.Add(1) })
			r.Touch()
			waitUntil(t, "the check", func() bool { return r.Checks.Load() == 1 })
			if n := released.Load(); n != c.wantReleaseNum {
				t.Fatalf("%d releases; want %d", n, c.wantReleaseNum)
			}
		})
	}
}

// The runtime's own reading: garbage appears with allocation and goes
// with a collection.
func TestHeapGarbageReadsTheRuntime(t *testing.T) {
	for attempt := 0; ; attempt++ {
		New(time.Hour, nil).release() // a collection
		cycles := gcCycles()
		before, live := heapGarbage()
		if live == 0 {
			t.Fatal("live heap 0 after a collection")
		}
		keep := make([][]byte, 0, 1024)
		for range 1024 {
			keep = append(keep, make([]byte, 1024))
		}
		after, _ := heapGarbage()
		if gcCycles() != cycles && attempt < 5 {
			continue // a collection ran meanwhile: measure again
		}
		if after < before+900<<10 {
			t.Fatalf("garbage %d after allocating 1 MiB, %d before", after, before)
		}
		runtime.KeepAlive(keep)
		return
	}
}

func gcCycles() uint32 {
	var st runtime.MemStats
	runtime.ReadMemStats(&st)
	return st.NumGC
}
