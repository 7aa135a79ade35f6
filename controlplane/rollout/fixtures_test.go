package rollout

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
)

// t0 is the fixed time base: every fixture's current step began at t0.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func dur(d time.Duration) model.Duration { return model.Duration(d) }

// plan is a valid plan: bake 1m, both budgets 1m with the rollback policy,
// instant rollback.
func plan(steps ...int) model.Plan {
	return model.Plan{
		Steps:              steps,
		Bake:               dur(time.Minute),
		Interval:           dur(10 * time.Second),
		MinRequests:        50,
		Confidence:         0.99,
		Margin:             0.1,
		UnavailableBudget:  dur(time.Minute),
		OnUnavailable:      model.OnUnavailableRollback,
		InsufficientBudget: dur(time.Minute),
		OnInsufficient:     model.OnUnavailableRollback,
		Rollback:           model.RollbackInstant,
	}
}

// Steps chosen so that a colour's share never equals its mirror.
func p3() model.Plan { return plan(10, 40, 100) }
func p4() model.Plan { return plan(10, 25, 50, 100) }

func gradual(p model.Plan) model.Plan { p.Rollback = model.RollbackGradual; return p }
func holdPolicy(p model.Plan) model.Plan {
	p.OnUnavailable = model.OnUnavailableHold
	return p
}
func holdInsufficient(p model.Plan) model.Plan {
	p.OnInsufficient = model.OnUnavailableHold
	return p
}
func withBake(p model.Plan, d time.Duration) model.Plan { p.Bake = dur(d); return p }

// latencyPlan judges p99 latency too, on Envoy-style millisecond
// histograms: slower than 20 % and 50 ms fails.
func latencyPlan(p model.Plan) model.Plan {
	p.Latency = &model.LatencyPlan{Quantile: 0.99, Relative: 0.2, Absolute: dur(50 * time.Millisecond), Unit: dur(time.Millisecond)}
	return p
}

// greenFor is the green share when candidate to holds pct percent.
func greenFor(to model.Color, pct int) int {
	if to == model.Green {
		return pct
	}
	return 100 - pct
}

// running is a switch to colour to at step, which began at t0.
func running(to model.Color, p model.Plan, step int, phase model.RolloutPhase) model.Traffic {
	from := to.Other()
	r := &model.Rollout{
		ID: "gen-3", From: from, To: to, Plan: p, Phase: phase, Step: step,
		StepSince: t0, StartedAt: t0.Add(-10 * time.Minute), Verdicts: []model.StepVerdict{},
	}
	switch phase {
	case model.RolloutPaused:
		r.Reason = "paused by hand"
	case model.RolloutRollingBack:
		r.Reason = "analysis failed: x"
		r.DetectedAt = t0.Add(-10 * time.Second)
		r.Cause = model.CauseAnalysisFailed
	}
	return model.Traffic{
		Stable: from, Target: to, GreenPercent: greenFor(to, p.Steps[step]), Phase: model.PhaseSwitching,
		Generation: 7, Reason: "progressive switch to " + string(to), Rollout: r,
	}
}

// ended is a switch to colour to that ended in phase.
func ended(to model.Color, phase model.RolloutPhase) model.Traffic {
	p := p3()
	t := running(to, p, 1, model.RolloutProgressing)
	t.Rollout.Phase, t.Rollout.EndedAt = phase, t0
	switch phase {
	case model.RolloutPromoted:
		t.Rollout.Step = 2
		t.Phase, t.GreenPercent = model.PhaseSwitched, greenFor(to, 100)
	case model.RolloutRolledBack:
		t.Phase, t.GreenPercent = model.PhaseRolledBack, greenFor(to, 0)
	case model.RolloutAborted:
		t.Phase, t.GreenPercent = model.PhaseAborted, greenFor(to, 0)
	}
	return t
}

// with returns a deep copy of t changed by f.
func with(t model.Traffic, f func(*model.Traffic)) model.Traffic {
	c := deepCopy(t)
	f(&c)
	return c
}

