package traffic_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/bgctl/bg/controlplane/fleetmetrics"
	"github.com/bgctl/bg/controlplane/membership"
	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/state"
	"github.com/bgctl/bg/controlplane/state/memstate"
	"github.com/bgctl/bg/controlplane/traffic"
	"github.com/bgctl/bg/controlplane/traffic/traffictest"
	"github.com/bgctl/bg/controlplane/translator"
	"github.com/bgctl/bg/controlplane/xds"
)

// The harness of the analysis tests: a controller on a fake clock
// (fakeRuntime), a fake Prometheus whose counters grow with that clock
// (fakeFleets), a store that encodes what it stores as Consul's does
// (jsonStore), and a pusher without proxies.

var analysisStart = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// fakeRuntime is the shared fake clock (traffictest.Runtime).
type fakeRuntime = traffictest.Runtime

func newFakeRuntime(t *testing.T) *fakeRuntime { return traffictest.NewRuntime(t, analysisStart) }

// fakeFleets is a fake Prometheus: each colour's request and error
// counters grow with the fake clock at that colour's rate and error ratio
// (set by the test), in one series each. It counts its reads.
type fakeFleets struct {
	rt *fakeRuntime
	mu sync.Mutex
	f  map[model.Color]*fakeFleet
	// down makes every read fail; lag makes values look scraped that long
	// before they are read (Reading.Scraped).
	down  bool
	lag   time.Duration
	reads int
	// scrape, if set, is Prometheus's scrape interval: counters change only
	// at scrapes (every scrape since analysisStart).
	scrape time.Duration
}

type fakeFleet struct {
	rate, ratio      float64 // requests a second, error share
	requests, errors float64
	at               time.Time
}

func newFakeFleets(rt *fakeRuntime, rate, ratio float64) *fakeFleets {
	f := &fakeFleets{rt: rt, f: map[model.Color]*fakeFleet{}}
	for _, c := range model.Colors {
		f.f[c] = &fakeFleet{rate: rate, ratio: ratio, at: rt.Now()}
	}
	return f
}

// scraped is when the values read now were scraped.
func (f *fakeFleets) scraped() time.Time {
	now := f.rt.Now()
	if f.scrape > 0 {
		now = analysisStart.Add(now.Sub(analysisStart).Truncate(f.scrape))
	}
	return now.Add(-f.lag)
}

// catchUp brings a fleet's counters up to the last scrape. Call with f.mu
// held.
func (f *fakeFleets) catchUp(c model.Color) *fakeFleet {
	fl := f.f[c]
	now := f.scraped().Add(f.lag)
	if dt := now.Sub(fl.at).Seconds(); dt > 0 {
		n := fl.rate * dt
		fl.requests += n
		fl.errors += n * fl.ratio
	}
	fl.at = now
	return fl
}

// set changes a colour's error ratio from now on.
func (f *fakeFleets) set(c model.Color, ratio float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.catchUp(c).ratio = ratio
}

// add puts requests and errors on a colour's counters at once.
func (f *fakeFleets) add(c model.Color, requests, errors float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.catchUp(c)
	fl.requests += requests
	fl.errors += errors
}

// counters returns a colour's counters now.
func (f *fakeFleets) counters(c model.Color) (requests, errors float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl := f.catchUp(c)
	return fl.requests, fl.errors
}

func (f *fakeFleets) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
}

func (f *fakeFleets) setLag(lag time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lag = lag
}

func (f *fakeFleets) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fakeFleets) Read(_ context.Context, q fleetmetrics.Query) (fleetmetrics.Reading, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.down {
		return fleetmetrics.Reading{}, fmt.Errorf("%w: connection refused", fleetmetrics.ErrUnavailable)
	}
	fl := f.catchUp(q.Color)
	r := fleetmetrics.Reading{Requests: map[string]float64{`{}`: fl.requests}, Errors: map[string]float64{`{}`: fl.errors}}
	if q.Scraped {
		r.Scraped = f.scraped()
	}
	return r, nil
}

