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

const (
	G = model.Green
	B = model.Blue

	progressing = model.RolloutProgressing
	paused      = model.RolloutPaused
	rollingBack = model.RolloutRollingBack
)

var (
	pp  = []Action{Persist, Push}
	ppc = []Action{Persist, Push, Confirm}
	p   = []Action{Persist}
)

type tc struct {
	name    string
	in      model.Traffic
	ev      Event
	want    func(w *model.Traffic) // applied to a deep copy of in; nil: unchanged
	wantT   *model.Traffic         // the whole expected result instead (Start)
	actions []Action
	err     error  // errors.Is target
	errHas  string // substring of the error
}

func run(t *testing.T, cases []tc) {
	t.Helper()
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.name] {
			t.Fatalf("duplicate case name %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			snap := deepCopy(c.in)
			out, acts, err := Decide(c.in, c.ev)
			if d := diff(c.in, snap); len(d) > 0 {
				t.Fatalf("input modified: %s", strings.Join(d, "; "))
			}
			if c.err != nil || c.errHas != "" {
				if err == nil {
					t.Fatalf("no error; got %+v %v", out, acts)
				}
				if c.err != nil && !errors.Is(err, c.err) {
					t.Errorf("error %v, want %v", err, c.err)
				}
				if c.errHas != "" && !strings.Contains(err.Error(), c.errHas) {
					t.Errorf("error %q does not mention %q", err, c.errHas)
				}
				if acts != nil {
					t.Errorf("actions %v with an error", acts)
				}
				if d := diff(out, snap); len(d) > 0 {
					t.Errorf("an error must return the input: %s", strings.Join(d, "; "))
				}
				return
			}
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !slices.Equal(acts, c.actions) || (c.actions == nil) != (acts == nil) {
				t.Errorf("actions %v, want %v", acts, c.actions)
			}
			want := deepCopy(snap)
			switch {
			case c.wantT != nil:
				want = *c.wantT
			case c.want != nil:
				c.want(&want)
			}
			// Evidence is checked on its own: it follows from the counts.
			if d := diff(out, want, "Evidence"); len(d) > 0 {
				t.Errorf("result differs:\n  %s", strings.Join(d, "\n  "))
			}
			checkEvidence(t, c.in, out, c.ev)
			checkInvariants(t, c.in, out, acts)
			checkNoAlias(t, c.in, snap, out)
		})
	}
}

// --- Start -------------------------------------------------------------

// started is what a Start at t0 from colour from yields.
func started(from model.Color, pl model.Plan, gen uint64, reason string) *model.Traffic {
	to := from.Other()
	t := &model.Traffic{
		Stable: from, Target: to, GreenPercent: greenFor(to, pl.Steps[0]), Phase: model.PhaseSwitching,
		Generation: gen, Reason: reason,
		Rollout: &model.Rollout{
			ID: "gen-" + itoa(gen), From: from, To: to, Plan: pl, Phase: progressing,
			Step: 0, StepSince: t0, StartedAt: t0, Verdicts: []model.StepVerdict{},
		},
	}
	if pl.Steps[0] == 100 {
		t.Rollout.Phase, t.Rollout.EndedAt, t.Rollout.Reason = model.RolloutPromoted, t0, "single step of 100%"
		t.Phase = model.PhaseSwitched
	}
	return t
}

