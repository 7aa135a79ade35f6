package rollout_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/config"
	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/judge/simdist"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/rollout"
)

// Issue 13's whole-switch evidence, through the real state machine:
// controlplane/judge's TestWholeSwitches judges the default plan's counts
// directly and advances steps on schedule; here every interval is an
// Analysis event fed to rollout.Decide, which keeps the evidence in the
// rollout, holds a step until both fleets served MinRequests at it and the
// bake has passed, spends the insufficient-data budget, promotes and rolls
// back as the product does.
//
// Each fleet is a counting process: requests arrive as a Poisson process
// at the fleet's share of the total rate (the candidate's share is the
// step Decide put in force, read from the Traffic it returned), each
// failing with the fleet's error rate. Fleets expose cumulative counters
// (an errors series only from the first error, as Envoy creates its 5xx
// series), and a fleetmetrics.Tracker per fleet, the product's, turns
// successive reads into the exact increments an Analysis carries. The
// first read, at the switch's start, only sets the starting point
// (Primed=false); then one read per plan interval.

// defaultPlan is a service's default plan, built from
// config.DefaultAnalysis() as controlplane/serve's analysis() builds it (no
// gates, no mirroring; latency is off by default).
func defaultPlan(t *testing.T) model.Plan {
	a := config.DefaultAnalysis()
	if a.Latency.Enabled {
		t.Fatal("latency is on by default: the simulation draws no histograms")
	}
	return model.Plan{
		Steps: append([]int(nil), a.Steps...), Bake: model.Duration(a.Bake), Interval: model.Duration(a.Interval),
		MinRequests: a.MinRequests, Confidence: a.Confidence, Margin: a.Margin,
		UnavailableBudget: model.Duration(a.UnavailableBudget), OnUnavailable: string(a.OnUnavailable),
		InsufficientBudget: model.Duration(a.InsufficientBudget), OnInsufficient: string(a.OnInsufficient),
		Rollback: string(a.Rollback),
	}
}

// fleet is one colour's counters: cumulative requests and errors, as
// Prometheus would scrape them.
type fleet struct {
	requests, errors float64
	reading          fleetmetrics.Reading
	tracker          fleetmetrics.Tracker
}

func newFleet(served float64) *fleet {
	return &fleet{requests: served, reading: fleetmetrics.Reading{Requests: map[string]float64{}, Errors: map[string]float64{}}}
}

// serve counts one interval of n requests at error rate p.
func (f *fleet) serve(r *rand.Rand, n int, p float64) {
	f.requests += float64(n)
	f.errors += float64(simdist.Binomial(r, n, p))
}

// read returns what the fleet served since the previous read; ok is false
// for the first read. The maps are reused: the tracker copies what it keeps.
func (f *fleet) read() (fleetmetrics.Counts, bool) {
	f.reading.Requests["rq"] = f.requests
	if f.errors > 0 {
		f.reading.Errors["rq_5xx"] = f.errors
	}
	return f.tracker.Advance(f.reading)
}

// noData says, as the product's count does, why a primed read cannot be
// judged, or "".
func noData(cand, base fleetmetrics.Counts) string {
	switch {
	case base.Series == 0:
		return "baseline blue has no request series (no traffic, or its metrics went away)"
	case cand.Series == 0:
		return "candidate green has no request series (no traffic, or its metrics went away)"
	case base.Requests == 0:
		return "baseline blue served no requests since the last analysis"
	case cand.Requests == 0:
		return "candidate green served no requests since the last analysis"
	}
	return ""
}

// simOutcome is how a switch ended: promoted, or the cause of its rollback.
type simOutcome string

const promoted simOutcome = "promoted"

type simResult struct {
	outcome  simOutcome
	detected time.Duration // rollbacks: from the start to DetectedAt
	lasted   time.Duration // from the start to EndedAt
	served   float64       // candidate requests in the switch's evidence
}

var simT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// never is the detection time of a 2× switch that was not caught.
const never = time.Duration(math.MaxInt64)

