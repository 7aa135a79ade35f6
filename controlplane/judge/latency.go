package judge

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Latency is an anytime-valid test of "the candidate's latency quantile is
// no worse than the baseline's plus the margin" over a whole switch, on
// Prometheus histogram counts. It may be asked after every interval, as
// often as wanted: a candidate within the margin is failed in at most
// 1−Confidence of switches.
//
// # Hypothesis
//
// Write Qc and Qb for the candidate's and the baseline's q-quantiles
// (q = Quantile) and
//
//	T(x) = max(x·(1+Relative), x+Absolute)
//
// for the slowest quantile the margin tolerates over a baseline at x. The
// null hypothesis is Qc ≤ T(Qb): the candidate fails only if it is slower
// by more than Relative AND by more than Absolute, i.e. beyond the larger
// tolerance. "20 % and 50 ms" ignores 3 ms on a 10 ms service and 300 ms
// on a 5 s one, differences the buckets could not show anyway; either part
// set to 0 leaves the other as the whole margin. ("Or", the smaller
// tolerance, would make a 0 silently mean no margin at all.)
//
// # Test
//
// Let p0 = 1−q and, for a bucket bound v, Fb(v) and Fc(v) the fleets'
// shares of requests with latency ≤ v, which the cumulative `le` counts
// measure directly. Two families of one-sample e-values run on the counts
// accumulated since the switch began; each is a function of the running
// totals (requests n, requests above the bound k):
//
//   - Baseline, at each bound v: evidence that Fb(v) ≥ q, i.e. Qb ≤ v. The
//     likelihood ratio of k ~ Binomial(n, p) at exceedance shares p below
//     p0 against p = p0, mixed over a fixed grid. U is the smallest bound
//     whose e-value reaches 1/αb: an upper confidence bound for Qb on the
//     bucket grid (none while the baseline has too little data).
//   - Candidate, at each bound u: evidence that Fc(u) < q, i.e. Qc > u. The
//     same ratio at shares above p0.
//
// Each analysis takes u, the smallest bound ≥ T(U), and fails the
// candidate once its e-value at u reaches 1/αc and both fleets have
// MinRequests. A failure is final for the switch. αb + αc = α =
// 1−Confidence with αb = α/4 (latencyBaselineRisk). EValue reports the
// candidate's e-value × αc/α, so that, as for Sequential, the switch fails
// when it reaches 1/α.
//
// # Validity
//
// Assume that, within each fleet, latencies are independent draws from one
// distribution for the whole switch; the number of requests per interval
// may be anything, even chosen from earlier data. Given the requests, the
// count above any fixed bound is then binomial, and for a fixed bound and
// a true share on the null's side of p0, each alternative's likelihood
// ratio is a nonnegative supermartingale starting at 1; so is their
// mixture, and by Ville's inequality it ever reaches 1/a with probability
// at most a, however often it is looked at. Then:
//
//   - Let v* be the largest bound with Fb(v*) < q (if there is none, every
//     bound is ≥ Qb). Its baseline e-value ever reaches 1/αb with
//     probability at most αb. Every bound v < Qb has Fb(v) < q, so v ≤ v*,
//     and has at least as many baseline requests above it; the baseline's
//     ratio falls as that count rises, so v's e-value never exceeds v*'s.
//     Hence, with probability at least 1−αb, Qb ≤ U at every analysis.
//   - On that event, if the null holds, Qc ≤ T(Qb) ≤ T(U) ≤ u (T is
//     non-decreasing), so Fc(u) ≥ q. Let u* be the smallest bound with
//     Fc(u*) ≥ q; then u ≥ u*, the candidate has no more requests above u
//     than above u*, its ratio rises with that count, and its e-value at u
//     never exceeds that at u*. At u* the null holds (share above ≤ p0), so
//     that e-value ever reaches 1/αc with probability at most αc.
//
// So a candidate within the margin is failed in at most αb + αc = α of
// switches, at any number and timing of analyses. U and u depend on the
// data, and that is paid for by the monotonicity (each is dominated by one
// fixed bound), not by a union over bounds. MinRequests only withholds verdicts. The
// proof needs only that in every interval the baseline's quantile is at
// least some fixed x and the candidate's at most T(x), so latency may
// drift, as long as the candidate stays within the margin of the
// baseline's fastest interval.
//
// # Resolution
//
// Every rounding goes against failing: Qb is bounded above by a bound U at
// or above it (one further up while the baseline's share at the first is
// too close to q to show), T(U) is rounded up to the next bound u, and the
// candidate must then show more than 1−q of its requests above u. No
// interpolation inside a bucket is used for the verdict (only for the
// displayed quantiles). So a regression is visible only once Qc passes the
// first bound at or above T(first bound above Qb): with bound ratio g,
// between about g·(1+Relative) and g²·(1+Relative) times Qb, more while
// the baseline's bound is loose. Envoy's default buckets (ratios 2 to 5):
// a baseline p99 of 27 ms is bounded at 50 ms, "20 % and 50 ms" tolerates
// 100 ms, so a candidate p99 over 100 ms fails quickly and one at 90 ms
// never can; a 1.5× regression is generally invisible. Fine buckets (ratio
// 2^(1/8) ≈ 1.09, as native histograms' schema 3) resolve it, given enough
// requests.
//
// Bounding the baseline's p99 takes a few hundred requests at least (about
// 770 at Confidence 0.99 when none is above the bound; many more when the
// bound is close to the quantile). The candidate's power comes from its
// count above u: a p99 is seen through 1 % of requests, so 2,000
// candidate requests hold about 20. In simulation of the default plan
// (TestLatencyWholeSwitchesDetect), a p99 1.5× over a 20 % margin on fine
// buckets is caught in ≥ 99 % of switches from about 50,000 candidate
// requests for a lognormal with p99/p50 = 3.2, and about 10,000 for
// p99/p50 = 1.8; at 2,000 requests, in 1–50 %.
//
// # Limits
//
// Independence and stationarity are modelling assumptions. Latency that
// drifts for both fleets during a switch (a shared dependency slowing down)
// is not cancelled out, as the conditional binomial cancels a common error
// rate: most of the candidate's requests come late in a switch (its share
// grows), the baseline's throughout. Bursty, correlated slowness (GC
// pauses, queueing) spreads counts more than the binomial does and makes
// the test less conservative than stated. Counts should be exact
// increments; fractional ones (from increase()) are used as they are.
type Latency struct {
	p         LatencyParams
	bm, cm    latencyMixture // the baseline's and the candidate's
	bounds    []float64      // upper bounds, last +Inf; nil until the first histogram with bounds
	cand      []float64      // cumulative counts ≤ bounds[i] since the switch began
	base      []float64
	intervals int
	failed    bool
	failure   string // Reason when it failed
}

