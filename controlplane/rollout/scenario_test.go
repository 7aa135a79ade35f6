package rollout

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
)

// move is one event of a scenario and what it must lead to.
type move struct {
	ev      Event
	actions []Action
	err     error              // errors.Is target; the state stays as it was
	errHas  string             // or a substring of the error
	green   int                // green share afterwards
	phase   model.RolloutPhase // rollout phase afterwards
	step    int                // rollout step afterwards
	check   func(t *testing.T, r *model.Rollout)
}

// play feeds the moves to Decide in turn. Every persisted change must add
// exactly one to the generation, and no later transition may change an
// earlier state.
func play(t *testing.T, from model.Traffic, moves []move) model.Traffic {
	t.Helper()
	cur := from
	wantGen := from.Generation
	var history, snaps []model.Traffic
	for i, m := range moves {
		history, snaps = append(history, cur), append(snaps, deepCopy(cur))
		next, acts, err := Decide(cur, m.ev)
		if m.err != nil || m.errHas != "" {
			if err == nil || (m.err != nil && !errors.Is(err, m.err)) || !strings.Contains(err.Error(), m.errHas) {
				t.Fatalf("move %d (%T): error %v, want %v %q", i, m.ev, err, m.err, m.errHas)
			}
			if d := diff(next, cur); len(d) > 0 || acts != nil {
				t.Fatalf("move %d (%T): failed move changed the state: %v %v", i, m.ev, d, acts)
			}
			continue
		}
		if err != nil {
			t.Fatalf("move %d (%T): %v", i, m.ev, err)
		}
		if !slices.Equal(acts, m.actions) || (acts == nil) != (m.actions == nil) {
			t.Errorf("move %d (%T): actions %v, want %v", i, m.ev, acts, m.actions)
		}
		checkInvariants(t, cur, next, acts)
		checkEvidence(t, cur, next, m.ev)
		if hasAction(acts, Persist) {
			wantGen++
		}
		if next.Generation != wantGen {
			t.Errorf("move %d: generation %d, want %d", i, next.Generation, wantGen)
		}
		r := next.Rollout
		if next.GreenPercent != m.green || r.Phase != m.phase || r.Step != m.step {
			t.Errorf("move %d (%T): green %d, %s at step %d; want green %d, %s at step %d",
				i, m.ev, next.GreenPercent, r.Phase, r.Step, m.green, m.phase, m.step)
		}
		if m.check != nil {
			m.check(t, r)
		}
		cur = next
	}
	for i := range history {
		if d := diff(history[i], snaps[i]); len(d) > 0 {
			t.Errorf("state before move %d changed later: %s", i, strings.Join(d, "; "))
		}
	}
	return cur
}