// jsonStore is a memstate store that encodes each state as the Consul
// store does, so a state Consul could not store is refused here too.
type jsonStore struct{ *memstate.Store }

func (s jsonStore) Save(ctx context.Context, service string, t model.Traffic, prev state.Index, e model.HistoryEntry) (state.Index, error) {
	if _, err := json.Marshal(t); err != nil {
		return 0, fmt.Errorf("encode %s: %w", service, err)
	}
	return s.Store.Save(ctx, service, t, prev, e)
}

// noProxies is a pusher without proxies: every push succeeds at once.
type noProxies struct{}

func (noProxies) Load(translator.Resources)                                     {}
func (noProxies) UpdateRouteGen(string, types.Resource, uint64) (uint64, error) { return 0, nil }
func (noProxies) MarkRouteGen(string, uint64)                                   {}
func (noProxies) UpdateEndpoints(map[string]types.Resource) error               { return nil }
func (noProxies) UpdateService(translator.Resources) error                      { return nil }
func (noProxies) WaitRoute(context.Context, string) xds.AckResult               { return xds.AckResult{} }
func (noProxies) RouteStatus(string) (subscribed, acked int)                    { return 0, 0 }

// judgedPlan: steps of 10, 50 and 100 %, an analysis every 500 ms, 2 s of
// bake per step, min_requests 100, confidence 0.99, margin 0.1.
func judgedPlan() model.Plan {
	return model.Plan{Steps: []int{10, 50, 100}, Bake: model.Duration(2 * time.Second), Interval: model.Duration(500 * time.Millisecond),
		MinRequests: 100, Confidence: 0.99, Margin: 0.1,
		UnavailableBudget: model.Duration(4 * time.Second), OnUnavailable: model.OnUnavailableRollback,
		InsufficientBudget: model.Duration(4 * time.Second), OnInsufficient: model.OnUnavailableRollback, Rollback: model.RollbackInstant}
}

// analysedController is a replica on rt, judging with src, storing in
// store; it leads unless follower is set (then it waits for Elected).
func analysedController(t *testing.T, rt *fakeRuntime, store state.Store, src fleetmetrics.Source, reg prometheus.Registerer, follower bool) *traffic.Controller {
	t.Helper()
	c := traffic.New([]model.Service{webService}, "0.0.0.0", store, noProxies{}, quiet, traffic.NewMetrics(reg))
	c.SetRuntime(rt)
	if follower {
		c.UseElection()
	}
	c.SetAnalysis(src, map[string]model.Plan{"web": judgedPlan()})
	c.OnMembership(membership.Update{Service: "web", Membership: webMembership()})
	rt.Advance(0)
	if err := c.LoadState(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(); err != nil {
		t.Fatal(err)
	}
	rt.Advance(0)
	return c
}

// startSwitch starts a progressive switch of web to green.
func startSwitch(t *testing.T, c *traffic.Controller) model.Rollout {
	t.Helper()
	res, err := c.Switch(context.Background(), traffic.Request{Service: "web", To: model.Green, Timeout: time.Second})
	if err != nil || res.Status.Switch == nil {
		t.Fatalf("switch: %+v %v", res.Status, err)
	}
	return *res.Status.Switch
}

// running is the switch as the controller holds it now (in memory).
func running(t *testing.T, c *traffic.Controller) model.Rollout {
	t.Helper()
	st, err := c.Status("web")
	if err != nil || st.Switch == nil {
		t.Fatalf("status: %+v %v", st, err)
	}
	return *st.Switch
}

// gauge reads one gauge series from reg, or NaN if it is not there.
func gauge(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				return m.GetGauge().GetValue()
			}
		}
	}
	return math.NaN()
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}

const interval = 500 * time.Millisecond

