// Package rollout is the progressive-switch state machine: given the
// current traffic state and one event, it returns the next state and the
// actions to carry out. It does no I/O, so every transition is table-tested.
package rollout

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
)

// Action is something the caller must do after a transition: the one
// effect type both state machines speak (model.Effect).
type Action = model.Effect

const (
	// Persist the new state (check-and-set) before anything else.
	Persist = model.EffectPersist
	// Push the new split to the proxies.
	Push = model.EffectPushRoute
	// Confirm waits for every proxy to ACK a flip back and records the time.
	Confirm = model.EffectConfirm
)

// Errors for commands that do not apply.
var (
	ErrNotRunning = errors.New("no progressive switch is running")
	ErrRunning    = errors.New("a switch is already running")
)

// Event is an observation or a command.
type Event interface{ at() time.Time }

// Start begins a progressive switch to To.
type Start struct {
	Now    time.Time
	To     model.Color
	Plan   model.Plan
	Reason string
}

// Analysis is one interval's read of both fleets: what each served since
// the previous analysis (exact counts, both read at one instant), or why
// they could not be read. Decide runs the switch's sequential tests on it.
type Analysis struct {
	Now time.Time
	// Primed is false when this read only set the starting point (the
	// first analysis of a switch, or of a new leader's term): there is
	// nothing to judge yet.
	Primed              bool
	Candidate, Baseline judge.Sample
	// CandidateLatency and BaselineLatency are the interval's histograms;
	// nil when the plan judges no latency.
	CandidateLatency, BaselineLatency *judge.Histogram
	// NoData is non-empty when a fleet has no request series at all (its
	// traffic, or its metrics, went away): insufficient, never healthy.
	NoData      string
	Unavailable string // non-empty: nothing was read, metrics unavailable
}

// Pause stops advancing; analysis and rollback continue.
type Pause struct{ Now time.Time }

// Resume continues a paused switch; the current step bakes again.
type Resume struct{ Now time.Time }

// Promote skips the remaining steps at the next passing analysis, or at
// once with Force (an override: analysis is skipped).
type Promote struct {
	Now    time.Time
	Force  bool
	Reason string
}

// GateOutcome is one round of calls to the gates of the pending stage.
type GateOutcome struct {
	Now     time.Time
	Stage   string
	Results []model.GateResult
}

// Abort puts all traffic back on the stable colour by hand.
type Abort struct {
	Now    time.Time
	Reason string
}

// Rollback is a rollback decided elsewhere (another replica's intent):
// the switch goes back as its own analysis would have sent it.
type Rollback struct {
	Now        time.Time
	DetectedAt time.Time
	Cause      model.Cause
	Reason     string
}

func (e Start) at() time.Time    { return e.Now }
func (e Analysis) at() time.Time { return e.Now }
func (e Pause) at() time.Time    { return e.Now }
func (e Resume) at() time.Time   { return e.Now }
func (e Promote) at() time.Time  { return e.Now }
func (e Abort) at() time.Time    { return e.Now }
func (e Rollback) at() time.Time { return e.Now }
func (e GateOutcome) at() time.Time {
	return e.Now
}

