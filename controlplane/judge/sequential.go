package judge

import (
	"fmt"
	"math"
)

// Sequential is an anytime-valid test of "the candidate's error rate is at
// most the baseline's × (1+Margin)" over a whole switch: it may be asked
// after every interval, as often as wanted, and a healthy candidate is
// failed in at most 1-Confidence of switches, not of analyses.
//
// It is groundwork for GitHub issue 13 and is not yet wired into
// switches: the rollout still uses Judge on windowed counts.
//
// The model is Lindon, Sanden and Shirikian's (KDD 2022) for count data:
// errors of each fleet arrive as Poisson processes whose rates per request
// are λc = ρ·λb. Given how many errors an interval had in total, the number
// that came from the candidate is binomial with
//
//	θ(ρ) = ρ·Nc / (ρ·Nc + Nb)
//
// where Nc, Nb are the interval's requests, so the baseline's unknown error
// rate drops out. The product over intervals of the likelihood ratio of
// θ(ρ) against θ(ρ0), ρ0 = 1+Margin, is a nonnegative martingale when
// ρ = ρ0 and a supermartingale for any ρ ≤ ρ0 (and for per-request
// Bernoulli errors, whose conditional law is hypergeometric, less spread
// than the binomial). A fixed mixture over alternatives ρ > ρ0 keeps that
// property, so by Ville's inequality the chance that the mixture ever
// reaches 1/(1-Confidence) under the null is at most 1-Confidence.
type Sequential struct {
	rho0    float64
	ratios  []float64 // alternatives ρ > ρ0
	weights []float64 // sum to 1
	logLR   []float64 // log likelihood ratio so far, per alternative
	alpha   float64
	seen    Sample // candidate counts so far
	base    Sample // baseline counts so far
}

// sequentialGrid are the alternatives, as multiples of ρ0: from a 25 %
// excess over the tolerated ratio to 16 times it.
var sequentialGrid = []float64{1.2, 1.4, 1.6, 1.8, 2, 2.5, 3, 4, 8}

// NewSequential starts a test for one switch.
func NewSequential(p Params) (*Sequential, error) {
	if why := p.invalid(); why != "" {
		return nil, fmt.Errorf("judge: %s", why)
	}
	s := &Sequential{rho0: 1 + p.Margin, alpha: 1 - p.Confidence}
	for _, g := range sequentialGrid {
		s.ratios = append(s.ratios, s.rho0*g)
		s.weights = append(s.weights, 1/float64(len(sequentialGrid)))
		s.logLR = append(s.logLR, 0)
	}
	return s, nil
}

// Observe adds one interval's counts: what each fleet served and failed
// since the last observation (exact increments, not rates). It refuses
// counts that cannot be judged and changes nothing then.
func (s *Sequential) Observe(candidate, baseline Sample) error {
	for _, x := range []Sample{candidate, baseline} {
		if !finite(x.Requests) || !finite(x.Errors) || x.Requests < 0 || x.Errors < 0 || x.Errors > x.Requests {
			return fmt.Errorf("counts cannot be judged: candidate %+v, baseline %+v", candidate, baseline)
		}
	}
	s.seen.Requests += candidate.Requests
	s.seen.Errors += candidate.Errors
	s.base.Requests += baseline.Requests
	s.base.Errors += baseline.Errors
	if candidate.Errors+baseline.Errors == 0 || candidate.Requests == 0 || baseline.Requests == 0 {
		// No errors, or one fleet without traffic: the interval says
		// nothing about the ratio (its likelihood ratio is 1).
		return nil
	}
	t0 := theta(s.rho0, candidate.Requests, baseline.Requests)
	for i, rho := range s.ratios {
		t1 := theta(rho, candidate.Requests, baseline.Requests)
		s.logLR[i] += candidate.Errors*math.Log(t1/t0) + baseline.Errors*math.Log((1-t1)/(1-t0))
	}
	return nil
}

func theta(rho, nc, nb float64) float64 { return rho * nc / (rho*nc + nb) }

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// EValue is the evidence against "no worse than the margin" so far: the
// mixture likelihood ratio. Its expectation under the null is at most 1.
func (s *Sequential) EValue() float64 {
	// log-sum-exp for stability
	m := math.Inf(-1)
	for _, l := range s.logLR {
		m = math.Max(m, l)
	}
	sum := 0.0
	for i, l := range s.logLR {
		sum += s.weights[i] * math.Exp(l-m)
	}
	return math.Exp(m) * sum
}

// Failed reports whether the evidence crossed 1/(1-Confidence): from then
// on the candidate is worse beyond the margin, at the test's level, however
// often it was looked at.
func (s *Sequential) Failed() bool { return s.EValue() >= 1/s.alpha }

// Counts returns the candidate's and baseline's counts observed so far.
func (s *Sequential) Counts() (candidate, baseline Sample) { return s.seen, s.base }
