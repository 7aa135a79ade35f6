package model

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// switching is a valid running switch from blue to green at 50%.
func switching() Traffic {
	return Traffic{
		Stable: Blue, Target: Green, GreenPercent: 50, Phase: PhaseSwitching, Generation: 3,
		Rollout: &Rollout{ID: "gen-2", From: Blue, To: Green, Plan: validPlan(), Phase: RolloutProgressing,
			Step: 1, StepSince: base, StartedAt: base},
	}
}

func TestTrafficValidate(t *testing.T) {
	ended := func(rp RolloutPhase, tp Phase, green int) func(*Traffic) {
		return func(t *Traffic) { t.Rollout.Phase, t.Rollout.EndedAt, t.Phase, t.GreenPercent = rp, base, tp, green }
	}
	noRollout := func(t *Traffic) { t.Rollout = nil }
	cases := []struct {
		name   string
		from   Traffic
		edit   func(*Traffic)
		errHas string // "" = valid
	}{
		{"initial", InitialTraffic(), nil, ""},
		{"instantly switched to green", InitialTraffic(), func(t *Traffic) { t.Target, t.GreenPercent, t.Phase = Green, 100, PhaseSwitched }, ""},
		{"aborted", InitialTraffic(), func(t *Traffic) { t.Target, t.Phase = Green, PhaseAborted }, ""},
		{"green stable", InitialTraffic(), func(t *Traffic) { t.Stable, t.GreenPercent = Green, 100 }, ""},
		{"bad stable", InitialTraffic(), func(t *Traffic) { t.Stable = "red" }, "stable"},
		{"empty stable", InitialTraffic(), func(t *Traffic) { t.Stable = "" }, "stable"},
		{"bad target", InitialTraffic(), func(t *Traffic) { t.Target = "Green" }, "target"},
		{"green -1", InitialTraffic(), func(t *Traffic) { t.GreenPercent = -1 }, "green_percent"},
		{"green 101", InitialTraffic(), func(t *Traffic) { t.GreenPercent = 101 }, "green_percent"},
		{"green 0 and 100 are in range", InitialTraffic(), func(t *Traffic) { t.GreenPercent = 100 }, ""},
		{"unknown phase", InitialTraffic(), func(t *Traffic) { t.Phase = "switching-ish" }, "unknown phase"},
		{"empty phase", InitialTraffic(), func(t *Traffic) { t.Phase = "" }, "unknown phase"},
		{"generation 0", InitialTraffic(), func(t *Traffic) { t.Generation = 0 }, "generation"},

		// rollout consistency
		{"running switch", switching(), nil, ""},
		{"running switch to blue", switching(), func(t *Traffic) {
			t.Stable, t.Target, t.Rollout.From, t.Rollout.To = Green, Blue, Green, Blue
		}, ""},
		{"paused switch", switching(), func(t *Traffic) { t.Rollout.Phase = RolloutPaused }, ""},
		{"rolling back switch", switching(), func(t *Traffic) { t.Rollout.Phase = RolloutRollingBack }, ""},
		{"promoted", switching(), ended(RolloutPromoted, PhaseSwitched, 100), ""},
		{"rolled back", switching(), ended(RolloutRolledBack, PhaseRolledBack, 0), ""},
		{"aborted switch", switching(), ended(RolloutAborted, PhaseAborted, 0), ""},
		{"promoted, then aborted instantly", switching(), ended(RolloutPromoted, PhaseAborted, 0), ""},
		{"ended rollout kept on a stable phase", switching(), ended(RolloutPromoted, PhaseStable, 100), ""},
		{"switching without a rollout", switching(), noRollout, "needs a rollout"},
		{"rolled back without a rollout", InitialTraffic(), func(t *Traffic) { t.Phase = PhaseRolledBack }, "needs a rollout"},
		{"running rollout on phase switched", switching(), func(t *Traffic) { t.Phase = PhaseSwitched }, "contradicts"},
		{"running rollout on phase stable", switching(), func(t *Traffic) { t.Phase = PhaseStable }, "contradicts"},
		{"paused rollout on phase rolled_back", switching(), func(t *Traffic) { t.Rollout.Phase, t.Phase = RolloutPaused, PhaseRolledBack }, "contradicts"},
		{"ended rollout on phase switching", switching(), func(t *Traffic) { t.Rollout.Phase = RolloutPromoted }, "contradicts"},
		{"rolled back rollout on phase switching", switching(), func(t *Traffic) { t.Rollout.Phase = RolloutRolledBack }, "contradicts"},
		{"unknown rollout phase", switching(), func(t *Traffic) { t.Rollout.Phase = "stalled" }, "unknown rollout phase"},
		{"empty rollout phase", switching(), func(t *Traffic) { t.Rollout.Phase = "" }, "unknown rollout phase"},
		{"invalid plan", switching(), func(t *Traffic) { t.Rollout.Plan.Steps = []int{10, 50} }, "rollout.plan.steps"},
		{"invalid plan policy", switching(), func(t *Traffic) { t.Rollout.Plan.Rollback = "" }, "rollout.plan.rollback"},
		{"step -1", switching(), func(t *Traffic) { t.Rollout.Step = -1 }, "rollout.step -1"},
		{"step past the plan", switching(), func(t *Traffic) { t.Rollout.Step = 3 }, "rollout.step 3"},
		{"last step", switching(), ended(RolloutPromoted, PhaseSwitched, 100), ""},
		{"from equals to", switching(), func(t *Traffic) { t.Rollout.To = Blue }, "does not match"},
		{"from is not stable", switching(), func(t *Traffic) { t.Rollout.From, t.Rollout.To = Green, Blue }, "does not match"},
		{"stable changed under the rollout", switching(), func(t *Traffic) { t.Stable = Green }, "does not match"},
	}
	for _, c := range cases {
		tr := c.from
		if tr.Rollout != nil {
			r := *tr.Rollout
			tr.Rollout = &r
		}
		if c.edit != nil {
			c.edit(&tr)
		}
		err := tr.Validate()
		switch {
		case c.errHas == "" && err != nil:
			t.Errorf("%s: unexpected error %v", c.name, err)
		case c.errHas != "" && err == nil:
			t.Errorf("%s: accepted", c.name)
		case c.errHas != "" && !strings.Contains(err.Error(), c.errHas):
			t.Errorf("%s: error %q does not mention %q", c.name, err, c.errHas)
		}
	}
}

