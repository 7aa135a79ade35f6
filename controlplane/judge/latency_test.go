package judge

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Bucket layouts, all in milliseconds, each ending in +Inf.
var (
	// Envoy's default buckets for upstream_rq_time.
	latEnvoyBounds = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000, math.Inf(1)}
	// Prometheus client libraries' default buckets (.005 … 10 s).
	latPromBounds = []float64{5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, math.Inf(1)}
	// Fine app buckets: factor 2^(1/8) ≈ 1.09, as native histograms'
	// schema 3, from 0.5 ms to 65 s (137 bounds).
	latFineBounds = func() []float64 {
		var b []float64
		for i := -8; i <= 128; i++ {
			b = append(b, math.Exp2(float64(i)/8))
		}
		return append(b, math.Inf(1))
	}()
)

// The default plan: steps of 1, 5, 25 and 50 % held 60 s each, an analysis
// every 10 s.
var (
	latPlanSteps       = []float64{0.01, 0.05, 0.25, 0.5}
	latAnalysesPerStep = 6
	latIntervalSeconds = 10.0
)

// latDist is a latency distribution by its CDF (ms).
type latDist struct {
	name string
	cdf  func(x float64) float64
}

func latLognormalCDF(median, sigma float64) func(float64) float64 {
	return func(x float64) float64 {
		if x <= 0 {
			return 0
		}
		return 0.5 * math.Erfc(-math.Log(x/median)/(sigma*math.Sqrt2))
	}
}

// latLomaxCDF is a Pareto (type II) tail: P(X > x) = (1 + x/scale)^−shape.
func latLomaxCDF(scale, shape float64) func(float64) float64 {
	return func(x float64) float64 {
		if x <= 0 {
			return 0
		}
		return -math.Expm1(-shape * math.Log1p(x/scale))
	}
}

var (
	// median 40 ms, p99 128 ms
	latLognormal = latDist{"lognormal(40ms, σ=0.5)", latLognormalCDF(40, 0.5)}
	// median 20 ms, p99 434 ms, infinite variance
	latHeavy = latDist{"Pareto-tailed(α=2)", latLomaxCDF(48.3, 2)}
)

// latQuantile inverts a CDF by bisection.
func latQuantile(cdf func(float64) float64, q float64) float64 {
	lo, hi := 0.0, 1.0
	for cdf(hi) < q {
		hi *= 2
	}
	for range 200 {
		mid := (lo + hi) / 2
		if cdf(mid) < q {
			lo = mid
		} else {
			hi = mid
		}
	}
	return hi
}

// latScaled is the distribution of s·X.
func latScaled(d latDist, s float64) func(float64) float64 {
	return func(x float64) float64 { return d.cdf(x / s) }
}

// latTailScaled slows only requests above the baseline's q-quantile by s.
func latTailScaled(d latDist, from, s float64) func(float64) float64 {
	t := latQuantile(d.cdf, from)
	return func(x float64) float64 {
		if x < t {
			return d.cdf(x)
		}
		return max(from, d.cdf(x/s))
	}
}

// latShifted is the distribution of X + by.
func latShifted(d latDist, by float64) func(float64) float64 {
	return func(x float64) float64 { return d.cdf(x - by) }
}

// latBucketProbs returns each bucket's share (not cumulative) of requests.
func latBucketProbs(cdf func(float64) float64, bounds []float64) []float64 {
	out := make([]float64, len(bounds))
	prev := 0.0
	for i, b := range bounds {
		c := 1.0
		if !math.IsInf(b, 1) {
			c = cdf(b)
		}
		out[i] = max(c-prev, 0)
		prev = max(prev, c)
	}
	return out
}

// latPoisson draws exact Poisson(mu) variates: by multiplication for small
// means, by Hörmann's transformed rejection (PTRS, 1993) from 10 on. Its
// constants are computed once per mean, as the simulations draw each
// bucket's count at one mean for a whole plan step.
type latPoisson struct {
	mu, limit, lmu, a, b, invAlpha, vr float64
}

func newLatPoisson(mu float64) latPoisson {
	if mu < 10 {
		return latPoisson{mu: mu, limit: math.Exp(-mu)}
	}
	d := latPoisson{mu: mu, lmu: math.Log(mu), b: 0.931 + 2.53*math.Sqrt(mu)}
	d.a = -0.059 + 0.02483*d.b
	d.invAlpha = math.Log(1.1239 + 1.1328/(d.b-3.4))
	d.vr = 0.9277 - 3.6224/(d.b-2)
	return d
}