// simulateDecided runs one switch from blue to green at rps requests per
// second in total, the candidate failing at pc and the baseline at pb.
func simulateDecided(r *rand.Rand, pl model.Plan, rps, pc, pb float64, limit time.Duration) (simResult, error) {
	tr, _, err := rollout.Decide(model.InitialTraffic(), rollout.Start{Now: simT0, To: model.Green, Plan: pl})
	if err != nil {
		return simResult{}, err
	}
	blue, green := newFleet(1e6), newFleet(0) // blue served before the switch; green is new
	iv := pl.Interval.D()
	perInterval := rps * iv.Seconds()
	for now := simT0; ; now = now.Add(iv) {
		if now.After(simT0) {
			share := float64(tr.Percent(model.Green)) / 100 // the split in force over the interval
			green.serve(r, simdist.Poisson(r, perInterval*share), pc)
			blue.serve(r, simdist.Poisson(r, perInterval*(1-share)), pb)
		}
		c, ok1 := green.read()
		b, ok2 := blue.read()
		a := rollout.Analysis{Now: now, Primed: ok1 && ok2}
		if a.Primed {
			a.Candidate = judge.Sample{Requests: c.Requests, Errors: c.Errors}
			a.Baseline = judge.Sample{Requests: b.Requests, Errors: b.Errors}
			a.NoData = noData(c, b)
		}
		if tr, _, err = rollout.Decide(tr, a); err != nil {
			return simResult{}, err
		}
		ro := tr.Rollout
		if !tr.ProgressiveRunning() {
			res := simResult{outcome: promoted, lasted: ro.EndedAt.Sub(ro.StartedAt)}
			if ro.Evidence != nil {
				res.served = ro.Evidence.Candidate.Requests
			}
			switch ro.Phase {
			case model.RolloutPromoted:
			case model.RolloutRolledBack:
				res.outcome, res.detected = simOutcome(ro.Cause), ro.DetectedAt.Sub(ro.StartedAt)
			default:
				return res, fmt.Errorf("switch ended %s: %s", ro.Phase, ro.Reason)
			}
			return res, nil
		}
		if now.Sub(simT0) >= limit {
			return simResult{}, fmt.Errorf("still running after %v: %s at step %d", limit, ro.Phase, ro.Step)
		}
	}
}

// planCandidateRequests is what the candidate serves, in expectation, over
// a healthy switch of pl at rps as Decide runs it: a step passes at the
// first analysis at which the bake has passed and both fleets served
// MinRequests at the step (so a thin step lasts longer than the bake); the
// last step (100 %) is not judged. A step still short when the
// insufficient budget is spent (the budget's clock starts at the step's
// first short analysis) ends the switch there: completes is false.
func planCandidateRequests(pl model.Plan, rps float64) (requests float64, completes bool) {
	iv := pl.Interval.D()
	perInterval := rps * iv.Seconds()
	bake := math.Ceil(pl.Bake.D().Seconds() / iv.Seconds())
	budget := math.Floor(pl.InsufficientBudget.D().Seconds()/iv.Seconds()) + 1
	for _, pct := range pl.Steps[:len(pl.Steps)-1] {
		c, b := perInterval*float64(pct)/100, perInterval*float64(100-pct)/100
		k := max(bake, math.Ceil(pl.MinRequests/c), math.Ceil(pl.MinRequests/b))
		if k > budget {
			return requests + budget*c, false
		}
		requests += k * c
	}
	return requests, true
}

// simRow is one configuration of TestWholeSwitchesThroughDecide.
type simRow struct {
	rps, rate          float64
	healthy, regressed int
	aa, twice          map[simOutcome]int
	expectedErrors     float64       // candidate's over the switch, at the baseline's rate
	completes          bool          // the plan's steps reach MinRequests within the budget
	servedPromoted     float64       // mean candidate requests of promoted healthy switches
	detect             time.Duration // median, never if half or more were not caught
	aaLasted           time.Duration // median healthy switch duration
	err                error
}

func (r simRow) share(m map[simOutcome]int, n int, o simOutcome) float64 {
	return float64(m[o]) / float64(n)
}

