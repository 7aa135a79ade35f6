package judge

import (
	"math"
	"math/rand/v2"
	"testing"
)

// draw is a Binomial(n, p) variate: it counts the geometric gaps between
// errors, so it is exact and costs O(n·p) rather than O(n).
func draw(r *rand.Rand, n int, p float64) int {
	lq := math.Log1p(-p)
	k, pos := 0, 0
	for {
		pos += int(math.Log(1-r.Float64())/lq) + 1
		if pos > n {
			return k
		}
		k++
	}
}

// failRate runs analyses of fleets with n requests each, the candidate at
// error rate pc and the baseline at pb, and returns the share that failed.
func failRate(seed uint64, analyses, n int, pc, pb float64, p Params) float64 {
	r := rand.New(rand.NewPCG(seed, 0x6a75646765))
	fails := 0
	for range analyses {
		c := Sample{Requests: float64(n), Errors: float64(draw(r, n, pc))}
		b := Sample{Requests: float64(n), Errors: float64(draw(r, n, pb))}
		if Judge(c, b, p).Outcome == Fail {
			fails++
		}
	}
	return float64(fails) / float64(analyses)
}

// exactFailRate is the same rate without sampling: the sum over every
// likely pair of error counts (±12 sd, the rest weighs < 1e-30) of its
// probability when the judge fails it.
func exactFailRate(n int, pc, pb float64, p Params) float64 {
	nf := float64(n)
	pmf := func(p float64) (lo int, probs []float64) {
		sd := math.Sqrt(nf * p * (1 - p))
		lo = max(0, int(nf*p-12*sd-1))
		hi := min(n, int(nf*p+12*sd+1))
		for k := lo; k <= hi; k++ {
			probs = append(probs, math.Exp(logPMF(float64(k), nf, p, 1-p)))
		}
		return lo, probs
	}
	cl, cp := pmf(pc)
	bl, bp := pmf(pb)
	var rate float64
	for i, pi := range cp {
		for j, pj := range bp {
			c := Sample{Requests: nf, Errors: float64(cl + i)}
			b := Sample{Requests: nf, Errors: float64(bl + j)}
			if Judge(c, b, p).Outcome == Fail {
				rate += pi * pj
			}
		}
	}
	return rate
}

func TestDrawMoments(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		n int
		p float64
	}{{2000, 0.05}, {100000, 0.001}, {50, 0.5}} {
		const runs = 20000
		var sum, sq float64
		for range runs {
			x := float64(draw(r, c.n, c.p))
			sum += x
			sq += x * x
		}
		mean := sum / runs
		variance := sq/runs - mean*mean
		wantMean, wantVar := float64(c.n)*c.p, float64(c.n)*c.p*(1-c.p)
		if math.Abs(mean-wantMean) > 5*math.Sqrt(wantVar/runs) || math.Abs(variance/wantVar-1) > 0.05 {
			t.Errorf("Binomial(%d, %v): mean %v var %v, want %v %v", c.n, c.p, mean, variance, wantMean, wantVar)
		}
	}
}

const analyses = 1000

var rates = []float64{0.001, 0.01, 0.05}

func marginZero() Params { p := DefaultParams(); p.Margin = 0; return p }

// Same error rate in both fleets: the judge may fail at most 1−Confidence of
// analyses. Margin 0 is only logged: its true rate (~0.7%) is too near 1%
// for 1,000 draws to bound; TestExactRates bounds it without noise.
func TestSimFalseRollbacks(t *testing.T) {
	for i, pr := range rates {
		for _, p := range []Params{DefaultParams(), marginZero()} {
			got := failRate(uint64(100+i), analyses, 2000, pr, pr, p)
			t.Logf("false rollbacks: rate %.1f%%, n=2000 each, margin %v: %.1f%% of %d", 100*pr, p.Margin, 100*got, analyses)
			if p.Margin > 0 && got > 1-p.Confidence {
				t.Errorf("rate %v margin %v: %.2f%% false rollbacks, want ≤ %.2f%%", pr, p.Margin, 100*got, 100*(1-p.Confidence))
			}
		}
	}
}

// detectionN is, per baseline rate, the requests per fleet at which a 2×
// candidate is caught in ≥ 99% of analyses: about 100 baseline errors.
var detectionN = map[float64]int{0.05: 2000, 0.01: 10000, 0.001: 100000}

func TestSimDetection(t *testing.T) {
	for i, pr := range rates {
		n := detectionN[pr]
		got := failRate(uint64(200+i), analyses, n, 2*pr, pr, DefaultParams())
		t.Logf("detection of 2×: baseline %.1f%%, n=%d each: %.1f%% of %d", 100*pr, n, 100*got, analyses)
		if got < 0.99 {
			t.Errorf("baseline %v n=%d: detected %.2f%%, want ≥ 99%%", pr, n, 100*got)
		}
	}
	// Where power runs out: logged for docs/judge.md, not asserted.
	for i, pr := range []float64{0.01, 0.001} {
		got := failRate(uint64(300+i), analyses, 2000, 2*pr, pr, DefaultParams())
		t.Logf("detection of 2×: baseline %.1f%%, n=2000 each: %.1f%% of %d", 100*pr, 100*got, analyses)
	}
}