func itoa(n uint64) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func TestStart(t *testing.T) {
	initial := model.InitialTraffic() // all on blue, generation 1
	greenServing := model.Traffic{Stable: B, Target: G, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 4, Reason: "instant"}
	split := model.Traffic{Stable: B, Target: G, GreenPercent: 30, Phase: model.PhaseSwitched, Generation: 4}
	bad := func(f func(*model.Plan)) model.Plan { pl := p3(); f(&pl); return pl }

	run(t, []tc{
		{name: "to green from all blue", in: initial, ev: Start{Now: t0, To: G, Plan: p3()}, actions: pp,
			wantT: &model.Traffic{
				Stable: B, Target: G, GreenPercent: 10, Phase: model.PhaseSwitching, Generation: 2,
				Reason: "progressive switch to green",
				Rollout: &model.Rollout{ID: "gen-2", From: B, To: G, Plan: p3(), Phase: progressing, Step: 0,
					StepSince: t0, StartedAt: t0, Verdicts: []model.StepVerdict{}},
			}},
		{name: "to blue from all green mirrors weights", in: greenServing, ev: Start{Now: t0, To: B, Plan: p3(), Reason: "canary"},
			actions: pp, wantT: started(G, p3(), 5, "canary")},
		{name: "single 100% step to green promotes at once", in: initial, ev: Start{Now: t0, To: G, Plan: plan(100)},
			actions: pp, wantT: started(B, plan(100), 2, "progressive switch to green")},
		{name: "single 100% step to blue promotes at once", in: greenServing, ev: Start{Now: t0, To: B, Plan: plan(100)},
			actions: pp, wantT: started(G, plan(100), 5, "progressive switch to blue")},
		{name: "after a promoted switch to green, back to blue", in: ended(G, model.RolloutPromoted),
			ev: Start{Now: t0, To: B, Plan: p4()}, actions: pp, wantT: started(G, p4(), 8, "progressive switch to blue")},
		{name: "after a rolled back switch to green, green again", in: ended(G, model.RolloutRolledBack),
			ev: Start{Now: t0, To: G, Plan: p4()}, actions: pp, wantT: started(B, p4(), 8, "progressive switch to green")},
		{name: "after an aborted switch to blue, blue again", in: ended(B, model.RolloutAborted),
			ev: Start{Now: t0, To: B, Plan: gradual(p4())}, actions: pp, wantT: started(G, gradual(p4()), 8, "progressive switch to blue")},

		{name: "refused while progressing", in: running(G, p3(), 1, progressing), ev: Start{Now: t0, To: B, Plan: p3()}, err: ErrRunning},
		{name: "refused while paused", in: running(G, p3(), 0, paused), ev: Start{Now: t0, To: G, Plan: p3()}, err: ErrRunning},
		{name: "refused while rolling back", in: running(B, p4(), 1, rollingBack), ev: Start{Now: t0, To: G, Plan: p3()}, err: ErrRunning},
		{name: "running is reported before a bad plan", in: running(G, p3(), 1, progressing), ev: Start{Now: t0, To: B, Plan: model.Plan{}}, err: ErrRunning},
		{name: "refused mid-split", in: split, ev: Start{Now: t0, To: G, Plan: p3()}, errHas: "all traffic"},
		{name: "refused mid-split to the stable colour", in: split, ev: Start{Now: t0, To: B, Plan: p3()}, errHas: "all traffic"},
		{name: "refused to blue when blue serves", in: initial, ev: Start{Now: t0, To: B, Plan: p3()}, errHas: "other colour"},
		{name: "refused to green when green serves", in: greenServing, ev: Start{Now: t0, To: G, Plan: p3()}, errHas: "other colour"},
		{name: "refused to green after a promoted switch to green", in: ended(G, model.RolloutPromoted), ev: Start{Now: t0, To: G, Plan: p3()}, errHas: "other colour"},
		{name: "refused to no colour", in: initial, ev: Start{Now: t0, To: "", Plan: p3()}, errHas: "colour"},
		{name: "refused to an unknown colour", in: initial, ev: Start{Now: t0, To: "purple", Plan: p3()}, errHas: "purple"},
		{name: "refused without steps", in: initial, ev: Start{Now: t0, To: G, Plan: bad(func(p *model.Plan) { p.Steps = nil })}, errHas: "steps"},
		{name: "refused when the last step is not 100", in: initial, ev: Start{Now: t0, To: G, Plan: bad(func(p *model.Plan) { p.Steps = []int{10, 50} })}, errHas: "last step"},
		{name: "refused with decreasing steps", in: initial, ev: Start{Now: t0, To: G, Plan: bad(func(p *model.Plan) { p.Steps = []int{50, 10, 100} })}, errHas: "steps[1]"},
		{name: "refused with an unknown rollback", in: initial, ev: Start{Now: t0, To: G, Plan: bad(func(p *model.Plan) { p.Rollback = "slow" })}, errHas: "rollback"},
		{name: "refused with an unknown unavailable policy", in: initial, ev: Start{Now: t0, To: G, Plan: bad(func(p *model.Plan) { p.OnUnavailable = "pray" })}, errHas: "on_unavailable"},
		{name: "refused with a zero plan", in: initial, ev: Start{Now: t0, To: G}, errHas: "steps"},
	})
}

// --- Analysis while progressing -----------------------------------------

