package traffic

import (
	"testing"

	"github.com/bgctl/bg/controlplane/model"
)

// The stored-state policy, one row per rule (invariants 1 and 4).
func TestDecideStored(t *testing.T) {
	plan := model.Plan{Steps: []int{50, 100}}
	running := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 50, Phase: model.PhaseSwitching, Generation: 3,
		Rollout: &model.Rollout{ID: "gen-2", From: model.Blue, To: model.Green, Plan: plan, Phase: model.RolloutProgressing}}
	rolledBack := running
	rb := *running.Rollout
	rb.Phase, rb.Cause = model.RolloutRolledBack, model.CauseAnalysisFailed
	rolledBack.Rollout, rolledBack.GreenPercent, rolledBack.Phase, rolledBack.Generation = &rb, 0, model.PhaseRolledBack, 4
	newer := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 9}

	for _, tc := range []struct {
		name string
		in   storedInput
		want storedAction
	}{
		{"first load, no key", storedInput{found: false}, storedCreate},
		{"key vanished, leader", storedInput{loaded: true, leading: true, cur: newer, curIdx: 7}, storedWriteBack},
		{"key vanished, follower", storedInput{loaded: true, cur: newer, curIdx: 7}, storedIgnore},
		{"unsaved rollback vs the switch still running, leader", storedInput{loaded: true, unsaved: true, leading: true, cur: rolledBack, curIdx: 5, stored: running, idx: 5, found: true, fresh: true}, storedWriteRollback},
		{"unsaved rollback vs the switch still running, follower, newer write", storedInput{loaded: true, unsaved: true, cur: rolledBack, curIdx: 5, stored: withGeneration(running, 4), idx: 9, found: true}, storedKeepRollback},
		{"unsaved rollback, a newer switch is stored", storedInput{loaded: true, unsaved: true, cur: rolledBack, curIdx: 5, stored: newer, idx: 9, found: true}, storedAdopt},
		{"unsaved rollback, the rollback is stored", storedInput{loaded: true, unsaved: true, cur: rolledBack, curIdx: 5, stored: rolledBack, idx: 9, found: true}, storedAdopt},
		{"our own write echoed by the watch", storedInput{loaded: true, cur: running, curIdx: 5, stored: running, idx: 5, found: true}, storedIgnore},
		{"an older read from the watch", storedInput{loaded: true, cur: newer, curIdx: 9, stored: running, idx: 5, found: true}, storedIgnore},
		{"a newer write with a lower generation (after a rollback written back) is adopted", storedInput{loaded: true, cur: withGeneration(newer, 12), curIdx: 9, stored: running, idx: 11, found: true}, storedAdopt},
		{"a fresh read at the same revision changes nothing", storedInput{loaded: true, cur: running, curIdx: 5, stored: running, idx: 5, found: true, fresh: true}, storedIgnore},
		{"a fresh read of an older revision (restored snapshot) is adopted", storedInput{loaded: true, cur: newer, curIdx: 9, stored: running, idx: 3, found: true, fresh: true}, storedAdopt},
		{"first load", storedInput{stored: running, idx: 5, found: true, fresh: true}, storedAdopt},
	} {
		if got := decideStored(tc.in); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