func TestScenarioWalkToPromotion(t *testing.T) {
	s := func(d time.Duration) time.Time { return at(d) }
	// The analyses the switch judges, in order: the evidence is theirs.
	seen := []Analysis{
		an(30*time.Second, judge.Pass), an(60*time.Second, judge.Pass), // step 0
		an(90*time.Second, judge.Insufficient), an(120*time.Second, judge.Pass), // step 1
		an(200*time.Second, judge.Pass), an(205*time.Second, judge.Insufficient), an(269*time.Second, judge.Pass), an(270*time.Second, judge.Pass), // step 2
	}
	end := play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: p4()}, actions: pp, green: 10, phase: progressing, step: 0},
		{ev: seen[0], green: 10, phase: progressing, step: 0},
		{ev: seen[1], actions: pp, green: 25, phase: progressing, step: 1},
		// The new step has served too little yet: hold, and persist the clock.
		{ev: seen[2], actions: p, green: 25, phase: progressing, step: 1, check: reasonHas("holding: " + insufficientWhy)},
		{ev: seen[3], actions: pp, green: 50, phase: progressing, step: 2},
		{ev: Pause{Now: s(130 * time.Second)}, actions: p, green: 50, phase: paused, step: 2},
		{ev: Pause{Now: s(131 * time.Second)}, green: 50, phase: paused, step: 2},
		{ev: seen[4], green: 50, phase: paused, step: 2},
		// A thin interval at a step that has served enough is not short:
		// the step's requests count, not the interval's.
		{ev: seen[5], green: 50, phase: paused, step: 2, check: func(t *testing.T, r *model.Rollout) {
			if v := r.Verdicts[len(r.Verdicts)-1]; v.Outcome != string(judge.Pass) || !r.InsufficientSince.IsZero() || r.Reason != "paused by hand" {
				t.Errorf("thin interval: %+v, insufficient since %v, reason %q", v, r.InsufficientSince, r.Reason)
			}
		}},
		{ev: Resume{Now: s(210 * time.Second)}, actions: p, green: 50, phase: progressing, step: 2,
			check: func(t *testing.T, r *model.Rollout) {
				if r.StepSince != s(210*time.Second) || r.Reason != "" {
					t.Errorf("resume: step since %v, reason %q", r.StepSince, r.Reason)
				}
			}},
		{ev: seen[6], green: 50, phase: progressing, step: 2},
		{ev: seen[7], actions: pp, green: 100, phase: model.RolloutPromoted, step: 3},
		{ev: an(300*time.Second, judge.Pass), err: ErrNotRunning},
		{ev: Abort{Now: s(301 * time.Second)}, err: ErrNotRunning},
	})
	want := []model.StepVerdict{
		recAfter(0, 10, judge.Pass, 2, 60*time.Second, seen[:2]...),
		recAfter(1, 25, judge.Pass, 2, 120*time.Second, seen[:4]...),
		recAfter(2, 50, judge.Pass, 4, 270*time.Second, seen...),
	}
	if !slices.Equal(end.Rollout.Verdicts, want) {
		t.Errorf("verdicts %+v\nwant %+v", end.Rollout.Verdicts, want)
	}
	if end.Generation != 8 || end.Phase != model.PhaseSwitched || end.Rollout.Reason != "every step passed" || end.Rollout.EndedAt != at(270*time.Second) {
		t.Errorf("end state %+v / %+v", end, *end.Rollout)
	}
	if !end.Rollout.InsufficientSince.IsZero() {
		t.Errorf("promoted with insufficient since %v", end.Rollout.InsufficientSince)
	}
}

func TestScenarioGradualRollbackOfBlue(t *testing.T) {
	from := model.Traffic{Stable: B, Target: G, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 4}
	seen := []Analysis{an(time.Minute, judge.Pass), an(2*time.Minute, judge.Pass), an(150*time.Second, judge.Fail)}
	why := "analysis failed: " + recAfter(2, 50, judge.Fail, 1, 150*time.Second, seen...).Reason
	detected := func(t *testing.T, r *model.Rollout) {
		if r.DetectedAt != at(150*time.Second) || r.Reason != why {
			t.Errorf("detected at %v, reason %q", r.DetectedAt, r.Reason)
		}
	}
	end := play(t, from, []move{
		{ev: Start{Now: t0, To: B, Plan: gradual(p4())}, actions: pp, green: 90, phase: progressing, step: 0},
		{ev: seen[0], actions: pp, green: 75, phase: progressing, step: 1},
		{ev: seen[1], actions: pp, green: 50, phase: progressing, step: 2},
		{ev: seen[2], actions: pp, green: 75, phase: rollingBack, step: 1, check: detected},
		// Then one step down per analysis, whatever it says.
		{ev: Promote{Now: at(155 * time.Second), Force: true}, errHas: "rolling back"},
		{ev: Pause{Now: at(155 * time.Second)}, green: 75, phase: rollingBack, step: 1},
		{ev: an(160*time.Second, judge.Pass), actions: pp, green: 90, phase: rollingBack, step: 0, check: detected},
		{ev: down(170 * time.Second), actions: ppc, green: 100, phase: model.RolloutRolledBack, step: 0, check: detected},
		{ev: an(180*time.Second, judge.Pass), err: ErrNotRunning},
		{ev: Resume{Now: at(181 * time.Second)}, err: ErrNotRunning},
	})
	if end.Generation != 10 || end.Phase != model.PhaseRolledBack || end.Serving() != G || end.Rollout.EndedAt != at(170*time.Second) {
		t.Errorf("end state %+v / %+v", end, *end.Rollout)
	}
	if !end.Rollout.UnavailableSince.IsZero() {
		t.Errorf("rolling back started an outage clock")
	}
	// The same colour can be tried again.
	play(t, end, []move{{ev: Start{Now: at(time.Hour), To: B, Plan: p4()}, actions: pp, green: 90, phase: progressing, step: 0,
		check: func(t *testing.T, r *model.Rollout) {
			if r.ID != "gen-11" || len(r.Verdicts) != 0 || !r.DetectedAt.IsZero() {
				t.Errorf("new rollout %+v", *r)
			}
		}}})
}