// Histogram is one fleet's latency histogram: cumulative counts per upper
// bound, like Prometheus `le` buckets. A Histogram with neither bounds nor
// counts stands for a fleet with no requests in the interval.
type Histogram struct {
	Bounds []float64 // upper bounds, ascending, in one unit (the caller's: ms for Envoy); the last is +Inf
	Counts []float64 // Counts[i] = requests with latency ≤ Bounds[i]; non-decreasing
}

// LatencyParams configure the latency test.
type LatencyParams struct {
	// Quantile compared, in (0, 1), e.g. 0.99.
	Quantile float64 `json:"quantile"`
	// Relative and Absolute are the margin: the candidate fails only when
	// its quantile is more than Relative (0.2 = 20 %) AND more than
	// Absolute (in the histogram's unit, e.g. 50 for 50 ms) above the
	// baseline's, i.e. beyond the larger of the two. Either may be 0.
	Relative float64 `json:"relative"`
	Absolute float64 `json:"absolute"`
	// Confidence, in (0.5, 1): a candidate no slower than the margin is
	// failed in at most 1−Confidence of whole switches.
	Confidence float64 `json:"confidence"`
	// MinRequests each fleet needs since the switch began before any
	// latency verdict; at least 1.
	MinRequests float64 `json:"min_requests"`
	// Unit is printed after latencies in Reason, e.g. "ms"; optional.
	Unit string `json:"unit,omitempty"`
}

