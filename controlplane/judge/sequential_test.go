package judge

import (
	"math"
	"math/rand/v2"
	"testing"
)

// seqSwitchFailRate runs whole switches of the default plan (steps of 1,
// 5, 25 and 50 % held 60 s each, an analysis every 10 s) through the
// sequential test, observing each 10 s interval's exact counts, and
// returns the share of switches it failed, and the mean expected baseline
// errors per switch.
func seqSwitchFailRate(t *testing.T, seed uint64, switches int, rps, pc, pb float64, p Params) (rate, baseErrors float64) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0x7365717565))
	failed := 0
	for range switches {
		s, err := NewSequential(p)
		if err != nil {
			t.Fatal(err)
		}
	plan:
		for _, step := range planSteps {
			for range analysesPerStep {
				cn, bn := int(rps*binSeconds*step), int(rps*binSeconds*(1-step))
				if err := s.Observe(Sample{float64(cn), float64(draw(r, cn, pc))}, Sample{float64(bn), float64(draw(r, bn, pb))}); err != nil {
					t.Fatal(err)
				}
				if s.Failed() {
					failed++
					break plan
				}
			}
		}
	}
	for _, step := range planSteps {
		baseErrors += rps * binSeconds * float64(analysesPerStep) * (1 - step) * pb
	}
	return float64(failed) / float64(switches), baseErrors
}

// Over whole switches, not single analyses: a healthy candidate is failed
// in at most 1 % of switches however often the test is looked at (Ville's
// inequality; measured 0–0.2 %). Today's per-analysis judge, in the same
// simulation, fails 1–3 % of healthy switches (TestSimPerSwitch).
func TestSequentialWholeSwitches(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation")
	}
	p := DefaultParams()
	for j, rps := range []float64{20, 200, 1000, 5000} {
		for k, pr := range rates {
			seed := uint64(9000 + 10*j + k)
			aa, base := seqSwitchFailRate(t, seed, 2000, rps, pr, pr, p)
			detect, _ := seqSwitchFailRate(t, seed+500, 500, rps, 2*pr, pr, p)
			t.Logf("sequential, %v req/s, rate %.1f%%: A/A failed %.2f%% of 2000 switches; 2× detected %.1f%% of 500 (%.0f expected baseline errors)",
				rps, 100*pr, 100*aa, 100*detect, base)
			// 2,000 switches: a true rate of 1 % exceeds 1.6 % by chance
			// with probability below 0.5 %.
			if aa > 0.016 {
				t.Errorf("%v req/s, rate %v: %.2f%% of healthy switches failed, want ≤ 1%%", rps, pr, 100*aa)
			}
			// Issue 13's detection target (≥ 99 % of 2× regressions wherever
			// a switch sees ≥ 90 expected baseline errors) is NOT met yet:
			// this mixture catches 98.8 % at 383 and about 75 % at 191 (see
			// the log). Asserted only where it holds today, so a change
			// that loses power fails here.
			if base >= 900 && detect < 0.99 {
				t.Errorf("%v req/s, rate %v: 2× detected in %.1f%% of switches with %.0f expected baseline errors, want ≥ 99%%", rps, pr, 100*detect, base)
			}
		}
	}
}

func TestSequentialRefusesBadCounts(t *testing.T) {
	s, err := NewSequential(DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Sample{{Requests: math.NaN()}, {Requests: 1, Errors: 2}, {Requests: -1}, {Requests: math.Inf(1)}} {
		if err := s.Observe(c, Sample{Requests: 10, Errors: 1}); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if c, b := s.Counts(); c.Requests != 0 || b.Requests != 0 {
		t.Errorf("refused counts were kept: %+v %+v", c, b)
	}
	if e := s.EValue(); math.Abs(e-1) > 1e-12 {
		t.Errorf("e-value before any evidence = %v, want 1", e)
	}
}