// Issue 13's evidence through rollout.Decide: the default plan, 20 to 5,000
// req/s in total, error rates 0.1, 1 and 5 %, healthy (A/A) and 2×
// candidates.
//
// Healthy switches are rolled back for two different reasons, counted
// apart. The error test (analysis_failed; latency_regressed cannot happen,
// the default plan judges no latency) is asserted at ≤ 1 %, the
// guarantee. insufficient_data is not a false verdict but the plan's
// budget: at 20 req/s the 1 % step gives the candidate 2 requests per
// interval, 200 would take 1,000 s, and the 5 min budget rolls every
// switch back, healthy or not. Those rollbacks are reported per
// configuration, not asserted. The default plan's floor: its 1 % step
// needs 200 candidate requests within 31 analyses (the budget's clock
// starts at the step's first short analysis), so about 65 req/s in total;
// measured, healthy switches roll back for insufficient data in half of
// cases at 64–65 req/s, 12 % at 70, none at 100.
//
// 2× is asserted as measured: where it applies (200 req/s at 1 %, 98
// expected errors) the rate is about 99.3 % (four seeds of 10,000: 99.21–
// 99.35 %), so about 70 misses against the 100 that 99 % allows, some 3.5
// standard deviations away; the seed is fixed, so the run is reproducible.
// About 20 s on two idle cores (27 s on busy ones), so skipped under -short.
func TestWholeSwitchesThroughDecide(t *testing.T) {
	if raceDetector {
		t.Skip("statistical simulation: runs without -race (scripts/test.sh, its own step)")
	}
	if testing.Short() {
		t.Skip("simulation of 240,000 switches through Decide")
	}
	const healthy, regressed = 10000, 10000
	pl := defaultPlan(t)
	limit := 30 * time.Minute
	alpha := 1 - pl.Confidence
	// aaLimit: the most failures a true rate of 1 − Confidence (1 %) yields
	// among the healthy switches with probability ≥ 99.9 %: more is
	// evidence, at the 0.1 % level per configuration, that the rate
	// exceeds 1 % (as in controlplane/judge's TestWholeSwitches).
	aaLimit := 0
	for binomialTail(healthy, aaLimit+1, alpha) >= 0.001 {
		aaLimit++
	}
	var rows []*simRow
	for _, rps := range []float64{20, 200, 1000, 5000} {
		for _, rate := range []float64{0.001, 0.01, 0.05} {
			row := &simRow{rps: rps, rate: rate, healthy: healthy, regressed: regressed,
				aa: map[simOutcome]int{}, twice: map[simOutcome]int{}}
			n, completes := planCandidateRequests(pl, rps)
			row.expectedErrors, row.completes = n*rate, completes
			rows = append(rows, row)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	var mu sync.Mutex
	for i, row := range rows {
		for j, twice := range []bool{false, true} {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				r := rand.New(rand.NewPCG(uint64(13100+2*i+j), 0x646563696465))
				n, pc, out := row.healthy, row.rate, row.aa
				if twice {
					n, pc, out = row.regressed, 2*row.rate, row.twice
				}
				var times []time.Duration
				var served float64
				counts := map[simOutcome]int{}
				for range n {
					res, err := simulateDecided(r, pl, row.rps, pc, row.rate, limit)
					if err != nil {
						mu.Lock()
						row.err = err
						mu.Unlock()
						return
					}
					counts[res.outcome]++
					switch {
					case twice && res.outcome == simOutcome(model.CauseAnalysisFailed):
						times = append(times, res.detected)
					case twice:
						times = append(times, never)
					default:
						times = append(times, res.lasted)
						if res.outcome == promoted {
							served += res.served
						}
					}
				}
				slices.Sort(times)
				m := times[(len(times)-1)/2]
				mu.Lock()
				defer mu.Unlock()
				for o, k := range counts {
					out[o] += k
				}
				if twice {
					row.detect = m
				} else {
					row.aaLasted = m
					if k := counts[promoted]; k > 0 {
						row.servedPromoted = served / float64(k)
					}
				}
			})
		}
	}
	wg.Wait()
	t.Logf("%d healthy and %d 2× switches per row in %v; plan: steps %v, bake %v, interval %v, min_requests %.0f, confidence %v, margin %v, insufficient budget %v (%s)",
		healthy, regressed, time.Since(start).Round(time.Second), pl.Steps, pl.Bake.D(), pl.Interval.D(), pl.MinRequests, pl.Confidence, pl.Margin, pl.InsufficientBudget.D(), pl.OnInsufficient)
	t.Logf("A/A error-test rollbacks asserted ≤ %d (%.2f%%); 2× caught asserted ≥ 99%% where the candidate expects ≥ 90 errors at the baseline's rate over the switch; detection: median over all 2× switches, misses count as never",
		aaLimit, 100*float64(aaLimit)/healthy)
	t.Logf("| traffic | error rate | expected candidate errors | A/A analysis_failed | A/A insufficient_data | A/A promoted | 2× caught | 2× insufficient_data | median detect | median A/A switch |")
	t.Logf("|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		if r.err != nil {
			t.Fatalf("%v req/s, rate %v: %v", r.rps, r.rate, r.err)
		}
		detect := r.detect.String()
		if r.detect == never {
			detect = "never"
		}
		expected := fmt.Sprintf("%.1f", r.expectedErrors)
		if !r.completes {
			expected += " (switch ends short)"
		}
		failed := simOutcome(model.CauseAnalysisFailed)
		short := simOutcome(model.CauseInsufficientData)
		t.Logf("| %v req/s | %v%% | %s | %.2f%% | %.2f%% | %.2f%% | %.2f%% | %.2f%% | %s | %v |",
			r.rps, 100*r.rate, expected, 100*r.share(r.aa, r.healthy, failed), 100*r.share(r.aa, r.healthy, short),
			100*r.share(r.aa, r.healthy, promoted), 100*r.share(r.twice, r.regressed, failed), 100*r.share(r.twice, r.regressed, short),
			detect, r.aaLasted)
		for o := range r.aa {
			if o != promoted && o != failed && o != short {
				t.Errorf("%v req/s, rate %v: healthy switches rolled back for %s", r.rps, r.rate, o)
			}
		}
		// The analytic expectation is the plan as Decide runs it: promoted
		// healthy switches served what it says, within 5 %.
		if r.completes && math.Abs(r.servedPromoted*r.rate/r.expectedErrors-1) > 0.05 {
			t.Errorf("%v req/s: promoted switches served %.0f candidate requests, the plan's expectation is %.0f", r.rps, r.servedPromoted, r.expectedErrors/r.rate)
		}
		if bad := r.aa[failed] + r.aa[simOutcome(model.CauseLatencyRegressed)]; bad > aaLimit {
			t.Errorf("%v req/s, rate %v: %d of %d healthy switches failed by analysis (%.2f%%), more than a true 1%% gives (≤ %d with probability 99.9%%)",
				r.rps, r.rate, bad, r.healthy, 100*float64(bad)/float64(r.healthy), aaLimit)
		}
		if r.expectedErrors >= 90 && r.share(r.twice, r.regressed, failed) < 0.99 {
			t.Errorf("%v req/s, rate %v: 2× caught in %.2f%% of switches with %.0f expected candidate errors, want ≥ 99%%",
				r.rps, r.rate, 100*r.share(r.twice, r.regressed, failed), r.expectedErrors)
		}
	}
}

// binomialTail is P(X ≥ k) for X ~ Binomial(n, p).
func binomialTail(n, k int, p float64) float64 {
	sum := 0.0
	for x := k; x <= n; x++ {
		sum += math.Exp(logBinomialPMF(x, n, p))
	}
	return sum
}

func logBinomialPMF(k, n int, p float64) float64 {
	ln, _ := math.Lgamma(float64(n + 1))
	lk, _ := math.Lgamma(float64(k + 1))
	lnk, _ := math.Lgamma(float64(n - k + 1))
	return ln - lk - lnk + float64(k)*math.Log(p) + float64(n-k)*math.Log1p(-p)
}