func TestAnalysisProgressing(t *testing.T) {
	g0 := running(G, p3(), 0, progressing) // 10% green, stable blue
	g1 := running(G, p3(), 1, progressing) // 40% green
	b0 := running(B, p3(), 0, progressing) // 10% blue = 90% green
	b1 := running(B, p3(), 1, progressing) // 40% blue = 60% green
	requested := func(t model.Traffic) model.Traffic {
		return with(t, func(w *model.Traffic) { w.Rollout.PromoteRequested = true })
	}
	promoted := func(to model.Color, d time.Duration, step int, reason string) func(*model.Traffic) {
		return func(w *model.Traffic) {
			r := w.Rollout
			r.Verdicts = append(r.Verdicts, rec(r.Step, r.Percent(), judge.Pass, 1, d))
			r.Step, r.StepSince, r.EndedAt, r.Phase, r.Reason, r.PromoteRequested = step, at(d), at(d), model.RolloutPromoted, reason, false
			w.Phase, w.GreenPercent, w.Generation = model.PhaseSwitched, greenFor(to, 100), 8
		}
	}
	rolledBack := func(to model.Color, d time.Duration, o judge.Outcome) func(*model.Traffic) {
		return func(w *model.Traffic) {
			r := w.Rollout
			r.Verdicts = append(r.Verdicts, rec(r.Step, r.Percent(), o, 1, d))
			r.Phase, r.EndedAt, r.DetectedAt, r.Reason, r.PromoteRequested = model.RolloutRolledBack, at(d), at(d), failWhy, false
			r.Cause = model.CauseAnalysisFailed
			w.Phase, w.Reason, w.GreenPercent, w.Generation = model.PhaseRolledBack, failWhy, greenFor(to, 0), 8
		}
	}

	// holdShort is the first insufficient analysis at d.
	holdShort := func(d time.Duration) func(*model.Traffic) {
		return func(w *model.Traffic) {
			r := w.Rollout
			r.Reason, r.InsufficientSince = "holding: "+insufficientWhy, at(d)
			r.Verdicts = []model.StepVerdict{rec(r.Step, r.Percent(), judge.Insufficient, 1, d)}
			w.Generation = 8
		}
	}
	// holdInvalid is the first analysis at d with invalid counts.
	holdInvalid := func(d time.Duration) func(*model.Traffic) {
		return func(w *model.Traffic) {
			r := w.Rollout
			r.UnavailableSince = at(d)
			r.Reason = "holding: metrics unavailable since " + at(d).Format(time.RFC3339) + ": " + invalidWhy
			r.Verdicts = []model.StepVerdict{rec(r.Step, r.Percent(), judge.Invalid, 1, d)}
			w.Generation = 8
		}
	}

	run(t, []tc{
		// bake boundaries
		{name: "pass 1ns before the bake holds", in: g0, ev: an(time.Minute-1, judge.Pass),
			want: func(w *model.Traffic) {
				w.Rollout.Verdicts = []model.StepVerdict{rec(0, 10, judge.Pass, 1, time.Minute-1)}
			}},
		{name: "pass exactly at the bake advances", in: g0, ev: an(time.Minute, judge.Pass), actions: pp,
			want: func(w *model.Traffic) {
				w.Rollout.Verdicts = []model.StepVerdict{rec(0, 10, judge.Pass, 1, time.Minute)}
				w.Rollout.Step, w.Rollout.StepSince = 1, at(time.Minute)
				w.GreenPercent, w.Generation = 40, 8
			}},
		{name: "pass past the bake advances a blue candidate", in: b0, ev: an(5*time.Minute, judge.Pass), actions: pp,
			want: func(w *model.Traffic) {
				w.Rollout.Verdicts = []model.StepVerdict{rec(0, 10, judge.Pass, 1, 5*time.Minute)}
				w.Rollout.Step, w.Rollout.StepSince = 1, at(5*time.Minute)
				w.GreenPercent, w.Generation = 60, 8
			}},
		{name: "pass 1ns before the bake of a blue candidate holds", in: b1, ev: an(time.Minute-1, judge.Pass),
			want: func(w *model.Traffic) {
				w.Rollout.Verdicts = []model.StepVerdict{rec(1, 40, judge.Pass, 1, time.Minute-1)}
			}},
		{name: "pass at the bake into the last step promotes green", in: g1, ev: an(time.Minute, judge.Pass), actions: pp,
			want: promoted(G, time.Minute, 2, "every step passed")},
		{name: "pass at the bake into the last step promotes blue", in: b1, ev: an(time.Minute, judge.Pass), actions: pp,
			want: promoted(B, time.Minute, 2, "every step passed")},
		{name: "zero bake advances on the first pass", in: running(G, withBake(p4(), 0), 1, progressing), ev: an(0, judge.Pass), actions: pp,
			want: func(w *model.Traffic) {
				w.Rollout.Verdicts = []model.StepVerdict{rec(1, 25, judge.Pass, 1, 0)}
				w.Rollout.Step, w.Rollout.StepSince = 2, at(0)
				w.GreenPercent, w.Generation = 50, 8
			}},
		{name: "a second analysis at a step replaces its record and counts",
			in: with(g0, func(w *model.Traffic) {
				w.Rollout.Verdicts = []model.StepVerdict{rec(0, 10, judge.Insufficient, 2, 10*time.Second)}
			}),
			ev: an(20*time.Second, judge.Pass),
			want: func(w *model.Traffic) {
				w.Rollout.Verdicts = []model.StepVerdict{rec(0, 10, judge.Pass, 3, 20*time.Second)}
			}},
		{name: "the first analysis at a new step appends a record",
			in: with(g1, func(w *model.Traffic) {
				w.Rollout.Verdicts = []model.StepVerdict{rec(0, 10, judge.Pass, 4, -time.Second)}
			}),
			ev: an(30*time.Second, judge.Pass),
			want: func(w *model.Traffic) {
				w.Rollout.Verdicts = append(w.Rollout.Verdicts, rec(1, 40, judge.Pass, 1, 30*time.Second))
			}},
		{name: "pass clears an earlier holding reason",
			in: with(g0, func(w *model.Traffic) { w.Rollout.Reason = "holding: insufficient reason" }),
			ev: an(time.Second, judge.Pass),
			want: func(w *model.Traffic) {
				w.Rollout.Reason = ""
				w.Rollout.Verdicts = []model.StepVerdict{rec(0, 10, judge.Pass, 1, time.Second)}
			}},

		// insufficient data holds, starts the budget clock and persists it
		{name: "insufficient long past the bake holds", in: g0, ev: an(time.Hour, judge.Insufficient), actions: p,
			want: holdShort(time.Hour)},
		{name: "insufficient with a promote requested holds", in: requested(g0), ev: an(time.Hour, judge.Insufficient), actions: p,
			want: holdShort(time.Hour)},
		// invalid counts cannot be judged: metrics unavailable, never advance
		{name: "invalid counts long past the bake hold as unavailable", in: b1, ev: an(time.Hour, judge.Invalid), actions: p,
			want: holdInvalid(time.Hour)},
		{name: "invalid counts with a promote requested hold as unavailable", in: requested(g1), ev: an(time.Second, judge.Invalid), actions: p,
			want: holdInvalid(time.Second)},

		// promote requested: the next pass promotes, bake or not
		{name: "pass with a promote requested promotes before the bake", in: requested(g0), ev: an(time.Second, judge.Pass), actions: pp,
			want: promoted(G, time.Second, 2, "promoted by hand after a passing analysis")},
		{name: "pass with a promote requested promotes a blue candidate", in: requested(b1), ev: an(2*time.Minute, judge.Pass), actions: pp,
			want: promoted(B, 2*time.Minute, 2, "promoted by hand after a passing analysis")},

		// fail: instant rollback
		{name: "fail rolls green back at once", in: g1, ev: an(30*time.Second, judge.Fail), actions: ppc,
			want: rolledBack(G, 30*time.Second, judge.Fail)},
		{name: "fail rolls blue back at once", in: b1, ev: an(30*time.Second, judge.Fail), actions: ppc,
			want: rolledBack(B, 30*time.Second, judge.Fail)},
		{name: "fail during the bake of step 0 rolls back", in: g0, ev: an(time.Second, judge.Fail), actions: ppc,
			want: rolledBack(G, time.Second, judge.Fail)},
		{name: "fail cancels a requested promote", in: requested(g1), ev: an(time.Second, judge.Fail), actions: ppc,
			want: rolledBack(G, time.Second, judge.Fail)},
		{name: "gradual rollback at step 0 ends at once", in: running(G, gradual(p4()), 0, progressing), ev: an(time.Second, judge.Fail), actions: ppc,
			want: rolledBack(G, time.Second, judge.Fail)},

		// fail: gradual rollback steps down at once, then once per analysis
		{name: "gradual rollback of green steps down", in: running(G, gradual(p4()), 2, progressing), ev: an(30*time.Second, judge.Fail), actions: pp,
			want: func(w *model.Traffic) {
				r := w.Rollout
				r.Verdicts = []model.StepVerdict{rec(2, 50, judge.Fail, 1, 30*time.Second)}
				r.Phase, r.Reason, r.DetectedAt = rollingBack, failWhy, at(30*time.Second)
				r.Cause = model.CauseAnalysisFailed
				r.Step, r.StepSince = 1, at(30*time.Second)
				w.GreenPercent, w.Generation = 25, 8
			}},
		{name: "gradual rollback of blue steps down", in: running(B, gradual(p4()), 2, progressing), ev: an(30*time.Second, judge.Fail), actions: pp,
			want: func(w *model.Traffic) {
				r := w.Rollout
				r.Verdicts = []model.StepVerdict{rec(2, 50, judge.Fail, 1, 30*time.Second)}
				r.Phase, r.Reason, r.DetectedAt = rollingBack, failWhy, at(30*time.Second)
				r.Cause = model.CauseAnalysisFailed
				r.Step, r.StepSince = 1, at(30*time.Second)
				w.GreenPercent, w.Generation = 75, 8
			}},
		{name: "gradual rollback cancels a requested promote", in: requested(running(G, gradual(p4()), 1, progressing)), ev: an(time.Second, judge.Fail), actions: pp,
			want: func(w *model.Traffic) {
				r := w.Rollout
				r.Verdicts = []model.StepVerdict{rec(1, 25, judge.Fail, 1, time.Second)}
				r.Phase, r.Reason, r.DetectedAt, r.PromoteRequested = rollingBack, failWhy, at(time.Second), false
				r.Cause = model.CauseAnalysisFailed
				r.Step, r.StepSince = 0, at(time.Second)
				w.GreenPercent, w.Generation = 10, 8
			}},
	})
}

