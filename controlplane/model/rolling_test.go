package model

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// Serving is ServingSet with make-before-break on the way back: a slot
// whose replacement left the To fleet serves its old host again.
func TestServing(t *testing.T) {
	f := newThreeSlots()
	b1, b2, b3, g1, g2, g3, blue, green := f.b1, f.b2, f.b3, f.g1, f.g2, f.g3, f.blue, f.green
	only := func(es ...Endpoint) Fleet { return Fleet{Endpoints: es} }
	on, off, roll := servingOn, servingOff, rollOf
	cases := []struct {
		name     string
		r        *Roll
		from, to Fleet
		want     []ServingEndpoint
	}{
		{"nil roll", nil, blue, green, []ServingEndpoint{on(b1), on(b2), on(b3)}},
		{"every replacement there: as ServingSet", roll(RollRolling, SlotReplaced, SlotBaking, SlotDraining), blue, green,
			[]ServingEndpoint{on(g1), on(g2), off(b3), on(g3)}},
		{"draining slot's replacement left: old host serves, not draining", roll(RollRolling, SlotReplaced, SlotDraining, SlotPending), blue, only(g1, g3),
			[]ServingEndpoint{on(g1), on(b2), on(b3)}},
		{"baking slot's replacement left: old host back", roll(RollRolling, SlotReplaced, SlotBaking, SlotPending), blue, only(g1, g3),
			[]ServingEndpoint{on(g1), on(b2), on(b3)}},
		{"replaced slot's replacement left: old host back", roll(RollHeld, SlotReplaced, SlotBaking, SlotPending), blue, only(g2, g3),
			[]ServingEndpoint{on(b1), on(g2), on(b3)}},
		{"rolling back: same rule", roll(RollRollingBack, SlotReplaced, SlotRestoring, SlotPending), blue, only(g2),
			[]ServingEndpoint{on(b1), on(b2), off(g2), on(b3)}},
		{"old host gone too: nothing for the slot", roll(RollRolling, SlotReplaced, SlotBaking, SlotPending), only(b1, b3), only(g1),
			[]ServingEndpoint{on(g1), on(b3)}},
		{"pending slot with a known replacement that left: old host as before", roll(RollRolling, SlotPending), only(b1), only(),
			[]ServingEndpoint{on(b1)}},
		{"completed: the to fleet, untouched", roll(RollCompleted, SlotReplaced, SlotReplaced, SlotReplaced), blue, only(g1, g2),
			[]ServingEndpoint{on(g1), on(g2)}},
		{"rolled back: the from fleet", roll(RollRolledBack, SlotReplaced, SlotRestored, SlotPending), blue, only(),
			[]ServingEndpoint{on(b1), on(b2), on(b3)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var before *Roll
			if c.r != nil {
				cp := *c.r
				cp.Slots = append([]Slot(nil), c.r.Slots...)
				before = &cp
			}
			got := Serving(c.r, c.from, c.to)
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Serving = %v, want %v", got, c.want)
			}
			if !reflect.DeepEqual(before, c.r) {
				t.Errorf("Serving changed the roll: %+v", c.r)
			}
		})
	}
}

func TestRollParamsValidate(t *testing.T) {
	base := RollParams{MaxUnavailable: 1, MinAvailable: 1, DrainTimeout: Duration(30 * time.Second), Bake: Duration(time.Minute),
		ReplaceTimeout: Duration(5 * time.Minute), Interval: Duration(time.Second)}
	judged := base
	judged.Judged, judged.UnavailableBudget, judged.OnUnavailable = true, Duration(time.Minute), OnUnavailableRollback
	cases := []struct {
		name   string
		p      func(p RollParams) RollParams
		errHas string
	}{
		{"unjudged: no budget or policy needed", func(RollParams) RollParams { return base }, ""},
		{"judged, rollback", func(RollParams) RollParams { return judged }, ""},
		{"judged, hold", func(RollParams) RollParams { p := judged; p.OnUnavailable = OnUnavailableHold; return p }, ""},
		{"judged, budget equal to interval", func(RollParams) RollParams { p := judged; p.UnavailableBudget = p.Interval; return p }, ""},
		{"judged, no budget", func(RollParams) RollParams { p := judged; p.UnavailableBudget = 0; return p }, "unavailable_budget"},
		{"judged, budget below interval", func(RollParams) RollParams {
			p := judged
			p.UnavailableBudget = Duration(500 * time.Millisecond)
			return p
		}, "unavailable_budget"},
		{"judged, no policy", func(RollParams) RollParams { p := judged; p.OnUnavailable = ""; return p }, "on_unavailable"},
		{"judged, unknown policy", func(RollParams) RollParams { p := judged; p.OnUnavailable = "ignore"; return p }, "on_unavailable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.p(base).Validate()
			switch {
			case c.errHas == "" && err != nil:
				t.Errorf("error %v", err)
			case c.errHas != "" && (err == nil || !strings.Contains(err.Error(), c.errHas)):
				t.Errorf("error %v, want one naming %s", err, c.errHas)
			}
		})
	}
}

func TestRollValidateNoVerdict(t *testing.T) {
	r := func(nv *NoVerdict) *Roll {
		return &Roll{From: Blue, To: Green, Phase: RollHeld, NoVerdict: nv,
			Params: RollParams{MaxUnavailable: 1, MinAvailable: 1, ReplaceTimeout: Duration(time.Minute), Interval: Duration(time.Second)}}
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		nv   *NoVerdict
		ok   bool
	}{
		{"none", nil, true},
		{"insufficient", &NoVerdict{Outcome: VerdictInsufficient, Reason: "x", Since: now}, true},
		{"unavailable", &NoVerdict{Outcome: VerdictUnavailable, Reason: "x", Since: now}, true},
		{"healthy is no hold", &NoVerdict{Outcome: VerdictHealthy, Since: now}, false},
		{"no since", &NoVerdict{Outcome: VerdictUnavailable}, false},
	} {
		if err := r(c.nv).Validate(); (err == nil) != c.ok {
			t.Errorf("%s: error %v", c.name, err)
		}
	}
}