func (d latPoisson) draw(r *rand.Rand) float64 {
	if d.mu < 10 {
		prod, k := r.Float64(), 0.0
		for prod > d.limit {
			prod *= r.Float64()
			k++
		}
		return k
	}
	for {
		u := r.Float64() - 0.5
		v := r.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*d.a/us+d.b)*u + d.mu + 0.43)
		if us >= 0.07 && v <= d.vr {
			return k
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		lg, _ := math.Lgamma(k + 1)
		if math.Log(v)+d.invAlpha-math.Log(d.a/(us*us)+d.b) <= -d.mu+k*d.lmu-lg {
			return k
		}
	}
}

// latFleet draws a fleet's intervals: Poisson traffic with per-bucket
// shares probs, so each bucket's count is an independent Poisson variate.
type latFleet struct {
	draws []latPoisson
	buf   []float64
}

func newLatFleet(probs []float64, mean float64, buf []float64) latFleet {
	f := latFleet{buf: buf, draws: make([]latPoisson, len(probs))}
	for i, p := range probs {
		f.draws[i] = newLatPoisson(mean * p)
	}
	return f
}

// interval returns one interval's cumulative histogram increments.
func (f latFleet) interval(r *rand.Rand, bounds []float64) Histogram {
	sum := 0.0
	for i, d := range f.draws {
		if d.mu > 0 {
			sum += d.draw(r)
		}
		f.buf[i] = sum
	}
	return Histogram{Bounds: bounds, Counts: f.buf}
}

// latInterval draws one interval of a fleet serving mean requests.
func latInterval(r *rand.Rand, probs, bounds []float64, mean float64, buf []float64) Histogram {
	return newLatFleet(probs, mean, buf).interval(r, bounds)
}

// latSwitch is one configuration of whole simulated switches.
type latSwitch struct {
	bounds     []float64
	cand, base func(float64) float64
	rps        float64 // both fleets together
	p          LatencyParams
	// jitter scales both fleets by a factor drawn per switch from
	// [1, 2^(1/8)), one fine bucket, so that results do not hinge on
	// where the quantiles happen to fall between bounds.
	jitter bool
}

// latSwitchResult: the share of switches failed, and the median time to
// the failure among those failed (seconds from the switch start).
type latSwitchResult struct {
	rate     float64
	failed   int
	median   float64
	candReqs float64 // expected candidate requests per switch
}

// run simulates switches of the default plan (1, 5, 25, 50 % for 60 s, an
// analysis every 10 s) and reports how many the test failed.
func (c latSwitch) run(t *testing.T, seed uint64, switches int) latSwitchResult {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 0x6c6174656e6379))
	pc, pb := latBucketProbs(c.cand, c.bounds), latBucketProbs(c.base, c.bounds)
	cb, bb := make([]float64, len(c.bounds)), make([]float64, len(c.bounds))
	var times []float64
	for range switches {
		if c.jitter {
			s := math.Exp2(r.Float64() / 8)
			pc = latBucketProbs(func(x float64) float64 { return c.cand(x / s) }, c.bounds)
			pb = latBucketProbs(func(x float64) float64 { return c.base(x / s) }, c.bounds)
		}
		l, err := NewLatency(c.p)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
	plan:
		for _, step := range latPlanSteps {
			cf := newLatFleet(pc, c.rps*latIntervalSeconds*step, cb)
			bf := newLatFleet(pb, c.rps*latIntervalSeconds*(1-step), bb)
			for range latAnalysesPerStep {
				n++
				if err := l.Observe(cf.interval(r, c.bounds), bf.interval(r, c.bounds)); err != nil {
					t.Fatal(err)
				}
				if l.Failed() {
					times = append(times, float64(n)*latIntervalSeconds)
					break plan
				}
			}
		}
	}
	res := latSwitchResult{failed: len(times), rate: float64(len(times)) / float64(switches)}
	if len(times) > 0 {
		slices.Sort(times)
		res.median = times[len(times)/2]
	}
	for _, step := range latPlanSteps {
		res.candReqs += c.rps * latIntervalSeconds * float64(latAnalysesPerStep) * step
	}
	return res
}

var latLayouts = []struct {
	name   string
	bounds []float64
}{{"fine", latFineBounds}, {"Envoy", latEnvoyBounds}, {"Prometheus default", latPromBounds}}