// --- Gradual rollback under way ----------------------------------------

func TestRollingBack(t *testing.T) {
	stepDown := func(green int) func(*model.Traffic) {
		return func(w *model.Traffic) {
			w.Rollout.Step--
			w.Rollout.StepSince = at(10 * time.Second)
			w.GreenPercent, w.Generation = green, 8
		}
	}
	end := func(green int) func(*model.Traffic) {
		return func(w *model.Traffic) {
			r := w.Rollout
			r.Phase, r.EndedAt = model.RolloutRolledBack, at(10*time.Second)
			w.Phase, w.Reason, w.GreenPercent, w.Generation = model.PhaseRolledBack, "analysis failed: x", green, 8
		}
	}
	g2 := running(G, gradual(p4()), 2, rollingBack)
	g1 := running(G, gradual(p4()), 1, rollingBack)
	g0 := running(G, gradual(p4()), 0, rollingBack)
	b1 := running(B, gradual(p4()), 1, rollingBack)
	b0 := running(B, gradual(p4()), 0, rollingBack)
	run(t, []tc{
		{name: "a pass still steps green down", in: g2, ev: an(10*time.Second, judge.Pass), actions: pp, want: stepDown(25)},
		{name: "a fail steps green down", in: g1, ev: an(10*time.Second, judge.Fail), actions: pp, want: stepDown(10)},
		{name: "insufficient steps green down", in: g1, ev: an(10*time.Second, judge.Insufficient), actions: pp, want: stepDown(10)},
		{name: "unavailable metrics step green down and start no outage", in: g1, ev: down(10 * time.Second), actions: pp, want: stepDown(10)},
		{name: "blue steps down mirrored", in: b1, ev: an(10*time.Second, judge.Pass), actions: pp, want: stepDown(90)},
		{name: "at step 0 green ends rolled back", in: g0, ev: an(10*time.Second, judge.Pass), actions: ppc, want: end(0)},
		{name: "at step 0 blue ends rolled back", in: b0, ev: down(10 * time.Second), actions: ppc, want: end(100)},
		{name: "pause is ignored", in: g1, ev: Pause{Now: at(time.Second)}},
		{name: "resume is ignored", in: g1, ev: Resume{Now: at(time.Second)}},
		{name: "promote is refused", in: g1, ev: Promote{Now: at(time.Second)}, errHas: "rolling back"},
		{name: "promote --force is refused", in: b1, ev: Promote{Now: at(time.Second), Force: true}, errHas: "rolling back"},
	})
}

// --- Metrics unavailable -----------------------------------------------

