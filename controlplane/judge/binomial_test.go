package judge

import (
	"math"
	"math/big"
	"testing"
)

// bigTails is P(X ≥ k) for every k, from pmf terms in 128-bit floats summed
// from the top: slow, but nothing in it can lose precision.
func bigTails(n int, p float64) []float64 {
	const prec = 128
	nf := func(x float64) *big.Float { return new(big.Float).SetPrec(prec).SetFloat64(x) }
	bp := nf(p)
	bq := nf(1)
	bq.Sub(bq, bp)
	ratio := nf(0).Quo(bp, bq)
	terms := make([]*big.Float, n+1)
	t := nf(1)
	for range n {
		t.Mul(t, bq)
	}
	m := nf(0)
	for j := 0; j <= n; j++ {
		terms[j] = nf(0).Set(t)
		t.Mul(t, ratio)
		t.Mul(t, m.SetInt64(int64(n-j)))
		t.Quo(t, m.SetInt64(int64(j+1)))
	}
	tails := make([]float64, n+2)
	sum := nf(0)
	for k := n; k >= 0; k-- {
		sum.Add(sum, terms[k])
		tails[k], _ = sum.Float64()
	}
	return tails
}

func tail(n, k, p float64) float64 { return upperTail(n, k, p, 1-p) }

func relErr(got, want float64) float64 {
	if got == want {
		return 0
	}
	return math.Abs(got-want) / math.Abs(want)
}

func TestUpperTailExactSmall(t *testing.T) {
	for _, c := range []struct {
		n, k, p, want float64
	}{
		{1, 1, 0.3, 0.3},
		{1, 0, 0.3, 1},
		{1, 2, 0.3, 0},
		{10, 8, 0.5, 56.0 / 1024},
		{10, 10, 0.5, 1.0 / 1024},
		{5, 3, 0.3, 10*0.027*0.49 + 5*0.0081*0.7 + 0.00243},
		{3, 3, 0.5238095238095238, math.Pow(0.5238095238095238, 3)},
		{4, 1, 0.25, 1 - math.Pow(0.75, 4)},
	} {
		if got := tail(c.n, c.k, c.p); relErr(got, c.want) > 1e-12 {
			t.Errorf("P(Bin(%v,%v) ≥ %v) = %v, want %v", c.n, c.p, c.k, got, c.want)
		}
	}
}

// Against 128-bit sums from far below the mean to deep in the tail, where a
// p-value of 1e-30 must still be right to many digits.
func TestUpperTailMatchesBigFloat(t *testing.T) {
	for _, n := range []int{7, 40, 300, 2000, 20000} {
		for _, p := range []float64{0.001, 0.05, 0.5238095238095238, 0.9} {
			ref := bigTails(n, p)
			mean, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p))
			for _, z := range []float64{-4, -1, 0, 1, 2.33, 4, 8, 15} {
				k := int(math.Round(mean + z*sd))
				if k < 0 || k > n {
					continue
				}
				want := ref[k]
				if got := tail(float64(n), float64(k), p); relErr(got, want) > 1e-9 {
					t.Errorf("n=%d p=%v k=%d: got %v, want %v", n, p, k, got, want)
				}
			}
		}
	}
}

// P(X ≥ k) + P(X ≥ n−k+1) = 1 at p = ½, and p ↔ q mirrors the tails: the two
// sides come from different summation branches, so they check each other
// at sizes too large for the big-float reference.
func TestUpperTailSymmetry(t *testing.T) {
	for _, n := range []float64{1, 2, 11, 1000, 123457, 1e7} {
		sd := math.Sqrt(n) / 2
		for _, z := range []float64{-3, -1, 0, 0.5, 2.33, 5} {
			k := math.Max(0, math.Min(n, math.Round(n/2+z*sd)))
			if s := tail(n, k, 0.5) + tail(n, n-k+1, 0.5); math.Abs(s-1) > 1e-9 {
				t.Errorf("n=%v k=%v: tails sum to %v", n, k, s)
			}
		}
		for _, p := range []float64{0.01, 0.3} {
			k := math.Round(n*p + 2*math.Sqrt(n*p*(1-p)))
			a := tail(n, k, p)
			b := 1 - upperTail(n, n-k+1, 1-p, p)
			if math.Abs(a-b) > 1e-9*math.Max(a, 1e-3) {
				t.Errorf("n=%v p=%v k=%v: %v vs mirrored %v", n, p, k, a, b)
			}
		}
	}
}

// Where the exact sum hands over to the deviance approximation the two must
// agree closely at the p-values a decision is made on.
func TestDevianceTailAgreesAtHandover(t *testing.T) {
	for _, c := range []struct{ n, p float64 }{{4e8, 0.5}, {1e9, 0.1}, {1e7, 0.5238}} {
		sd := math.Sqrt(c.n * c.p * (1 - c.p))
		for _, z := range []float64{-2, 0, 1, 2.33, 3, 5} {
			k := math.Round(c.n*c.p + z*sd)
			_, exact, ok := summedTails(c.n, k, c.p, 1-c.p)
			if !ok {
				t.Fatalf("n=%v: summed tail failed", c.n)
			}
			if approx := devianceTail(c.n, k, c.p, 1-c.p); relErr(approx, exact) > 1e-3 {
				t.Errorf("n=%v p=%v z=%v: approx %v vs exact %v", c.n, c.p, z, approx, exact)
			}
		}
	}
}

func TestUpperTailExtremes(t *testing.T) {
	for _, c := range []struct{ n, k, p, q float64 }{
		{1e300, 5, 1e-300, 1},
		{1e300, 5e299, 0.5, 0.5},
		{1e20, 1e20 - 1e5, 1 - 1e-15, 1e-15},
		{1e15, 3, 5e-324, 1},
		{9e15, 9e15, 1, 0x1p-60},
		{1e7, 5e6, 0.5, 0.5},
	} {
		got := upperTail(c.n, c.k, c.p, c.q)
		if !(got >= 0 && got <= 1) {
			t.Errorf("upperTail(%v, %v, %v, %v) = %v", c.n, c.k, c.p, c.q, got)
		}
	}
}

// n beyond float64's exact integers, variance small: the sum runs over the
// rarer outcome, so it still matches closed forms.
func TestUpperTailHugeNSmallVariance(t *testing.T) {
	q := 6.3e-16
	n := 9e15
	if got, want := upperTail(n, n, 1-q, q), math.Exp(n*math.Log1p(-q)); relErr(got, want) > 1e-6 {
		t.Errorf("P(all of n) = %v, want %v", got, want)
	}
	poisson1Tail5 := 1 - math.Exp(-1)*(1+1+1.0/2+1.0/6+1.0/24)
	if got := tail(1e15, 5, 1e-15); relErr(got, poisson1Tail5) > 1e-6 {
		t.Errorf("Poisson-limit tail = %v, want %v", got, poisson1Tail5)
	}
	if got := upperTail(1e15, 1e15-4, 1-1e-15, 1e-15); relErr(got, 1-poisson1Tail5) > 1e-6 {
		t.Errorf("mirrored Poisson-limit tail = %v, want %v", got, 1-poisson1Tail5)
	}
}
