package judge

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/bgctl/bg/controlplane/judge/simdist"
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

// binomial is simdist.Binomial: exact and O(1) (the older simulations keep
// draw, so their logged figures are unchanged).
func binomial(r *rand.Rand, n int, p float64) int { return simdist.Binomial(r, n, p) }
