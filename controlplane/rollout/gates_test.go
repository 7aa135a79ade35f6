package rollout

import (
	"strings"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/judge"
	"github.com/bgctl/bg/controlplane/model"
)

func gateAt(name, onFailure string, stages ...string) model.Gate {
	return model.Gate{Name: name, URL: "http://127.0.0.1:1/" + name, Stages: stages, Timeout: dur(time.Second), OnFailure: onFailure}
}

func withGates(p model.Plan, gs ...model.Gate) model.Plan { p.Gates = gs; return p }

func outcome(d time.Duration, stage string, results ...model.GateResult) GateOutcome {
	return GateOutcome{Now: at(d), Stage: stage, Results: results}
}

func passed(name string) model.GateResult {
	return model.GateResult{Gate: name, Passed: true, Status: 200}
}
func failed(name string) model.GateResult {
	return model.GateResult{Gate: name, Status: 500, Detail: "smoke test failed"}
}

func gateIs(stage string) func(t *testing.T, r *model.Rollout) {
	return func(t *testing.T, r *model.Rollout) {
		t.Helper()
		if r.Gate != stage {
			t.Errorf("pending gate %q, want %q (reason %q)", r.Gate, stage, r.Reason)
		}
	}
}

func reasonHas(s string) func(t *testing.T, r *model.Rollout) {
	return func(t *testing.T, r *model.Rollout) {
		t.Helper()
		if !strings.Contains(r.Reason, s) {
			t.Errorf("reason %q does not mention %q", r.Reason, s)
		}
	}
}

func TestGatesWalkEveryStage(t *testing.T) {
	pl := withGates(p3(), gateAt("smoke", model.GateRollback, model.GatePre, model.GateStep, model.GatePost))
	end := play(t, model.InitialTraffic(), []move{
		// Pre: the switch runs (pools see green) but no traffic moves.
		{ev: Start{Now: t0, To: G, Plan: pl}, actions: pp, green: 0, phase: progressing, step: 0, check: gateIs(model.GatePre)},
		{ev: an(5*time.Second, judge.Pass), green: 0, phase: progressing, step: 0, check: gateIs(model.GatePre)},
		{ev: outcome(10*time.Second, model.GatePre, passed("smoke")), actions: pp, green: 10, phase: progressing, step: 0,
			check: func(t *testing.T, r *model.Rollout) {
				if r.Gate != "" || r.StepSince != at(10*time.Second) {
					t.Errorf("after pre gates: gate %q, step since %v", r.Gate, r.StepSince)
				}
			}},
		// Between steps: a passing analysis after the bake waits for the gate.
		{ev: an(70*time.Second, judge.Pass), actions: p, green: 10, phase: progressing, step: 0, check: gateIs(model.GateStep)},
		{ev: an(80*time.Second, judge.Pass), green: 10, phase: progressing, step: 0, check: gateIs(model.GateStep)},
		{ev: outcome(81*time.Second, model.GatePre, passed("smoke")), green: 10, phase: progressing, step: 0, check: gateIs(model.GateStep)},
		{ev: outcome(82*time.Second, model.GateStep, passed("smoke")), actions: pp, green: 40, phase: progressing, step: 1, check: gateIs("")},
		// The last step: 100 % first, then the post gates, then promoted.
		{ev: an(150*time.Second, judge.Pass), actions: p, green: 40, phase: progressing, step: 1, check: gateIs(model.GateStep)},
		{ev: outcome(151*time.Second, model.GateStep, passed("smoke")), actions: pp, green: 100, phase: progressing, step: 2, check: gateIs(model.GatePost)},
		{ev: Promote{Now: at(152 * time.Second)}, green: 100, phase: progressing, step: 2, check: gateIs(model.GatePost)},
		{ev: outcome(160*time.Second, model.GatePost, passed("smoke")), actions: pp, green: 100, phase: model.RolloutPromoted, step: 2,
			check: reasonHas("every step and gate passed")},
	})
	if n := len(end.Rollout.GateResults); n != 4 {
		t.Fatalf("gate results %+v, want one per stage and step", end.Rollout.GateResults)
	}
	for i, want := range []struct {
		stage string
		step  int
	}{{model.GatePre, 0}, {model.GateStep, 0}, {model.GateStep, 1}, {model.GatePost, 2}} {
		if g := end.Rollout.GateResults[i]; g.Stage != want.stage || g.Step != want.step || !g.Passed || g.Attempts != 1 {
			t.Errorf("gate result %d: %+v", i, g)
		}
	}
}