func TestUnavailable(t *testing.T) {
	g1 := running(G, p3(), 1, progressing)
	b1 := running(B, p3(), 1, progressing)
	since := func(tr model.Traffic, d time.Duration) model.Traffic {
		return with(tr, func(w *model.Traffic) { w.Rollout.UnavailableSince = at(d) })
	}
	holding := func(sinceD, nowD time.Duration, spent bool) func(*model.Traffic) {
		return func(w *model.Traffic) {
			r := w.Rollout
			r.UnavailableSince = at(sinceD)
			r.Verdicts = []model.StepVerdict{recDown(r.Step, r.Percent(), 1, nowD)}
			r.Reason = "holding: metrics unavailable since " + at(sinceD).Format(time.RFC3339) + ": prom down"
			if spent {
				r.Reason += " (budget spent; policy hold)"
			}
		}
	}
	first := func(d time.Duration) func(*model.Traffic) {
		return func(w *model.Traffic) { holding(d, d, false)(w); w.Generation = 8 }
	}
	rolledBack := func(to model.Color, sinceD, nowD time.Duration, why string) func(*model.Traffic) {
		return func(w *model.Traffic) {
			r := w.Rollout
			r.Verdicts = []model.StepVerdict{recDown(r.Step, r.Percent(), 1, nowD)}
			r.UnavailableSince = at(sinceD)
			r.Phase, r.EndedAt, r.DetectedAt, r.Reason = model.RolloutRolledBack, at(nowD), at(nowD), why
			r.Cause = model.CauseMetricsUnavailable
			w.Phase, w.Reason, w.GreenPercent, w.Generation = model.PhaseRolledBack, why, greenFor(to, 0), 8
		}
	}
	recovered := func(o judge.Outcome, d time.Duration, reason string) func(*model.Traffic) {
		return func(w *model.Traffic) {
			r := w.Rollout
			r.UnavailableSince = time.Time{}
			r.Reason = reason
			r.Verdicts = []model.StepVerdict{rec(r.Step, r.Percent(), o, 1, d)}
			w.Generation = 8
		}
	}
	const why = "metrics unavailable for 1m0s: prom down"

	run(t, []tc{
		{name: "first unavailable holds and persists the outage", in: g1, ev: down(30 * time.Second), actions: p, want: first(30 * time.Second)},
		{name: "first unavailable past the bake does not advance", in: g1, ev: down(time.Hour), actions: p, want: first(time.Hour)},
		{name: "first unavailable with hold policy persists", in: running(B, holdPolicy(p3()), 0, progressing), ev: down(time.Second), actions: p, want: first(time.Second)},
		{name: "first unavailable while paused persists and stays paused", in: running(G, p3(), 1, paused), ev: down(time.Second), actions: p, want: first(time.Second)},
		{name: "first unavailable with a promote requested holds", in: with(g1, func(w *model.Traffic) { w.Rollout.PromoteRequested = true }),
			ev: down(time.Second), actions: p, want: first(time.Second)},
		{name: "still unavailable 1ns under the budget holds quietly", in: since(g1, 0), ev: down(time.Minute - 1), want: holding(0, time.Minute-1, false)},
		{name: "still unavailable under the budget with hold policy does not say spent", in: since(running(G, holdPolicy(p3()), 1, progressing), 0),
			ev: down(30 * time.Second), want: holding(0, 30*time.Second, false)},
		{name: "unavailable for exactly the budget rolls green back", in: since(g1, 0), ev: down(time.Minute), actions: ppc,
			want: rolledBack(G, 0, time.Minute, why)},
		{name: "unavailable for exactly the budget rolls blue back", in: since(b1, 0), ev: down(time.Minute), actions: ppc,
			want: rolledBack(B, 0, time.Minute, why)},
		{name: "unavailable past the budget while paused rolls back", in: since(running(G, p3(), 1, paused), 0), ev: down(time.Minute), actions: ppc,
			want: rolledBack(G, 0, time.Minute, why)},
		{name: "unavailable past the budget with gradual rollback steps down", in: since(running(G, gradual(p3()), 1, progressing), 0), ev: down(time.Minute), actions: pp,
			want: func(w *model.Traffic) {
				r := w.Rollout
				r.Verdicts = []model.StepVerdict{recDown(1, 40, 1, time.Minute)}
				r.UnavailableSince = at(0)
				r.Phase, r.Reason, r.DetectedAt, r.Step, r.StepSince = rollingBack, why, at(time.Minute), 0, at(time.Minute)
				r.Cause = model.CauseMetricsUnavailable
				w.GreenPercent, w.Generation = 10, 8
			}},
		{name: "unavailable for exactly the budget with hold policy keeps holding", in: since(running(G, holdPolicy(p3()), 1, progressing), 0),
			ev: down(time.Minute), want: holding(0, time.Minute, true)},
		{name: "unavailable long past the budget with hold policy keeps holding", in: since(running(B, holdPolicy(p3()), 0, progressing), 0),
			ev: down(time.Hour), want: holding(0, time.Hour, true)},
		{name: "unavailable past the budget with hold policy while paused keeps holding", in: since(running(B, holdPolicy(p3()), 0, paused), 0),
			ev: down(time.Hour), want: holding(0, time.Hour, true)},
		{name: "unavailable records count with the step's earlier analyses",
			in: with(since(g1, 0), func(w *model.Traffic) {
				w.Rollout.Verdicts = []model.StepVerdict{rec(1, 40, judge.Pass, 2, -time.Minute)}
			}),
			ev: down(10 * time.Second), want: func(w *model.Traffic) {
				holding(0, 10*time.Second, false)(w)
				w.Rollout.Verdicts[0].Analyses = 3
			}},

		// recovery: a verdict clears the outage and persists that
		{name: "a pass under the bake clears the outage and persists", in: since(g1, 0), ev: an(30*time.Second, judge.Pass), actions: p,
			want: recovered(judge.Pass, 30*time.Second, "")},
		{name: "insufficient clears the outage, starts its own clock and persists", in: since(g1, 0), ev: an(2*time.Minute, judge.Insufficient), actions: p,
			want: func(w *model.Traffic) {
				recovered(judge.Insufficient, 2*time.Minute, "holding: "+insufficientWhy)(w)
				w.Rollout.InsufficientSince = at(2 * time.Minute)
			}},
		// invalid counts are no recovery: they are unavailable data
		{name: "invalid counts during an outage spend its budget", in: since(b1, 0), ev: an(2*time.Minute, judge.Invalid), actions: ppc,
			want: func(w *model.Traffic) {
				rolledBack(B, 0, 2*time.Minute, "metrics unavailable for 2m0s: "+invalidWhy)(w)
				w.Rollout.Verdicts = []model.StepVerdict{rec(1, 40, judge.Invalid, 1, 2*time.Minute)}
			}},
		{name: "invalid counts under the budget hold quietly", in: since(g1, 0), ev: an(30*time.Second, judge.Invalid),
			want: func(w *model.Traffic) {
				holding(0, 30*time.Second, false)(w)
				w.Rollout.Reason = "holding: metrics unavailable since " + at(0).Format(time.RFC3339) + ": " + invalidWhy
				w.Rollout.Verdicts = []model.StepVerdict{rec(1, 40, judge.Invalid, 1, 30*time.Second)}
			}},
		{name: "a pass while paused clears the outage and persists", in: since(running(G, p3(), 1, paused), 0), ev: an(2*time.Minute, judge.Pass), actions: p,
			want: recovered(judge.Pass, 2*time.Minute, "paused by hand")},
		{name: "a pass past the bake clears the outage and advances", in: since(running(G, p4(), 1, progressing), 0), ev: an(time.Minute, judge.Pass), actions: pp,
			want: func(w *model.Traffic) {
				recovered(judge.Pass, time.Minute, "")(w)
				w.Rollout.Step, w.Rollout.StepSince, w.GreenPercent = 2, at(time.Minute), 50
			}},
		{name: "a fail clears the outage and rolls back", in: since(b1, 0), ev: an(20*time.Second, judge.Fail), actions: ppc,
			want: func(w *model.Traffic) {
				recovered(judge.Fail, 20*time.Second, "")(w)
				r := w.Rollout
				r.Phase, r.EndedAt, r.DetectedAt, r.Reason = model.RolloutRolledBack, at(20*time.Second), at(20*time.Second), failWhy
				r.Cause = model.CauseAnalysisFailed
				w.Phase, w.Reason, w.GreenPercent = model.PhaseRolledBack, failWhy, 100
			}},
	})
}