// Validate says which field is out of range, if any.
func (p LatencyParams) Validate() error {
	switch {
	case !(p.Quantile > 0 && p.Quantile < 1):
		return fmt.Errorf("latency quantile %v is not in (0, 1)", p.Quantile)
	case !(p.Relative >= 0) || math.IsInf(p.Relative, 1):
		return fmt.Errorf("latency relative margin %v is not a finite number ≥ 0", p.Relative)
	case !(p.Absolute >= 0) || math.IsInf(p.Absolute, 1):
		return fmt.Errorf("latency absolute margin %v is not a finite number ≥ 0", p.Absolute)
	case !(p.Confidence > 0.5 && p.Confidence < 1):
		return fmt.Errorf("latency confidence %v is not in (0.5, 1)", p.Confidence)
	case !(p.MinRequests >= 1) || math.IsInf(p.MinRequests, 1):
		return fmt.Errorf("latency min requests %v is not a finite number ≥ 1", p.MinRequests)
	}
	return nil
}

// tolerated is T(x): the slowest candidate quantile the margin allows over
// a baseline quantile x. It is non-decreasing in x, which validity needs.
func (p LatencyParams) tolerated(x float64) float64 {
	return max(x*(1+p.Relative), x+p.Absolute)
}

// latencyBaselineRisk is the share of 1−Confidence spent on bounding the
// baseline's quantile; the rest is the candidate's. The baseline has most
// of the traffic during a switch. In simulation the split hardly matters
// (a tenth, a quarter and a half detect within a few points of each other).
const latencyBaselineRisk = 0.25

// Mixture grids, as odds ratios against the null share p0 (so the same grid
// serves any quantile), equally weighted. The weight sits where power is
// scarce: odds from 5 % to 3× away from p0 (at p99, 1.05 % to 2.9 % of
// requests above the bound for the candidate, 0.96 % down to 0.34 % for
// the baseline). A few far alternatives catch the easy cases within a few
// requests: a candidate whose requests are nearly all slower than u, a
// baseline bound that (almost) no request exceeds. Chosen by simulation
// (TestLatencyWholeSwitchesDetect) over a few grids, never per switch; any
// fixed grid is valid.
var (
	latencyNearOdds      = latencyGeometric(1.05, 3, 1.1)
	latencyCandidateOdds = append(slices.Clone(latencyNearOdds), 10, 100, 1e3, 1e4, 1e5)
	latencyBaselineOdds  = append(latencyInverse(latencyNearOdds), 1.0/10, 1.0/100, 0)
)

func latencyGeometric(from, to, factor float64) []float64 {
	var g []float64
	for x := from; x <= to*(1+1e-9); x *= factor {
		g = append(g, x)
	}
	return g
}

func latencyInverse(g []float64) []float64 {
	out := make([]float64, len(g))
	for i, x := range g {
		out[i] = 1 / x
	}
	return out
}

// latencyMaxMixture bounds the grids' sizes, so logE needs no allocation.
const latencyMaxMixture = 64

// latencyMixture is log of Σ w·L(p)/L(p0) for exceedance counts: each
// alternative p contributes k·log(p/p0) + (n−k)·log((1−p)/(1−p0)).
type latencyMixture struct {
	logW   float64   // log of each (equal) weight
	above  []float64 // log(p/p0); −Inf for p = 0
	within []float64 // log((1−p)/(1−p0))
}

func newLatencyMixture(p0 float64, odds []float64) latencyMixture {
	if len(odds) > latencyMaxMixture {
		panic("judge: mixture grid too large")
	}
	m := latencyMixture{logW: -math.Log(float64(len(odds)))}
	for _, r := range odds {
		// Odds r times p0's: p = p0·r/d and 1−p = (1−p0)/d with
		// d = 1 + p0·(r−1), so p/p0 = r/d and (1−p)/(1−p0) = 1/d.
		d := math.Log1p(p0 * (r - 1))
		m.above = append(m.above, math.Log(r)-d)
		m.within = append(m.within, -d)
	}
	return m
}