func deepCopy(t model.Traffic) model.Traffic {
	if t.Rollout == nil {
		return t
	}
	r := *t.Rollout
	r.Plan.Steps = slices.Clone(r.Plan.Steps)
	r.Plan.Gates = slices.Clone(r.Plan.Gates)
	if r.Plan.Latency != nil {
		l := *r.Plan.Latency
		r.Plan.Latency = &l
	}
	r.Verdicts = slices.Clone(r.Verdicts)
	r.Overrides = slices.Clone(r.Overrides)
	r.GateResults = slices.Clone(r.GateResults)
	if r.Evidence != nil {
		ev := *r.Evidence
		ev.ErrorsLogLR = slices.Clone(ev.ErrorsLogLR)
		ev.Latency = slices.Clone(ev.Latency)
		r.Evidence = &ev
	}
	t.Rollout = &r
	return t
}

// counts are what one analysis of each outcome reads: an interval's
// increments for the candidate and the baseline. The judge, not the
// fixture, turns them into the outcome (see TestFixtureOutcomes).
var counts = map[judge.Outcome][2]judge.Sample{
	judge.Pass:         {{Requests: 1000, Errors: 10}, {Requests: 1000, Errors: 10}},
	judge.Fail:         {{Requests: 1000, Errors: 400}, {Requests: 1000, Errors: 10}},
	judge.Insufficient: {{Requests: 10}, {Requests: 10}},             // below MinRequests (50)
	judge.Invalid:      {{Requests: 10, Errors: 20}, {Requests: 10}}, // errors > requests
}

// an is a primed analysis at d whose counts lead to outcome o at a step
// that had no requests before it.
func an(d time.Duration, o judge.Outcome) Analysis {
	c, ok := counts[o]
	if !ok {
		panic("no counts for outcome " + string(o))
	}
	return Analysis{Now: at(d), Primed: true, Candidate: c[0], Baseline: c[1]}
}

// interval is a primed analysis at d with the given increments.
func interval(d time.Duration, candidate, baseline judge.Sample) Analysis {
	return Analysis{Now: at(d), Primed: true, Candidate: candidate, Baseline: baseline}
}

func down(d time.Duration) Analysis { return Analysis{Now: at(d), Unavailable: "prom down"} }

// params are the judge's settings for every fixture plan.
func params(pl model.Plan) judge.Params {
	return judge.Params{Confidence: pl.Confidence, Margin: pl.Margin, MinRequests: pl.MinRequests}
}

// judgeOf runs the real sequential test over the analyses' counts, as a
// switch that saw exactly these analyses since it began.
func judgeOf(pl model.Plan, as ...Analysis) *judge.Sequential {
	s, err := judge.NewSequential(params(pl))
	if err != nil {
		panic(err)
	}
	for _, a := range as {
		if err := s.Observe(a.Candidate, a.Baseline); err != nil {
			panic(err)
		}
	}
	return s
}

var (
	// insufficientWhy is the hold reason of an(d, judge.Insufficient) at a
	// step without earlier requests: the baseline is checked first.
	insufficientWhy = "baseline served 10 of the 50 requests needed at this step"
	// invalidWhy is what an(d, judge.Invalid) is unavailable for.
	invalidWhy = func() string {
		c := counts[judge.Invalid]
		s, err := judge.NewSequential(params(p3()))
		if err != nil {
			panic(err)
		}
		err = s.Observe(c[0], c[1])
		if err == nil {
			panic("invalid counts were judged")
		}
		return "invalid counts: " + err.Error()
	}()
	// failWhy is the rollback reason of one failing analysis from the start.
	failWhy = "analysis failed: " + judgeOf(p3(), an(0, judge.Fail)).Reason()
)

// rec is the record an(d, o) leaves at step when it is the first analysis
// since the switch began (n counts the step's analyses): reason and ratios
// come from the judge on the same counts.
func rec(step, pct int, o judge.Outcome, n int, d time.Duration) model.StepVerdict {
	switch o {
	case judge.Insufficient:
		return model.StepVerdict{Step: step, Percent: pct, Outcome: string(o), Reason: insufficientWhy, Analyses: n, At: at(d)}
	case judge.Invalid:
		return model.StepVerdict{Step: step, Percent: pct, Outcome: "unavailable", Reason: invalidWhy, Analyses: n, At: at(d)}
	}
	return recAfter(step, pct, o, n, d, an(d, o))
}