// Decide applies one event. The input is never modified. A nil action list
// means nothing changed.
func Decide(t model.Traffic, ev Event) (model.Traffic, []Action, error) {
	if e, ok := ev.(Start); ok {
		return start(t, e)
	}
	if !t.ProgressiveRunning() {
		return t, nil, ErrNotRunning
	}
	next := t
	r := *t.Rollout
	r.Verdicts = slices.Clone(t.Rollout.Verdicts) // keeps an empty record empty, not nil
	r.Overrides = slices.Clone(t.Rollout.Overrides)
	next.Rollout = &r
	switch e := ev.(type) {
	case Analysis:
		return analyse(next, &r, e)
	case GateOutcome:
		r.GateResults = slices.Clone(t.Rollout.GateResults)
		return gated(next, &r, e)
	case Pause:
		if r.Phase != model.RolloutProgressing {
			return t, nil, nil
		}
		r.Phase, r.Reason = model.RolloutPaused, "paused by hand"
		return bump(next), []Action{Persist}, nil
	case Resume:
		if r.Phase != model.RolloutPaused {
			return t, nil, nil
		}
		r.Phase, r.Reason, r.StepSince = model.RolloutProgressing, "", e.Now
		return bump(next), []Action{Persist}, nil
	case Promote:
		if r.Phase == model.RolloutRollingBack {
			return t, nil, errors.New("cannot promote while rolling back")
		}
		if e.Force {
			skipped := "analysis skipped"
			if len(r.Plan.Gates) > 0 {
				skipped = "analysis and gates skipped"
			}
			r.Overrides = append(r.Overrides, "promote --force: "+skipped+" ("+orDefault(e.Reason, "no reason given")+")")
			return promote(next, &r, e.Now, "promoted by hand, "+skipped, true)
		}
		if r.Gate == model.GatePost {
			return t, nil, nil // already at 100 %, waiting for its post gates
		}
		if last := lastVerdict(&r); last != nil && last.Outcome == string(judge.Pass) && last.Step == r.Step && r.Gate != model.GatePre {
			return promote(next, &r, e.Now, "promoted by hand after a passing analysis", false)
		}
		r.PromoteRequested = true
		return bump(next), []Action{Persist}, nil
	case Rollback:
		if r.Phase == model.RolloutRollingBack {
			return t, nil, nil // already going back
		}
		r.DetectedAt = e.DetectedAt
		if r.DetectedAt.IsZero() {
			r.DetectedAt = e.Now
		}
		return rollback(next, &r, e.Now, e.Cause, e.Reason)
	case Abort:
		r.Cause = model.CauseAborted
		return end(next, &r, e.Now, model.RolloutAborted, model.PhaseAborted, orDefault(e.Reason, "aborted by hand"))
	}
	return t, nil, errors.New("unknown event")
}

func start(t model.Traffic, e Start) (model.Traffic, []Action, error) {
	if t.ProgressiveRunning() {
		return t, nil, ErrRunning
	}
	if err := e.Plan.Validate(); err != nil {
		return t, nil, err
	}
	if _, err := model.ParseColor(string(e.To)); err != nil {
		return t, nil, err
	}
	from := t.Serving()
	if from == "" || from == e.To {
		return t, nil, errors.New("a progressive switch needs all traffic on the other colour first")
	}
	r := &model.Rollout{
		ID: "", From: from, To: e.To, Plan: e.Plan, Phase: model.RolloutProgressing,
		Step: 0, StepSince: e.Now, StartedAt: e.Now, Verdicts: []model.StepVerdict{},
	}
	next := model.Traffic{
		Stable: from, Target: e.To, Phase: model.PhaseSwitching, Generation: t.Generation + 1,
		Reason: orDefault(e.Reason, "progressive switch to "+string(e.To)), Rollout: r,
	}
	r.ID = idFor(next.Generation)
	if len(e.Plan.GatesAt(model.GatePre)) > 0 {
		// Nothing moves until the pre gates pass; pools already see the candidate.
		r.Gate, r.Reason = model.GatePre, "waiting for pre gates"
		setCandidate(&next, 0)
		return next, []Action{Persist, Push}, nil
	}
	if e.Plan.Steps[0] == 100 {
		next.Generation-- // promote bumps it
		return promote(next, r, e.Now, "single step of 100%", false)
	}
	setCandidate(&next, e.Plan.Steps[0])
	return next, []Action{Persist, Push}, nil
}

