// Package simdist draws the exact random variates bg's simulations of whole
// switches use (the judge's and the state machine's): binomial error counts
// and Poisson request counts, each in O(1) time.
package simdist

import (
	"math"
	"math/rand/v2"
)

// Binomial is a Binomial(n, p) variate in O(1) time, exact: geometric
// gaps where n·p < 10 (a handful of steps), else Hörmann's BTRS
// transformed rejection ("The generation of binomial random variates",
// J. Stat. Comput. Simul. 46, 1993), which accepts k with probability
// proportional to its exact pmf. Checked by TestSamplers.
func Binomial(r *rand.Rand, n int, p float64) int {
	if p > 0.5 {
		return n - Binomial(r, n, 1-p)
	}
	nf := float64(n)
	if nf*p < 10 {
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

// Poisson is a Poisson(lam) variate, exact: Knuth's product of uniforms
// below 10, else Hörmann's PTRS transformed rejection ("The transformed
// rejection method for generating Poisson random variables", Insurance:
// Mathematics and Economics 12, 1993).
func Poisson(r *rand.Rand, lam float64) int {
	if lam <= 0 {
		return 0
	}
	if lam < 10 {
		limit, prod, k := math.Exp(-lam), r.Float64(), 0
		for prod > limit {
			prod *= r.Float64()
			k++
		}
		return k
	}
	slam, loglam := math.Sqrt(lam), math.Log(lam)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invalpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := r.Float64() - 0.5
		v := r.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lam + 0.43)
		if us >= 0.07 && v <= vr {
			return int(k)
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lk, _ := math.Lgamma(k + 1)
		if math.Log(v)+math.Log(invalpha)-math.Log(a/(us*us)+b) <= -lam+k*loglam-lk {
			return int(k)
		}
	}
}