// The first round of a switch reads the starting point at once; what the
// fleets served before is never counted. A healthy green switched right
// after a failed attempt (its counters full of that attempt's errors) is
// judged on its own requests only: issue 13's stale data.
func TestSwitchCountsFromItsStart(t *testing.T) {
	rt := newFakeRuntime(t)
	src := newFakeFleets(rt, 1000, 0.01)
	c := analysedController(t, rt, jsonStore{memstate.New()}, src, nil, false)
	// The last attempt: green served a million requests at 30 % errors.
	src.add(model.Green, 1e6, 3e5)
	rt.Advance(10 * time.Second)

	r := startSwitch(t, c)
	reads := src.readCount()
	rt.Advance(0)
	// At once: one read of each fleet, the starting point, and no verdict.
	if got := src.readCount() - reads; got != 2 {
		t.Fatalf("%d reads at the switch's start, want 2 (both fleets, at once)", got)
	}
	if r = running(t, c); analyses(r) != 0 || r.Evidence != nil {
		t.Fatalf("the starting point gave a verdict or evidence: %+v %+v", r.Verdicts, r.Evidence)
	}
	startCand, _ := src.counters(model.Green)
	startBase, _ := src.counters(model.Blue)

	// The first verdict comes one interval later, on that interval alone.
	rt.Advance(interval)
	r = running(t, c)
	if analyses(r) != 1 || r.Verdicts[0].Outcome != "pass" || r.Evidence == nil {
		t.Fatalf("after one interval: verdicts %+v, evidence %+v", r.Verdicts, r.Evidence)
	}
	cand, _ := src.counters(model.Green)
	base, _ := src.counters(model.Blue)
	want := model.Counts{Requests: cand - startCand, Errors: (cand - startCand) * 0.01}
	if ev := r.Evidence; !near(ev.Candidate, want) || !near(ev.Baseline, model.Counts{Requests: base - startBase, Errors: (base - startBase) * 0.01}) {
		t.Fatalf("evidence counts candidate %+v baseline %+v, want the interval's: %+v", ev.Candidate, ev.Baseline, want)
	}

	// And it is promoted: two bakes of 2 s and a few intervals more.
	rt.Advance(10 * time.Second)
	st, _ := c.Status("web")
	if st.Switch == nil || st.Switch.Phase != model.RolloutPromoted || st.Weights.Green != 100 {
		t.Fatalf("healthy green after a failed attempt ended %+v at green %d%%", st.Switch, st.Weights.Green)
	}
	for _, v := range st.Switch.Verdicts {
		if v.Outcome != "pass" {
			t.Fatalf("a verdict other than pass for a healthy green: %+v", st.Switch.Verdicts)
		}
	}
}

// analyses counts the analyses a switch has judged (a step's verdict
// counts its analyses).
func analyses(r model.Rollout) int {
	n := 0
	for _, v := range r.Verdicts {
		n += v.Analyses
	}
	return n
}

// near compares counts up to float rounding.
func near(a, b model.Counts) bool {
	return math.Abs(a.Requests-b.Requests) < 1e-6*max(1, b.Requests) && math.Abs(a.Errors-b.Errors) < 1e-6*max(1, b.Errors)
}

