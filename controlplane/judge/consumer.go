package judge

import (
	"fmt"
	"math"
)

// Consumer is the cross-service test of a release (release.watch_consumers):
// while a provider switches, is the error ratio of a service that calls it
// (a consumer, not switching itself) above what the consumer showed before
// the switch began? A provider can look healthy by its own counts and still
// break its callers (argo-rollouts #2005); this catches that.
//
// A consumer has no concurrent control (all of its traffic meets the
// provider's split), so the reference is its own past: R requests and F
// errors over the lookback before the provider's switch began. The test
// is anytime-valid under one assumption, stated in docs/releases.md: the
// consumer's error probability per request is stationary, the same during
// the switch as over the lookback, unless the provider changes it.
//
//   - Bound. p̂ is the exact (Clopper–Pearson) upper bound on the
//     reference's error probability at level α/2: with probability at least
//     1−α/2 the true p is at most p̂.
//   - Null. During the switch the consumer's errors are Bernoulli with
//     probability p ≤ p0 = p̂·(1+Margin).
//   - Evidence. With n requests and x errors since the switch began, the
//     likelihood ratio of p1 = g·p0 against p0 is
//     (p1/p0)^x · ((1−p1)/(1−p0))^(n−x). For p ≤ p0 its expectation per
//     request is at most 1, so the product is a supermartingale, and it
//     depends on the totals only. The e-value is a fixed mixture over g.
//   - Verdict. Fail once the e-value reaches 2/α. By Ville's inequality a
//     consumer within the null crosses with probability at most α/2, so a
//     healthy provider is failed in at most α of switches, however often
//     the test is asked.
//
// Because the e-value is a function of the totals since the switch began,
// a new leader recomputes exactly the same value from two counter reads:
// no state to persist.
type Consumer struct {
	// Confidence is 1−α (e.g. 0.99).
	Confidence float64
	// Margin tolerates errors up to p̂·(1+Margin) (e.g. 0.5).
	Margin float64
	// MinErrors is how many errors since the switch began the consumer
	// must show before it can fail a provider (at least 1).
	MinErrors float64
}

// consumerGrid are the alternatives g (p1 = g·p0), equally weighted.
var consumerGrid = []float64{1.25, 1.5, 2, 3, 5, 8, 13, 21}

// ConsumerVerdict is one look of the consumer test.
type ConsumerVerdict struct {
	Bound     float64 // p0: the reference's upper bound × (1+Margin)
	Ratio     float64 // the consumer's error ratio since the switch began
	EValue    float64
	Threshold float64 // 2/α
	Failed    bool
	Reason    string
}

// Validate checks the parameters.
func (c Consumer) Validate() error {
	if !(c.Confidence > 0.5 && c.Confidence < 1) {
		return fmt.Errorf("confidence %v: want above 0.5 and below 1", c.Confidence)
	}
	if !(c.Margin >= 0) || math.IsInf(c.Margin, 0) {
		return fmt.Errorf("margin %v: want 0 or more", c.Margin)
	}
	if !(c.MinErrors >= 1) || math.IsInf(c.MinErrors, 0) {
		return fmt.Errorf("min_errors %v: want 1 or more", c.MinErrors)
	}
	return nil
}

// ConsumerTest is the test of one consumer for one provider switch: the
// reference's bound, computed once; Look may then be asked as often as
// wanted.
type ConsumerTest struct {
	c     Consumer
	ref   Sample
	p0    float64 // the bound × (1+Margin), capped at 1; 0 without a reference
	alpha float64
}

// NewConsumerTest bounds the consumer's error probability from its
// reference counts (the lookback before the provider's switch began).
// Counts must be finite and non-negative, with errors ≤ requests.
func (c Consumer) NewConsumerTest(reference Sample) (*ConsumerTest, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if why := reference.invalid("reference"); why != "" {
		return nil, fmt.Errorf("consumer counts: %s", why)
	}
	t := &ConsumerTest{c: c, ref: reference, alpha: 1 - c.Confidence}
	if reference.Requests > 0 {
		t.p0 = math.Min(1, upperBound(math.Round(reference.Requests), math.Min(math.Round(reference.Errors), math.Round(reference.Requests)), t.alpha/2)*(1+c.Margin))
	}
	return t, nil
}

// Bound is p0, the error ratio the consumer may show without failing its
// provider (0: no reference).
func (t *ConsumerTest) Bound() float64 { return t.p0 }

// Look weighs the consumer's counts since the provider's switch began.
func (t *ConsumerTest) Look(since Sample) (ConsumerVerdict, error) {
	if why := since.invalid("since the switch began"); why != "" {
		return ConsumerVerdict{}, fmt.Errorf("consumer counts: %s", why)
	}
	v := ConsumerVerdict{Threshold: 2 / t.alpha, Bound: t.p0, EValue: 1}
	if since.Requests > 0 {
		v.Ratio = math.Min(1, since.Errors/since.Requests)
	}
	if t.ref.Requests == 0 {
		v.Reason = "no reference: the consumer served no requests over the lookback"
		return v, nil
	}
	if t.p0 < 1 && since.Requests > 0 {
		p0 := t.p0
		n := math.Round(since.Requests)
		x := math.Min(math.Round(since.Errors), n)
		var sum float64
		for _, g := range consumerGrid {
			p1 := math.Min(g*p0, (1+p0)/2) // stays below 1
			l := x*math.Log(p1/p0) + (n-x)*(math.Log1p(-p1)-math.Log1p(-p0))
			sum += math.Exp(math.Min(l, 700))
		}
		v.EValue = sum / float64(len(consumerGrid))
	}
	v.Failed = v.EValue >= v.Threshold*(1-1e-9) && since.Errors >= t.c.MinErrors
	v.Reason = fmt.Sprintf("error ratio %.3g%% (%g of %g) since the switch began, against %.3g%% (the ratio before it, %g of %g, bounded and × %.3g); evidence %.3g of %.3g",
		100*v.Ratio, since.Errors, since.Requests, 100*t.p0, t.ref.Errors, t.ref.Requests, 1+t.c.Margin, v.EValue, v.Threshold)
	return v, nil
}

// upperBound is the exact (Clopper–Pearson) one-sided upper confidence
// bound at level a for a binomial probability from x successes in n trials:
// the p at which P(X ≤ x) = a.
func upperBound(n, x, a float64) float64 {
	if x >= n {
		return 1
	}
	lo, hi := x/n, 1.0
	for i := 0; i < 200 && hi-lo > 1e-12*math.Max(hi, 1e-300); i++ {
		mid := (lo + hi) / 2
		// P(X ≤ x) = 1 − P(X ≥ x+1); it falls as p grows.
		if 1-upperTail(n, x+1, mid, 1-mid) > a {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}