// latAARisk is the assertion's noise allowance: a configuration fails only
// if its count of failed switches would be this improbable were the true
// rate exactly 1 − Confidence (one-sided binomial tail; with 2,000
// switches, 39 or more failures, 1.95 %). Over the 32 configurations a
// test at exactly 1 % would be flagged by chance in about 0.3 % of runs.
const latAARisk = 1e-4

// Whole switches in which the candidate is no slower than the margin. The
// hardest case is the null's boundary, Qc = T(Qb), so these run with
// identical fleets and no margin (T(x) = x), and with fleets exactly at a
// 20 % margin (the candidate scaled 1.2×). A wider margin only raises the
// bound u the candidate is judged at, which lowers its e-value, so any
// margin fails at most as many switches as these. MinRequests is 1: the
// guarantee must not lean on it.
func TestLatencyWholeSwitchesNull(t *testing.T) {
	if raceDetector {
		t.Skip("statistical simulation: runs without -race (scripts/test.sh, its own step)")
	}
	if testing.Short() {
		t.Skip("simulation")
	}
	const switches = 2000
	type config struct {
		name string
		c    latSwitch
	}
	var configs []config
	zero := LatencyParams{Quantile: 0.99, Confidence: 0.99, MinRequests: 1}
	for _, lay := range latLayouts {
		for _, d := range []latDist{latLognormal, latHeavy} {
			for _, rps := range []float64{20, 200, 1000, 5000} {
				configs = append(configs, config{"A/A, margin 0, " + lay.name + " buckets, " + d.name,
					latSwitch{bounds: lay.bounds, cand: d.cdf, base: d.cdf, rps: rps, p: zero, jitter: true}})
			}
		}
	}
	at := LatencyParams{Quantile: 0.99, Relative: 0.2, Confidence: 0.99, MinRequests: 1}
	for _, d := range []latDist{latLognormal, latHeavy} {
		for _, rps := range []float64{200, 5000} {
			configs = append(configs, config{"candidate 1.2× at margin 20 %, fine buckets, " + d.name,
				latSwitch{bounds: latFineBounds, cand: latScaled(d, 1.2), base: d.cdf, rps: rps, p: at, jitter: true}})
		}
	}
	// Least favourable nulls, at the bucket level (only bucket counts reach
	// the test, so atoms at the bounds are as good as any distribution):
	// the candidate exactly at the null's edge where the baseline's bound
	// is certain (1 % of its requests above 100 ms, both quantiles in
	// (50, 100]), and the baseline exactly at its edge (1 % above 50 ms)
	// with a candidate that puts half its requests in (50, 100], which the
	// null allows, so that a wrong bound of 50 ms fails it at once.
	steps := func(at50, at100 float64) func(float64) float64 {
		return func(x float64) float64 {
			switch {
			case x < 50:
				return 0
			case x < 100:
				return at50
			}
			return at100
		}
	}
	for _, rps := range []float64{200, 5000} {
		configs = append(configs,
			config{"least favourable to the candidate's test (margin 0, Envoy buckets)",
				latSwitch{bounds: latEnvoyBounds, cand: steps(0.9, 0.99), base: steps(0.9, 0.999), rps: rps, p: zero}},
			config{"least favourable to the baseline's bound (margin 0, Envoy buckets)",
				latSwitch{bounds: latEnvoyBounds, cand: steps(0.5, 1), base: steps(0.99-1e-12, 1), rps: rps, p: zero}})
	}
	worst := 0.0
	for i, c := range configs {
		res := c.c.run(t, uint64(7100+i), switches)
		worst = max(worst, res.rate)
		t.Logf("%s, %v req/s: failed %.2f%% of %d switches", c.name, c.c.rps, 100*res.rate, switches)
		if pv := upperTail(switches, float64(res.failed), 0.01, 0.99); pv < latAARisk {
			t.Errorf("%s, %v req/s: %d of %d switches failed; that many at a true 1%% has p=%.2g", c.name, c.c.rps, res.failed, switches, pv)
		}
	}
	t.Logf("worst: %.2f%% of switches failed (asserted ≤ 1%% up to sampling noise)", 100*worst)
}