// gated applies the results of the pending stage's gates: all passed →
// traffic moves on; a failing rollback gate → rollback; a failing hold
// gate → the split holds and the gate is called again next interval.
func gated(next model.Traffic, r *model.Rollout, e GateOutcome) (model.Traffic, []Action, error) {
	if r.Gate == "" || r.Gate != e.Stage || r.Phase != model.RolloutProgressing {
		return next, nil, nil // stale round, or paused meanwhile
	}
	results := slices.Clone(e.Results)
	for i := range results {
		results[i].Stage = e.Stage
		recordGate(r, results[i], e.Now)
	}
	var hold *model.GateResult
	for i, res := range results {
		if res.Passed {
			continue
		}
		if gateOnFailure(r.Plan, res.Gate) == model.GateRollback {
			r.DetectedAt = e.Now
			r.Gate = ""
			return rollback(next, r, e.Now, model.CauseGateFailed, res.String())
		}
		if hold == nil {
			hold = &results[i]
		}
	}
	if hold != nil {
		reason := "held: " + hold.String()
		changed := r.Reason != reason
		r.Reason = reason
		return persistIf(next, changed)
	}
	stage := r.Gate
	r.Gate, r.Reason = "", ""
	switch stage {
	case model.GatePre:
		if r.Percent() == 100 {
			return promote(next, r, e.Now, "single step of 100%", false)
		}
		r.StepSince = e.Now
		setCandidate(&next, r.Percent())
		return bump(next), []Action{Persist, Push}, nil
	case model.GateStep:
		return nextStep(next, r, e.Now)
	default:
		return promote(next, r, e.Now, "every step and gate passed", true)
	}
}

func gateOnFailure(p model.Plan, name string) string {
	for _, g := range p.Gates {
		if g.Name == name {
			return g.OnFailure
		}
	}
	return model.GateRollback
}

// recordGate keeps the latest result per gate, stage and step.
func recordGate(r *model.Rollout, res model.GateResult, now time.Time) {
	res.Step, res.At, res.Attempts = r.Step, now, 1
	for i, old := range r.GateResults {
		if old.Gate == res.Gate && old.Stage == res.Stage && old.Step == res.Step {
			res.Attempts = old.Attempts + 1
			r.GateResults[i] = res
			return
		}
	}
	r.GateResults = append(r.GateResults, res)
}

func analyse(next model.Traffic, r *model.Rollout, e Analysis) (model.Traffic, []Action, error) {
	if r.Phase == model.RolloutRollingBack {
		return stepBack(next, r, e.Now)
	}
	if r.Gate == model.GatePre {
		return next, nil, nil // no traffic moved yet: nothing to judge
	}
	if e.Unavailable != "" {
		return unavailable(next, r, e.Unavailable, e.Now)
	}
	if !e.Primed {
		return next, nil, nil // a starting point only
	}
	ev, err := observe(r, e)
	if err != nil {
		return unavailable(next, r, "invalid counts: "+err.Error(), e.Now)
	}
	wasUnavailable := !r.UnavailableSince.IsZero()
	r.UnavailableSince = time.Time{}
	r.Evidence = &ev.state
	cr, br := ratio(ev.state.Candidate), ratio(ev.state.Baseline)
	switch {
	case ev.errors.Failed():
		record(r, string(judge.Fail), ev.errors.Reason(), cr, br, e.Now)
		r.DetectedAt = e.Now
		return rollback(next, r, e.Now, model.CauseAnalysisFailed, "analysis failed: "+ev.errors.Reason())
	case ev.latency != nil && ev.latency.Failed():
		record(r, string(judge.Fail), ev.latency.Reason(), cr, br, e.Now)
		r.DetectedAt = e.Now
		return rollback(next, r, e.Now, model.CauseLatencyRegressed, "latency regressed: "+ev.latency.Reason())
	}
	why := insufficient(r, e)
	if why == "" && ev.latency != nil && r.Applied() != 100 {
		why = ev.latency.Pending() // latency cannot be judged yet: no step passes unjudged
	}
	if why != "" {
		record(r, string(judge.Insufficient), why, cr, br, e.Now)
		first := r.InsufficientSince.IsZero()
		if first {
			r.InsufficientSince = e.Now
		}
		short := e.Now.Sub(r.InsufficientSince)
		if short >= r.Plan.InsufficientBudget.D() && r.Plan.OnInsufficient == model.OnUnavailableRollback {
			r.DetectedAt = e.Now
			return rollback(next, r, e.Now, model.CauseInsufficientData, "insufficient data for "+short.Round(time.Second).String()+": "+why)
		}
		r.Reason = "holding: " + why
		if short >= r.Plan.InsufficientBudget.D() {
			r.Reason += " (insufficient budget spent; policy hold)"
		}
		return persistIf(next, first || wasUnavailable)
	}
	wasInsufficient := !r.InsufficientSince.IsZero()
	r.InsufficientSince = time.Time{}
	record(r, string(judge.Pass), ev.reason(), cr, br, e.Now)
	changed := wasUnavailable || wasInsufficient
	if r.Gate != "" {
		return persistIf(next, changed) // its gates decide what comes next
	}
	r.Reason = ""
	if r.Phase == model.RolloutPaused {
		r.Reason = "paused by hand" // a pass does not end the pause
	}
	if r.PromoteRequested {
		return promote(next, r, e.Now, "promoted by hand after a passing analysis", false)
	}
	if r.Phase == model.RolloutPaused || e.Now.Sub(r.StepSince) < r.Plan.Bake.D() {
		return persistIf(next, changed)
	}
	if len(r.Plan.GatesAt(model.GateStep)) > 0 {
		r.Gate, r.Reason = model.GateStep, "waiting for step gates"
		return bump(next), []Action{Persist}, nil
	}
	return nextStep(next, r, e.Now)
}