// Analyses export the switch's evidence: the error test's e-value (the
// same the switch holds), the threshold it must reach, and the error
// ratios since the switch began. A bad green's evidence is exported as
// it crosses the threshold, and its rollback is stored.
func TestSwitchExportsEvidence(t *testing.T) {
	rt := newFakeRuntime(t)
	src := newFakeFleets(rt, 1000, 0.01)
	reg := prometheus.NewRegistry()
	store := jsonStore{memstate.New()}
	c := analysedController(t, rt, store, src, reg, false)
	startSwitch(t, c)
	rt.Advance(3 * interval)

	r := running(t, c)
	errs := map[string]string{"service": "web", "test": "errors"}
	if r.Evidence == nil || analyses(r) != 3 {
		t.Fatalf("after three intervals: verdicts %+v, evidence %+v", r.Verdicts, r.Evidence)
	}
	if got := gauge(t, reg, "bg_analysis_evidence", errs); got != r.Evidence.ErrorsE || !(got >= 0 && got < 1/(1-0.99)) {
		t.Fatalf("bg_analysis_evidence{test=errors} = %v, the switch holds %v", got, r.Evidence.ErrorsE)
	}
	confidence := judgedPlan().Confidence
	if got, want := gauge(t, reg, "bg_analysis_evidence_threshold", map[string]string{"service": "web"}), 1/(1-confidence); got != want {
		t.Fatalf("bg_analysis_evidence_threshold = %v, want %v", got, want)
	}
	for role, n := range map[string]model.Counts{"candidate": r.Evidence.Candidate, "baseline": r.Evidence.Baseline} {
		if got := gauge(t, reg, "bg_analysis_error_ratio", map[string]string{"service": "web", "role": role}); math.Abs(got-n.Errors/n.Requests) > 1e-12 || math.Abs(got-0.01) > 1e-9 {
			t.Fatalf("bg_analysis_error_ratio{role=%s} = %v, want %v since the switch began", role, got, n.Errors/n.Requests)
		}
	}
	// The judge's inputs by colour, for the dashboard's fleet panels: the
	// switch goes blue → green, so green is the candidate.
	for color, n := range map[string]model.Counts{"green": r.Evidence.Candidate, "blue": r.Evidence.Baseline} {
		if n.Requests == 0 {
			t.Fatalf("no %s requests judged after three intervals", color)
		}
		l := map[string]string{"service": "web", "color": color}
		if got := gauge(t, reg, "bg_analysis_requests", l); got != n.Requests {
			t.Fatalf("bg_analysis_requests{color=%s} = %v, the switch counted %v", color, got, n.Requests)
		}
		if got := gauge(t, reg, "bg_analysis_errors", l); got != n.Errors {
			t.Fatalf("bg_analysis_errors{color=%s} = %v, the switch counted %v", color, got, n.Errors)
		}
	}
	if got := gauge(t, reg, "bg_analysis_evidence", map[string]string{"service": "web", "test": "latency"}); !math.IsNaN(got) {
		t.Fatalf("a latency e-value %v for a plan that judges no latency", got)
	}

	// Green turns bad: the evidence grows past the threshold and the
	// switch rolls back, with the crossing evidence exported and stored.
	src.set(model.Green, 0.5)
	rt.Advance(4 * interval)
	st, _ := c.Status("web")
	if st.Switch == nil || st.Switch.Phase != model.RolloutRolledBack || st.Switch.Cause != model.CauseAnalysisFailed || st.Weights.Green != 0 {
		t.Fatalf("a bad green ended %+v at green %d%%", st.Switch, st.Weights.Green)
	}
	if st.Unsaved {
		t.Fatalf("the rollback could not be stored")
	}
	stored, _, _, _ := store.Load(context.Background(), "web")
	if stored.Rollout == nil || stored.Rollout.Phase != model.RolloutRolledBack || stored.Rollout.Evidence == nil {
		t.Fatalf("stored %+v", stored.Rollout)
	}
	if got := gauge(t, reg, "bg_analysis_evidence", errs); !(got >= 1/(1-0.99)) || got != stored.Rollout.Evidence.ErrorsE {
		t.Fatalf("bg_analysis_evidence{test=errors} = %v after the rollback, the stored evidence %v, threshold %v", got, stored.Rollout.Evidence.ErrorsE, 1/(1-0.99))
	}
	// By colour, the bad fleet is green's: its errors are the candidate's.
	ev := stored.Rollout.Evidence
	l := func(c string) map[string]string { return map[string]string{"service": "web", "color": c} }
	if gauge(t, reg, "bg_analysis_errors", l("green")) != ev.Candidate.Errors || gauge(t, reg, "bg_analysis_errors", l("blue")) != ev.Baseline.Errors ||
		gauge(t, reg, "bg_analysis_requests", l("green")) != ev.Candidate.Requests || ev.Candidate.Errors/ev.Candidate.Requests <= 2*ev.Baseline.Errors/ev.Baseline.Requests {
		t.Fatalf("judged counts by colour: green %v/%v, blue %v/%v; the stored evidence %+v",
			gauge(t, reg, "bg_analysis_errors", l("green")), gauge(t, reg, "bg_analysis_requests", l("green")),
			gauge(t, reg, "bg_analysis_errors", l("blue")), gauge(t, reg, "bg_analysis_requests", l("blue")), ev)
	}
}