// A candidate whose p99 is 1.5× the baseline's, with a margin of "20 %
// and 10 ms" (20 % governs at these latencies), over whole switches, with
// the median time to detect among detected switches.
func TestLatencyWholeSwitchesDetect(t *testing.T) {
	if raceDetector {
		t.Skip("statistical simulation: runs without -race (scripts/test.sh, its own step)")
	}
	if testing.Short() {
		t.Skip("simulation")
	}
	const switches = 2000
	p := LatencyParams{Quantile: 0.99, Relative: 0.2, Absolute: 10, Confidence: 0.99, MinRequests: 200}
	type config struct {
		name   string
		c      latSwitch
		assert bool // ≥ 99 % asserted
	}
	var configs []config
	add := func(name string, bounds []float64, cand, base func(float64) float64, assertFrom float64, rpss ...float64) {
		for _, rps := range rpss {
			configs = append(configs, config{name, latSwitch{bounds: bounds, cand: cand, base: base, rps: rps, p: p, jitter: true}, rps >= assertFrom})
		}
	}
	inf := math.Inf(1)
	light := latDist{"lognormal(40ms, σ=0.25)", latLognormalCDF(40, 0.25)}
	add("fine buckets, "+light.name+" scaled 1.5×", latFineBounds, latScaled(light, 1.5), light.cdf, 1000, 42, 200, 1000)
	add("fine buckets, "+latLognormal.name+" scaled 1.5×", latFineBounds, latScaled(latLognormal, 1.5), latLognormal.cdf, 2000, 42, 200, 1000, 2000, 5000)
	add("fine buckets, "+latLognormal.name+", slowest 3 % 1.5× slower", latFineBounds, latTailScaled(latLognormal, 0.97, 1.5), latLognormal.cdf, 2000, 42, 200, 1000, 2000, 5000)
	add("fine buckets, "+latHeavy.name+" scaled 1.5×", latFineBounds, latScaled(latHeavy, 1.5), latHeavy.cdf, inf, 200, 1000, 5000)
	add("Envoy buckets, "+latLognormal.name+" scaled 1.5×", latEnvoyBounds, latScaled(latLognormal, 1.5), latLognormal.cdf, inf, 1000, 5000)
	for i, c := range configs {
		res := c.c.run(t, uint64(7300+i), switches)
		t.Logf("%s, %v req/s (%.0f candidate requests per switch): detected %.1f%% of %d, median %.0f s", c.name, c.c.rps, res.candReqs, 100*res.rate, switches, res.median)
		if c.assert && res.rate < 0.99 {
			t.Errorf("%s, %v req/s: detected %.1f%%, want ≥ 99%%", c.name, c.c.rps, 100*res.rate)
		}
	}
}

// A candidate answering 100 ms slower than a 10–30 ms baseline is caught on
// Envoy's buckets as soon as both fleets have MinRequests and the baseline
// has the ~800 requests that bound its p99 at 50 ms (so up to 100 ms is
// tolerated: "20 % and 50 ms").
func TestLatencyEnvoy100msSlower(t *testing.T) {
	base := latLognormalCDF(15, 0.25) // p99 27 ms
	for i, c := range []struct {
		rps, minRequests, within float64
	}{{20, 200, 240}, {100, 200, 90}, {1000, 200, 30}, {100, 20, 30}} {
		p := LatencyParams{Quantile: 0.99, Relative: 0.2, Absolute: 50, Confidence: 0.99, MinRequests: c.minRequests, Unit: "ms"}
		sw := latSwitch{bounds: latEnvoyBounds, cand: latShifted(latDist{cdf: base}, 100), base: base, rps: c.rps, p: p}
		res := sw.run(t, uint64(7500+i), 200)
		aa := latSwitch{bounds: latEnvoyBounds, cand: base, base: base, rps: c.rps, p: p}.run(t, uint64(7600+i), 200)
		t.Logf("Envoy buckets, +100 ms over p99 27 ms, %v req/s, MinRequests %v: detected %.1f%% of 200, median %.0f s; A/A failed %.1f%%",
			c.rps, c.minRequests, 100*res.rate, res.median, 100*aa.rate)
		if res.rate < 1 || res.median > c.within {
			t.Errorf("%v req/s: detected %.1f%%, median %.0f s, want 100%% within %v s", c.rps, 100*res.rate, res.median, c.within)
		}
		if aa.failed > 0 {
			t.Errorf("%v req/s: A/A failed %d switches", c.rps, aa.failed)
		}
	}
}

func latParams() LatencyParams {
	return LatencyParams{Quantile: 0.99, Relative: 0.2, Absolute: 50, Confidence: 0.99, MinRequests: 200, Unit: "ms"}
}

