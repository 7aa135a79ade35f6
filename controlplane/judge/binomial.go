package judge

import "math"

// exactVarLimit bounds the variance n·p·q up to which the tail is summed term
// by term. Summing stops about 9 standard deviations from the start, so the
// loop stays under ~3·10^5 steps; beyond it (E ≳ 4·10^9 errors) the deviance
// approximation errs by far less than the decision cares about.
const exactVarLimit = 1e9

// maxTerms is a backstop: a sum that has not converged by then is abandoned
// for the approximation rather than allowed to spin.
const maxTerms = 1 << 22

// tailEps stops the summation once a term no longer changes the sum.
const tailEps = 1e-17

// upperTail returns P(X ≥ k) for X ~ Binomial(n, p), n and k whole numbers.
// q = 1−p is passed separately so a p near 1 keeps its precision.
func upperTail(n, k, p, q float64) float64 {
	switch {
	case k <= 0 || q <= 0:
		return 1
	case k > n || p <= 0:
		return 0
	}
	if n*p*q <= exactVarLimit {
		// Sum over the rarer outcome, Y = n−X ~ Binomial(n, q) when p > ½:
		// its counts stay small and exact in float64 even when n is not.
		if p > q {
			if lower, _, ok := summedTails(n, n-k+1, q, p); ok {
				return lower // P(X ≥ k) = P(Y ≤ n−k)
			}
		} else if _, upper, ok := summedTails(n, k, p, q); ok {
			return upper
		}
	}
	return devianceTail(n, k, p, q)
}

// summedTails returns P(X ≤ k−1) and P(X ≥ k) for 1 ≤ k ≤ n. It adds pmf
// terms from k away from the mode, where they fall monotonically, so the
// small tail that decides a failure never comes from cancellation; the
// other tail is its complement, large enough for 1−sum to be exact.
func summedTails(n, k, p, q float64) (lower, upper float64, ok bool) {
	r := p / q
	var sum float64
	steps := 0
	if k > math.Floor((n+1)*p) { // past the mode
		t := math.Exp(logPMF(k, n, p, q))
		for j := k; t > 0 && j <= n && steps < maxTerms; j, steps = j+1, steps+1 {
			sum += t
			if t < sum*tailEps {
				break
			}
			t *= (n - j) / (j + 1) * r
		}
		sum = min(sum, 1)
		return 1 - sum, sum, converged(sum, steps)
	}
	t := math.Exp(logPMF(k-1, n, p, q))
	for j := k - 1; t > 0 && j >= 0 && steps < maxTerms; j, steps = j-1, steps+1 {
		sum += t
		if t < sum*tailEps {
			break
		}
		t *= j / ((n - j + 1) * r)
	}
	sum = min(sum, 1)
	return sum, 1 - sum, converged(sum, steps)
}

func converged(sum float64, steps int) bool {
	return steps < maxTerms && sum >= 0 && sum <= 1
}

// logPMF is log P(X = x) by Loader's saddle-point form ("Fast and accurate
// computation of binomial probabilities", 2000). Unlike lgamma differences
// it does not cancel catastrophically when n is large.
func logPMF(x, n, p, q float64) float64 {
	switch x {
	case 0:
		return n * logOneMinus(p, q)
	case n:
		return n * logOneMinus(q, p)
	}
	lc := stirlerr(n) - stirlerr(x) - stirlerr(n-x) - bd0(x, n*p) - bd0(n-x, n*q)
	lf := math.Log(2*math.Pi) + math.Log(x) + math.Log1p(-x/n)
	return lc - 0.5*lf
}

// logOneMinus returns log(1−a) = log(b), from whichever of a and b is
// small: log(b) of a b near 1 would keep only the rounding of 1−a.
func logOneMinus(a, b float64) float64 {
	if a < b {
		return math.Log1p(-a)
	}
	return math.Log(b)
}

// stirlerr(n) = log(n!) − log(√(2πn)·(n/e)^n), the Stirling series error.
func stirlerr(n float64) float64 {
	const (
		s0 = 1.0 / 12
		s1 = 1.0 / 360
		s2 = 1.0 / 1260
		s3 = 1.0 / 1680
		s4 = 1.0 / 1188
	)
	if n <= 15 {
		lg, _ := math.Lgamma(n + 1)
		return lg - (n+0.5)*math.Log(n) + n - 0.5*math.Log(2*math.Pi)
	}
	nn := n * n
	return (s0 - (s1-(s2-(s3-s4/nn)/nn)/nn)/nn) / n
}

// bd0(x, m) = x·log(x/m) + m − x, by a series when x ≈ m where the direct
// form would cancel.
func bd0(x, m float64) float64 {
	if x == 0 {
		return m
	}
	// Halves keep x+m finite near MaxFloat64.
	if math.Abs(x-m) < 0.2*(x/2+m/2) {
		v := (x/2 - m/2) / (x/2 + m/2)
		s := (x - m) * v
		ej := 2 * v * x
		v *= v
		for j := 1; j < 1000; j++ {
			ej *= v
			s1 := s + ej/float64(2*j+1)
			if s1 == s {
				break
			}
			s = s1
		}
		return s
	}
	return x*math.Log(x/m) + m - x
}

// devianceTail approximates P(X ≥ k) by the signed root of the binomial
// deviance with a continuity correction; used only when n·p·q is so large
// that the normal shape is exact to many digits where decisions are made.
func devianceTail(n, k, p, q float64) float64 {
	x := k - 0.5
	d := max(bd0(x, n*p)+bd0(n-x, n*q), 0)
	z := math.Sqrt(2 * d)
	if x < n*p {
		z = -z
	}
	// NaN passes through: Judge reports it as Invalid, never as a pass.
	return 0.5 * math.Erfc(z/math.Sqrt2)
}