func TestScenarioOutageRecoveredThenBudgetSpent(t *testing.T) {
	since := func(d time.Duration) func(*testing.T, *model.Rollout) {
		return func(t *testing.T, r *model.Rollout) {
			if want := at(d); d < 0 && !r.UnavailableSince.IsZero() || d >= 0 && r.UnavailableSince != want {
				t.Errorf("unavailable since %v, want %v", r.UnavailableSince, d)
			}
		}
	}
	end := play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: p3()}, actions: pp, green: 10, phase: progressing, step: 0},
		{ev: down(10 * time.Second), actions: p, green: 10, phase: progressing, step: 0, check: since(10 * time.Second)},
		{ev: down(20 * time.Second), green: 10, phase: progressing, step: 0, check: since(10 * time.Second)},
		{ev: an(30*time.Second, judge.Pass), actions: p, green: 10, phase: progressing, step: 0, check: since(-1)},
		{ev: down(40 * time.Second), actions: p, green: 10, phase: progressing, step: 0, check: since(40 * time.Second)},
		{ev: down(100*time.Second - 1), green: 10, phase: progressing, step: 0, check: since(40 * time.Second)},
		{ev: down(100 * time.Second), actions: ppc, green: 0, phase: model.RolloutRolledBack, step: 0},
	})
	r := end.Rollout
	if r.Reason != "metrics unavailable for 1m0s: prom down" || r.Cause != model.CauseMetricsUnavailable || r.DetectedAt != at(100*time.Second) || end.Generation != 6 {
		t.Errorf("end %+v / %+v", end, *r)
	}
	if want := []model.StepVerdict{recDown(0, 10, 6, 100*time.Second)}; !slices.Equal(r.Verdicts, want) {
		t.Errorf("verdicts %+v, want %+v", r.Verdicts, want)
	}
}

func TestScenarioHoldPolicyOutlastsBudget(t *testing.T) {
	reason := func(has string) func(*testing.T, *model.Rollout) {
		return func(t *testing.T, r *model.Rollout) {
			if !strings.Contains(r.Reason, has) || (has == "" && r.Reason != "") {
				t.Errorf("reason %q, want it to contain %q", r.Reason, has)
			}
		}
	}
	play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: holdPolicy(p3())}, actions: pp, green: 10, phase: progressing, step: 0},
		{ev: down(10 * time.Second), actions: p, green: 10, phase: progressing, step: 0, check: reason("metrics unavailable since")},
		{ev: down(69 * time.Second), green: 10, phase: progressing, step: 0, check: func(t *testing.T, r *model.Rollout) {
			if strings.Contains(r.Reason, "budget") {
				t.Errorf("budget spent too early: %q", r.Reason)
			}
		}},
		{ev: down(70 * time.Second), green: 10, phase: progressing, step: 0, check: reason("(budget spent; policy hold)")},
		{ev: down(10 * time.Hour), green: 10, phase: progressing, step: 0, check: reason("(budget spent; policy hold)")},
		{ev: an(10*time.Hour+time.Second, judge.Pass), actions: pp, green: 40, phase: progressing, step: 1, check: reason("")},
	})
}

