package releases

import (
	"errors"
	"testing"
	"time"

	"github.com/bgctl/bg/controlplane/model"
	"github.com/bgctl/bg/controlplane/release"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

func plan() model.Plan {
	return model.Plan{Steps: []int{10, 100}, Interval: model.Duration(time.Second), MinRequests: 1, Confidence: 0.99,
		UnavailableBudget: model.Duration(time.Second), OnUnavailable: model.OnUnavailableRollback,
		InsufficientBudget: model.Duration(time.Second), OnInsufficient: model.OnUnavailableRollback, Rollback: model.RollbackInstant}
}

// progressive is a blue → green switch gen-2 in phase rp, tagged with rel.
func progressive(rp model.RolloutPhase, rel string, edit func(*model.Traffic)) model.Traffic {
	t := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 10, Phase: model.PhaseSwitching, Generation: 3,
		SwitchID: "gen-2", Release: rel, Reason: "progressive switch to green",
		Rollout: &model.Rollout{ID: "gen-2", From: model.Blue, To: model.Green, Plan: plan(), Phase: rp, StartedAt: t0, Reason: "step 1"}}
	switch rp {
	case model.RolloutPromoted:
		t.GreenPercent, t.Phase, t.Rollout.Step = 100, model.PhaseSwitched, 1
	case model.RolloutRolledBack:
		t.GreenPercent, t.Phase = 0, model.PhaseRolledBack
	case model.RolloutAborted:
		t.GreenPercent, t.Phase = 0, model.PhaseAborted
	}
	if edit != nil {
		edit(&t)
	}
	return t
}

// rolled is a blue → green roll roll-4 in phase rp.
func rolled(rp model.RollPhase, byHand bool) model.Traffic {
	t := model.Traffic{Stable: model.Blue, Target: model.Green, Phase: model.PhaseSwitching, Generation: 5, SwitchID: "roll-4", Release: "r-1",
		Roll: &model.Roll{ID: "roll-4", From: model.Blue, To: model.Green, Phase: rp, ByHand: byHand, Cause: "replacement s1 failed its health check",
			Params: model.RollParams{MaxUnavailable: 1, MinAvailable: 1, ReplaceTimeout: model.Duration(time.Minute), Interval: model.Duration(time.Second)}}}
	switch rp {
	case model.RollCompleted:
		t.Stable, t.GreenPercent, t.Phase = model.Green, 100, model.PhaseSwitched
	case model.RollRolledBack:
		t.Phase = model.PhaseRolledBack
	case model.RollAborted:
		t.Phase = model.PhaseAborted
	}
	return t
}

// instant is an instant switch gen-2 to green, tagged with rel.
func instant(rel string, aborted bool) model.Traffic {
	t := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 2,
		SwitchID: "gen-2", Release: rel, Reason: "instant switch to green"}
	if aborted {
		t.GreenPercent, t.Phase, t.Generation, t.Reason = 0, model.PhaseAborted, 3, "abort"
	}
	return t
}

