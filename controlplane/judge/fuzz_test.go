package judge

import (
	"math"
	"testing"
)

func FuzzJudge(f *testing.F) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range [][7]float64{
		{2000, 40, 2000, 20, 0.99, 0.1, 200},
		{2000, 0, 2000, 0, 0.99, 0.1, 200},
		{1e8, 1.05e6, 1e8, 1e6, 0.99, 0, 200},
		{nan, 0, 2000, 0, 0.99, 0.1, 200},
		{2000, inf, 2000, 0, 0.99, 0.1, 200},
		{2000, 10, -inf, 0, 0.99, 0.1, 200},
		{2000, 2001, 2000, 0, 0.99, 0.1, 200},
		{10, 10, 10, 0, 0.99, 0.1, 1},
		{1e300, 1e300, 1e300, 1e300, 0.99, 0.1, 1},
		{1e308, 1e308, 1, 0, 0.99, 10, 1},
		{9e15, 9e15, 1, 1, 0.999, 0, 1},
		{2000, 40, 2000, 20, 1, 0.1, 200},
		{2000, 40, 2000, 20, 0.99, nan, 200},
		{2000, 40, 2000, 20, 0.99, 0.1, inf},
	} {
		f.Add(c[0], c[1], c[2], c[3], c[4], c[5], c[6])
	}
	f.Fuzz(func(t *testing.T, cr, ce, br, be, conf, margin, minReq float64) {
		cand, base := Sample{Requests: cr, Errors: ce}, Sample{Requests: br, Errors: be}
		p := Params{Confidence: conf, Margin: margin, MinRequests: minReq}
		v := Judge(cand, base, p)
		if !(v.PValue >= 0 && v.PValue <= 1) {
			t.Fatalf("p-value %v: %+v", v.PValue, v)
		}
		bad := p.invalid() != "" || badCounts(cand) || badCounts(base)
		switch {
		case bad && v.Outcome != Invalid:
			t.Fatalf("invalid input judged %s: %+v", v.Outcome, v)
		case bad:
			return
		case v.Outcome == Invalid:
			// Only sums beyond float64 may be refused among valid inputs.
			if !math.IsInf(math.Round(ce)+math.Round(be), 0) {
				t.Fatalf("valid input judged invalid: %+v", v)
			}
			return
		case (cr < minReq || br < minReq) && v.Outcome != Insufficient:
			t.Fatalf("below %v requests judged %s: %+v", minReq, v.Outcome, v)
		}
		checkVerdict(t, v, p)
		// One more candidate error never turns a failure into a pass.
		if v.Outcome == Fail && ce+1 <= cr {
			more := Judge(Sample{Requests: cr, Errors: ce + 1}, base, p)
			if more.Outcome == Pass {
				t.Fatalf("fail with %v errors but pass with %v: %+v / %+v", ce, ce+1, v, more)
			}
		}
	})
}

// badCounts restates the contract independently of Sample.invalid.
func badCounts(s Sample) bool {
	for _, x := range []float64{s.Requests, s.Errors} {
		if math.IsNaN(x) || math.IsInf(x, 0) || x < 0 {
			return true
		}
	}
	return s.Errors > s.Requests*(1+1e-9)
}
