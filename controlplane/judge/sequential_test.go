package judge

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The mixture's weights are what keeps the test valid: fixed, positive,
// summing to 1, on alternatives beyond the null.
func TestSequentialGrid(t *testing.T) {
	sum := 0.0
	for i, a := range sequentialGrid {
		if !(a.w > 0) || !(a.g > 1) || (i > 0 && a.g <= sequentialGrid[i-1].g) {
			t.Errorf("alternative %d: g=%v w=%v, want g > 1 increasing and w > 0", i, a.g, a.w)
		}
		sum += a.w
	}
	if math.Abs(sum-1) > 1e-12 {
		t.Errorf("weights sum to %v, want 1", sum)
	}
}

func TestSequentialRefusesBadCounts(t *testing.T) {
	s, err := NewSequential(DefaultParams())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []Sample{{Requests: math.NaN()}, {Requests: 1, Errors: 2}, {Requests: -1}, {Requests: math.Inf(1)}, {Requests: 1, Errors: math.NaN()}} {
		if err := s.Observe(c, Sample{Requests: 10, Errors: 1}); err == nil {
			t.Errorf("%+v accepted", c)
		}
		if err := s.Observe(Sample{Requests: 10, Errors: 1}, c); err == nil {
			t.Errorf("baseline %+v accepted", c)
		}
	}
	if err := s.Observe(Sample{Requests: math.MaxFloat64, Errors: 1}, Sample{Requests: 10, Errors: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Observe(Sample{Requests: math.MaxFloat64}, Sample{Requests: 10}); err == nil {
		t.Error("counts that overflow their sum accepted")
	}
	s, _ = NewSequential(DefaultParams())
	for _, c := range []Sample{{Requests: math.NaN()}, {Requests: 1, Errors: 2}} {
		_ = s.Observe(c, Sample{Requests: 10, Errors: 1})
	}
	if c, b := s.Counts(); c.Requests != 0 || b.Requests != 0 {
		t.Errorf("refused counts were kept: %+v %+v", c, b)
	}
	if e := s.EValue(); math.Abs(e-1) > 1e-12 {
		t.Errorf("e-value before any evidence = %v, want 1", e)
	}
}

// sequentialStream is a switch's worth of intervals of a 2× candidate.
func sequentialStream(seed uint64) (candidates, baselines []Sample) {
	r := rand.New(rand.NewPCG(seed, 5))
	for _, step := range planSteps {
		cn, bn := stepRequests(300, step)
		for range analysesPerStep {
			candidates = append(candidates, Sample{float64(cn), float64(binomial(r, cn, 0.02))})
			baselines = append(baselines, Sample{float64(bn), float64(binomial(r, bn, 0.01))})
		}
	}
	return candidates, baselines
}

// Resuming from LogLR and Counts, even through JSON as when persisted,
// gives the same test: bit-identical evidence now and after every later
// interval, against one that never stopped.
func TestSequentialResume(t *testing.T) {
	p := DefaultParams()
	cs, bs := sequentialStream(1)
	whole, _ := NewSequential(p)
	var evidence []float64
	for i := range cs {
		if err := whole.Observe(cs[i], bs[i]); err != nil {
			t.Fatal(err)
		}
		evidence = append(evidence, whole.EValue())
	}
	if !whole.Failed() || evidence[0] == evidence[len(evidence)-1] {
		t.Fatalf("stream too weak to test with: e=%v", whole.EValue())
	}
	for at := range cs {
		s, _ := NewSequential(p)
		for i := range at + 1 {
			_ = s.Observe(cs[i], bs[i])
		}
		c, b := s.Counts()
		saved, err := json.Marshal(struct {
			LogLR               []float64
			Candidate, Baseline Sample
		}{s.LogLR(), c, b})
		if err != nil {
			t.Fatal(err)
		}
		var state struct {
			LogLR               []float64
			Candidate, Baseline Sample
		}
		if err := json.Unmarshal(saved, &state); err != nil {
			t.Fatal(err)
		}
		r, err := ResumeSequential(p, state.LogLR, state.Candidate, state.Baseline)
		if err != nil {
			t.Fatal(err)
		}
		if r.EValue() != evidence[at] || r.Reason() != s.Reason() {
			t.Fatalf("resumed after %d intervals: e=%v %q, want %v %q", at+1, r.EValue(), r.Reason(), evidence[at], s.Reason())
		}
		for i := at + 1; i < len(cs); i++ {
			_ = r.Observe(cs[i], bs[i])
			if r.EValue() != evidence[i] {
				t.Fatalf("resumed after %d, interval %d: e=%v, never stopped %v", at+1, i+1, r.EValue(), evidence[i])
			}
		}
		if rc, rb := r.Counts(); rc != whole.seen || rb != whole.base || r.Failed() != whole.Failed() {
			t.Fatalf("resumed after %d: counts %+v %+v, want %+v %+v", at+1, rc, rb, whole.seen, whole.base)
		}
	}
	// LogLR is a copy: changing it changes nothing.
	l := whole.LogLR()
	l[0] = 1e9
	if whole.LogLR()[0] == 1e9 {
		t.Error("LogLR shares its slice with the test")
	}
}

func TestResumeSequentialRefuses(t *testing.T) {
	p := DefaultParams()
	ok := make([]float64, len(sequentialGrid))
	good := Sample{Requests: 100, Errors: 1}
	for name, c := range map[string]struct {
		p      Params
		logLR  []float64
		c, b   Sample
		phrase string
	}{
		"short":           {p, ok[1:], good, good, "want"},
		"long":            {p, append(ok, 0), good, good, "want"},
		"nil":             {p, nil, good, good, "want"},
		"NaN":             {p, withAt(ok, 3, math.NaN()), good, good, "NaN"},
		"+Inf":            {p, withAt(ok, 0, math.Inf(1)), good, good, "Inf"},
		"-Inf":            {p, withAt(ok, 2, math.Inf(-1)), good, good, "Inf"},
		"negative":        {p, ok, Sample{Requests: -1}, good, "negative"},
		"errors>requests": {p, ok, good, Sample{Requests: 1, Errors: 3}, "exceed"},
		"NaN count":       {p, ok, Sample{Requests: math.NaN()}, good, "NaN"},
		"params":          {Params{Confidence: 2, MinRequests: 1}, ok, good, good, "confidence"},
	} {
		if _, err := ResumeSequential(c.p, c.logLR, c.c, c.b); err == nil || !strings.Contains(err.Error(), c.phrase) {
			t.Errorf("%s: err %v, want one mentioning %q", name, err, c.phrase)
		}
	}
	if _, err := ResumeSequential(p, ok, good, good); err != nil {
		t.Error(err)
	}
}

func withAt(xs []float64, i int, v float64) []float64 {
	xs = append([]float64(nil), xs...)
	xs[i] = v
	return xs
}

func TestSequentialReason(t *testing.T) {
	s, _ := NewSequential(DefaultParams())
	_ = s.Observe(Sample{Requests: 10000, Errors: 100}, Sample{Requests: 10000, Errors: 100})
	if r := s.Reason(); !strings.Contains(r, "candidate 1% vs baseline 1% errors since the switch began; e=") || !strings.HasSuffix(r, " of 100") {
		t.Errorf("passing reason %q", r)
	}
	_ = s.Observe(Sample{Requests: 10000, Errors: 320}, Sample{Requests: 10000, Errors: 100})
	r := s.Reason()
	if !s.Failed() || !strings.Contains(r, "candidate 2.1% vs baseline 1% errors since the switch began; evidence e=") ||
		!strings.HasSuffix(r, "≥ 100 (candidate worse than baseline ×1.1)") || len(r) > 140 {
		t.Errorf("failing reason %q", r)
	}
	_ = s.Observe(Sample{Requests: 1e6, Errors: 1e6}, Sample{Requests: 1e6, Errors: 10})
	if r := s.Reason(); !strings.Contains(r, "e=10^") {
		t.Errorf("overflowing evidence: %q", r)
	}
	z, _ := NewSequential(marginZero())
	_ = z.Observe(Sample{Requests: 1000, Errors: 100}, Sample{Requests: 1000, Errors: 10})
	if r := z.Reason(); !strings.HasSuffix(r, "(candidate worse than baseline)") {
		t.Errorf("margin 0: %q", r)
	}
}

// poissonLogPMF is log P(X = k) for X ~ Poisson(mu).
func poissonLogPMF(k, mu float64) float64 {
	lg, _ := math.Lgamma(k + 1)
	return k*math.Log(mu) - mu - lg
}

// randomizedPower is the power at level alpha of the randomised
// Neyman–Pearson test that rejects for large X, given X's null and
// alternative pmfs on k = hi, hi−1, …, 0 (the bound no test on X beats).
func randomizedPower(hi int, null, alt func(k int) float64, alpha float64) float64 {
	size, power := 0.0, 0.0
	for k := hi; k >= 0; k-- {
		p0, p1 := null(k), alt(k)
		if size+p0 > alpha {
			return power + (alpha-size)/p0*p1
		}
		size, power = size+p0, power+p1
	}
	return power
}

// conditionalBound is the power, against a candidate ratio× worse, of the
// randomised conditional test at the switch's end when errors are Poisson:
// given the total T, the candidate's errors are Binomial(T, θ). It is the
// uniformly most powerful unbiased test when the baseline's rate is
// unknown. muC, muB: expected candidate errors at the baseline's rate,
// expected baseline errors.
func conditionalBound(muC, muB, ratio, rho0, alpha float64) float64 {
	th0 := rho0 * muC / (rho0*muC + muB)
	th1 := ratio * muC / (ratio*muC + muB)
	mu := ratio*muC + muB
	sd := math.Sqrt(mu)
	power := 0.0
	for t := max(0, int(mu-12*sd)); t <= int(mu+12*sd)+1; t++ {
		tf := float64(t)
		pmf := func(th float64) func(int) float64 {
			return func(k int) float64 { return math.Exp(logPMF(float64(k), tf, th, 1-th)) }
		}
		power += math.Exp(poissonLogPMF(tf, mu)) * randomizedPower(t, pmf(th0), pmf(th1), alpha)
	}
	return power
}

// knownRateBound is the power of the randomised test that knows the
// baseline's rate exactly, on the candidate's errors alone: a bound no test
// can beat, since the baseline's rate is in truth unknown.
func knownRateBound(muC, ratio, rho0, alpha float64) float64 {
	mu0 := rho0 * muC
	hi := int(ratio*muC + 40*math.Sqrt(ratio*muC) + 50)
	pmf := func(mu float64) func(int) float64 {
		return func(k int) float64 { return math.Exp(poissonLogPMF(float64(k), mu)) }
	}
	return randomizedPower(hi, pmf(mu0), pmf(ratio*muC), alpha)
}

// sequentialPower simulates 2× switches of the default plan at rps with
// the baseline failing at rate, and returns the share the sequential test
// fails.
func sequentialPower(seed uint64, switches int, rps, rate float64, p Params) float64 {
	r := rand.New(rand.NewPCG(seed, 0x6f7261636c65))
	failedAt := make([]int, 1)
	detected := 0
	for range switches {
		s, _ := NewSequential(p)
		simulateSwitch(r, rps, 2*rate, rate, []switchJudge{sequentialJudge{s}}, failedAt)
		if failedAt[0] > 0 {
			detected++
		}
	}
	return float64(detected) / float64(switches)
}

// What any test could do, told the answer: the best fixed-sample tests at
// the end of a default-plan switch against a 2× candidate, at 1 % risk.
// Issue 13's "≥ 99 % wherever a switch sees ≥ 90 expected baseline
// errors" cannot hold if it counts the baseline fleet's errors: the
// candidate has about a quarter of the baseline's traffic over the plan,
// and with 90 baseline errors even these bounds stay near 80–90 %. It is
// reachable counting the candidate's traffic at the baseline's rate (the
// per-analysis judge's "90 expected baseline errors per window", equal
// traffic), where the sequential test gets 98.9 % at exactly 90.
func TestEndOfSwitchBound(t *testing.T) {
	if raceDetector {
		t.Skip("statistical simulation: runs without -race (scripts/test.sh, its own step)")
	}
	p := DefaultParams()
	alpha, rho0 := 1-p.Confidence, 1+p.Margin
	const rps = 1000.0
	nc, nb := planRequests(rps)
	for _, c := range []struct {
		reading string
		rate    float64
	}{
		{"baseline fleet", 90 / float64(nb)},
		{"candidate's traffic at the baseline's rate", 90 / float64(nc)},
	} {
		muC, muB := float64(nc)*c.rate, float64(nb)*c.rate
		exact := endOfSwitchPower(nc, nb, 2*c.rate, c.rate, p)
		umpu := conditionalBound(muC, muB, 2, rho0, alpha)
		known := knownRateBound(muC, 2, rho0, alpha)
		seq := sequentialPower(77, 20000, rps, c.rate, p)
		t.Logf("90 expected errors in the %s (candidate %.1f, baseline fleet %.1f; rate %.4g%%): exact conditional test at the end %.3f%%, randomised (UMPU) %.3f%%, knowing the baseline's rate %.3f%%; sequential test %.2f%% of 20000 switches",
			c.reading, muC, muB, 100*c.rate, 100*exact, 100*umpu, 100*known, 100*seq)
		if c.reading == "baseline fleet" && !(known < 0.95 && umpu < 0.9) {
			t.Errorf("baseline fleet reading: bounds %.3f %.3f, expected well short of 99%%", umpu, known)
		}
		if c.reading != "baseline fleet" && exact < 0.999 {
			t.Errorf("candidate reading: exact end-of-switch power %.4f, expected ≥ 99.9%%", exact)
		}
	}
}

// The tuning of sequentialGrid, reproduced: detection by the default plan
// of a 2× candidate around 90 expected candidate errors, of larger
// regressions at thin traffic, and the median time to detect at high
// traffic, for the tuned mixture, the former uniform grid and single
// alternatives. Logged for docs/judge.md, not asserted.
func TestSequentialGridTuning(t *testing.T) {
	if raceDetector {
		t.Skip("statistical simulation: runs without -race (scripts/test.sh, its own step)")
	}
	if testing.Short() {
		t.Skip("simulation")
	}
	type alt = struct{ g, w float64 }
	uniform := func(gs ...float64) (grid []alt) {
		for _, g := range gs {
			grid = append(grid, alt{g, 1 / float64(len(gs))})
		}
		return grid
	}
	tuned := sequentialGrid
	t.Cleanup(func() { sequentialGrid = tuned })
	grids := []struct {
		name string
		grid []alt
	}{
		{"tuned", tuned},
		{"former uniform 1.2–8", uniform(1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 4, 8)},
		{"only g=1.4", uniform(1.4)},
		{"only g=1.82 (the truth)", uniform(2 / 1.1)},
	}
	cases := []struct {
		rps, rate, ratio float64
	}{{185.2, 0.01, 2}, {200, 0.01, 2}, {1852, 0.001, 2}, {50, 0.01, 3}, {20, 0.01, 5}, {1000, 0.01, 1.5}}
	p := DefaultParams()
	for _, g := range grids {
		sequentialGrid = g.grid
		line := g.name + ":"
		for i, c := range cases {
			r := rand.New(rand.NewPCG(uint64(4200+i), 0x74756e65))
			failedAt := make([]int, 1)
			const switches = 10000
			detected := 0
			for range switches {
				s, _ := NewSequential(p)
				simulateSwitch(r, c.rps, c.ratio*c.rate, c.rate, []switchJudge{sequentialJudge{s}}, failedAt)
				if failedAt[0] > 0 {
					detected++
				}
			}
			nc, _ := planRequests(c.rps)
			line += fmt.Sprintf(" %v× at %.0f (%v%%): %.2f%%;", c.ratio, float64(nc)*c.rate, 100*c.rate, 100*float64(detected)/switches)
		}
		r := rand.New(rand.NewPCG(4300, 0x74756e65))
		var at []int
		failedAt := make([]int, 1)
		for range 2000 {
			s, _ := NewSequential(p)
			simulateSwitch(r, 5000, 0.02, 0.01, []switchJudge{sequentialJudge{s}}, failedAt)
			at = append(at, failedAt[0])
		}
		slices.Sort(at)
		t.Logf("%s median detection at 5000 req/s, 1%%: %.0f s", line, float64(at[len(at)/2])*binSeconds)
	}
	t.Log("cases: regression at N expected candidate errors at the baseline's rate (baseline error rate); 10,000 switches each")
}