// logE is the log mixture likelihood ratio for k of n requests above a bound.
func (m latencyMixture) logE(k, n float64) float64 {
	var terms [latencyMaxMixture]float64
	best := math.Inf(-1)
	for i := range m.above {
		t := (n - k) * m.within[i]
		if k > 0 {
			t += k * m.above[i] // −Inf for p = 0: that alternative is ruled out
		}
		terms[i] = t
		best = max(best, t)
	}
	if math.IsInf(best, -1) {
		return best
	}
	sum := 0.0
	for _, t := range terms[:len(m.above)] {
		sum += math.Exp(t - best)
	}
	return m.logW + best + math.Log(sum)
}

// NewLatency starts a latency test for one switch.
func NewLatency(p LatencyParams) (*Latency, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("judge: %w", err)
	}
	return newLatency(p), nil
}

func newLatency(p LatencyParams) *Latency {
	p0 := 1 - p.Quantile
	return &Latency{p: p, bm: newLatencyMixture(p0, latencyBaselineOdds), cm: newLatencyMixture(p0, latencyCandidateOdds)}
}

// Observe adds one interval's histogram increments for each fleet: the
// requests that finished since the last observation, per `le` bound. It
// refuses input that cannot be judged (bounds that differ between the
// fleets or from earlier intervals, are not ascending, lack +Inf or are
// negative; counts that are NaN, infinite, negative or not monotone) and
// changes nothing then.
func (l *Latency) Observe(candidate, baseline Histogram) error {
	bounds := l.bounds
	for _, h := range []struct {
		fleet string
		h     Histogram
	}{{"candidate", candidate}, {"baseline", baseline}} {
		if len(h.h.Bounds) == 0 && len(h.h.Counts) == 0 {
			continue
		}
		if err := checkLatencyBounds(h.h.Bounds); err != nil {
			return fmt.Errorf("%s histogram: %w", h.fleet, err)
		}
		if err := checkLatencyCounts(h.h.Counts, len(h.h.Bounds)); err != nil {
			return fmt.Errorf("%s histogram: %w", h.fleet, err)
		}
		if bounds == nil {
			bounds = h.h.Bounds
		} else if !equalLatencyBounds(bounds, h.h.Bounds) {
			what := "the candidate's"
			if l.bounds != nil {
				what = "earlier intervals'"
			}
			return fmt.Errorf("%s histogram bounds %v differ from %s %v", h.fleet, h.h.Bounds, what, bounds)
		}
	}
	if bounds != nil {
		cand, base := l.cand, l.base
		if cand == nil {
			cand, base = make([]float64, len(bounds)), make([]float64, len(bounds))
		}
		for _, h := range []struct {
			fleet      string
			sum, added []float64
		}{{"candidate", cand, candidate.Counts}, {"baseline", base, baseline.Counts}} {
			for i, x := range h.added {
				if math.IsInf(h.sum[i]+x, 0) {
					return fmt.Errorf("%s histogram: counts too large to add", h.fleet)
				}
			}
		}
		// Nothing can fail from here on.
		for i, x := range candidate.Counts {
			cand[i] += x
		}
		for i, x := range baseline.Counts {
			base[i] += x
		}
		l.cand, l.base = cand, base
	}
	if l.bounds == nil && bounds != nil {
		l.bounds = append([]float64(nil), bounds...)
	}
	l.intervals++
	if !l.failed {
		if e := l.evidence(); e.verdict() {
			l.failed, l.failure = true, l.describe(e)
		}
	}
	return nil
}