// insufficient says why the current step cannot pass yet, or "".
func insufficient(r *model.Rollout, e Analysis) string {
	ev := r.Evidence
	switch {
	case r.Applied() == 100:
		return "" // waiting for post gates: no baseline left to compare with
	case e.NoData != "":
		return e.NoData
	case ev.StepBaseline < r.Plan.MinRequests:
		return fmt.Sprintf("baseline served %.0f of the %.0f requests needed at this step", ev.StepBaseline, r.Plan.MinRequests)
	case ev.StepCandidate < r.Plan.MinRequests:
		return fmt.Sprintf("candidate served %.0f of the %.0f requests needed at this step", ev.StepCandidate, r.Plan.MinRequests)
	}
	return ""
}

func ratio(c model.Counts) float64 {
	if c.Requests <= 0 {
		return 0
	}
	return c.Errors / c.Requests
}

// observed is the evidence after one more interval.
type observed struct {
	state   model.Evidence
	errors  *judge.Sequential
	latency *judge.Latency
}

func (o observed) reason() string {
	if o.latency == nil {
		return o.errors.Reason()
	}
	return o.errors.Reason() + "; " + o.latency.Reason()
}

// observe adds the interval's counts to the switch's evidence; the
// rollout's own evidence is not modified.
func observe(r *model.Rollout, e Analysis) (observed, error) {
	var o observed
	if r.Evidence != nil {
		o.state = *r.Evidence
		o.state.ErrorsLogLR = slices.Clone(r.Evidence.ErrorsLogLR)
		o.state.Latency = slices.Clone(r.Evidence.Latency)
	}
	st := &o.state
	p := judge.Params{Confidence: r.Plan.Confidence, Margin: r.Plan.Margin, MinRequests: r.Plan.MinRequests}
	var err error
	cand := judge.Sample{Requests: st.Candidate.Requests, Errors: st.Candidate.Errors}
	base := judge.Sample{Requests: st.Baseline.Requests, Errors: st.Baseline.Errors}
	if st.ErrorsLogLR == nil || st.ErrorsTest != judge.SequentialVersion {
		// A new switch, or evidence of another version of the test (an
		// upgrade mid-switch): the test starts afresh on the same counts.
		o.errors, err = judge.ResumeSequential(p, judge.NewSequentialLogLR(), cand, base)
	} else {
		o.errors, err = judge.ResumeSequential(p, st.ErrorsLogLR, cand, base)
	}
	if err != nil {
		return o, err
	}
	st.ErrorsTest = judge.SequentialVersion
	if err := o.errors.Observe(e.Candidate, e.Baseline); err != nil {
		return o, err
	}
	if lp := r.Plan.Latency; lp != nil && e.CandidateLatency != nil && e.BaselineLatency != nil {
		params := latencyParams(r.Plan)
		if len(st.Latency) == 0 {
			o.latency, err = judge.NewLatency(params)
		} else {
			var ls judge.LatencyState
			if err = json.Unmarshal(st.Latency, &ls); err == nil {
				o.latency, err = judge.ResumeLatency(params, ls)
			}
			if err != nil {
				// Stored by another version of the test: start afresh.
				o.latency, err = judge.NewLatency(params)
			}
		}
		if err != nil {
			return o, err
		}
		if err := o.latency.Observe(*e.CandidateLatency, *e.BaselineLatency); err != nil {
			return o, err
		}
		b, err := json.Marshal(o.latency.State())
		if err != nil {
			return o, err
		}
		st.Latency, st.LatencyE = b, o.latency.EValue()
		if c, b, ok := o.latency.Quantiles(); ok {
			unit := lp.Unit.D().Seconds()
			st.CandidateQuantile, st.BaselineQuantile = c*unit, b*unit
		}
	}
	c, b := o.errors.Counts()
	st.Candidate, st.Baseline = model.Counts{Requests: c.Requests, Errors: c.Errors}, model.Counts{Requests: b.Requests, Errors: b.Errors}
	// Overwhelming evidence overflows the e-value to +Inf, which JSON
	// cannot store: the state that rolls back must still persist.
	st.ErrorsLogLR, st.ErrorsE = o.errors.LogLR(), min(o.errors.EValue(), math.MaxFloat64)
	if st.Step != r.Step {
		st.Step, st.StepCandidate, st.StepBaseline = r.Step, 0, 0
	}
	st.StepCandidate += e.Candidate.Requests
	st.StepBaseline += e.Baseline.Requests
	return o, nil
}

