package sim

import (
	"strings"
	"testing"
	"time"
)

// convergeSeeds is how many seeds TestSimConverge runs.
var convergeSeeds = 300

// TestSimConverge: declarative delivery under the random faults. The
// operator desires web v2 and the leader's convergence loop switches; the
// usual invariants hold, a failed version is never switched to again, and
// after healing web has converged or its version is marked failed.
func TestSimConverge(t *testing.T) {
	first, n := int64(1), int64(convergeSeeds)
	if *seeds > 0 {
		n = int64(*seeds)
	}
	if *seed >= 0 {
		first, n = *seed, 1
	}
	var bad []int64
	converged, failed := 0, 0
	for s := first; s < first+n; s++ {
		o := Random(s)
		o.Converge = true
		w := New(s, o)
		if v := w.Run(); len(v) > 0 {
			bad = append(bad, s)
			if len(bad) <= 3 {
				t.Errorf("seed %d: %v\noptions: %+v\nreplay: go test ./controlplane/sim -run 'TestSimConverge$' -seed %d -v\nlast events:\n%s", s, v, w.opts, s, w.s.Trace())
			}
			continue
		}
		if tr, ok := w.stored(service); ok && tr.GreenPercent == 100 {
			converged++
		} else {
			failed++
		}
	}
	if len(bad) > 0 {
		t.Errorf("%d of %d seeds broke an invariant: %v", len(bad), n, bad)
	}
	t.Logf("%d seeds: %d converged, %d failed and not retried", n, converged, failed)
	if n >= 50 && (converged == 0 || failed == 0) {
		t.Errorf("the seeds never exercised both outcomes: %d converged, %d failed", converged, failed)
	}
}

// A healthy run without faults converges by itself, after the settle time.
func TestSimConvergeHealthy(t *testing.T) {
	w := New(1, Options{Replicas: 2, Converge: true})
	if v := w.Run(); len(v) > 0 {
		t.Fatalf("%v\n%s", v, w.s.Trace())
	}
	tr, ok := w.stored(service)
	if !ok || tr.GreenPercent != 100 || tr.Rollout == nil || !strings.Contains(w.s.Trace(), "started (converge)") {
		t.Fatalf("not converged: %+v\n%s", tr, w.s.Trace())
	}
}

// Green bad from the start: the converged switch rolls back once, is
// remembered, and never starts again.
func TestSimConvergeFailsOnce(t *testing.T) {
	w := New(2, Options{Replicas: 3, Converge: true, GreenBadAt: 1})
	if v := w.Run(); len(v) > 0 {
		t.Fatalf("%v\n%s", v, w.s.Trace())
	}
	tr, _ := w.stored(service)
	if tr.GreenPercent != 0 || len(w.convSwitches) != 1 || w.failedAt.IsZero() {
		t.Fatalf("green %d%%, %d switches, failed at %v\n%s", tr.GreenPercent, len(w.convSwitches), w.failedAt, w.s.Trace())
	}
}

// An operator aborts after bg converged, and the abort's mark never
// reaches the loop: the loop sees the abort of its own switch in the
// traffic state and never switches back by itself.
func TestSimConvergeAbortUntold(t *testing.T) {
	for _, abortAt := range []time.Duration{4 * time.Second, 15 * time.Second} { // mid-switch, after convergence
		w := New(5, Options{Replicas: 2, Converge: true, Abort: abortAt, AbortUntold: true})
		if v := w.Run(); len(v) > 0 {
			t.Fatalf("abort at %s: %v\n%s", abortAt, v, w.s.Trace())
		}
		tr, _ := w.stored(service)
		if tr.GreenPercent != 0 || len(w.convSwitches) != 1 || w.failedAt.IsZero() {
			t.Fatalf("abort at %s: green %d%%, %d switches, failed at %v\n%s", abortAt, tr.GreenPercent, len(w.convSwitches), w.failedAt, w.s.Trace())
		}
	}
}