// --- Paused ------------------------------------------------------------

func TestPaused(t *testing.T) {
	g0 := running(G, p3(), 0, paused)
	b1 := running(B, p3(), 1, paused)
	run(t, []tc{
		{name: "pass long past the bake does not advance", in: g0, ev: an(time.Hour, judge.Pass),
			want: func(w *model.Traffic) { w.Rollout.Verdicts = []model.StepVerdict{rec(0, 10, judge.Pass, 1, time.Hour)} }},
		{name: "pass at the last-but-one step does not promote", in: b1, ev: an(time.Hour, judge.Pass),
			want: func(w *model.Traffic) { w.Rollout.Verdicts = []model.StepVerdict{rec(1, 40, judge.Pass, 1, time.Hour)} }},
		{name: "pass restores the pause reason after a hold",
			in: with(g0, func(w *model.Traffic) { w.Rollout.Reason = "holding: insufficient reason" }), ev: an(time.Hour, judge.Pass),
			want: func(w *model.Traffic) {
				w.Rollout.Reason = "paused by hand"
				w.Rollout.Verdicts = []model.StepVerdict{rec(0, 10, judge.Pass, 1, time.Hour)}
			}},
		{name: "insufficient holds and persists its clock", in: g0, ev: an(time.Hour, judge.Insufficient), actions: p,
			want: func(w *model.Traffic) {
				w.Rollout.Reason, w.Rollout.InsufficientSince = "holding: "+insufficientWhy, at(time.Hour)
				w.Rollout.Verdicts = []model.StepVerdict{rec(0, 10, judge.Insufficient, 1, time.Hour)}
				w.Generation = 8
			}},
		{name: "fail rolls back at once", in: b1, ev: an(time.Second, judge.Fail), actions: ppc,
			want: func(w *model.Traffic) {
				r := w.Rollout
				r.Verdicts = []model.StepVerdict{rec(1, 40, judge.Fail, 1, time.Second)}
				r.Phase, r.EndedAt, r.DetectedAt, r.Reason = model.RolloutRolledBack, at(time.Second), at(time.Second), failWhy
				r.Cause = model.CauseAnalysisFailed
				w.Phase, w.Reason, w.GreenPercent, w.Generation = model.PhaseRolledBack, failWhy, 100, 8
			}},
		{name: "fail with gradual rollback starts rolling back", in: running(G, gradual(p3()), 1, paused), ev: an(time.Second, judge.Fail), actions: pp,
			want: func(w *model.Traffic) {
				r := w.Rollout
				r.Verdicts = []model.StepVerdict{rec(1, 40, judge.Fail, 1, time.Second)}
				r.Phase, r.Reason, r.DetectedAt, r.Step, r.StepSince = rollingBack, failWhy, at(time.Second), 0, at(time.Second)
				r.Cause = model.CauseAnalysisFailed
				w.GreenPercent, w.Generation = 10, 8
			}},
		// A promote is a command by hand: it overrides the pause.
		{name: "pass with a promote requested promotes", in: with(g0, func(w *model.Traffic) { w.Rollout.PromoteRequested = true }),
			ev: an(time.Second, judge.Pass), actions: pp,
			want: func(w *model.Traffic) {
				r := w.Rollout
				r.Verdicts = []model.StepVerdict{rec(0, 10, judge.Pass, 1, time.Second)}
				r.Step, r.StepSince, r.EndedAt, r.Phase, r.Reason, r.PromoteRequested = 2, at(time.Second), at(time.Second), model.RolloutPromoted, "promoted by hand after a passing analysis", false
				w.Phase, w.GreenPercent, w.Generation = model.PhaseSwitched, 100, 8
			}},
	})
}

// --- Commands: pause, resume, promote, abort ---------------------------