func TestObserve(t *testing.T) {
	confirmedAt := func(t *model.Traffic) { t.Rollout.ConfirmedAt = t0.Add(time.Second) }
	withCause := func(c model.Cause) func(*model.Traffic) { return func(t *model.Traffic) { t.Rollout.Cause = c } }
	type want struct {
		id, rel   string
		to        model.Color
		phase     release.SwitchPhase
		cause     model.Cause
		reason    string
		confirmed bool
	}
	cases := []struct {
		name     string
		tr       model.Traffic
		acked    bool
		asksAcks bool // acked is read
		want     want
	}{
		{"never switched", model.InitialTraffic(), true, false, want{}},
		{"an instant switch stored before IDs", func() model.Traffic { t := instant("", false); t.SwitchID = ""; return t }(), true, false, want{}},

		{"progressing", progressive(model.RolloutProgressing, "r-1", nil), true, false,
			want{"gen-2", "r-1", model.Green, release.SwitchRunning, "", "step 1", false}},
		{"paused, stored before IDs", progressive(model.RolloutPaused, "", func(t *model.Traffic) { t.SwitchID = "" }), true, false,
			want{"gen-2", "", model.Green, release.SwitchRunning, "", "step 1", false}},
		{"rolling back on latency", progressive(model.RolloutRollingBack, "r-1", withCause(model.CauseLatencyRegressed)), true, false,
			want{"gen-2", "r-1", model.Green, release.SwitchRollingBack, model.CauseLatencyRegressed, "step 1", false}},
		{"rolling back without a stored cause", progressive(model.RolloutRollingBack, "r-1", nil), true, false,
			want{"gen-2", "r-1", model.Green, release.SwitchRollingBack, model.CauseAnalysisFailed, "step 1", false}},
		{"rolled back, confirmed", progressive(model.RolloutRolledBack, "r-1", func(t *model.Traffic) {
			withCause(model.CauseGateFailed)(t)
			confirmedAt(t)
		}), false, false, want{"gen-2", "r-1", model.Green, release.SwitchRolledBack, model.CauseGateFailed, "step 1", true}},
		{"rolled back, ACKed since", progressive(model.RolloutRolledBack, "r-1", withCause(model.CauseAnalysisFailed)), true, true,
			want{"gen-2", "r-1", model.Green, release.SwitchRolledBack, model.CauseAnalysisFailed, "step 1", true}},
		{"rolled back, not ACKed", progressive(model.RolloutRolledBack, "r-1", withCause(model.CauseAnalysisFailed)), false, true,
			want{"gen-2", "r-1", model.Green, release.SwitchRolledBack, model.CauseAnalysisFailed, "step 1", false}},
		{"aborted", progressive(model.RolloutAborted, "r-1", func(t *model.Traffic) { t.Rollout.Cause = model.CauseAborted }), true, true,
			want{"gen-2", "r-1", model.Green, release.SwitchAborted, model.CauseAborted, "step 1", true}},
		{"aborted, confirmed", progressive(model.RolloutAborted, "", confirmedAt), false, false,
			want{"gen-2", "", model.Green, release.SwitchAborted, model.CauseAborted, "step 1", true}},
		{"promoted alone", progressive(model.RolloutPromoted, "", nil), true, false,
			want{"gen-2", "", model.Green, release.SwitchPromoted, "", "step 1", false}},
		{"promoted by a release", progressive(model.RolloutPromoted, "r-1", nil), true, true,
			want{"gen-2", "r-1", model.Green, release.SwitchPromoted, "", "step 1", true}},
		{"promoted, then aborted by hand", progressive(model.RolloutPromoted, "", func(t *model.Traffic) {
			t.GreenPercent, t.Phase, t.Reason = 0, model.PhaseAborted, "abort"
		}), true, true, want{"gen-2", "", model.Green, release.SwitchAborted, model.CauseAborted, "abort", true}},

		{"roll rolling", rolled(model.RollRolling, false), true, false,
			want{"roll-4", "r-1", model.Green, release.SwitchRunning, "", "replacement s1 failed its health check", false}},
		{"roll held", rolled(model.RollHeld, false), true, false,
			want{"roll-4", "r-1", model.Green, release.SwitchRunning, "", "replacement s1 failed its health check", false}},
		{"roll completed", rolled(model.RollCompleted, false), true, true,
			want{"roll-4", "r-1", model.Green, release.SwitchPromoted, "", "replacement s1 failed its health check", true}},
		{"roll rolling back", rolled(model.RollRollingBack, false), true, false,
			want{"roll-4", "r-1", model.Green, release.SwitchRollingBack, model.CauseRollFailed, "replacement s1 failed its health check", false}},
		{"roll walking back after an abort", rolled(model.RollRollingBack, true), true, false,
			want{"roll-4", "r-1", model.Green, release.SwitchAborted, model.CauseAborted, "replacement s1 failed its health check", false}},
		{"roll rolled back", rolled(model.RollRolledBack, false), true, true,
			want{"roll-4", "r-1", model.Green, release.SwitchRolledBack, model.CauseRollFailed, "replacement s1 failed its health check", true}},
		{"roll aborted", rolled(model.RollAborted, true), false, true,
			want{"roll-4", "r-1", model.Green, release.SwitchAborted, model.CauseAborted, "replacement s1 failed its health check", false}},

		{"instant alone", instant("", false), true, false,
			want{"gen-2", "", model.Green, release.SwitchPromoted, "", "instant switch to green", false}},
		{"instant by a release, ACKed", instant("r-1", false), true, true,
			want{"gen-2", "r-1", model.Green, release.SwitchPromoted, "", "instant switch to green", true}},
		{"instant by a release, not ACKed", instant("r-1", false), false, true,
			want{"gen-2", "r-1", model.Green, release.SwitchPromoted, "", "instant switch to green", false}},
		{"instant, aborted", instant("r-1", true), true, true,
			want{"gen-2", "r-1", model.Green, release.SwitchAborted, model.CauseAborted, "abort", true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.tr.Validate(); err != nil {
				t.Fatalf("fixture: %v", err)
			}
			asked := 0
			o := Observe(t0, "web", c.tr, func() bool { asked++; return c.acked })
			got := want{o.SwitchID, o.Release, o.To, o.Phase, o.Cause, o.Reason, o.Confirmed}
			if got != c.want || o.Service != "web" || !o.Now.Equal(t0) {
				t.Fatalf("got  %+v\nwant %+v", got, c.want)
			}
			if (asked > 0) != c.asksAcks || asked > 1 {
				t.Fatalf("acked asked %d times, want asked: %v", asked, c.asksAcks)
			}
			// The scheduler takes it as a valid observation of a member.
			r, err := release.New("r-1", "r", []release.Spec{{Service: "web", From: model.Blue, To: model.Green, Base: "gen-1"}}, 1, t0)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := release.Decide(r, o); errors.Is(err, release.ErrBadEvent) {
				t.Fatalf("the scheduler refuses it: %v", err)
			}
		})
	}
}