func checkLatencyBounds(b []float64) error {
	if len(b) == 0 {
		return errors.New("no bounds")
	}
	if !math.IsInf(b[len(b)-1], 1) {
		return fmt.Errorf("last bound is %v, not +Inf", b[len(b)-1])
	}
	for i, x := range b[:len(b)-1] {
		switch {
		case math.IsNaN(x) || math.IsInf(x, 0):
			return fmt.Errorf("bound %d is %v", i, x)
		case x < 0:
			return fmt.Errorf("bound %d is negative (%v)", i, x)
		case i > 0 && x <= b[i-1]:
			return fmt.Errorf("bounds not ascending at %d (%v after %v)", i, x, b[i-1])
		}
	}
	return nil
}

func checkLatencyCounts(c []float64, n int) error {
	if len(c) != n {
		return fmt.Errorf("%d counts for %d bounds", len(c), n)
	}
	for i, x := range c {
		switch {
		case math.IsNaN(x) || math.IsInf(x, 0):
			return fmt.Errorf("count %d is %v", i, x)
		case x < 0:
			return fmt.Errorf("count %d is negative (%v)", i, x)
		case i > 0 && x < c[i-1]:
			return fmt.Errorf("counts not cumulative at %d (%v after %v)", i, x, c[i-1])
		}
	}
	return nil
}

