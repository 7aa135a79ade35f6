package traffic

import (
	"testing"

	"github.com/bgctl/bg/controlplane/model"
)

func TestSwitchTo(t *testing.T) {
	initial := model.InitialTraffic()
	switched := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 2, Reason: "r"}
	aborted := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 0, Phase: model.PhaseAborted, Generation: 3}
	split := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 30, Phase: model.PhaseSwitched, Generation: 5}
	cases := []struct {
		name    string
		from    model.Traffic
		to      model.Color
		want    model.Traffic
		changed bool
	}{
		{"initial to green", initial, model.Green, switched, true},
		{"initial to blue is a no-op", initial, model.Blue, initial, false},
		{"switched to green again is a no-op", switched, model.Green, switched, false},
		{"switched back to blue makes green stable", switched, model.Blue,
			model.Traffic{Stable: model.Green, Target: model.Blue, GreenPercent: 0, Phase: model.PhaseSwitched, Generation: 3, Reason: "r"}, true},
		{"after abort, switch again", aborted, model.Green,
			model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 4, Reason: "r"}, true},
		{"mid-split keeps stable", split, model.Green,
			model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 6, Reason: "r"}, true},
	}
	for _, c := range cases {
		got, changed := switchTo(c.from, c.to, "r")
		if got != c.want || changed != c.changed {
			t.Errorf("%s: got %+v changed=%v, want %+v changed=%v", c.name, got, changed, c.want, c.changed)
		}
		if err := got.Validate(); err != nil {
			t.Errorf("%s: invalid result: %v", c.name, err)
		}
	}
}

func TestAbort(t *testing.T) {
	switched := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 100, Phase: model.PhaseSwitched, Generation: 2}
	greenStable := model.Traffic{Stable: model.Green, Target: model.Blue, GreenPercent: 0, Phase: model.PhaseSwitched, Generation: 7}
	split := model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 30, Phase: model.PhaseSwitched, Generation: 5}
	cases := []struct {
		name    string
		from    model.Traffic
		want    model.Traffic
		changed bool
	}{
		{"switched to green goes back to blue", switched,
			model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 0, Phase: model.PhaseAborted, Generation: 3, Reason: "r"}, true},
		{"green stable goes back to green", greenStable,
			model.Traffic{Stable: model.Green, Target: model.Blue, GreenPercent: 100, Phase: model.PhaseAborted, Generation: 8, Reason: "r"}, true},
		{"mid-split goes back", split,
			model.Traffic{Stable: model.Blue, Target: model.Green, GreenPercent: 0, Phase: model.PhaseAborted, Generation: 6, Reason: "r"}, true},
		{"already stable is a no-op", model.InitialTraffic(), model.InitialTraffic(), false},
	}
	for _, c := range cases {
		got, changed := abort(c.from, "r")
		if got != c.want || changed != c.changed {
			t.Errorf("%s: got %+v changed=%v, want %+v changed=%v", c.name, got, changed, c.want, c.changed)
		}
	}
}