// latencyParams are the latency test's settings in the histogram's unit.
func latencyParams(p model.Plan) judge.LatencyParams {
	lp := p.Latency
	unit := "s"
	if lp.Unit.D() == time.Millisecond {
		unit = "ms"
	}
	return judge.LatencyParams{
		Quantile: lp.Quantile, Relative: lp.Relative,
		Absolute:   lp.Absolute.D().Seconds() / lp.Unit.D().Seconds(),
		Confidence: p.Confidence, MinRequests: p.MinRequests, Unit: unit,
	}
}

// nextStep moves the candidate to the next step; the last one promotes.
func nextStep(next model.Traffic, r *model.Rollout, now time.Time) (model.Traffic, []Action, error) {
	if r.Step+1 == len(r.Plan.Steps)-1 {
		return promote(next, r, now, "every step passed", false)
	}
	r.Step++
	r.StepSince = now
	setCandidate(&next, r.Percent())
	return bump(next), []Action{Persist, Push}, nil
}

// unavailable holds the split; past the budget the plan's policy applies.
func unavailable(next model.Traffic, r *model.Rollout, why string, now time.Time) (model.Traffic, []Action, error) {
	record(r, "unavailable", why, 0, 0, now)
	first := r.UnavailableSince.IsZero()
	if first {
		r.UnavailableSince = now
	}
	down := now.Sub(r.UnavailableSince)
	if down >= r.Plan.UnavailableBudget.D() && r.Plan.OnUnavailable == model.OnUnavailableRollback {
		r.DetectedAt = now
		return rollback(next, r, now, model.CauseMetricsUnavailable, "metrics unavailable for "+down.Round(time.Second).String()+": "+why)
	}
	r.Reason = "holding: metrics unavailable since " + r.UnavailableSince.UTC().Format(time.RFC3339) + ": " + why
	if down >= r.Plan.UnavailableBudget.D() {
		r.Reason += " (budget spent; policy hold)"
	}
	return persistIf(next, first)
}

func rollback(next model.Traffic, r *model.Rollout, now time.Time, cause model.Cause, reason string) (model.Traffic, []Action, error) {
	r.Cause = cause
	r.PromoteRequested, r.Gate = false, "" // a rollback cancels a requested promotion and pending gates
	if r.Plan.Rollback == model.RollbackGradual && r.Step > 0 {
		r.Phase, r.Reason = model.RolloutRollingBack, reason
		return stepBack(next, r, now)
	}
	return end(next, r, now, model.RolloutRolledBack, model.PhaseRolledBack, reason)
}