func TestScenarioPromoteRequests(t *testing.T) {
	play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: p4()}, actions: pp, green: 10, phase: progressing, step: 0},
		{ev: Promote{Now: at(5 * time.Second)}, actions: p, green: 10, phase: progressing, step: 0},
		{ev: an(10*time.Second, judge.Insufficient), actions: p, green: 10, phase: progressing, step: 0},
		{ev: down(15 * time.Second), actions: p, green: 10, phase: progressing, step: 0},
		{ev: an(20*time.Second, judge.Pass), actions: pp, green: 100, phase: model.RolloutPromoted, step: 3,
			check: func(t *testing.T, r *model.Rollout) {
				if r.PromoteRequested || r.Reason != "promoted by hand after a passing analysis" || len(r.Overrides) != 0 {
					t.Errorf("promoted %+v", *r)
				}
			}},
	})
	// A pass at the current step lets promote act at once.
	play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: p4()}, actions: pp, green: 10, phase: progressing, step: 0},
		{ev: an(time.Second, judge.Pass), green: 10, phase: progressing, step: 0},
		{ev: Promote{Now: at(2 * time.Second)}, actions: pp, green: 100, phase: model.RolloutPromoted, step: 3},
	})
	// After advancing, the pass at the earlier step does not count.
	play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: p4()}, actions: pp, green: 10, phase: progressing, step: 0},
		{ev: an(time.Minute, judge.Pass), actions: pp, green: 25, phase: progressing, step: 1},
		{ev: Promote{Now: at(61 * time.Second)}, actions: p, green: 25, phase: progressing, step: 1},
		{ev: Pause{Now: at(62 * time.Second)}, actions: p, green: 25, phase: paused, step: 1},
		{ev: Promote{Now: at(63 * time.Second), Force: true, Reason: "ship it"}, actions: pp, green: 100, phase: model.RolloutPromoted, step: 3,
			check: func(t *testing.T, r *model.Rollout) {
				if want := []string{"promote --force: analysis skipped (ship it)"}; !slices.Equal(r.Overrides, want) || r.PromoteRequested {
					t.Errorf("overrides %q, requested %v", r.Overrides, r.PromoteRequested)
				}
			}},
		{ev: Promote{Now: at(64 * time.Second)}, err: ErrNotRunning},
	})
}

func TestScenarioAbortAfterPause(t *testing.T) {
	end := play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: p3()}, actions: pp, green: 10, phase: progressing, step: 0},
		{ev: Pause{Now: at(time.Second)}, actions: p, green: 10, phase: paused, step: 0},
		{ev: Promote{Now: at(2 * time.Second)}, actions: p, green: 10, phase: paused, step: 0},
		{ev: Abort{Now: at(3 * time.Second), Reason: "changed my mind"}, actions: ppc, green: 0, phase: model.RolloutAborted, step: 0},
		{ev: Start{Now: at(4 * time.Second), To: G, Plan: model.Plan{}}, errHas: "steps"},
		{ev: Start{Now: at(4 * time.Second), To: B, Plan: p3()}, errHas: "other colour"},
	})
	if end.Phase != model.PhaseAborted || end.Reason != "changed my mind" || end.Rollout.PromoteRequested || end.Generation != 5 {
		t.Errorf("end %+v / %+v", end, *end.Rollout)
	}
}

func TestScenarioSingleStep(t *testing.T) {
	play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: plan(100)}, actions: pp, green: 100, phase: model.RolloutPromoted, step: 0},
		{ev: an(time.Minute, judge.Fail), err: ErrNotRunning},
		{ev: Start{Now: at(time.Minute), To: B, Plan: plan(100)}, actions: pp, green: 0, phase: model.RolloutPromoted, step: 0},
		{ev: Start{Now: at(2 * time.Minute), To: B, Plan: plan(100)}, errHas: "other colour"},
	})
}
