package model

import (
	"fmt"
	"reflect"
	"testing"
)

func TestServingSet(t *testing.T) {
	f := newThreeSlots()
	b1, b2, b3, g1, g2, g3, blue, green := f.b1, f.b2, f.b3, f.g1, f.g2, f.g3, f.blue, f.green
	on, off, roll, ep := servingOn, servingOff, rollOf, slotEndpoint
	cases := []struct {
		name     string
		r        *Roll
		from, to Fleet
		want     []ServingEndpoint
	}{
		{"no roll: the from fleet", nil, blue, green, []ServingEndpoint{on(b1), on(b2), on(b3)}},
		{"all pending", roll(RollRolling, SlotPending, SlotPending, SlotPending), blue, green,
			[]ServingEndpoint{on(b1), on(b2), on(b3)}},
		{"draining: old draining, replacement serving", roll(RollRolling, SlotDraining, SlotPending, SlotPending), blue, green,
			[]ServingEndpoint{off(b1), on(g1), on(b2), on(b3)}},
		{"baking and replaced: replacement only", roll(RollHeld, SlotReplaced, SlotBaking, SlotPending), blue, green,
			[]ServingEndpoint{on(g1), on(g2), on(b3)}},
		{"restoring: replacement draining, old serving", roll(RollRollingBack, SlotReplaced, SlotRestoring, SlotRestored), blue, green,
			[]ServingEndpoint{on(g1), on(b2), off(g2), on(b3)}},
		{"every state", roll(RollRollingBack, SlotDraining, SlotRestoring, SlotRestored), blue, green,
			[]ServingEndpoint{off(b1), on(g1), on(b2), off(g2), on(b3)}},
		{"rolled back: the from fleet", roll(RollRolledBack, SlotReplaced, SlotRestoring, SlotPending), blue, green,
			[]ServingEndpoint{on(b1), on(b2), on(b3)}},
		{"aborted: the from fleet", roll(RollAborted, SlotReplaced, SlotPending, SlotPending), blue, green,
			[]ServingEndpoint{on(b1), on(b2), on(b3)}},
		{"completed: the to fleet", roll(RollCompleted, SlotReplaced, SlotReplaced, SlotReplaced), blue, green,
			[]ServingEndpoint{on(g1), on(g2), on(g3)}},
		{"deregistered old host left out", roll(RollRolling, SlotDraining, SlotPending, SlotPending),
			Fleet{Endpoints: []Endpoint{b2, b3}}, green, []ServingEndpoint{on(g1), on(b2), on(b3)}},
		{"missing replacement left out", roll(RollRolling, SlotDraining, SlotBaking, SlotPending),
			blue, Fleet{Endpoints: []Endpoint{g1}}, []ServingEndpoint{off(b1), on(g1), on(b3)}},
		{"to hosts outside slots left out", roll(RollRolling, SlotPending, SlotPending),
			Fleet{Endpoints: []Endpoint{b1, b2}}, green, []ServingEndpoint{on(b1), on(b2)}},
		{"joined from hosts serve, after the slots, by ID", roll(RollRolling, SlotBaking),
			Fleet{Endpoints: []Endpoint{ep("b9", ""), b1, ep("b5", "s5")}}, green,
			[]ServingEndpoint{on(g1), on(ep("b5", "s5")), on(ep("b9", ""))}},
		{"a second host on a slot's key is left out", roll(RollRolling, SlotBaking),
			Fleet{Endpoints: []Endpoint{b1, ep("b1-again", "s1")}}, green, []ServingEndpoint{on(g1)}},
		{"old host found by ID though its key changed", roll(RollRolling, SlotPending),
			Fleet{Endpoints: []Endpoint{ep("b1", "moved")}}, green, []ServingEndpoint{on(ep("b1", "moved"))}},
		{"empty fleets", roll(RollRolling, SlotDraining), Fleet{}, Fleet{}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := ServingSet(c.r, c.from, c.to)
			if len(got) != 0 || len(c.want) != 0 {
				if !reflect.DeepEqual(got, c.want) {
					t.Errorf("got  %v\nwant %v", got, c.want)
				}
			}
		})
	}
}

func TestServingSetSlotOrder(t *testing.T) {
	// Slots are listed in roll order, not by ID.
	r := &Roll{From: Green, To: Blue, Phase: RollRolling, Slots: []Slot{
		{Key: "a", Old: "z", State: SlotPending},
		{Key: "b", Old: "y", New: "x", State: SlotDraining},
	}}
	from := Fleet{Endpoints: []Endpoint{{ID: "y", Slot: "b"}, {ID: "z", Slot: "a"}}}
	to := Fleet{Endpoints: []Endpoint{{ID: "x", Slot: "b"}}}
	var ids []string
	for _, e := range ServingSet(r, from, to) {
		ids = append(ids, fmt.Sprint(e.Endpoint.ID, e.Draining))
	}
	if want := []string{"zfalse", "ytrue", "xfalse"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("order %v, want %v", ids, want)
	}
}
