package rollout

import (
	"fmt"
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

// plan is a valid plan: bake 1m, budget 1m, rollback policy, instant rollback.
func plan(steps ...int) model.Plan {
	return model.Plan{
		Steps:             steps,
		Bake:              dur(time.Minute),
		Interval:          dur(10 * time.Second),
		Window:            dur(time.Minute),
		MinRequests:       50,
		Confidence:        0.99,
		Margin:            0.1,
		UnavailableBudget: dur(time.Minute),
		OnUnavailable:     model.OnUnavailableRollback,
		Rollback:          model.RollbackInstant,
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
func withBake(p model.Plan, d time.Duration) model.Plan { p.Bake = dur(d); return p }

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
	r.Verdicts = slices.Clone(r.Verdicts)
	r.Overrides = slices.Clone(r.Overrides)
	t.Rollout = &r
	return t
}

// Verdicts every test analysis carries.
func verdict(o judge.Outcome) judge.Verdict {
	return judge.Verdict{Outcome: o, Reason: string(o) + " reason", CandidateRatio: 0.02, BaselineRatio: 0.01, PValue: 0.5}
}

func an(d time.Duration, o judge.Outcome) Analysis {
	return Analysis{Now: at(d), Verdict: verdict(o)}
}

func down(d time.Duration) Analysis { return Analysis{Now: at(d), Unavailable: "prom down"} }

// rec is the record an(d, o) leaves at step.
func rec(step, pct int, o judge.Outcome, n int, d time.Duration) model.StepVerdict {
	return model.StepVerdict{Step: step, Percent: pct, Outcome: string(o), Reason: string(o) + " reason",
		CandidateRatio: 0.02, BaselineRatio: 0.01, Analyses: n, At: at(d)}
}

// recDown is the record down(d) leaves at step.
func recDown(step, pct, n int, d time.Duration) model.StepVerdict {
	return model.StepVerdict{Step: step, Percent: pct, Outcome: "unavailable", Reason: "prom down", Analyses: n, At: at(d)}
}

// diff lists the fields in which two traffic states differ.
func diff(got, want model.Traffic) []string {
	var out []string
	cmp := func(prefix string, g, w reflect.Value) {
		for i := 0; i < g.NumField(); i++ {
			name := g.Type().Field(i).Name
			if prefix == "" && name == "Rollout" {
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
	if d := diff(in, snap); len(d) > 0 {
		t.Errorf("result aliases the input: %s", strings.Join(d, "; "))
	}
}