// Overwhelming evidence in one interval (a very bad green after a spell
// without metrics) overflows the e-value: the rollback must still store
// (JSON has no +Inf), with the evidence saying the threshold was crossed.
func TestOverwhelmingEvidenceIsStored(t *testing.T) {
	rt := newFakeRuntime(t)
	src := newFakeFleets(rt, 1e6, 0.01)
	store := jsonStore{memstate.New()}
	c := analysedController(t, rt, store, src, nil, false)
	startSwitch(t, c)
	rt.Advance(interval)
	src.setDown(true)
	src.set(model.Green, 0.9)
	rt.Advance(3 * time.Second)
	src.setDown(false)
	rt.Advance(interval)
	st, _ := c.Status("web")
	if st.Switch == nil || st.Switch.Phase != model.RolloutRolledBack || st.Switch.Cause != model.CauseAnalysisFailed || st.Unsaved {
		t.Fatalf("ended %+v, unsaved %v", st.Switch, st.Unsaved)
	}
	stored, _, _, _ := store.Load(context.Background(), "web")
	if stored.Rollout == nil || stored.Rollout.Phase != model.RolloutRolledBack || !(stored.Rollout.Evidence.ErrorsE >= 1/(1-0.99)) {
		t.Fatalf("stored %+v", stored.Rollout)
	}
}

// A new leader resumes the stored evidence and counts afresh from its own
// starting point, read at once: what the last leader saw after its last
// write is lost (never counted twice), and nothing before the new
// starting point is counted.
func TestNewLeaderResumesStoredEvidence(t *testing.T) {
	rt := newFakeRuntime(t)
	src := newFakeFleets(rt, 1000, 0.01)
	store := jsonStore{memstate.New()}
	a := analysedController(t, rt, store, src, nil, false)
	b := analysedController(t, rt, store, src, nil, true)
	startSwitch(t, a)
	// The first step's bake (2 s) ends: the switch moves to 50 % and its
	// evidence is stored with it. Then a few analyses more, in memory.
	rt.Advance(2*time.Second + 3*interval + interval/2)
	stored, _, _, _ := store.Load(context.Background(), "web")
	if stored.Rollout == nil || stored.Rollout.Step != 1 || stored.Rollout.Evidence == nil {
		t.Fatalf("stored after the first bake: %+v", stored.Rollout)
	}
	persisted := *stored.Rollout.Evidence
	if mem := running(t, a).Evidence; mem == nil || mem.Candidate.Requests <= persisted.Candidate.Requests {
		t.Fatalf("the leader's evidence in memory %+v is not ahead of the stored %+v", mem, persisted)
	}

	// The lock moves to b.
	a.Deposed()
	b.Elected()
	if err := b.LoadState(context.Background()); err != nil {
		t.Fatal(err)
	}
	b.Start()
	verdicts := analyses(running(t, b))
	reads := src.readCount()
	rt.Advance(0)
	if got := src.readCount() - reads; got != 2 {
		t.Fatalf("%d reads when b took over, want 2: the new term's starting point, at once", got)
	}
	r := running(t, b)
	if analyses(r) != verdicts || r.Evidence == nil || !sameEvidence(*r.Evidence, persisted) {
		t.Fatalf("the starting point changed b's switch: analyses %d → %d, evidence %+v (stored %+v)", verdicts, analyses(r), r.Evidence, persisted)
	}
	startCand, _ := src.counters(model.Green)
	startBase, _ := src.counters(model.Blue)

	// One interval on, b has judged exactly that interval on top of the
	// stored evidence.
	rt.Advance(interval)
	r = running(t, b)
	cand, _ := src.counters(model.Green)
	base, _ := src.counters(model.Blue)
	wantCand := model.Counts{Requests: persisted.Candidate.Requests + cand - startCand, Errors: persisted.Candidate.Errors + (cand-startCand)*0.01}
	wantBase := model.Counts{Requests: persisted.Baseline.Requests + base - startBase, Errors: persisted.Baseline.Errors + (base-startBase)*0.01}
	if analyses(r) != verdicts+1 || !near(r.Evidence.Candidate, wantCand) || !near(r.Evidence.Baseline, wantBase) {
		t.Fatalf("after b's first interval: %d analyses (was %d), candidate %+v want %+v, baseline %+v want %+v",
			analyses(r), verdicts, r.Evidence.Candidate, wantCand, r.Evidence.Baseline, wantBase)
	}
	if len(r.Evidence.ErrorsLogLR) != len(persisted.ErrorsLogLR) || r.Evidence.ErrorsTest != persisted.ErrorsTest {
		t.Fatalf("b did not resume the stored test: %+v, stored %+v", r.Evidence, persisted)
	}
	// And a's rounds of its old term change nothing any more.
	held := running(t, a)
	rt.Advance(4 * interval)
	if after := running(t, a); analyses(after) != analyses(held) {
		t.Fatalf("the deposed leader kept judging: %+v → %+v", held.Verdicts, after.Verdicts)
	}
}