func equalLatencyBounds(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// latencyEvidence is one evaluation of the test on the counts so far.
type latencyEvidence struct {
	alpha    float64
	nc, nb   float64 // requests so far
	upper    int     // index of U, the baseline's bound; len(bounds)−1 (+Inf) if none shown
	at       int     // index of u, where the candidate is judged
	above    float64 // candidate requests above u
	logE     float64 // log of the candidate's e-value at u
	eValue   float64 // reported: e-value × αc/α
	enough   bool    // both fleets have MinRequests
	noBounds bool
}

func (l *Latency) evidence() latencyEvidence {
	alpha := 1 - l.p.Confidence
	e := latencyEvidence{alpha: alpha, eValue: 1 - latencyBaselineRisk}
	if l.bounds == nil {
		e.noBounds = true
		return e
	}
	last := len(l.bounds) - 1
	e.nc, e.nb = l.cand[last], l.base[last]
	e.enough = e.nc >= l.p.MinRequests && e.nb >= l.p.MinRequests
	// U: the smallest finite bound whose baseline e-value reaches 1/αb. The
	// e-value rises with the bound (fewer requests above it), so search.
	need := -math.Log(latencyBaselineRisk * alpha)
	e.upper = sort.Search(last, func(i int) bool {
		return l.bm.logE(e.nb-l.base[i], e.nb) >= need
	})
	e.at = last
	if e.upper < last {
		limit := l.p.tolerated(l.bounds[e.upper])
		e.at = sort.Search(last, func(i int) bool { return l.bounds[i] >= limit })
	}
	e.above = max(e.nc-l.cand[e.at], 0)
	e.logE = l.cm.logE(e.above, e.nc)
	e.eValue = min(math.Exp(e.logE)*(1-latencyBaselineRisk), math.MaxFloat64)
	return e
}

// verdict: the candidate is failed now.
func (e latencyEvidence) verdict() bool {
	return e.enough && e.eValue >= 1/e.alpha
}

// EValue is the evidence that the candidate is slower than the margin:
// its e-value at the current threshold, scaled so that the switch fails
// when it reaches 1/(1−Confidence) (it starts at 0.75, not 1, as a quarter
// of the risk is spent on bounding the baseline). Overwhelming evidence is
// capped at math.MaxFloat64, so the value is always finite.
func (l *Latency) EValue() float64 { return l.evidence().eValue }

// Failed reports whether the candidate was found slower than the margin at
// any analysis of this switch. It is final.
func (l *Latency) Failed() bool { return l.failed }

// Quantiles estimates both fleets' quantiles from the counts so far, by
// linear interpolation inside the bucket as PromQL's histogram_quantile
// does (a quantile in the +Inf bucket is the last finite bound). For
// display only: the verdict never interpolates. ok is false until both
// fleets have requests, and without finite bounds.
func (l *Latency) Quantiles() (candidate, baseline float64, ok bool) {
	if l.bounds == nil {
		return 0, 0, false
	}
	last := len(l.bounds) - 1
	if last == 0 || l.cand[last] <= 0 || l.base[last] <= 0 {
		return 0, 0, false
	}
	return latencyHistogramQuantile(l.p.Quantile, l.bounds, l.cand), latencyHistogramQuantile(l.p.Quantile, l.bounds, l.base), true
}

func latencyHistogramQuantile(q float64, bounds, counts []float64) float64 {
	last := len(bounds) - 1
	rank := q * counts[last]
	i := sort.Search(len(counts), func(i int) bool { return counts[i] >= rank })
	if i >= last {
		return bounds[last-1]
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = bounds[i-1], counts[i-1]
	}
	if counts[i] == below {
		return bounds[i]
	}
	return lo + (bounds[i]-lo)*(rank-below)/(counts[i]-below)
}

// Reason explains the current state in one line, or, once failed, the
// analysis that failed it.
// Pending says why the test cannot give a verdict yet, or "" when it can:
// no histogram yet, fewer than MinRequests in a fleet, or the baseline's
// quantile not yet bounded by a bucket (about 770 baseline requests at
// p99 and Confidence 0.99). More data ends each of these, so a switch
// holds on them rather than advancing with its latency unjudged. (When
// the buckets cannot show a regression at all, the test is not pending:
// it can never fail, and Reason says so.)
func (l *Latency) Pending() string {
	if l.failed {
		return ""
	}
	e := l.evidence()
	if e.noBounds || !e.enough || e.upper == len(l.bounds)-1 {
		return "latency: " + l.describe(e)
	}
	return ""
}

func (l *Latency) Reason() string {
	if l.failed {
		return l.failure
	}
	return l.describe(l.evidence())
}

func (l *Latency) describe(e latencyEvidence) string {
	name := "p" + strconv.FormatFloat(100*l.p.Quantile, 'g', 6, 64)
	if e.noBounds {
		return "no latency histogram observed yet"
	}
	var b strings.Builder
	if qc, qb, ok := l.Quantiles(); ok {
		fmt.Fprintf(&b, "candidate %s %s vs baseline %s %s", name, l.value(qc), name, l.value(qb))
	} else {
		fmt.Fprintf(&b, "%s: %.6g candidate and %.6g baseline requests", name, e.nc, e.nb)
	}
	last := len(l.bounds) - 1
	threshold := 1 / e.alpha
	switch {
	case !e.enough:
		fmt.Fprintf(&b, ": need %.6g requests per fleet (candidate %.6g, baseline %.6g); e=%.3g, no verdict yet", l.p.MinRequests, e.nc, e.nb, e.eValue)
		return b.String()
	case e.upper == last:
		fmt.Fprintf(&b, ": baseline %s not yet bounded by a bucket (%.6g requests)", name, e.nb)
	case e.at == last:
		fmt.Fprintf(&b, ": baseline %s ≤ %s tolerates up to %s, beyond the last bucket %s: the buckets cannot show a regression",
			name, l.value(l.bounds[e.upper]), l.value(l.p.tolerated(l.bounds[e.upper])), l.value(l.bounds[last-1]))
	default:
		verdict, cmp := "no evidence of slower than the margin", "<"
		if e.verdict() {
			verdict, cmp = "slower than the margin", "≥"
		}
		limit := l.p.tolerated(l.bounds[e.upper])
		next := ""
		if l.bounds[e.at] != limit {
			next = ", the next bound,"
		}
		fmt.Fprintf(&b, ": %s (baseline %s ≤ %s tolerates up to %s; %s of candidate requests over %s%s where %s may be); e=%.3g %s %.3g",
			verdict, name, l.value(l.bounds[e.upper]), l.value(limit),
			pct(e.above/e.nc), l.value(l.bounds[e.at]), next, pct(1-l.p.Quantile), e.eValue, cmp, threshold)
		return b.String()
	}
	fmt.Fprintf(&b, "; e=%.3g < %.3g", e.eValue, threshold)
	return b.String()
}

func (l *Latency) value(x float64) string {
	unit := map[string]time.Duration{"s": time.Second, "ms": time.Millisecond}[l.p.Unit]
	if unit == 0 || math.IsInf(x, 0) || math.IsNaN(x) || x*float64(unit) > float64(math.MaxInt64) {
		return strconv.FormatFloat(x, 'g', 3, 64) + l.p.Unit
	}
	// 3 significant digits as a duration: 183ms, 49.5µs, 1.5s.
	d := time.Duration(x * float64(unit))
	for r := time.Duration(1); r < time.Hour; r *= 10 {
		if d < 1000*r {
			return d.Round(r).String()
		}
	}
	return d.Round(time.Second).String()
}

// LatencyState is everything needed to resume a Latency test, e.g. after a
// restart: the parameters it was started with and the counts so far.
type LatencyState struct {
	Params    LatencyParams `json:"params"`
	Intervals int           `json:"intervals"`
	// Bounds are the finite upper bounds; +Inf is implied (JSON has no
	// infinity). Empty, with no counts, until a histogram was observed.
	Bounds []float64 `json:"bounds,omitempty"`
	// Candidate and Baseline are the cumulative counts since the switch
	// began, one per finite bound and then the total.
	Candidate []float64 `json:"candidate,omitempty"`
	Baseline  []float64 `json:"baseline,omitempty"`
	Failed    bool      `json:"failed"`
	Failure   string    `json:"failure,omitempty"`
}

// State returns a copy of the test's state.
func (l *Latency) State() LatencyState {
	st := LatencyState{Params: l.p, Intervals: l.intervals, Failed: l.failed, Failure: l.failure}
	if l.bounds != nil {
		st.Bounds = append([]float64{}, l.bounds[:len(l.bounds)-1]...)
		st.Candidate = append([]float64(nil), l.cand...)
		st.Baseline = append([]float64(nil), l.base...)
	}
	return st
}

// ResumeLatency continues a test from State. It refuses a state that is
// inconsistent or was recorded with other parameters (the guarantee holds
// only for one test run over the whole switch).
func ResumeLatency(p LatencyParams, st LatencyState) (*Latency, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("judge: %w", err)
	}
	corrupt := func(format string, a ...any) error {
		return fmt.Errorf("judge: latency state refused: "+format, a...)
	}
	sp, pp := st.Params, p
	sp.Unit, pp.Unit = "", ""
	if sp != pp {
		return nil, corrupt("recorded with parameters %+v, resumed with %+v", st.Params, p)
	}
	if st.Intervals < 0 {
		return nil, corrupt("%d intervals", st.Intervals)
	}
	if st.Failed != (st.Failure != "") {
		return nil, corrupt("failed is %v but the failure reason is %q", st.Failed, st.Failure)
	}
	l := newLatency(p)
	l.intervals, l.failed, l.failure = st.Intervals, st.Failed, st.Failure
	if len(st.Candidate) == 0 && len(st.Baseline) == 0 {
		if len(st.Bounds) != 0 {
			return nil, corrupt("bounds without counts")
		}
		if st.Failed {
			return nil, corrupt("failed without counts")
		}
		return l, nil
	}
	bounds := append(append([]float64{}, st.Bounds...), math.Inf(1))
	if err := checkLatencyBounds(bounds); err != nil {
		return nil, corrupt("%v", err)
	}
	for _, c := range []struct {
		fleet  string
		counts []float64
	}{{"candidate", st.Candidate}, {"baseline", st.Baseline}} {
		if err := checkLatencyCounts(c.counts, len(bounds)); err != nil {
			return nil, corrupt("%s counts: %v", c.fleet, err)
		}
	}
	if st.Intervals == 0 {
		return nil, corrupt("counts without intervals")
	}
	l.bounds = bounds
	l.cand = append([]float64(nil), st.Candidate...)
	l.base = append([]float64(nil), st.Baseline...)
	if !l.failed && l.evidence().verdict() {
		return nil, corrupt("not failed, but its counts fail the candidate")
	}
	return l, nil
}