// stepBack walks the candidate down one step per interval, then ends.
func stepBack(next model.Traffic, r *model.Rollout, now time.Time) (model.Traffic, []Action, error) {
	if r.Step == 0 {
		return end(next, r, now, model.RolloutRolledBack, model.PhaseRolledBack, r.Reason)
	}
	r.Step--
	r.StepSince = now
	setCandidate(&next, r.Percent())
	return bump(next), []Action{Persist, Push}, nil
}

// promote puts all traffic on the candidate; the rollout ends promoted
// unless post gates must pass first (skipGates: they passed, or forced).
func promote(next model.Traffic, r *model.Rollout, now time.Time, reason string, skipGates bool) (model.Traffic, []Action, error) {
	route := routeInputs(next)
	if r.Step != len(r.Plan.Steps)-1 {
		r.Step, r.StepSince = len(r.Plan.Steps)-1, now
	}
	r.PromoteRequested = false
	setCandidate(&next, 100)
	if !skipGates && len(r.Plan.GatesAt(model.GatePost)) > 0 {
		r.Gate, r.Reason = model.GatePost, reason+"; waiting for post gates"
		return bump(next), persistPush(route, next), nil
	}
	r.Gate, r.EndedAt, r.Phase, r.Reason = "", now, model.RolloutPromoted, reason
	next.Phase = model.PhaseSwitched
	return bump(next), persistPush(route, next), nil
}

// routeInputs is what the service's route depends on: the split, and where
// pools and mirrored requests go.
func routeInputs(t model.Traffic) [2]string {
	return [2]string{strconv.Itoa(t.GreenPercent), string(t.Candidate())}
}

// persistPush pushes only when the route changes.
func persistPush(before [2]string, next model.Traffic) []Action {
	if routeInputs(next) == before {
		return []Action{Persist}
	}
	return []Action{Persist, Push}
}

// end puts all traffic on the stable colour and closes the rollout.
func end(next model.Traffic, r *model.Rollout, now time.Time, rp model.RolloutPhase, tp model.Phase, reason string) (model.Traffic, []Action, error) {
	r.Phase, r.EndedAt, r.Reason, r.PromoteRequested, r.Gate = rp, now, reason, false, ""
	next.Phase, next.Reason = tp, reason
	setCandidate(&next, 0)
	return bump(next), []Action{Persist, Push, Confirm}, nil
}

// setCandidate gives the rollout's candidate pct percent of the traffic.
func setCandidate(t *model.Traffic, pct int) {
	if t.Rollout.To == model.Green {
		t.GreenPercent = pct
	} else {
		t.GreenPercent = 100 - pct
	}
}

func record(r *model.Rollout, outcome, reason string, cand, base float64, now time.Time) {
	n := len(r.Verdicts)
	sv := model.StepVerdict{Step: r.Step, Percent: r.Percent(), Outcome: outcome, Reason: reason, CandidateRatio: cand, BaselineRatio: base, Analyses: 1, At: now}
	if n > 0 && r.Verdicts[n-1].Step == r.Step {
		sv.Analyses = r.Verdicts[n-1].Analyses + 1
		r.Verdicts[n-1] = sv
		return
	}
	r.Verdicts = append(r.Verdicts, sv)
}

func lastVerdict(r *model.Rollout) *model.StepVerdict {
	if len(r.Verdicts) == 0 {
		return nil
	}
	return &r.Verdicts[len(r.Verdicts)-1]
}

func bump(t model.Traffic) model.Traffic {
	t.Generation++
	return t
}

// persistIf persists a change that does not move traffic (e.g. the start
// of a metrics outage) when b; the generation still counts it.
func persistIf(t model.Traffic, b bool) (model.Traffic, []Action, error) {
	if b {
		return bump(t), []Action{Persist}, nil
	}
	return t, nil, nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func idFor(gen uint64) string { return "gen-" + strconv.FormatUint(gen, 10) }
