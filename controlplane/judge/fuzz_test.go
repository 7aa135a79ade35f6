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

// FuzzJudgeCounts stays among valid whole counts, where FuzzJudge rarely
// lands: more candidate errors never raise the p-value, more baseline
// errors never lower it.
func FuzzJudgeCounts(f *testing.F) {
	f.Add(uint32(2000), uint32(40), uint32(2000), uint32(20), uint8(10))
	f.Add(uint32(200), uint32(2), uint32(20000), uint32(40), uint8(0))
	f.Add(uint32(1<<31), uint32(1<<30), uint32(1000), uint32(0), uint8(255))
	f.Fuzz(func(t *testing.T, nc, ec, nb, eb uint32, margin uint8) {
		ec, eb = min(ec, nc), min(eb, nb)
		p := DefaultParams()
		p.MinRequests, p.Margin = 1, float64(margin)/100
		judge := func(ec, eb uint32) Verdict {
			return Judge(Sample{float64(nc), float64(ec)}, Sample{float64(nb), float64(eb)}, p)
		}
		v := judge(ec, eb)
		if nc == 0 || nb == 0 {
			if v.Outcome != Insufficient {
				t.Fatalf("no traffic judged %s", v.Outcome)
			}
			return
		}
		checkVerdict(t, v, p)
		if ec < nc {
			if w := judge(ec+1, eb); w.PValue > v.PValue*(1+1e-9) {
				t.Fatalf("candidate errors %d→%d raised p %v→%v", ec, ec+1, v.PValue, w.PValue)
			}
		}
		if eb < nb {
			if w := judge(ec, eb+1); w.PValue < v.PValue*(1-1e-9) {
				t.Fatalf("baseline errors %d→%d lowered p %v→%v", eb, eb+1, v.PValue, w.PValue)
			}
		}
	})
}