func sameEvidence(a, b model.Evidence) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// The same replica deposed and elected again starts a new term: its
// counting starts afresh at once (the stretch between its last read and
// the new term is not counted), and it keeps judging the switch.
func TestNewTermCountsAfresh(t *testing.T) {
	rt := newFakeRuntime(t)
	src := newFakeFleets(rt, 1000, 0.01)
	c := analysedController(t, rt, jsonStore{memstate.New()}, src, nil, false)
	startSwitch(t, c)
	rt.Advance(3 * interval)
	before := running(t, c)
	if before.Evidence == nil || analyses(before) != 3 {
		t.Fatalf("after three intervals: %+v", before)
	}
	rt.Advance(interval / 2) // the stretch that falls between the terms
	c.Deposed()
	c.Elected()
	if err := c.LoadState(context.Background()); err != nil {
		t.Fatal(err)
	}
	c.Start()
	rt.Advance(0)
	startCand, _ := src.counters(model.Green)
	if r := running(t, c); analyses(r) != 3 || !sameEvidence(*r.Evidence, *before.Evidence) {
		t.Fatalf("the new term's starting point changed the switch: %+v", r)
	}
	rt.Advance(interval)
	r := running(t, c)
	cand, _ := src.counters(model.Green)
	if want := before.Evidence.Candidate.Requests + cand - startCand; analyses(r) != 4 || math.Abs(r.Evidence.Candidate.Requests-want) > 1e-6 {
		t.Fatalf("after the new term's first interval: %d analyses, candidate requests %v, want %v", analyses(r), r.Evidence.Candidate.Requests, want)
	}
}

// While Prometheus cannot be read at a switch's start, rounds keep the
// plan's interval: the starting point is retried one interval later, not
// at once, again and again.
func TestUnreadableStartKeepsTheInterval(t *testing.T) {
	rt := newFakeRuntime(t)
	src := newFakeFleets(rt, 1000, 0.01)
	src.setDown(true)
	c := analysedController(t, rt, jsonStore{memstate.New()}, src, nil, false)
	startSwitch(t, c)
	rt.Advance(2 * time.Second)
	// One round at once, then one per interval: 5 rounds, one read each
	// (the candidate's read fails first).
	if got := src.readCount(); got > 6 {
		t.Fatalf("%d reads in 2 s while Prometheus is down at the start; one round per 500 ms interval reads at most 5 times", got)
	}
	r := running(t, c)
	if r.UnavailableSince.IsZero() || r.Phase != model.RolloutProgressing {
		t.Fatalf("the switch does not hold on unavailable metrics: %+v", r)
	}
	src.setDown(false)
	rt.Advance(3 * interval)
	if r := running(t, c); len(r.Verdicts) == 0 || r.Verdicts[len(r.Verdicts)-1].Outcome != "pass" {
		t.Fatalf("no verdict once Prometheus is back: %+v", r.Verdicts)
	}
}

