package simdist

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// The samplers match their exact pmfs: a chi-square test over bins of at
// least 20 expected draws, at z > 4.75 (about 1e-6).
func TestSamplers(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	logPoisson := func(k int, lam float64) float64 {
		lk, _ := math.Lgamma(float64(k + 1))
		return float64(k)*math.Log(lam) - lam - lk
	}
	type dist struct {
		name  string
		draw  func() int
		logPM func(k int) float64
		top   int
	}
	var ds []dist
	for _, lam := range []float64{2, 9.5, 20, 100, 5000} {
		ds = append(ds, dist{fmt.Sprintf("poisson(%v)", lam), func() int { return Poisson(r, lam) },
			func(k int) float64 { return logPoisson(k, lam) }, int(lam + 20*math.Sqrt(lam) + 20)})
	}
	for _, c := range []struct {
		n int
		p float64
	}{{200, 0.02}, {9720, 0.01}, {50000, 0.1}, {2000, 0.05}, {300000, 0.05}, {150000, 0.002}, {40, 0.7}} {
		ds = append(ds, dist{fmt.Sprintf("binomial(%d, %v)", c.n, c.p), func() int { return Binomial(r, c.n, c.p) },
			func(k int) float64 { return logBinomialPMF(k, c.n, c.p) }, c.n})
	}
	for _, d := range ds {
		const runs = 50000
		counts := map[int]int{}
		for range runs {
			counts[d.draw()]++
		}
		var chi2, exp, obs float64
		df := -1
		for k := 0; k <= d.top; k++ {
			exp += runs * math.Exp(d.logPM(k))
			obs += float64(counts[k])
			if exp >= 20 {
				chi2 += (obs - exp) * (obs - exp) / exp
				df++
				exp, obs = 0, 0
			}
		}
		if exp+obs > 0 { // the tail: merged into a last bin
			chi2 += (obs - exp) * (obs - exp) / math.Max(exp, 1e-9)
			df++
		}
		if z := (chi2 - float64(df)) / math.Sqrt(2*float64(df)); z > 4.75 {
			t.Errorf("%s: chi-square %.1f on %d degrees of freedom (z=%.1f)", d.name, chi2, df, z)
		}
	}
}

func logBinomialPMF(k, n int, p float64) float64 {
	ln, _ := math.Lgamma(float64(n + 1))
	lk, _ := math.Lgamma(float64(k + 1))
	lnk, _ := math.Lgamma(float64(n - k + 1))
	return ln - lk - lnk + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p)
}
