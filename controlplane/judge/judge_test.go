package judge

import (
	"math"
	"strings"
	"testing"
)

func TestJudgeTable(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	def := DefaultParams()
	with := func(f func(*Params)) Params { p := def; f(&p); return p }
	s := func(req, errs float64) Sample { return Sample{Requests: req, Errors: errs} }
	ok := s(10000, 100)

	for _, c := range []struct {
		name       string
		cand, base Sample
		p          Params
		want       Outcome
		reason     string // substring
	}{
		{"candidate requests NaN", s(nan, 0), ok, def, Invalid, "candidate requests is NaN"},
		{"candidate errors NaN", s(1000, nan), ok, def, Invalid, "candidate errors is NaN"},
		{"baseline errors Inf", ok, s(1000, inf), def, Invalid, "baseline errors is infinite"},
		{"baseline requests -Inf", ok, s(-inf, 0), def, Invalid, "baseline requests is infinite"},
		{"negative errors", s(1000, -1), ok, def, Invalid, "candidate errors is negative"},
		{"negative requests", ok, s(-5, 0), def, Invalid, "baseline requests is negative"},
		{"errors exceed requests", s(1000, 1001), ok, def, Invalid, "candidate errors exceed requests"},
		{"errors equal requests within float slack", s(1000, 1000*(1+1e-12)), ok, def, Fail, "worse than baseline"},
		{"confidence 1", ok, ok, with(func(p *Params) { p.Confidence = 1 }), Invalid, "confidence"},
		{"confidence 0.5", ok, ok, with(func(p *Params) { p.Confidence = 0.5 }), Invalid, "confidence"},
		{"confidence NaN", ok, ok, with(func(p *Params) { p.Confidence = nan }), Invalid, "confidence"},
		{"margin negative", ok, ok, with(func(p *Params) { p.Margin = -0.1 }), Invalid, "margin"},
		{"margin NaN", ok, ok, with(func(p *Params) { p.Margin = nan }), Invalid, "margin"},
		{"margin Inf", ok, ok, with(func(p *Params) { p.Margin = inf }), Invalid, "margin"},
		{"min requests 0", ok, ok, with(func(p *Params) { p.MinRequests = 0 }), Invalid, "min requests"},
		{"min requests NaN", ok, ok, with(func(p *Params) { p.MinRequests = nan }), Invalid, "min requests"},
		{"zero-params", ok, ok, Params{}, Invalid, "confidence"},

		{"baseline no traffic", s(1000, 50), s(0, 0), def, Insufficient, "baseline has no traffic"},
		{"baseline below minimum", ok, s(199, 0), def, Insufficient, "baseline has 199 requests, need 200"},
		{"candidate no traffic", s(0, 0), ok, def, Insufficient, "candidate has no traffic"},
		{"candidate below minimum, all errors", s(150, 150), ok, def, Insufficient, "candidate has 150 requests"},
		{"ten requests all failing", s(10, 10), s(10, 0), with(func(p *Params) { p.MinRequests = 200 }), Insufficient, "baseline has 10"},

		{"equal counts", ok, ok, def, Pass, "no evidence"},
		{"equal counts, margin 0", ok, ok, with(func(p *Params) { p.Margin = 0 }), Pass, "no evidence"},
		{"zero errors both", s(5000, 0), s(5000, 0), def, Pass, "no errors in either fleet"},
		{"clearly worse", s(2000, 100), s(2000, 20), def, Fail, "worse than baseline ×1.1"},
		{"baseline clean, candidate 10 errors", s(1000, 10), s(1000, 0), def, Fail, "p=0.0016 < 0.01"},
		{"baseline clean, candidate 5 errors is not enough", s(1000, 5), s(1000, 0), def, Pass, ""},
		{"small counts", s(1000, 3), s(1000, 0), with(func(p *Params) { p.Margin = 0 }), Pass, "worse than baseline (p=0.13 ≥ 0.01)"},
		// A two-proportion z-test says p=0.007 here and would roll back on 2 errors.
		{"1% step, 2 errors", s(200, 2), s(20000, 40), with(func(p *Params) { p.Margin = 0 }), Pass, "(p=0.065 ≥ 0.01)"},
		{"candidate better", s(2000, 5), s(2000, 40), def, Pass, ""},
		{"traffic split 10/90 judged per request", s(1000, 20), s(9000, 90), def, Pass, ""},
		{"traffic split 10/90, candidate 3×", s(1000, 30), s(9000, 90), def, Fail, ""},
		{"1.05× with huge n, margin 0.1", s(1e8, 1.05e6), s(1e8, 1e6), def, Pass, ""},
		{"1.05× with huge n, margin 0", s(1e8, 1.05e6), s(1e8, 1e6), with(func(p *Params) { p.Margin = 0 }), Fail, ""},
		{"fractional counts round", s(1000.4, 9.6), s(1000.4, 0.4), def, Fail, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := Judge(c.cand, c.base, c.p)
			if v.Outcome != c.want || !strings.Contains(v.Reason, c.reason) {
				t.Fatalf("got %s %q (p=%v), want %s containing %q", v.Outcome, v.Reason, v.PValue, c.want, c.reason)
			}
			checkVerdict(t, v, c.p)
		})
	}
}

// checkVerdict holds for every verdict: a p-value in [0,1], ratios in
// [0,1], and pass/fail agreeing with the p-value.
func checkVerdict(t *testing.T, v Verdict, p Params) {
	t.Helper()
	if !(v.PValue >= 0 && v.PValue <= 1) {
		t.Fatalf("p-value %v outside [0,1]: %+v", v.PValue, v)
	}
	for _, r := range []float64{v.CandidateRatio, v.BaselineRatio} {
		if !(r >= 0 && r <= 1) {
			t.Fatalf("ratio %v outside [0,1]: %+v", r, v)
		}
	}
	switch v.Outcome {
	case Pass:
		if v.PValue < 1-p.Confidence {
			t.Fatalf("pass with p=%v < %v", v.PValue, 1-p.Confidence)
		}
	case Fail:
		if v.PValue >= 1-p.Confidence {
			t.Fatalf("fail with p=%v ≥ %v", v.PValue, 1-p.Confidence)
		}
	case Insufficient, Invalid:
		if v.PValue != 1 {
			t.Fatalf("%s with computed p-value %v", v.Outcome, v.PValue)
		}
	default:
		t.Fatalf("unknown outcome %q", v.Outcome)
	}
	if v.Reason == "" {
		t.Fatal("empty reason")
	}
}

func TestJudgeFillsRatiosAndReason(t *testing.T) {
	v := Judge(Sample{Requests: 10000, Errors: 210}, Sample{Requests: 10000, Errors: 102}, DefaultParams())
	if v.Outcome != Fail || v.CandidateRatio != 0.021 || v.BaselineRatio != 0.0102 {
		t.Fatalf("got %+v", v)
	}
	if !strings.HasPrefix(v.Reason, "candidate 2.1% vs baseline 1.02% errors") {
		t.Fatalf("reason %q", v.Reason)
	}
	t.Logf("reason: %s", v.Reason)
}

func TestDefaultParamsAreValid(t *testing.T) {
	p := DefaultParams()
	if p != (Params{Confidence: 0.99, Margin: 0.1, MinRequests: 200}) || p.invalid() != "" {
		t.Fatalf("DefaultParams() = %+v", p)
	}
}