func TestGateFailures(t *testing.T) {
	rollbackPre := withGates(p3(), gateAt("smoke", model.GateRollback, model.GatePre))
	play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: rollbackPre}, actions: pp, green: 0, phase: progressing, step: 0},
		{ev: outcome(time.Second, model.GatePre, failed("smoke")), actions: ppc, green: 0, phase: model.RolloutRolledBack, step: 0,
			check: func(t *testing.T, r *model.Rollout) {
				if r.Gate != "" || r.Cause != model.CauseGateFailed || r.DetectedAt != at(time.Second) || !strings.Contains(r.Reason, "gate smoke (pre) failed: HTTP 500: smoke test failed") {
					t.Errorf("rolled back %+v", *r)
				}
			}},
	})

	// A step gate that fails rolls back from the current step.
	rollbackStep := withGates(p4(), gateAt("smoke", model.GateRollback, model.GateStep))
	play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: rollbackStep}, actions: pp, green: 10, phase: progressing, step: 0},
		{ev: an(time.Minute, judge.Pass), actions: p, green: 10, phase: progressing, step: 0, check: gateIs(model.GateStep)},
		{ev: outcome(61*time.Second, model.GateStep, failed("smoke")), actions: ppc, green: 0, phase: model.RolloutRolledBack, step: 0,
			check: reasonHas("gate smoke (step) failed")},
	})

	// Hold: the split stays, the gate is called again, and passes later.
	hold := withGates(p3(), gateAt("approval", model.GateHold, model.GateStep), gateAt("smoke", model.GateRollback, model.GateStep))
	end := play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: hold}, actions: pp, green: 10, phase: progressing, step: 0},
		{ev: an(time.Minute, judge.Pass), actions: p, green: 10, phase: progressing, step: 0},
		{ev: outcome(61*time.Second, model.GateStep, failed("approval"), passed("smoke")), actions: p, green: 10, phase: progressing, step: 0,
			check: reasonHas("held: gate approval (step) failed")},
		{ev: outcome(71*time.Second, model.GateStep, failed("approval"), passed("smoke")), green: 10, phase: progressing, step: 0, check: gateIs(model.GateStep)},
		{ev: an(75*time.Second, judge.Fail), actions: ppc, green: 0, phase: model.RolloutRolledBack, step: 0, check: gateIs("")},
	})
	if g := end.Rollout.GateResults[0]; g.Gate != "approval" || g.Attempts != 2 || g.Passed {
		t.Errorf("hold attempts not counted: %+v", end.Rollout.GateResults)
	}

	// A hold gate that passes on a later call lets the switch go on.
	play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: hold}, actions: pp, green: 10, phase: progressing, step: 0},
		{ev: an(time.Minute, judge.Pass), actions: p, green: 10, phase: progressing, step: 0},
		{ev: outcome(61*time.Second, model.GateStep, failed("approval"), passed("smoke")), actions: p, green: 10, phase: progressing, step: 0},
		{ev: outcome(71*time.Second, model.GateStep, passed("approval"), passed("smoke")), actions: pp, green: 40, phase: progressing, step: 1},
	})

	// Post gates: a failure after 100 % still flips back to the stable fleet.
	post := withGates(plan(50, 100), gateAt("smoke", model.GateRollback, model.GatePost))
	play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: post}, actions: pp, green: 50, phase: progressing, step: 0},
		{ev: an(time.Minute, judge.Pass), actions: pp, green: 100, phase: progressing, step: 1, check: gateIs(model.GatePost)},
		{ev: outcome(61*time.Second, model.GatePost, failed("smoke")), actions: ppc, green: 0, phase: model.RolloutRolledBack, step: 1},
	})
}