func TestCommands(t *testing.T) {
	g1 := running(G, p3(), 1, progressing)
	b1 := running(B, p3(), 1, progressing)
	verdicts := func(tr model.Traffic, vs ...model.StepVerdict) model.Traffic {
		return with(tr, func(w *model.Traffic) { w.Rollout.Verdicts = vs })
	}
	passedHere := []model.StepVerdict{rec(0, 10, judge.Pass, 2, -2*time.Minute), rec(1, 40, judge.Pass, 1, -time.Second)}
	passedBefore := []model.StepVerdict{rec(0, 10, judge.Pass, 2, -2*time.Minute)}
	promotedBy := func(to model.Color, reason string, overrides ...string) func(*model.Traffic) {
		return func(w *model.Traffic) {
			r := w.Rollout
			r.Step, r.StepSince, r.EndedAt, r.Phase, r.Reason, r.PromoteRequested = 2, at(5*time.Second), at(5*time.Second), model.RolloutPromoted, reason, false
			r.Overrides = overrides
			w.Phase, w.GreenPercent, w.Generation = model.PhaseSwitched, greenFor(to, 100), 8
		}
	}
	requested := func(w *model.Traffic) { w.Rollout.PromoteRequested = true; w.Generation = 8 }
	aborted := func(to model.Color, reason string) func(*model.Traffic) {
		return func(w *model.Traffic) {
			r := w.Rollout
			r.Phase, r.EndedAt, r.Reason, r.PromoteRequested = model.RolloutAborted, at(5*time.Second), reason, false
			r.Cause = model.CauseAborted
			w.Phase, w.Reason, w.GreenPercent, w.Generation = model.PhaseAborted, reason, greenFor(to, 0), 8
		}
	}
	now := at(5 * time.Second)
	const byHand = "promoted by hand after a passing analysis"
	const forced = "promoted by hand, analysis skipped"

	run(t, []tc{
		// pause and resume
		{name: "pause a progressing switch", in: g1, ev: Pause{Now: now}, actions: p,
			want: func(w *model.Traffic) { w.Rollout.Phase, w.Rollout.Reason, w.Generation = paused, "paused by hand", 8 }},
		{name: "pause keeps the step, its bake clock and a requested promote",
			in: with(b1, func(w *model.Traffic) { w.Rollout.PromoteRequested = true; w.Rollout.Reason = "holding: x" }), ev: Pause{Now: now}, actions: p,
			want: func(w *model.Traffic) { w.Rollout.Phase, w.Rollout.Reason, w.Generation = paused, "paused by hand", 8 }},
		{name: "pause a paused switch is a no-op", in: running(G, p3(), 1, paused), ev: Pause{Now: now}},
		{name: "resume a paused switch bakes the step again", in: running(B, p3(), 0, paused), ev: Resume{Now: now}, actions: p,
			want: func(w *model.Traffic) {
				w.Rollout.Phase, w.Rollout.Reason, w.Rollout.StepSince, w.Generation = progressing, "", now, 8
			}},
		{name: "resume a progressing switch is a no-op", in: g1, ev: Resume{Now: now}},

		// promote without force
		{name: "promote after a pass at this step promotes green", in: verdicts(g1, passedHere...), ev: Promote{Now: now}, actions: pp,
			want: promotedBy(G, byHand)},
		{name: "promote after a pass at this step promotes blue", in: verdicts(b1, passedHere...), ev: Promote{Now: now}, actions: pp,
			want: promotedBy(B, byHand)},
		{name: "promote after a pass only at an earlier step waits", in: verdicts(g1, passedBefore...), ev: Promote{Now: now}, actions: p, want: requested},
		{name: "promote with no verdict yet waits", in: running(G, p3(), 0, progressing), ev: Promote{Now: now}, actions: p, want: requested},
		{name: "promote after insufficient at this step waits",
			in: verdicts(g1, rec(1, 40, judge.Insufficient, 3, -time.Second)), ev: Promote{Now: now}, actions: p, want: requested},
		{name: "promote after invalid at this step waits",
			in: verdicts(b1, rec(1, 40, judge.Invalid, 1, -time.Second)), ev: Promote{Now: now}, actions: p, want: requested},
		{name: "promote while metrics are unavailable waits",
			in: verdicts(g1, recDown(1, 40, 1, -time.Second)), ev: Promote{Now: now}, actions: p, want: requested},
		{name: "promote requested twice persists again", in: with(g1, func(w *model.Traffic) { w.Rollout.PromoteRequested = true }),
			ev: Promote{Now: now}, actions: p, want: func(w *model.Traffic) { w.Generation = 8 }},
		{name: "promote while paused after a pass promotes", in: verdicts(running(G, p3(), 1, paused), passedHere...), ev: Promote{Now: now}, actions: pp,
			want: promotedBy(G, byHand)},
		{name: "promote while paused without a pass waits paused", in: running(B, p3(), 0, paused), ev: Promote{Now: now}, actions: p, want: requested},

		// promote --force
		{name: "force promotes green and records the override", in: g1, ev: Promote{Now: now, Force: true, Reason: "hotfix"}, actions: pp,
			want: promotedBy(G, forced, "promote --force: analysis skipped (hotfix)")},
		{name: "force promotes blue and records the override", in: running(B, p3(), 0, progressing), ev: Promote{Now: now, Force: true, Reason: "hotfix"}, actions: pp,
			want: promotedBy(B, forced, "promote --force: analysis skipped (hotfix)")},
		{name: "force without a reason appends to earlier overrides",
			in: with(g1, func(w *model.Traffic) { w.Rollout.Overrides = []string{"earlier"} }), ev: Promote{Now: now, Force: true}, actions: pp,
			want: promotedBy(G, forced, "earlier", "promote --force: analysis skipped (no reason given)")},
		{name: "force promotes a paused switch with a pending request",
			in: with(verdicts(running(G, p3(), 1, paused), rec(1, 40, judge.Insufficient, 1, 0)), func(w *model.Traffic) { w.Rollout.PromoteRequested = true }),
			ev: Promote{Now: now, Force: true, Reason: "r"}, actions: pp,
			want: promotedBy(G, forced, "promote --force: analysis skipped (r)")},

		// abort
		{name: "abort progressing green", in: g1, ev: Abort{Now: now}, actions: ppc, want: aborted(G, "aborted by hand")},
		{name: "abort progressing blue with a reason", in: b1, ev: Abort{Now: now, Reason: "bad deploy"}, actions: ppc, want: aborted(B, "bad deploy")},
		{name: "abort paused clears a requested promote",
			in: with(running(G, p3(), 0, paused), func(w *model.Traffic) { w.Rollout.PromoteRequested = true }), ev: Abort{Now: now}, actions: ppc,
			want: aborted(G, "aborted by hand")},
		{name: "abort rolling back green", in: running(G, gradual(p4()), 2, rollingBack), ev: Abort{Now: now, Reason: "faster"}, actions: ppc,
			want: aborted(G, "faster")},
		{name: "abort rolling back blue at step 0", in: running(B, gradual(p4()), 0, rollingBack), ev: Abort{Now: now}, actions: ppc,
			want: aborted(B, "aborted by hand")},
	})
}