// recAfter is the pass or fail record left at step by the last of seen,
// the primed analyses since the switch began.
func recAfter(step, pct int, o judge.Outcome, n int, d time.Duration, seen ...Analysis) model.StepVerdict {
	if o != judge.Pass && o != judge.Fail {
		panic("recAfter: " + string(o))
	}
	s := judgeOf(p3(), seen...)
	if s.Failed() != (o == judge.Fail) {
		panic(fmt.Sprintf("recAfter: the judge says failed=%v, want %s", s.Failed(), o))
	}
	c, b := s.Counts()
	return model.StepVerdict{Step: step, Percent: pct, Outcome: string(o), Reason: s.Reason(),
		CandidateRatio: c.Errors / c.Requests, BaselineRatio: b.Errors / b.Requests, Analyses: n, At: at(d)}
}

// recDown is the record down(d) leaves at step.
func recDown(step, pct, n int, d time.Duration) model.StepVerdict {
	return model.StepVerdict{Step: step, Percent: pct, Outcome: "unavailable", Reason: "prom down", Analyses: n, At: at(d)}
}

// withEvidence gives tr's switch the evidence of the analyses, all seen at
// its current step, as the judge computes it.
func withEvidence(tr model.Traffic, as ...Analysis) model.Traffic {
	return with(tr, func(w *model.Traffic) {
		s := judgeOf(w.Rollout.Plan, as...)
		c, b := s.Counts()
		ev := &model.Evidence{
			Candidate:   model.Counts{Requests: c.Requests, Errors: c.Errors},
			Baseline:    model.Counts{Requests: b.Requests, Errors: b.Errors},
			ErrorsLogLR: s.LogLR(), ErrorsE: s.EValue(), ErrorsTest: judge.SequentialVersion, Step: w.Rollout.Step,
		}
		for _, a := range as {
			ev.StepCandidate += a.Candidate.Requests
			ev.StepBaseline += a.Baseline.Requests
		}
		w.Rollout.Evidence = ev
	})
}

// diff lists the fields in which two traffic states differ, except the
// rollout fields named in skip.
func diff(got, want model.Traffic, skip ...string) []string {
	var out []string
	cmp := func(prefix string, g, w reflect.Value) {
		for i := 0; i < g.NumField(); i++ {
			name := g.Type().Field(i).Name
			if prefix == "" && name == "Rollout" || prefix != "" && slices.Contains(skip, name) {
				continue
			}
			if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
				out = append(out, fmt.Sprintf("%s%s: got %+v, want %+v", prefix, name, g.Field(i).Interface(), w.Field(i).Interface()))
			}
		}
	}
	cmp("", reflect.ValueOf(got), reflect.ValueOf(want))
	switch {
	case got.Rollout == nil && want.Rollout == nil:
	case got.Rollout == nil || want.Rollout == nil:
		out = append(out, fmt.Sprintf("Rollout: got %v, want %v", got.Rollout, want.Rollout))
	default:
		cmp("Rollout.", reflect.ValueOf(*got.Rollout), reflect.ValueOf(*want.Rollout))
	}
	return out
}

func hasAction(acts []Action, a Action) bool { return slices.Contains(acts, a) }