func TestLatencyParamsValidate(t *testing.T) {
	if err := latParams().Validate(); err != nil {
		t.Fatal(err)
	}
	nan, inf := math.NaN(), math.Inf(1)
	for field, mutate := range map[string]func(*LatencyParams){
		"quantile":     func(p *LatencyParams) { p.Quantile = 1 },
		"relative":     func(p *LatencyParams) { p.Relative = -0.1 },
		"absolute":     func(p *LatencyParams) { p.Absolute = inf },
		"confidence":   func(p *LatencyParams) { p.Confidence = nan },
		"min requests": func(p *LatencyParams) { p.MinRequests = 0 },
	} {
		p := latParams()
		mutate(&p)
		err := p.Validate()
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: error %v does not name the field", field, err)
		}
		if _, err := NewLatency(p); err == nil {
			t.Errorf("%s: NewLatency accepted %+v", field, p)
		}
	}
}

// latHist builds a histogram on Envoy's bounds from per-bucket (not
// cumulative) counts, listed from the first bucket; the rest are 0.
func latHist(perBucket ...float64) Histogram {
	c := make([]float64, len(latEnvoyBounds))
	sum := 0.0
	for i := range c {
		if i < len(perBucket) {
			sum += perBucket[i]
		}
		c[i] = sum
	}
	return Histogram{Bounds: slices.Clone(latEnvoyBounds), Counts: c}
}

func TestLatencyRefusesBadInput(t *testing.T) {
	l, err := NewLatency(latParams())
	if err != nil {
		t.Fatal(err)
	}
	good := latHist(0, 0, 0, 100, 900) // 1,000 requests between 5 and 25 ms
	if err := l.Observe(good, good); err != nil {
		t.Fatal(err)
	}
	before, e := l.State(), l.EValue()
	inf := math.Inf(1)
	with := func(f func(*Histogram)) Histogram {
		h := latHist(0, 0, 0, 100, 900)
		f(&h)
		return h
	}
	for name, c := range map[string][2]Histogram{
		"bounds differ between fleets": {good, with(func(h *Histogram) { h.Bounds[3] = 11 })},
		"bounds differ from earlier":   {with(func(h *Histogram) { h.Bounds[3] = 11 }), with(func(h *Histogram) { h.Bounds[3] = 11 })},
		"fewer bounds":                 {{Bounds: []float64{1, inf}, Counts: []float64{0, 1}}, good},
		"not ascending":                {with(func(h *Histogram) { h.Bounds[2], h.Bounds[3] = h.Bounds[3], h.Bounds[2] }), good},
		"no +Inf":                      {good, with(func(h *Histogram) { h.Bounds[len(h.Bounds)-1] = 7200000 })},
		"negative bound":               {with(func(h *Histogram) { h.Bounds[0] = -1 }), good},
		"NaN bound":                    {with(func(h *Histogram) { h.Bounds[0] = math.NaN() }), good},
		"counts not monotone":          {with(func(h *Histogram) { h.Counts[5] = 10 }), good},
		"NaN count":                    {good, with(func(h *Histogram) { h.Counts[0] = math.NaN() })},
		"infinite count":               {with(func(h *Histogram) { h.Counts[len(h.Counts)-1] = inf }), good},
		"negative count":               {with(func(h *Histogram) { h.Counts[0] = -1 }), good},
		"counts without bounds":        {{Counts: []float64{1}}, good},
		"more counts than bounds":      {with(func(h *Histogram) { h.Counts = append(h.Counts, 1000) }), good},
	} {
		if err := l.Observe(c[0], c[1]); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(l.State(), before) || l.EValue() != e {
			t.Errorf("%s: refused input changed the state", name)
		}
	}
	// Fleets that differ on the first interval, and sums that overflow.
	fresh, _ := NewLatency(latParams())
	if err := fresh.Observe(good, with(func(h *Histogram) { h.Bounds[3] = 11 })); err == nil || !strings.Contains(err.Error(), "candidate's") {
		t.Errorf("first interval, bounds differ between fleets: %v", err)
	}
	huge := with(func(h *Histogram) { h.Counts[len(h.Counts)-1] = math.MaxFloat64 })
	if err := fresh.Observe(huge, good); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Observe(huge, good); err == nil {
		t.Error("overflowing sum accepted")
	}
	// A fleet without requests may send an empty histogram.
	if err := l.Observe(Histogram{}, good); err != nil {
		t.Errorf("empty candidate histogram: %v", err)
	}
	if st := l.State(); st.Intervals != 2 || st.Candidate[len(st.Candidate)-1] != 1000 || st.Baseline[len(st.Baseline)-1] != 2000 {
		t.Errorf("after an empty interval: %+v", st)
	}
}

