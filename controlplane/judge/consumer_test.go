package judge

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/bgctl/bg/controlplane/judge/simdist"
)

// The reference bound is the exact Clopper–Pearson upper bound: at it,
// P(X ≤ x) equals the level.
func TestConsumerUpperBound(t *testing.T) {
	for _, c := range []struct{ n, x, a float64 }{
		{1000, 0, 0.005}, {1000, 10, 0.005}, {60000, 30, 0.005}, {200, 199, 0.05}, {50, 3, 0.01},
	} {
		p := upperBound(c.n, c.x, c.a)
		if c.x == 0 {
			if want := 1 - math.Pow(c.a, 1/c.n); math.Abs(p-want) > 1e-9 {
				t.Errorf("n %v x 0: bound %v, want %v", c.n, p, want)
			}
		}
		if got := 1 - upperTail(c.n, c.x+1, p, 1-p); math.Abs(got-c.a) > 1e-6 {
			t.Errorf("n %v x %v: P(X ≤ x) at the bound %v is %v, want %v", c.n, c.x, p, got, c.a)
		}
		if p <= c.x/c.n {
			t.Errorf("n %v x %v: bound %v below the estimate", c.n, c.x, p)
		}
	}
	if upperBound(10, 10, 0.01) != 1 {
		t.Error("all errors: bound must be 1")
	}
}

// Table: what fails and what never does.
func TestConsumerJudge(t *testing.T) {
	c := Consumer{Confidence: 0.99, Margin: 0.5, MinErrors: 5}
	ref := Sample{Requests: 60000, Errors: 60} // 0.1 % over the lookback
	for _, tc := range []struct {
		name   string
		ref    Sample
		since  Sample
		failed bool
		reason string
	}{
		{"same ratio", ref, Sample{Requests: 12000, Errors: 12}, false, "evidence"},
		{"2× at 1,000 errors' worth", ref, Sample{Requests: 12000, Errors: 24}, false, ""},
		{"10× the ratio", ref, Sample{Requests: 12000, Errors: 120}, true, "error ratio 1%"},
		{"20 % errors", ref, Sample{Requests: 3000, Errors: 600}, true, ""},
		{"few errors, huge ratio: below min_errors", ref, Sample{Requests: 10, Errors: 4}, false, ""},
		{"nothing since", ref, Sample{}, false, ""},
		{"no reference", Sample{}, Sample{Requests: 100, Errors: 100}, false, "no reference"},
		{"clean reference, errors now", Sample{Requests: 60000}, Sample{Requests: 6000, Errors: 30}, true, ""},
	} {
		ct, err := c.NewConsumerTest(tc.ref)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		v, err := ct.Look(tc.since)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if v.Failed != tc.failed || !strings.Contains(v.Reason, tc.reason) {
			t.Errorf("%s: failed %v (%s), want %v containing %q", tc.name, v.Failed, v.Reason, tc.failed, tc.reason)
		}
		if math.Abs(v.Threshold-200) > 1e-9 {
			t.Errorf("%s: threshold %v, want 2/α = 200", tc.name, v.Threshold)
		}
	}
	ct, err := c.NewConsumerTest(ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Sample{{Requests: -1}, {Requests: math.NaN()}, {Requests: 10, Errors: 20}, {Requests: math.Inf(1)}} {
		if _, err := ct.Look(bad); err == nil {
			t.Errorf("counts %+v accepted", bad)
		}
		if _, err := c.NewConsumerTest(bad); err == nil {
			t.Errorf("reference %+v accepted", bad)
		}
	}
	for _, bad := range []Consumer{{Confidence: 1, Margin: 0.5, MinErrors: 1}, {Confidence: 0.99, Margin: -1, MinErrors: 1}, {Confidence: 0.99, Margin: 0.5}} {
		if _, err := bad.NewConsumerTest(ref); err == nil {
			t.Errorf("parameters %+v accepted", bad)
		}
	}
}

// Whole switches: a consumer whose error probability does not change
// (the null) fails its provider in at most α of switches, looked at every
// second; one whose errors double, or grow five-fold, is caught. Rates
// quoted in docs/releases.md.
func TestConsumerWholeSwitches(t *testing.T) {
	if raceDetector {
		t.Skip("statistical simulation: runs without -race (scripts/test.sh, its own step)")
	}
	const (
		runs     = 4000
		lookback = 600 // seconds of reference
		duration = 240 // seconds the provider switches, looked at every second
	)
	c := Consumer{Confidence: 0.99, Margin: 0.5, MinErrors: 5}
	rng := rand.New(rand.NewPCG(13, 1))
	t.Logf("| consumer req/s | error rate | effect | switches failed | median time to fail |")
	t.Logf("|---|---|---|---|---|")
	for _, rate := range []float64{20, 200, 2000} {
		for _, p := range []float64{0.001, 0.01} {
			for _, effect := range []float64{1, 2, 5} {
				failed := 0
				var times []float64
				for i := 0; i < runs; i++ {
					refN := simdist.Poisson(rng, rate*lookback)
					ref := Sample{Requests: float64(refN), Errors: float64(simdist.Binomial(rng, refN, p))}
					ct, err := c.NewConsumerTest(ref)
					if err != nil {
						t.Fatal(err)
					}
					var since Sample
					for s := 1; s <= duration; s++ {
						n := simdist.Poisson(rng, rate)
						since.Requests += float64(n)
						since.Errors += float64(simdist.Binomial(rng, n, math.Min(1, p*effect)))
						v, err := ct.Look(since)
						if err != nil {
							t.Fatal(err)
						}
						if v.Failed {
							failed++
							times = append(times, float64(s))
							break
						}
					}
				}
				share := float64(failed) / runs
				med := "-"
				if len(times) > 0 {
					med = fmt.Sprintf("%.0f s", median(times))
				}
				t.Logf("| %g | %g%% | %g× | %.2f%% | %s |", rate, 100*p, effect, 100*share, med)
				switch {
				case effect == 1 && share > 0.0135: // α = 1 %, 4,000 runs: above 1.35 % is a true rate over 1 % at p < 0.5 %
					t.Errorf("null at %g req/s, %g%%: %.2f%% of healthy switches failed, want ≤ 1%%", rate, 100*p, 100*share)
				case effect == 5 && rate*duration*p >= 50 && share < 0.99:
					t.Errorf("5× at %g req/s, %g%% (%.0f expected errors): caught %.2f%%, want ≥ 99%%", rate, 100*p, rate*duration*p, 100*share)
				}
			}
		}
	}
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