// The same rates computed exactly by enumeration: no sampling noise, so
// these bounds are tight and a p-value that is off even slightly shows.
func TestExactRates(t *testing.T) {
	for _, pr := range rates {
		for _, p := range []Params{DefaultParams(), marginZero()} {
			got := exactFailRate(2000, pr, pr, p)
			t.Logf("exact false rollbacks: rate %.1f%%, n=2000, margin %v: %.3f%%", 100*pr, p.Margin, 100*got)
			if got > 1-p.Confidence {
				t.Errorf("rate %v margin %v: exact false-rollback rate %.4f%% > %.2f%%", pr, p.Margin, 100*got, 100*(1-p.Confidence))
			}
		}
		n := detectionN[pr]
		got := exactFailRate(n, 2*pr, pr, DefaultParams())
		t.Logf("exact detection of 2×: baseline %.1f%%, n=%d: %.2f%%", 100*pr, n, 100*got)
		if got < 0.99 {
			t.Errorf("baseline %v n=%d: exact detection %.3f%% < 99%%", pr, n, 100*got)
		}
	}
}

// Logged for docs/judge.md: the least n (on a grid) that reaches 99%, and
// what a stricter confidence costs in power and buys in false rollbacks.
func TestExactTradeoffs(t *testing.T) {
	for _, c := range []struct {
		pr   float64
		n    int
		less int
	}{{0.05, 1700, 1600}, {0.01, 9000, 8500}, {0.001, 90000, 85000}} {
		t.Logf("exact detection of 2×: baseline %.1f%%: n=%d %.2f%%, n=%d %.2f%%", 100*c.pr,
			c.less, 100*exactFailRate(c.less, 2*c.pr, c.pr, DefaultParams()), c.n, 100*exactFailRate(c.n, 2*c.pr, c.pr, DefaultParams()))
	}
	d := DefaultParams()
	t.Logf("exact detection at n=2000: 2× over 1%% %.1f%%, 2× over 0.1%% %.1f%%",
		100*exactFailRate(2000, 0.02, 0.01, d), 100*exactFailRate(2000, 0.002, 0.001, d))
	t.Logf("exact detection at n=200: 2× over 5%% %.1f%%, 10× over 1%% %.1f%%",
		100*exactFailRate(200, 0.1, 0.05, d), 100*exactFailRate(200, 0.1, 0.01, d))
	for _, conf := range []float64{0.99, 0.995, 0.999} {
		p := DefaultParams()
		p.Confidence = conf
		t.Logf("exact, confidence %v: false rollbacks at 1%% n=2000 %.3f%%; 2× detected at 1%% n=10000 %.2f%%",
			conf, 100*exactFailRate(2000, 0.01, 0.01, p), 100*exactFailRate(10000, 0.02, 0.01, p))
	}
}

// binomial is a Binomial(n, p) variate in O(1) time, exact like draw: draw
// where n·p < 10 (geometric gaps, a handful of steps), else Hörmann's BTRS
// transformed rejection ("The generation of binomial random variates",
// J. Stat. Comput. Simul. 46, 1993), which accepts k with probability
// proportional to its exact pmf. draw alone costs O(n·p): thousands of
// steps per interval at 5,000 req/s and 5 %. Checked by TestBinomialPMF.
// The older simulations keep draw, so their logged figures are unchanged.
func binomial(r *rand.Rand, n int, p float64) int {
	if p > 0.5 {
		return n - binomial(r, n, 1-p)
	}
	nf := float64(n)
	if nf*p < 10 {
		return draw(r, n, p)
	}
	q := 1 - p
	spq := math.Sqrt(nf * p * q)
	b := 1.15 + 2.53*spq
	a := -0.0873 + 0.0248*b + 0.01*p
	c := nf*p + 0.5
	vr := 0.92 - 4.2/b
	alpha := (2.83 + 5.1/b) * spq
	lpq := math.Log(p / q)
	m := math.Floor((nf + 1) * p)
	lm1, _ := math.Lgamma(m + 1)
	lm2, _ := math.Lgamma(nf - m + 1)
	for {
		u := r.Float64() - 0.5
		v := r.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + c)
		if k < 0 || k > nf {
			continue
		}
		if us >= 0.07 && v <= vr {
			return int(k)
		}
		v = math.Log(v * alpha / (a/(us*us) + b))
		lk1, _ := math.Lgamma(k + 1)
		lk2, _ := math.Lgamma(nf - k + 1)
		if v <= lm1+lm2-lk1-lk2+(k-m)*lpq {
			return int(k)
		}
	}
}

// binomial matches the exact pmf: a chi-square test over bins of at least
// 20 expected draws, at a level (z > 4.75, about 1e-6) that a correct
// sampler fails once in a million runs.
func TestBinomialPMF(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, c := range []struct {
		n int
		p float64
	}{{200, 0.05}, {2000, 0.05}, {9720, 0.01}, {300000, 0.05}, {150000, 0.002}, {40, 0.7}} {
		const runs = 100000
		counts := map[int]int{}
		for range runs {
			counts[binomial(r, c.n, c.p)]++
		}
		// Bins from the pmf, merged until each expects ≥ 20 draws.
		nf := float64(c.n)
		var chi2 float64
		df := -1
		var exp, obs float64
		for k := 0; k <= c.n; k++ {
			exp += runs * math.Exp(logPMF(float64(k), nf, c.p, 1-c.p))
			obs += float64(counts[k])
			if exp >= 20 || k == c.n {
				chi2 += (obs - exp) * (obs - exp) / math.Max(exp, 1e-9)
				df++
				exp, obs = 0, 0
			}
		}
		// Wilson–Hilferty: (χ²/df)^(1/3) is about normal.
		d := float64(df)
		z := (math.Cbrt(chi2/d) - (1 - 2/(9*d))) / math.Sqrt(2/(9*d))
		t.Logf("Binomial(%d, %v): χ²=%.1f on %d df (z=%.2f)", c.n, c.p, chi2, df, z)
		if z > 4.75 {
			t.Errorf("Binomial(%d, %v): χ²=%.1f on %d df (z=%.2f)", c.n, c.p, chi2, df, z)
		}
	}
}