// The two facts the validity argument rests on: the candidate's e-value
// rises with its count above the bound and the baseline's falls, at any
// number of requests, so a lower bound never has less evidence.
func TestLatencyEValuesMonotone(t *testing.T) {
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		l, _ := NewLatency(LatencyParams{Quantile: q, Confidence: 0.99, MinRequests: 1})
		for _, n := range []float64{1, 10, 1000, 1e6, 1e9} {
			prevC, prevB := math.Inf(-1), math.Inf(1)
			for i := 0; i <= 200; i++ {
				k := math.Round(n * float64(i) / 200)
				c, b := l.cm.logE(k, n), l.bm.logE(k, n)
				if c < prevC || b > prevB || math.IsNaN(c) || math.IsNaN(b) {
					t.Fatalf("q=%v n=%v k=%v: candidate %v after %v, baseline %v after %v", q, n, k, c, prevC, b, prevB)
				}
				prevC, prevB = c, b
			}
		}
		if e := l.EValue(); e != 1-latencyBaselineRisk {
			t.Errorf("EValue before any data = %v", e)
		}
	}
}

// A 100 ms slower candidate on Envoy's buckets, step by step: no verdict
// before MinRequests, then a failure that names the latencies and stays.
func TestLatencyFailsAndExplains(t *testing.T) {
	l, _ := NewLatency(latParams())
	if _, _, ok := l.Quantiles(); ok {
		t.Error("quantiles before any data")
	}
	t.Log(l.Reason())
	// 100 candidate requests in (100, 250] ms; 900 baseline in (10, 25].
	slow, fast := latHist(0, 0, 0, 0, 0, 0, 0, 100), latHist(0, 0, 0, 0, 900)
	if err := l.Observe(slow, fast); err != nil {
		t.Fatal(err)
	}
	if l.Failed() {
		t.Fatal("failed before MinRequests")
	}
	if r := l.Reason(); !strings.Contains(r, "need 200 requests per fleet") {
		t.Errorf("reason %q", r)
	}
	t.Log(l.Reason())
	if err := l.Observe(slow, fast); err != nil {
		t.Fatal(err)
	}
	if !l.Failed() || l.EValue() < 100 || math.IsInf(l.EValue(), 0) {
		t.Fatalf("not failed: e=%v: %s", l.EValue(), l.Reason())
	}
	qc, qb, ok := l.Quantiles()
	// histogram_quantile: rank 198 of 200 in (100, 250] → 100+150·0.99;
	// rank 1782 of 1800 in (10, 25] → 10+15·0.99.
	if !ok || math.Abs(qc-248.5) > 1e-9 || math.Abs(qb-24.85) > 1e-9 {
		t.Errorf("quantiles %v %v %v", qc, qb, ok)
	}
	reason := l.Reason()
	t.Log(reason)
	for _, want := range []string{"candidate p99 249ms vs baseline p99 24.9ms: slower than the margin", "over 100ms, the next bound,", "baseline p99 ≤ 25ms tolerates up to 75ms", "≥ 100"} {
		if !strings.Contains(reason, want) {
			t.Errorf("reason %q lacks %q", reason, want)
		}
	}
	// Failed is final, and Reason keeps the failing analysis.
	for range 3 {
		if err := l.Observe(fast, fast); err != nil {
			t.Fatal(err)
		}
	}
	if !l.Failed() || l.Reason() != reason {
		t.Errorf("after more data: failed %v, reason %q", l.Failed(), l.Reason())
	}
}

// Where the margin reaches past the last finite bucket, no latency the
// buckets can show is a regression, and Reason says so.
func TestLatencyBeyondLastBucket(t *testing.T) {
	l, _ := NewLatency(latParams())
	b := []float64{10, 100, math.Inf(1)}
	h := Histogram{Bounds: b, Counts: []float64{0, 1000, 1000}}
	slow := Histogram{Bounds: b, Counts: []float64{0, 0, 1000}}
	if err := l.Observe(slow, h); err != nil {
		t.Fatal(err)
	}
	if l.Failed() {
		t.Error("failed beyond the buckets' resolution")
	}
	if r := l.Reason(); !strings.Contains(r, "cannot show a regression") {
		t.Errorf("reason %q", r)
	}
	t.Log(l.Reason())
}