func TestGateCommands(t *testing.T) {
	pl := withGates(plan(50, 100), gateAt("smoke", model.GateRollback, model.GatePre, model.GatePost))
	start := []move{{ev: Start{Now: t0, To: G, Plan: pl}, actions: pp, green: 0, phase: progressing, step: 0}}

	// Paused: gate rounds are stale; resume, then they count.
	play(t, model.InitialTraffic(), append(start,
		move{ev: Pause{Now: at(time.Second)}, actions: p, green: 0, phase: paused, step: 0},
		move{ev: outcome(2*time.Second, model.GatePre, passed("smoke")), green: 0, phase: paused, step: 0, check: gateIs(model.GatePre)},
		move{ev: Resume{Now: at(3 * time.Second)}, actions: p, green: 0, phase: progressing, step: 0},
		move{ev: outcome(4*time.Second, model.GatePre, passed("smoke")), actions: pp, green: 50, phase: progressing, step: 0},
	))
	// Promote by hand before the pre gates passed waits for them.
	play(t, model.InitialTraffic(), append(start,
		move{ev: Promote{Now: at(time.Second)}, actions: p, green: 0, phase: progressing, step: 0,
			check: func(t *testing.T, r *model.Rollout) {
				if !r.PromoteRequested || r.Gate != model.GatePre {
					t.Errorf("%+v", *r)
				}
			}},
	))
	// Forced promote skips pending gates and says so.
	play(t, model.InitialTraffic(), append(start,
		move{ev: Promote{Now: at(time.Second), Force: true, Reason: "incident 42"}, actions: pp, green: 100, phase: model.RolloutPromoted, step: 1,
			check: func(t *testing.T, r *model.Rollout) {
				if r.Gate != "" || len(r.Overrides) != 1 || r.Overrides[0] != "promote --force: analysis and gates skipped (incident 42)" {
					t.Errorf("%+v", *r)
				}
			}},
	))
	// Abort while gates are pending.
	play(t, model.InitialTraffic(), append(start,
		move{ev: Abort{Now: at(time.Second)}, actions: ppc, green: 0, phase: model.RolloutAborted, step: 0, check: gateIs("")},
	))
}

func TestDarkStep(t *testing.T) {
	dark := plan(0, 25, 100)
	dark.Dark = true
	play(t, model.InitialTraffic(), []move{
		// Step 0 moves no user: only mirrored requests reach green, and are judged.
		{ev: Start{Now: t0, To: G, Plan: dark}, actions: pp, green: 0, phase: progressing, step: 0},
		{ev: an(30*time.Second, judge.Insufficient), actions: p, green: 0, phase: progressing, step: 0, check: reasonHas("holding")},
		{ev: an(time.Minute, judge.Pass), actions: pp, green: 25, phase: progressing, step: 1},
	})
	play(t, model.InitialTraffic(), []move{
		{ev: Start{Now: t0, To: G, Plan: dark}, actions: pp, green: 0, phase: progressing, step: 0},
		{ev: an(30*time.Second, judge.Fail), actions: ppc, green: 0, phase: model.RolloutRolledBack, step: 0},
	})
	notDark := plan(0, 25, 100)
	if _, _, err := Decide(model.InitialTraffic(), Start{Now: t0, To: G, Plan: notDark}); err == nil || !strings.Contains(err.Error(), "steps[0]") {
		t.Fatalf("a 0 %% step without mirroring must be refused: %v", err)
	}
}