func TestTrafficSwitching(t *testing.T) {
	for _, c := range []struct {
		r    *Rollout
		want bool
	}{
		{nil, false},
		{&Rollout{Phase: RolloutProgressing}, true},
		{&Rollout{Phase: RolloutPaused}, true},
		{&Rollout{Phase: RolloutRollingBack}, true},
		{&Rollout{Phase: RolloutPromoted}, false},
		{&Rollout{Phase: RolloutRolledBack}, false},
		{&Rollout{Phase: RolloutAborted}, false},
	} {
		if got := (Traffic{Rollout: c.r}).ProgressiveRunning(); got != c.want {
			t.Errorf("rollout %+v: Switching() = %v", c.r, got)
		}
	}
}

func TestTrafficServingAndPercent(t *testing.T) {
	for _, c := range []struct {
		green        int
		serving      Color
		blue, greenP int
	}{
		{0, Blue, 100, 0},
		{1, "", 99, 1},
		{50, "", 50, 50},
		{99, "", 1, 99},
		{100, Green, 0, 100},
	} {
		tr := Traffic{GreenPercent: c.green}
		if tr.Serving() != c.serving || tr.Percent(Blue) != c.blue || tr.Percent(Green) != c.greenP {
			t.Errorf("green %d: serving %q blue %d green %d", c.green, tr.Serving(), tr.Percent(Blue), tr.Percent(Green))
		}
	}
}

// TestTrafficJSONRoundTrip: the persisted form of a switch reads back the same.
func TestTrafficJSONRoundTrip(t *testing.T) {
	running := switching()
	running.Rollout.UnavailableSince = base.Add(time.Minute)
	running.Rollout.PromoteRequested = true
	running.Rollout.Verdicts = []StepVerdict{
		{Step: 0, Percent: 10, Outcome: "pass", Reason: "ok", CandidateRatio: 0.01, BaselineRatio: 0.02, Analyses: 3, At: base},
		{Step: 1, Percent: 50, Outcome: "unavailable", Reason: "prom down", Analyses: 1, At: base.Add(time.Minute)},
	}
	done := switching()
	done.Phase, done.GreenPercent, done.Reason = PhaseRolledBack, 0, "analysis failed"
	done.Rollout.Phase, done.Rollout.EndedAt, done.Rollout.DetectedAt, done.Rollout.ConfirmedAt = RolloutRolledBack, base, base, base.Add(time.Second)
	done.Rollout.Overrides = []string{"promote --force: analysis skipped (x)"}
	for _, tr := range []Traffic{InitialTraffic(), running, done} {
		b, err := json.Marshal(tr)
		if err != nil {
			t.Fatal(err)
		}
		var back Traffic
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !reflect.DeepEqual(back, tr) {
			t.Errorf("round trip of %s\ngot  %+v\nwant %+v", b, back, tr)
		}
		if err := back.Validate(); err != nil {
			t.Errorf("%s: %v", b, err)
		}
	}
	// Zero times of a running switch are left out, not written as year 1.
	b, _ := json.Marshal(switching())
	for _, k := range []string{"ended_at", "unavailable_since", "detected_at", "confirmed_at", "promote_requested", "overrides"} {
		if strings.Contains(string(b), k) {
			t.Errorf("%s written for a running switch: %s", k, b)
		}
	}
}
