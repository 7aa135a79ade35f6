// Package rollout is the progressive-switch state machine: given the
// current traffic state and one event, it returns the next state and the
// actions to carry out. It does no I/O, so every transition is table-tested.
package rollout

import (
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
)

// Action is something the caller must do after a transition, in order.
type Action string

const (
	// Persist the new state (check-and-set) before anything else.
	Persist Action = "persist"
	// Push the new split to the proxies.
	Push Action = "push"
	// Confirm waits for every proxy to ACK a flip back and records the time.
	Confirm Action = "confirm"
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

// Analysis is one interval's result: a verdict, or why metrics were unavailable.
type Analysis struct {
	Now         time.Time
	Verdict     judge.Verdict
	Unavailable string // non-empty: no verdict, metrics unavailable
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

// Abort puts all traffic back on the stable colour by hand.
type Abort struct {
	Now    time.Time
	Reason string
}

func (e Start) at() time.Time    { return e.Now }
func (e Analysis) at() time.Time { return e.Now }
func (e Pause) at() time.Time    { return e.Now }
func (e Resume) at() time.Time   { return e.Now }
func (e Promote) at() time.Time  { return e.Now }
func (e Abort) at() time.Time    { return e.Now }

// Decide applies one event. The input is never modified. A nil action list
// means nothing changed.
func Decide(t model.Traffic, ev Event) (model.Traffic, []Action, error) {
	if e, ok := ev.(Start); ok {
		return start(t, e)
	}
	if !t.Switching() {
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
			r.Overrides = append(r.Overrides, "promote --force: analysis skipped ("+orDefault(e.Reason, "no reason given")+")")
			return promote(next, &r, e.Now, "promoted by hand, analysis skipped")
		}
		if last := lastVerdict(&r); last != nil && last.Outcome == string(judge.Pass) && last.Step == r.Step {
			return promote(next, &r, e.Now, "promoted by hand after a passing analysis")
		}
		r.PromoteRequested = true
		return bump(next), []Action{Persist}, nil
	case Abort:
		return end(next, &r, e.Now, model.RolloutAborted, model.PhaseAborted, orDefault(e.Reason, "aborted by hand"))
	}
	return t, nil, errors.New("unknown event")
}

func start(t model.Traffic, e Start) (model.Traffic, []Action, error) {
	if t.Switching() {
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
	setCandidate(&next, e.Plan.Steps[0])
	if e.Plan.Steps[0] == 100 {
		r.Phase, r.EndedAt, r.Reason = model.RolloutPromoted, e.Now, "single step of 100%"
		next.Phase = model.PhaseSwitched
	}
	return next, []Action{Persist, Push}, nil
}

func analyse(next model.Traffic, r *model.Rollout, e Analysis) (model.Traffic, []Action, error) {
	if r.Phase == model.RolloutRollingBack {
		return stepBack(next, r, e.Now)
	}
	if e.Unavailable != "" {
		return unavailable(next, r, e)
	}
	v := e.Verdict
	wasUnavailable := !r.UnavailableSince.IsZero()
	r.UnavailableSince = time.Time{}
	record(r, string(v.Outcome), v.Reason, v.CandidateRatio, v.BaselineRatio, e.Now)
	switch v.Outcome {
	case judge.Fail:
		r.DetectedAt = e.Now
		return rollback(next, r, e.Now, "analysis failed: "+v.Reason)
	case judge.Pass:
	default: // insufficient or invalid: hold, never advance
		r.Reason = "holding: " + v.Reason
		return persistIf(next, wasUnavailable)
	}
	r.Reason = ""
	if r.Phase == model.RolloutPaused {
		r.Reason = "paused by hand" // a pass does not end the pause
	}
	if r.PromoteRequested {
		return promote(next, r, e.Now, "promoted by hand after a passing analysis")
	}
	if r.Phase == model.RolloutPaused || e.Now.Sub(r.StepSince) < r.Plan.Bake.D() {
		return persistIf(next, wasUnavailable)
	}
	if r.Step+1 == len(r.Plan.Steps)-1 {
		return promote(next, r, e.Now, "every step passed")
	}
	r.Step++
	r.StepSince = e.Now
	setCandidate(&next, r.Percent())
	return bump(next), []Action{Persist, Push}, nil
}

// unavailable holds the split; past the budget the plan's policy applies.
func unavailable(next model.Traffic, r *model.Rollout, e Analysis) (model.Traffic, []Action, error) {
	record(r, "unavailable", e.Unavailable, 0, 0, e.Now)
	first := r.UnavailableSince.IsZero()
	if first {
		r.UnavailableSince = e.Now
	}
	down := e.Now.Sub(r.UnavailableSince)
	if down >= r.Plan.UnavailableBudget.D() && r.Plan.OnUnavailable == model.OnUnavailableRollback {
		r.DetectedAt = e.Now
		return rollback(next, r, e.Now, "metrics unavailable for "+down.Round(time.Second).String()+": "+e.Unavailable)
	}
	r.Reason = "holding: metrics unavailable since " + r.UnavailableSince.UTC().Format(time.RFC3339) + ": " + e.Unavailable
	if down >= r.Plan.UnavailableBudget.D() {
		r.Reason += " (budget spent; policy hold)"
	}
	return persistIf(next, first)
}

func rollback(next model.Traffic, r *model.Rollout, now time.Time, reason string) (model.Traffic, []Action, error) {
	r.PromoteRequested = false // a rollback cancels a requested promotion
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

func promote(next model.Traffic, r *model.Rollout, now time.Time, reason string) (model.Traffic, []Action, error) {
	r.Step = len(r.Plan.Steps) - 1
	r.StepSince, r.EndedAt, r.Phase, r.Reason, r.PromoteRequested = now, now, model.RolloutPromoted, reason, false
	next.Phase = model.PhaseSwitched
	setCandidate(&next, 100)
	return bump(next), []Action{Persist, Push}, nil
}

// end puts all traffic on the stable colour and closes the rollout.
func end(next model.Traffic, r *model.Rollout, now time.Time, rp model.RolloutPhase, tp model.Phase, reason string) (model.Traffic, []Action, error) {
	r.Phase, r.EndedAt, r.Reason, r.PromoteRequested = rp, now, reason, false
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