// --- Nothing running ---------------------------------------------------

type bogus struct{}

func (bogus) at() time.Time { return t0 }

func TestNotRunning(t *testing.T) {
	states := []struct {
		name string
		t    model.Traffic
	}{
		{"never switched", model.InitialTraffic()},
		{"instantly switched", model.Traffic{Stable: B, Target: G, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 3}},
		{"promoted green", ended(G, model.RolloutPromoted)},
		{"promoted blue", ended(B, model.RolloutPromoted)},
		{"rolled back green", ended(G, model.RolloutRolledBack)},
		{"rolled back blue", ended(B, model.RolloutRolledBack)},
		{"aborted green", ended(G, model.RolloutAborted)},
		{"aborted blue", ended(B, model.RolloutAborted)},
	}
	events := []struct {
		name string
		ev   Event
	}{
		{"pass", an(time.Hour, judge.Pass)},
		{"fail", an(time.Hour, judge.Fail)},
		{"unavailable", down(time.Hour)},
		{"pause", Pause{Now: t0}},
		{"resume", Resume{Now: t0}},
		{"promote", Promote{Now: t0}},
		{"promote force", Promote{Now: t0, Force: true}},
		{"abort", Abort{Now: t0}},
		{"unknown event", bogus{}},
		{"nil event", nil},
	}
	var cases []tc
	for _, s := range states {
		if err := s.t.Validate(); err != nil {
			t.Fatalf("fixture %s invalid: %v", s.name, err)
		}
		for _, e := range events {
			cases = append(cases, tc{name: e.name + " on " + s.name, in: s.t, ev: e.ev, err: ErrNotRunning})
		}
	}
	cases = append(cases,
		tc{name: "unknown event while running", in: running(G, p3(), 1, progressing), ev: bogus{}, errHas: "unknown event"},
		tc{name: "nil event while running", in: running(G, p3(), 1, progressing), ev: nil, errHas: "unknown event"},
	)
	run(t, cases)
}

// TestFixturesValid guards the fixtures the tables start from.
func TestFixturesValid(t *testing.T) {
	for _, to := range []model.Color{G, B} {
		for _, pl := range []model.Plan{p3(), p4(), gradual(p4()), holdPolicy(p3()), holdInsufficient(p3()), withBake(p4(), 0), latencyPlan(p3())} {
			for step := 0; step < len(pl.Steps)-1; step++ {
				for _, ph := range []model.RolloutPhase{progressing, paused, rollingBack} {
					if err := running(to, pl, step, ph).Validate(); err != nil {
						t.Errorf("running(%s, %v, %d, %s): %v", to, pl.Steps, step, ph, err)
					}
				}
			}
		}
		for _, ph := range []model.RolloutPhase{model.RolloutPromoted, model.RolloutRolledBack, model.RolloutAborted} {
			if err := ended(to, ph).Validate(); err != nil {
				t.Errorf("ended(%s, %s): %v", to, ph, err)
			}
		}
	}
}

// --- Immutability with shared backing arrays ---------------------------

// TestNoAliasing gives the input slices spare capacity and earlier
// overrides, so a result that shared them would write into the input.
func TestNoAliasing(t *testing.T) {
	roomy := func(tr model.Traffic) model.Traffic {
		return with(tr, func(w *model.Traffic) {
			vs := make([]model.StepVerdict, 0, 8)
			w.Rollout.Verdicts = append(vs, rec(0, 10, judge.Pass, 2, -2*time.Minute), rec(1, w.Rollout.Percent(), judge.Insufficient, 1, -time.Second))
			os := make([]string, 0, 8)
			w.Rollout.Overrides = append(os, "earlier override")
		})
	}
	g1 := roomy(running(G, p4(), 1, progressing))
	for _, e := range []struct {
		name string
		in   model.Traffic
		ev   Event
	}{
		{"hold", g1, an(time.Second, judge.Insufficient)},
		{"same-step record", g1, an(time.Second, judge.Pass)},
		{"advance", g1, an(time.Minute, judge.Pass)},
		{"unavailable", g1, down(time.Second)},
		{"fail", g1, an(time.Second, judge.Fail)},
		{"gradual fail", roomy(running(G, gradual(p4()), 1, progressing)), an(time.Second, judge.Fail)},
		{"step back", roomy(running(G, gradual(p4()), 1, rollingBack)), an(time.Second, judge.Pass)},
		{"pause", g1, Pause{Now: t0}},
		{"resume", roomy(running(G, p4(), 1, paused)), Resume{Now: t0}},
		{"promote request", g1, Promote{Now: t0}},
		{"promote force", g1, Promote{Now: t0, Force: true}},
		{"abort", g1, Abort{Now: t0}},
	} {
		snap := deepCopy(e.in)
		out, acts, err := Decide(e.in, e.ev)
		if err != nil {
			t.Fatalf("%s: %v", e.name, err)
		}
		if d := diff(e.in, snap); len(d) > 0 {
			t.Errorf("%s: input modified: %v", e.name, d)
		}
		checkInvariants(t, e.in, out, acts)
		checkNoAlias(t, e.in, snap, out)
		if out.Rollout == e.in.Rollout {
			t.Errorf("%s: result shares the input's rollout", e.name)
		}
	}
}
