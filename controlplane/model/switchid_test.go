package model

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// Every switch names itself (SwitchID) and the release that started it;
// states stored before these fields existed still load, and their latest
// switch is their rollout's or roll's.
func TestSwitchIDAndRelease(t *testing.T) {
	instant := InitialTraffic()
	instant.Target, instant.GreenPercent, instant.Phase, instant.Generation = Green, 100, PhaseSwitched, 2
	instant.SwitchID, instant.Release = InstantSwitchID(2), "checkout-1"
	tagged := switching()
	tagged.SwitchID, tagged.Release = tagged.Rollout.ID, "checkout-1"
	roll := InitialTraffic()
	roll.Phase, roll.Target, roll.Generation = PhaseSwitching, Green, 4
	roll.Roll = &Roll{ID: "roll-4", From: Blue, To: Green, Params: RollParams{MaxUnavailable: 1, MinAvailable: 1,
		ReplaceTimeout: Duration(time.Minute), Interval: Duration(time.Second)}, Phase: RollRolling,
		Slots: []Slot{{Key: "s1", Old: "b1", State: SlotPending}}}
	roll.SwitchID = "roll-4"

	for _, c := range []struct {
		name   string
		tr     Traffic
		edit   func(*Traffic)
		errHas string
		latest string
	}{
		{"never switched", InitialTraffic(), nil, "", ""},
		{"instant, tagged", instant, nil, "", "gen-2"},
		{"instant, aborted later", instant, func(t *Traffic) { t.Phase, t.GreenPercent = PhaseAborted, 0 }, "", "gen-2"},
		{"progressive, tagged", tagged, nil, "", "gen-2"},
		{"roll", roll, nil, "", "roll-4"},
		{"stored before: the rollout is the latest switch", switching(), nil, "", "gen-2"},
		{"stored before: the roll is the latest switch", roll, func(t *Traffic) { t.SwitchID = "" }, "", "roll-4"},
		{"release without a switch", InitialTraffic(), func(t *Traffic) { t.Release = "checkout-1" }, "without a switch_id", ""},
		{"switch_id other than the rollout's", tagged, func(t *Traffic) { t.SwitchID = "gen-9" }, "names neither", ""},
		{"switch_id other than the roll's", roll, func(t *Traffic) { t.SwitchID = "gen-9" }, "names neither", ""},
	} {
		tr := c.tr
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
			t.Errorf("%s: %v", c.name, err)
		case c.errHas != "" && (err == nil || !strings.Contains(err.Error(), c.errHas)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.errHas)
		case c.errHas == "" && tr.LatestSwitchID() != c.latest:
			t.Errorf("%s: latest switch %q, want %q", c.name, tr.LatestSwitchID(), c.latest)
		}
	}

	// JSON: the fields round-trip, are left out when empty, and a state
	// stored before them (no such keys) reads as untagged.
	b, err := json.Marshal(tagged)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"switch_id":"gen-2"`) || !strings.Contains(string(b), `"release":"checkout-1"`) {
		t.Fatalf("tagged state encodes as %s", b)
	}
	var back Traffic
	if err := json.Unmarshal(b, &back); err != nil || back.SwitchID != "gen-2" || back.Release != "checkout-1" {
		t.Fatalf("read back %+v %v", back, err)
	}
	old, _ := json.Marshal(switching())
	if strings.Contains(string(old), "switch_id") || strings.Contains(string(old), `"release"`) {
		t.Fatalf("untagged state writes the new keys: %s", old)
	}
	var legacy Traffic
	if err := json.Unmarshal(old, &legacy); err != nil || legacy.SwitchID != "" || legacy.Release != "" || legacy.LatestSwitchID() != "gen-2" || legacy.Validate() != nil {
		t.Fatalf("legacy state: %+v %v", legacy, err)
	}
}