func TestLatencyResume(t *testing.T) {
	p := latParams()
	r := rand.New(rand.NewPCG(3, 4))
	base := latLognormalCDF(15, 0.25)
	pc, pb := latBucketProbs(latShifted(latDist{cdf: base}, 30), latEnvoyBounds), latBucketProbs(base, latEnvoyBounds)
	a, _ := NewLatency(p)
	var b *Latency
	for i := range 24 {
		c := latInterval(r, pc, latEnvoyBounds, 50, make([]float64, len(latEnvoyBounds)))
		d := latInterval(r, pb, latEnvoyBounds, 500, make([]float64, len(latEnvoyBounds)))
		if err := a.Observe(c, d); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 || b == nil {
			// Round trip through JSON, as bg stores it.
			raw, err := json.Marshal(a.State())
			if err != nil {
				t.Fatal(err)
			}
			var st LatencyState
			if err := json.Unmarshal(raw, &st); err != nil {
				t.Fatal(err)
			}
			if b, err = ResumeLatency(p, st); err != nil {
				t.Fatalf("interval %d: %v (%s)", i, err, raw)
			}
		} else if err := b.Observe(c, d); err != nil {
			t.Fatal(err)
		}
		if a.EValue() != b.EValue() || a.Failed() != b.Failed() || a.Reason() != b.Reason() || !reflect.DeepEqual(a.State(), b.State()) {
			t.Fatalf("interval %d: resumed e=%v %v %q, original e=%v %v %q", i, b.EValue(), b.Failed(), b.Reason(), a.EValue(), a.Failed(), a.Reason())
		}
	}
	t.Logf("after 24 intervals: e=%.3g failed=%v: %s", a.EValue(), a.Failed(), a.Reason())
	// A new test's state resumes too.
	fresh, _ := NewLatency(p)
	if _, err := ResumeLatency(p, fresh.State()); err != nil {
		t.Errorf("fresh state: %v", err)
	}
}

func TestLatencyResumeRefusesCorrupt(t *testing.T) {
	p := latParams()
	l, _ := NewLatency(p)
	if err := l.Observe(latHist(0, 0, 0, 100, 900), latHist(0, 0, 0, 100, 900)); err != nil {
		t.Fatal(err)
	}
	failed, _ := NewLatency(p)
	for range 2 {
		if err := failed.Observe(latHist(0, 0, 0, 0, 0, 0, 0, 100), latHist(0, 0, 0, 0, 900)); err != nil {
			t.Fatal(err)
		}
	}
	if !failed.Failed() {
		t.Fatal("setup: not failed")
	}
	for name, mutate := range map[string]func(*LatencyState){
		"other quantile":        func(s *LatencyState) { s.Params.Quantile = 0.95 },
		"other confidence":      func(s *LatencyState) { s.Params.Confidence = 0.999 },
		"bounds not ascending":  func(s *LatencyState) { s.Bounds[3], s.Bounds[4] = s.Bounds[4], s.Bounds[3] },
		"bounds missing":        func(s *LatencyState) { s.Bounds = s.Bounds[:3] },
		"+Inf given as a bound": func(s *LatencyState) { s.Bounds[len(s.Bounds)-1] = math.Inf(1) },
		"counts not monotone":   func(s *LatencyState) { s.Candidate[6] = 1 },
		"negative count":        func(s *LatencyState) { s.Baseline[0] = -1 },
		"counts missing":        func(s *LatencyState) { s.Baseline = nil },
		"failed without reason": func(s *LatencyState) { s.Failed = true },
		"reason without failed": func(s *LatencyState) { s.Failure = "x" },
		"negative intervals":    func(s *LatencyState) { s.Intervals = -1 },
		"counts, no intervals":  func(s *LatencyState) { s.Intervals = 0 },
		"passing, yet fails": func(s *LatencyState) {
			f := failed.State()
			s.Candidate, s.Baseline = f.Candidate, f.Baseline
		},
	} {
		st := l.State()
		mutate(&st)
		if _, err := ResumeLatency(p, st); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// The unit is only for display and may change.
	q := p
	q.Unit = "milliseconds"
	if _, err := ResumeLatency(q, failed.State()); err != nil {
		t.Errorf("failed state with another unit: %v", err)
	}
}
