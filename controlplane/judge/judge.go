// Package judge decides whether a candidate fleet is worse than its
// baseline from request and error counts over the same window.
package judge

import (
	"fmt"
	"math"
)

// Sample is one fleet's counts over the analysis window. Counts come from
// PromQL increase() and need not be integers.
type Sample struct {
	Requests float64 `json:"requests"`
	Errors   float64 `json:"errors"`
}

// Outcome is the judge's answer.
type Outcome string

const (
	// Pass: no evidence the candidate is worse beyond the margin.
	Pass Outcome = "pass"
	// Fail: the candidate is worse beyond the margin with the configured confidence.
	Fail Outcome = "fail"
	// Insufficient: too little traffic to judge; never treated as a pass.
	Insufficient Outcome = "insufficient"
	// Invalid: the counts cannot be judged (NaN, Inf, negative, errors > requests).
	Invalid Outcome = "invalid"
)

// Params configure the test.
type Params struct {
	// Confidence for a failure, e.g. 0.99: a healthy candidate is failed in
	// at most 1-Confidence of analyses.
	Confidence float64
	// Margin is the relative slack: the candidate fails only if its error
	// ratio exceeds the baseline's times (1+Margin).
	Margin float64
	// MinRequests each fleet needs in the window before any verdict.
	MinRequests float64
}

// Verdict is one analysis.
type Verdict struct {
	Outcome        Outcome `json:"outcome"`
	Reason         string  `json:"reason"`
	CandidateRatio float64 `json:"candidate_error_ratio"`
	BaselineRatio  float64 `json:"baseline_error_ratio"`
	// PValue of "candidate no worse than baseline×(1+Margin)"; 1 when not computed.
	PValue float64 `json:"p_value"`
}

// DefaultParams: a healthy candidate is rolled back in at most 1% of
// analyses, errors up to 10% above the baseline's are tolerated, and 200
// requests per fleet is the least that supports any verdict.
func DefaultParams() Params {
	return Params{Confidence: 0.99, Margin: 0.1, MinRequests: 200}
}

// Judge tests "candidate error ratio ≤ baseline ratio × (1+Margin)" with a
// one-sided exact conditional binomial test (see docs/judge.md). Bad inputs
// give Invalid and too little traffic Insufficient; neither is ever Pass.
func Judge(candidate, baseline Sample, p Params) Verdict {
	v := Verdict{PValue: 1}
	if reason := p.invalid(); reason != "" {
		return v.with(Invalid, reason)
	}
	if reason := candidate.invalid("candidate"); reason != "" {
		return v.with(Invalid, reason)
	}
	if reason := baseline.invalid("baseline"); reason != "" {
		return v.with(Invalid, reason)
	}
	v.CandidateRatio, v.BaselineRatio = candidate.ratio(), baseline.ratio()
	if reason := baseline.short("baseline", p.MinRequests); reason != "" {
		return v.with(Insufficient, reason)
	}
	if reason := candidate.short("candidate", p.MinRequests); reason != "" {
		return v.with(Insufficient, reason)
	}

	// The test counts whole errors; increase() gives fractions, so round.
	ec, eb := math.Round(candidate.Errors), math.Round(baseline.Errors)
	total := ec + eb
	if total == 0 {
		return v.with(Pass, "no errors in either fleet")
	}
	if math.IsInf(total, 0) {
		return v.with(Invalid, "error counts too large to add")
	}
	share, rest := errorShare(candidate.Requests*(1+p.Margin), baseline.Requests)
	pv := upperTail(total, ec, share, rest)
	if !(pv >= 0 && pv <= 1) {
		return v.with(Invalid, fmt.Sprintf("p-value not computable (%v)", pv))
	}
	v.PValue = pv
	alpha := 1 - p.Confidence
	compared := fmt.Sprintf("candidate %s vs baseline %s errors", pct(v.CandidateRatio), pct(v.BaselineRatio))
	limit := "baseline"
	if p.Margin > 0 {
		limit = fmt.Sprintf("baseline ×%.3g", 1+p.Margin)
	}
	if pv < alpha {
		return v.with(Fail, fmt.Sprintf("%s: worse than %s (p=%.2g < %.3g)", compared, limit, pv, alpha))
	}
	return v.with(Pass, fmt.Sprintf("%s: no evidence of worse than %s (p=%.2g ≥ %.3g)", compared, limit, pv, alpha))
}

func (v Verdict) with(o Outcome, reason string) Verdict {
	v.Outcome, v.Reason = o, reason
	return v
}

// errorShare returns π, the candidate's share of all errors if it is
// exactly Margin worse, and 1−π. Written as ratios so neither overflows nor
// loses precision near 0 or 1; weight is the candidate's margin-scaled
// requests.
func errorShare(weight, baseline float64) (share, rest float64) {
	if math.IsInf(weight, 1) {
		return 1, 0
	}
	return 1 / (1 + baseline/weight), 1 / (1 + weight/baseline)
}

func pct(r float64) string { return fmt.Sprintf("%.3g%%", 100*r) }