// checkInvariants holds for every successful transition.
func checkInvariants(t *testing.T, in, out model.Traffic, acts []Action) {
	t.Helper()
	if err := out.Validate(); err != nil {
		t.Errorf("result does not validate: %v", err)
	}
	if len(acts) > 0 && acts[0] != Persist {
		t.Errorf("actions %v: Persist must come first", acts)
	}
	if hasAction(acts, Persist) {
		if out.Generation != in.Generation+1 {
			t.Errorf("persisting change: generation %d, want %d", out.Generation, in.Generation+1)
		}
		// What is persisted must be storable, and read back as it was.
		if b, err := json.Marshal(out); err != nil {
			t.Errorf("persisted state cannot be stored: %v", err)
		} else {
			var back model.Traffic
			if err := json.Unmarshal(b, &back); err != nil {
				t.Errorf("persisted state cannot be read back: %v", err)
			} else if back.Rollout != nil && !reflect.DeepEqual(back.Rollout.Evidence, out.Rollout.Evidence) {
				t.Errorf("evidence read back %+v, stored %+v", back.Rollout.Evidence, out.Rollout.Evidence)
			}
		}
	} else {
		if out.Generation != in.Generation {
			t.Errorf("change not persisted: generation %d, want %d", out.Generation, in.Generation)
		}
		if len(acts) != 0 {
			t.Errorf("actions %v without Persist", acts)
		}
		if out.GreenPercent != in.GreenPercent || out.Phase != in.Phase || out.Stable != in.Stable || out.Target != in.Target {
			t.Errorf("traffic changed without actions: %+v -> %+v", in, out)
		}
	}
	// The route depends on the split and on where pools and mirroring point.
	if moved := out.GreenPercent != in.GreenPercent || out.Candidate() != in.Candidate(); moved != hasAction(acts, Push) {
		t.Errorf("green %d -> %d, candidate %q -> %q, but actions %v", in.GreenPercent, out.GreenPercent, in.Candidate(), out.Candidate(), acts)
	}
	r := out.Rollout
	if r == nil {
		t.Fatalf("no rollout in result")
	}
	flippedBack := r.Phase == model.RolloutRolledBack || r.Phase == model.RolloutAborted
	if hasAction(acts, Confirm) != flippedBack {
		t.Errorf("rollout %s: actions %v", r.Phase, acts)
	}
	switch {
	case flippedBack:
		if out.Serving() != r.From || out.Percent(r.To) != 0 {
			t.Errorf("ended %s with %d%% on candidate %s", r.Phase, out.Percent(r.To), r.To)
		}
		if r.EndedAt.IsZero() {
			t.Errorf("ended %s without EndedAt", r.Phase)
		}
	case r.Phase == model.RolloutPromoted:
		if out.Serving() != r.To || r.Step != len(r.Plan.Steps)-1 || r.EndedAt.IsZero() || out.Phase != model.PhaseSwitched {
			t.Errorf("promoted but %+v / %+v", out, *r)
		}
	default:
		if out.Percent(r.To) != r.Applied() {
			t.Errorf("candidate %s has %d%%, step %d says %d%%", r.To, out.Percent(r.To), r.Step, r.Applied())
		}
		if !r.EndedAt.IsZero() {
			t.Errorf("running rollout has EndedAt")
		}
	}
	if out.Stable != r.From || out.Target != r.To {
		t.Errorf("stable/target %s/%s, rollout %s->%s", out.Stable, out.Target, r.From, r.To)
	}
	if r.PromoteRequested && !r.Phase.Running() {
		t.Errorf("ended rollout still has PromoteRequested")
	}
	steps := map[int]bool{}
	for i, v := range r.Verdicts {
		if steps[v.Step] {
			t.Errorf("two verdict records for step %d", v.Step)
		}
		steps[v.Step] = true
		if v.Analyses < 1 || v.Percent != r.Plan.Steps[v.Step] {
			t.Errorf("verdict %d malformed: %+v", i, v)
		}
	}
}

// checkNoAlias writes into the result and checks the input did not change.
func checkNoAlias(t *testing.T, in, snap, out model.Traffic) {
	t.Helper()
	if out.Rollout == nil || in.Rollout == nil {
		return
	}
	if out.Rollout == in.Rollout {
		if d := diff(out, snap); len(d) > 0 {
			t.Errorf("result shares the input's rollout but differs: %s", strings.Join(d, "; "))
		}
		return
	}
	out.Rollout.Reason = "MUTATED"
	out.Rollout.Verdicts = append(out.Rollout.Verdicts, model.StepVerdict{Outcome: "MUTATED"})
	for i := range out.Rollout.Verdicts {
		out.Rollout.Verdicts[i].Outcome = "MUTATED"
	}
	out.Rollout.Overrides = append(out.Rollout.Overrides, "MUTATED")
	for i := range out.Rollout.Overrides {
		out.Rollout.Overrides[i] = "MUTATED"
	}
	// Decide never writes into an evidence it was given, so a result may
	// share it; new evidence must not share the input's slices.
	if ev := out.Rollout.Evidence; ev != nil && ev != in.Rollout.Evidence {
		ev.Candidate.Requests = -1
		for i := range ev.ErrorsLogLR {
			ev.ErrorsLogLR[i] = -1
		}
		for i := range ev.Latency {
			ev.Latency[i] = 'X'
		}
	}
	if d := diff(in, snap); len(d) > 0 {
		t.Errorf("result aliases the input: %s", strings.Join(d, "; "))
	}
}

// observes says whether Decide must add a's counts to the switch's evidence:
// a running, judged switch (not rolling back, no pre gates pending) and a
// primed read of valid counts.
func observes(in model.Traffic, a Analysis) bool {
	r := in.Rollout
	if r == nil || !r.Phase.Running() || r.Phase == rollingBack || r.Gate == model.GatePre || a.Unavailable != "" || !a.Primed {
		return false
	}
	for _, x := range []judge.Sample{a.Candidate, a.Baseline} {
		if !(x.Requests >= 0 && x.Errors >= 0 && x.Errors <= x.Requests) || math.IsInf(x.Requests, 0) {
			return false
		}
	}
	return true
}