// Until Prometheus has scraped the fleets after the switch began, a read
// is no starting point (it may carry the last attempt's errors). Rounds
// still keep the plan's interval meanwhile, and the first verdict counts
// from a starting point scraped after the start.
func TestStartWaitsForAScrapeAfterTheSwitch(t *testing.T) {
	rt := newFakeRuntime(t)
	src := newFakeFleets(rt, 1000, 0.01)
	src.setLag(1200 * time.Millisecond) // every value read is 1.2 s old
	c := analysedController(t, rt, jsonStore{memstate.New()}, src, nil, false)
	r0 := startSwitch(t, c)
	rt.Advance(time.Second)
	if got := src.readCount(); got > 6 {
		t.Fatalf("%d reads in the first second, while what Prometheus holds was scraped before the switch; rounds every 500 ms read both fleets at most 3 times (6 reads)", got)
	}
	if r := running(t, c); analyses(r) != 0 || r.Evidence != nil {
		t.Fatalf("a verdict from values scraped before the switch began: %+v", r)
	}
	// The first read scraped after the start (1.2 s) is the starting
	// point; the first verdict comes a round later.
	var first time.Time
	for i := 0; i < 30 && first.IsZero(); i++ {
		rt.Advance(interval / 10)
		if r := running(t, c); analyses(r) > 0 {
			first = r.Verdicts[0].At
		}
	}
	if first.IsZero() || first.Sub(r0.StartedAt) < 1200*time.Millisecond+interval/2 {
		t.Fatalf("first verdict at %v after the start: want one counted from a start scraped after the switch (1.2 s)", first.Sub(r0.StartedAt))
	}
}

// Prometheus scraping less often than the plan's interval leaves some
// analyses without a new scrape: the counters did not move. That is no
// news, not a fleet without traffic: a healthy switch is promoted with
// nothing but passing verdicts, and stores no more than it does when
// every analysis sees a new scrape.
func TestAnalysesBetweenScrapes(t *testing.T) {
	writes := map[time.Duration]int{}
	for _, scrape := range []time.Duration{0, time.Second} {
		rt := newFakeRuntime(t)
		src := newFakeFleets(rt, 1000, 0.01)
		src.scrape = scrape
		store := memstate.New()
		c := analysedController(t, rt, jsonStore{store}, src, nil, false)
		startSwitch(t, c)
		rt.Advance(15 * time.Second)
		st, _ := c.Status("web")
		if st.Switch == nil || st.Switch.Phase != model.RolloutPromoted {
			t.Fatalf("scrapes every %v: a healthy switch ended %+v", scrape, st.Switch)
		}
		for _, v := range st.Switch.Verdicts {
			if v.Outcome != "pass" {
				t.Errorf("scrapes every %v, analyses every %v: verdict %+v", scrape, interval, v)
			}
		}
		writes[scrape] = len(store.Entries())
		for _, e := range store.Entries() {
			if strings.HasPrefix(e.Reason, "holding:") {
				t.Errorf("scrapes every %v, analyses every %v: stored %q (generation %d)", scrape, interval, e.Reason, e.Generation)
			}
		}
	}
	if writes[time.Second] > writes[0] {
		t.Errorf("a healthy switch stored %d states with scrapes every 1 s, %d when every analysis sees a new scrape", writes[time.Second], writes[0])
	}
}