// checkEvidence checks what a transition did to the switch's evidence: an
// observed analysis adds exactly its counts (to the step's too, from zero
// at a new step) and carries the error test on from where it was; anything
// else leaves the evidence as it was.
func checkEvidence(t *testing.T, in, out model.Traffic, ev Event) {
	t.Helper()
	if _, ok := ev.(Start); ok {
		// A new switch starts without evidence: nothing from an earlier
		// attempt is judged again.
		if out.Rollout != nil && out.Rollout != in.Rollout && out.Rollout.Evidence != nil {
			t.Errorf("a new switch starts with evidence %+v", *out.Rollout.Evidence)
		}
		return
	}
	a, ok := ev.(Analysis)
	if !ok || !observes(in, a) {
		if in.Rollout != nil && out.Rollout != nil && !reflect.DeepEqual(in.Rollout.Evidence, out.Rollout.Evidence) {
			t.Errorf("evidence changed by %T: %+v -> %+v", ev, in.Rollout.Evidence, out.Rollout.Evidence)
		}
		return
	}
	r := in.Rollout
	var was model.Evidence
	if r.Evidence != nil {
		was = *r.Evidence
	}
	got := out.Rollout.Evidence
	if got == nil {
		t.Fatalf("no evidence after an observed analysis")
	}
	add := func(c model.Counts, s judge.Sample) model.Counts {
		return model.Counts{Requests: c.Requests + s.Requests, Errors: c.Errors + s.Errors}
	}
	if want := add(was.Candidate, a.Candidate); got.Candidate != want {
		t.Errorf("evidence: candidate %+v, want %+v", got.Candidate, want)
	}
	if want := add(was.Baseline, a.Baseline); got.Baseline != want {
		t.Errorf("evidence: baseline %+v, want %+v", got.Baseline, want)
	}
	stepC, stepB := a.Candidate.Requests, a.Baseline.Requests
	if r.Evidence != nil && was.Step == r.Step {
		stepC += was.StepCandidate
		stepB += was.StepBaseline
	}
	if got.Step != r.Step || got.StepCandidate != stepC || got.StepBaseline != stepB {
		t.Errorf("evidence: step %d with %v/%v requests, want step %d with %v/%v", got.Step, got.StepCandidate, got.StepBaseline, r.Step, stepC, stepB)
	}
	var s *judge.Sequential
	var err error
	if r.Evidence == nil {
		s, err = judge.NewSequential(params(r.Plan))
	} else {
		s, err = judge.ResumeSequential(params(r.Plan), was.ErrorsLogLR,
			judge.Sample{Requests: was.Candidate.Requests, Errors: was.Candidate.Errors},
			judge.Sample{Requests: was.Baseline.Requests, Errors: was.Baseline.Errors})
	}
	if err != nil {
		t.Fatalf("evidence: %v", err)
	}
	if err := s.Observe(a.Candidate, a.Baseline); err != nil {
		t.Fatalf("evidence: %v", err)
	}
	if !slices.Equal(got.ErrorsLogLR, s.LogLR()) {
		t.Errorf("evidence: error test state %v, want %v", got.ErrorsLogLR, s.LogLR())
	}
	if e := s.EValue(); got.ErrorsE != e && !(math.IsInf(e, 1) && got.ErrorsE == math.MaxFloat64) {
		t.Errorf("evidence: e-value %v, want %v", got.ErrorsE, e)
	}
	if math.IsNaN(got.ErrorsE) || math.IsInf(got.ErrorsE, 0) || got.ErrorsE < 0 {
		t.Errorf("evidence: e-value %v is not a finite number ≥ 0", got.ErrorsE)
	}
	if r.Plan.Latency == nil || a.CandidateLatency == nil || a.BaselineLatency == nil {
		if !slices.Equal(got.Latency, was.Latency) || got.LatencyE != was.LatencyE || got.CandidateQuantile != was.CandidateQuantile || got.BaselineQuantile != was.BaselineQuantile {
			t.Errorf("evidence: latency changed without being judged: %+v -> %+v", was, *got)
		}
	}
}
